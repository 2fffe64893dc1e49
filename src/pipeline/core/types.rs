//! The events and actions of [`AttemptCore`](super::core::AttemptCore):
//! what goes in (batches, feedback) and what comes out (chunks to publish,
//! store writes, verdicts for telemetry). Plain data, no rules.

use std::sync::Arc;
use std::time::Duration;

use super::super::vocabulary::{
    DeadLetterRecord, FeedbackError, FetchError, PublishFailure, StoreFailure,
};
use crate::entity::Entity;
use std::time::Instant;

/// The time limits of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// No feedback progress for this long while chunks are unfinished
    /// abandons the attempt (`PANIC_TIMEOUT`).
    pub panic: Duration,
    /// After shutdown, how long outstanding feedback is waited for.
    pub shutdown_grace: Duration,
}

/// How an attempt ended.
#[derive(Debug)]
pub enum AttemptEnd {
    /// Everything fetched was acknowledged and committed.
    Completed,
    /// No feedback progress for `PANIC_TIMEOUT`: retry from the committed ordinal.
    PanicTimeout,
    /// Shutdown: what was fully acknowledged is committed.
    Interrupted,
    /// A failure that retrying the attempt will not cure.
    Failed(AttemptFailure),
}

/// Why an attempt failed: the port that broke, and how.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptFailure {
    /// The source failed (after retries) or answered nonsense.
    #[error(transparent)]
    Source(#[from] FetchError),
    /// The cursor store failed or refused (lease lost).
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// A chunk could not be published.
    #[error(transparent)]
    Publish(#[from] PublishFailure),
    /// The feedback stream failed.
    #[error(transparent)]
    Feedback(#[from] FeedbackError),
}

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

/// Which attempt a core runs, and whether it continues one that a crash
/// or shutdown interrupted (crash recovery: see `Recovered`).
#[derive(Debug, Clone)]
pub struct Lineage {
    /// The execution hash (the interrupted attempt's when resuming).
    pub execution_hash: String,
    /// Part of every chunk id; changes with every new execution hash of a
    /// service (kept in Redis), so ids repeat only for the attempt they
    /// were made in.
    pub epoch: u64,
    /// Whether feedback for chunks not yet made is remembered (resuming).
    pub resuming: bool,
    /// The committed ordinal the attempt starts from: feedback about
    /// batches below it (committed already) is not remembered.
    pub since: i64,
    /// How the service's consumers were last seen to answer (`Unknown`:
    /// not seen yet; the attempt finds out from the first OK).
    pub form: FeedbackForm,
    /// A replay of dead letters: no window counter and no commit goes out,
    /// and the dead letters met again are kept for the replay to settle
    /// (`AttemptCore::take_met_again`) instead of being written.
    pub replay: bool,
}

/// How a service's consumers answer (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedbackForm {
    /// No OK seen yet.
    #[default]
    Unknown,
    /// OK names the chunk (`chunkId`): chunks finish one by one and the
    /// attempt pipelines freely.
    Precise,
    /// The seed's OK: an `amount` and no `chunkId`. Chunks go out in
    /// waves (see `core/seed.rs`).
    Seed,
}

impl FeedbackForm {
    /// `unknown`, `precise` or `seed` (logs, metrics, `status`, Redis).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackForm::Unknown => "unknown",
            FeedbackForm::Precise => "precise",
            FeedbackForm::Seed => "seed",
        }
    }

    /// The form named by [`FeedbackForm::as_str`]; `Unknown` for anything else.
    pub fn parse(text: &str) -> FeedbackForm {
        match text {
            "precise" => FeedbackForm::Precise,
            "seed" => FeedbackForm::Seed,
            _ => FeedbackForm::Unknown,
        }
    }
}

/// Where a chunk lies: its batch's range and its entity range in the
/// batch. With the service and the epoch this is its id,
/// `<service>-<epoch>-<since>-<greatest>-<start>+<len>`, the same for the
/// same Sisu page chunked with the same limits, so an attempt resumed
/// after a crash remakes the ids the crashed one published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ChunkKey {
    /// The batch's `since`.
    pub since: i64,
    /// The batch's `greatestOrdinal`.
    pub greatest: i64,
    /// Index of the chunk's first entity among the batch's chunked entities.
    pub start: u32,
    /// Entities in the chunk.
    pub len: u32,
}

impl ChunkKey {
    /// The chunk id.
    pub fn id(&self, service: &str, epoch: u64) -> String {
        let ChunkKey {
            since,
            greatest,
            start,
            len,
        } = self;
        format!("{service}-{epoch}-{since}-{greatest}-{start}+{len}")
    }

    /// The key in a chunk id made by [`ChunkKey::id`] for `service` and
    /// `epoch`; `None` for any other id.
    pub fn parse(id: &str, service: &str, epoch: u64) -> Option<ChunkKey> {
        let rest = id.strip_prefix(service)?.strip_prefix('-')?;
        let (e, rest) = rest.split_once('-')?;
        if e.parse::<u64>().ok()? != epoch {
            return None;
        }
        let mut parts = rest.splitn(3, '-');
        let since = parts.next()?.parse().ok()?;
        let greatest = parts.next()?.parse().ok()?;
        let (start, len) = parts.next()?.split_once('+')?;
        let key = ChunkKey {
            since,
            greatest,
            start: start.parse().ok()?,
            len: len.parse().ok()?,
        };
        (key.len > 0 && key.id(service, epoch) == id).then_some(key)
    }

    /// The two halves a failed chunk is split into.
    pub fn halves(&self) -> [ChunkKey; 2] {
        let mid = self.len / 2;
        [
            ChunkKey { len: mid, ..*self },
            ChunkKey {
                start: self.start + mid,
                len: self.len - mid,
                ..*self
            },
        ]
    }
}

/// What the feedback of an interrupted attempt said about its chunks,
/// first word per chunk (a later contradiction, such as FAIL after OK, is
/// ignored as it would have been live).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recovered {
    /// Acknowledged: not sent again.
    Ok,
    /// A lone entity failed (with this stack): dead-lettered again (the
    /// dead-letter list keeps one entry per entity version), not sent again.
    Poison(String),
    /// Failed with several entities: made as its two halves, as the
    /// interrupted attempt did.
    Split,
}

/// A chunk to publish: what the sink needs to build the envelope.
#[derive(Debug, Clone)]
pub struct ChunkOut {
    /// `chunkId`: see `ChunkKey`.
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
    DeadLetter(DeadLetterRecord),
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
    /// A seed-form OK (no `chunkId`) without a positive `amount`: nothing
    /// to count.
    NoAmount,
    /// A seed-form OK while no chunk awaits feedback: more was
    /// acknowledged than was sent (a duplicated OK).
    Surplus,
    /// A FAIL without `chunkId` whose echoed entities match no chunk
    /// awaiting feedback.
    UnidentifiedFail,
    /// Not feedback JSON at all (counted by telemetry, never a verdict).
    Malformed,
}

impl IgnoreReason {
    /// Every reason, in the order of [`IgnoreReason::index`].
    pub const ALL: [IgnoreReason; 7] = [
        IgnoreReason::OtherChannel,
        IgnoreReason::OldExecution,
        IgnoreReason::UnknownOrDone,
        IgnoreReason::NoAmount,
        IgnoreReason::Surplus,
        IgnoreReason::UnidentifiedFail,
        IgnoreReason::Malformed,
    ];

    /// Its place in [`IgnoreReason::ALL`] (for counting arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::OtherChannel => "other_channel",
            IgnoreReason::OldExecution => "old_execution",
            IgnoreReason::UnknownOrDone => "unknown_or_done",
            IgnoreReason::NoAmount => "no_amount",
            IgnoreReason::Surplus => "surplus",
            IgnoreReason::UnidentifiedFail => "unidentified_fail",
            IgnoreReason::Malformed => "malformed",
        }
    }

    /// What it tells the operator when an attempt made no progress.
    pub fn meaning(self) -> &'static str {
        match self {
            IgnoreReason::OtherChannel => "about other services",
            IgnoreReason::OldExecution => {
                "with another execution hash (an earlier attempt's, or consumers that do not follow CURRENT_EXECUTION_HASH)"
            }
            IgnoreReason::UnknownOrDone => "about chunks not awaited (unknown ids, or answered already)",
            IgnoreReason::NoAmount => "OK without chunkId and without a positive amount",
            IgnoreReason::Surplus => "OK without chunkId when nothing awaited feedback (duplicates)",
            IgnoreReason::UnidentifiedFail => "FAIL without chunkId whose entities match no chunk awaited",
            IgnoreReason::Malformed => "not feedback JSON",
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
    /// Resuming: feedback of the interrupted attempt for a chunk not (yet)
    /// sent again, kept to finish that chunk without sending it.
    Remembered,
    /// A seed-form OK counted towards the wave under way (its chunks
    /// finish together, see [`WaveEnd`]).
    Credited {
        /// Its `amount`.
        entities: u64,
        /// It was the first seed-form OK this attempt saw: the service
        /// now goes in waves.
        switched: bool,
    },
}

/// A wave of seed-form chunks finished (see `core/seed.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveEnd {
    /// Chunks finished together.
    pub chunks: usize,
    /// Their entities.
    pub entities: u64,
    /// OK amounts beyond the wave's entities (duplicated OKs), dropped.
    pub surplus: u64,
    /// How the end was decided.
    pub by: WaveConfirmation,
}

/// What ended a wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveConfirmation {
    /// The OK amounts, with no durable consumer to ask (none reads the
    /// subject with explicit acks).
    Amounts,
    /// The OK amounts and the durable consumers' ack floors.
    AckFloor,
    /// The OK amounts alone, after the ack floors did not cover the wave
    /// within the wait.
    AmountsAfterWait,
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
