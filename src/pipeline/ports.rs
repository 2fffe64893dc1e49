//! The small traits through which the pipeline reaches the world.
//! `sources` implements [`BatchSource`], `sinks` implements `ChunkSink`,
//! `FeedbackSource` and `ConsumerAcks`, `store` implements `CursorStore`. The pipeline
//! knows no HTTP, no NATS and no Redis (the `POST_UPDATE` announcement
//! goes straight to `sinks::Nats`).

use std::future::Future;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::core::{ChunkOut, ConsumerProgress};
use crate::catalogue::Service;
use crate::sinks::{Feedback, PublishFailure};
use crate::sources::{Batch, SourceError};
use crate::store::{DeadLetter, Recorded, StoreError};

/// Where batches come from (Sisu).
pub trait BatchSource: Send + Sync {
    /// The batches of `service` after `since`, fetched lazily: the next
    /// request is made only when the previous batch has been taken.
    fn batches(
        &self,
        service: &Service,
        since: i64,
        fetch_amount: u32,
    ) -> BoxStream<'static, Result<Batch, SourceError>>;
}

/// Where chunks go (JetStream). Starting a publish never waits: rate limit,
/// retries and the publish ack all happen inside the publish, whose outcome
/// comes from [`next_ack`](ChunkSink::next_ack).
pub(crate) trait ChunkSink: Send {
    /// Starts publishing `chunk`.
    fn publish(&mut self, chunk: ChunkOut);
    /// The next finished publish; pending while none is under way.
    fn next_ack(&mut self) -> impl Future<Output = Result<Published, PublishFailure>> + Send + '_;
}

/// A publish JetStream acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The chunk.
    pub chunk_id: String,
    /// Where the stream stored it.
    pub stream_seq: u64,
}

/// What the durable consumers reading a subject have acknowledged (a
/// seed-form wave waits for it, see `core/seed.rs`).
pub(crate) trait ConsumerAcks: Send + Sync {
    /// The durable consumers with acknowledgements that read `subject`.
    fn progress(
        &self,
        subject: &str,
    ) -> BoxFuture<'static, Result<Vec<ConsumerProgress>, FeedbackError>>;
}

/// One item of the feedback stream.
pub(crate) type FeedbackItem = Result<Feedback, MalformedFeedback>;

/// A feedback message that could not be read.
#[derive(Debug, Clone)]
pub(crate) struct MalformedFeedback {
    /// Why.
    pub reason: String,
    /// Its size in bytes.
    pub bytes: usize,
}

/// Why the feedback stream could not be opened or broke.
#[derive(Debug, Clone, thiserror::Error)]
#[error("feedback on SCHEDULER_STATUS_CHANNEL: {0}")]
pub struct FeedbackError(pub String);

/// Feedback messages as they come; an `Err` item means the stream broke.
pub(crate) type FeedbackStream = BoxStream<'static, Result<FeedbackItem, FeedbackError>>;

/// Live feedback, and where it starts in the stream that stores it.
pub(crate) struct Subscription {
    /// Feedback stored from now on.
    pub stream: FeedbackStream,
    /// Stream sequence of the last feedback stored before `stream`'s
    /// first; `None` when feedback is not read from a stream (then none
    /// can be recovered after a crash).
    pub after: Option<u64>,
}

/// Where feedback comes from.
pub(crate) trait FeedbackSource: Send + Sync {
    /// Feedback sent from now on (so: opened before the first publish).
    fn subscribe(&self) -> impl Future<Output = Result<Subscription, FeedbackError>> + Send;
    /// The feedback stored with stream sequences in `(after, through]`, in
    /// order (crash recovery). Messages the stream no longer holds are
    /// simply missing.
    fn stored(
        &self,
        after: u64,
        through: u64,
    ) -> impl Future<Output = Result<Vec<StoredFeedback>, FeedbackError>> + Send;
}

/// A feedback message read back from the stream, with its sequence.
#[derive(Debug)]
pub(crate) struct StoredFeedback {
    /// Its stream sequence.
    pub sequence: u64,
    pub item: FeedbackItem,
}

/// The committed cursor and what goes with it (Redis). Every method
/// returns a `'static` future so the driver can keep one write under way
/// while it goes on handling feedback.
pub(crate) trait CursorStore: Send + Sync {
    /// Adds to the `_SCHEDULED` / `_UPDATED` window counters.
    fn add_window(
        &self,
        service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Records a dead letter, with its entity while the service's dead
    /// letters keep at most `entity_budget` bytes of entities; says whether
    /// it was new and whether its entity was kept.
    fn dead_letter(
        &self,
        letter: DeadLetter,
        entity_budget: u64,
    ) -> BoxFuture<'static, Result<Recorded, StoreError>>;
    /// Commits a batch's ordinal (under the lease, when given); returns
    /// the committed ordinal.
    fn commit(
        &self,
        service: &Service,
        ordinal: i64,
        entities: u64,
        lease: Option<(String, String)>,
    ) -> BoxFuture<'static, Result<i64, StoreError>>;
}
