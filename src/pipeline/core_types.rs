//! The events and actions of [`AttemptCore`](super::core::AttemptCore):
//! what goes in (batches, feedback) and what comes out (chunks to publish,
//! store writes, verdicts for telemetry). Plain data, no rules.

use std::sync::Arc;
use std::time::Duration;

use crate::entity::Entity;
use tokio::time::Instant;

/// The windows of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Batches open at once; 1 = fetch the next only after the previous
    /// one is committed.
    pub pipeline_depth: usize,
    /// Chunks published and awaiting feedback.
    pub max_chunks_in_flight: usize,
    /// Chunks awaiting their JetStream publish ack.
    pub max_publishes_in_flight: usize,
}

/// A chunk to publish: what the sink needs to build the envelope.
#[derive(Debug, Clone)]
pub struct ChunkOut {
    /// `chunkId`, unique within the run.
    pub chunk_id: String,
    /// The attempt's execution hash.
    pub execution_hash: Arc<str>,
    /// The entities, exactly as Sisu sent them.
    pub entities: Arc<[Entity]>,
    /// A half of a failed chunk (its entities went out before).
    pub half: bool,
}

/// Writes for the cursor store, to be performed in the order given.
#[derive(Debug)]
pub enum Action {
    /// Add to the `_SCHEDULED` / `_UPDATED` window counters.
    Window(WindowDelta),
    /// Record a dead letter.
    DeadLetter(DeadLetterOrder),
    /// Write a batch's ordinal (window counters first).
    Commit(Commit),
}

/// Entity counts not yet added to `_SCHEDULED` / `_UPDATED`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WindowDelta {
    /// Entities published (first publish only).
    pub scheduled: u64,
    /// Entities acknowledged or dead-lettered.
    pub updated: u64,
}

/// An entity to dead-letter.
#[derive(Debug)]
pub struct DeadLetterOrder {
    /// The entity, raw.
    pub entity: Entity,
    /// `poison` or `too_large`.
    pub reason: &'static str,
    /// What the consumer said, or the sizes.
    pub detail: String,
    /// The chunk it failed in (poison only).
    pub chunk_id: Option<String>,
}

/// A batch ordinal ready to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The batch's `greatestOrdinal`.
    pub greatest_ordinal: i64,
    /// Entities in the batch (acknowledged or dead-lettered).
    pub entities: u64,
    /// The batch's number in this run.
    pub batch_no: u64,
    /// Chunks made for it, halves included.
    pub chunks: u32,
    /// Window counters to add before the commit.
    pub window: WindowDelta,
    /// How long fetching the batch took.
    pub fetched_in: Duration,
    /// When the batch was opened.
    pub opened: Instant,
}

/// Why a feedback message was ignored (also a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Feedback for another service's subject.
    OtherChannel,
    /// Feedback from an earlier attempt or run.
    OldExecution,
    /// Not a chunk this attempt is waiting for (unknown, or already done).
    UnknownOrDone,
}

impl IgnoreReason {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::OtherChannel => "other_channel",
            IgnoreReason::OldExecution => "old_execution",
            IgnoreReason::UnknownOrDone => "unknown_or_done",
        }
    }
}

/// What one feedback message did, for telemetry.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing: it does not concern a chunk awaiting feedback.
    Ignored(IgnoreReason),
    /// A chunk of `entities` is done.
    Done {
        /// Entities acknowledged.
        entities: usize,
    },
    /// A chunk failed and goes out again as two halves.
    Split {
        /// The failed chunk.
        failed: String,
        /// The halves' ids and sizes.
        halves: [(String, usize); 2],
    },
    /// A lone failing entity is dead-lettered.
    Poison {
        /// The failed chunk.
        chunk_id: String,
    },
}

/// What opening a batch did, for telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The batch's number.
    pub batch_no: u64,
    /// Chunks made.
    pub chunks: usize,
    /// Entities too large for any chunk (dead-lettered).
    pub too_large: usize,
}

/// The batch data the core needs.
#[derive(Debug)]
pub struct BatchIn {
    /// The ordinal to commit when the batch is done.
    pub greatest_ordinal: i64,
    /// The entities, raw, in Sisu's order.
    pub entities: Vec<Entity>,
    /// How long fetching it took.
    pub fetched_in: Duration,
}
