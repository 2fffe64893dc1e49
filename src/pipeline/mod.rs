//! The pipeline: one service's import as the design card draws it, and
//! nothing else. It knows neither HTTP, NATS nor Redis: it owns its words
//! (`vocabulary`) and the traits it reaches the world through (`ports`),
//! which `sources`, `sinks` and `store` implement.
//!
//! Where each part of the card lives, following one batch from fetch to
//! commit:
//!
//! | the card says | where |
//! |---|---|
//! | paginated Sisu batches (a `Stream`) | [`ports::BatchSource`] (`sources` implements it), pulled through `attempt/gate.rs` |
//! | flattened into chunk streams | the pure core, [`core::AttemptCore`]: `core/mod.rs` (`on_batch`, `poll_publish`), cutting in [`chunker`], order in [`order`] and `identity` |
//! | sunk into a NATS publisher with backpressure and rate limiting | [`ports::ChunkSink`], a `futures::Sink` whose `poll_ready` waits for the publish window and the rate limit (`sinks::ChunkPublisher`) |
//! | joined with an ack stream | `attempt/mod.rs`: feedback, publish acks and store outcomes merged into one stream of events folded into the core (`core/mod.rs` `on_feedback`, `core/seed.rs` for the seed's form) |
//! | that gates ordinal commits | `core/chunks.rs` (`commit_ready`), written by `attempt/store_writer.rs` through [`ports::CursorStore`] |
//!
//! And where each rule lives:
//! - windows, per-identity order, halving, dead letters, commit order and
//!   the panic deadline: `core/` (`mod.rs`, `chunks.rs`, `order.rs`);
//! - the seed's feedback form (waves, ack floors): `core/seed.rs`;
//! - resuming an interrupted attempt: `core/recovery.rs`;
//! - when fetching stops, the shutdown grace, the drain after a source
//!   failure and how an attempt ends: `core/course.rs`;
//! - what the operator is told: `telemetry/` (the observer, the reporter).
//!
//! A whole run (services in order, retries, the execution hash, `POST_UPDATE`,
//! the lease, the daemon) composes attempts in `crate::importer`.

pub mod attempt;
pub mod chunker;
pub mod core;
pub(crate) mod identity;
pub mod order;
pub mod ports;
pub mod telemetry;
pub mod vocabulary;

pub use chunker::ChunkLimits;
pub use telemetry::{AttemptStats, LiveProgress, Reporter};
