//! Sinks: everything that knows NATS. The chunk envelope and feedback wire
//! format (SPEC §4), the JetStream stream, the bounded publisher and the
//! feedback stream live here; the pipeline sees them through its traits
//! (`pipeline::ports`).
//!
//! - `connection`: connect, read `max_payload`, make sure the stream exists.
//! - `wire`: chunk envelope encoding and feedback decoding.
//! - `publisher`: JetStream publishes with a rate limit and retries under
//!   the same `Nats-Msg-Id`.
//! - `feedback`: consumers' feedback read from the stream (an ordered
//!   consumer, so nothing sent during a reconnect is lost).
//! - `consumers`: the durable consumers reading the stream (ack waits,
//!   ack floors).

pub mod connection;
pub mod consumers;
pub mod feedback;
pub mod publisher;
pub mod wire;

pub use connection::{Nats, NatsAuth, SinkError};
pub use feedback::JetStreamFeedback;
pub use publisher::ChunkPublisher;
pub use wire::parse_feedback;
