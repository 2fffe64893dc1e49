//! Sinks: everything that knows NATS. The chunk envelope and feedback wire
//! format (SPEC §4), the JetStream stream, the bounded publisher and the
//! feedback subscription live here; the pipeline sees only [`Feedback`],
//! [`ChunkPublisher`] and encoded payloads.
//!
//! - `connection`: connect, read `max_payload`, make sure the stream exists.
//! - `wire`: chunk envelope encoding and feedback decoding.
//! - `publisher`: JetStream publishes with bounded in-flight acks, a rate
//!   limit and retries under the same `Nats-Msg-Id`.

pub mod connection;
pub mod publisher;
pub mod wire;

pub use connection::{Nats, NatsAuth, SinkError};
pub use publisher::{ChunkPublisher, OutgoingChunk, PublishFailure};
pub use wire::{Feedback, FeedbackStatus};
