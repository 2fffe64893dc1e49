//! The traits through which an attempt reaches the world, in the
//! pipeline's own words (`vocabulary`): `sources` implements
//! [`BatchSource`], `sinks` implements [`ChunkSink`], [`FeedbackSource`]
//! and [`ConsumerAcks`], `store` implements [`CursorStore`]. The pipeline
//! knows no HTTP, no NATS and no Redis; tests implement them in memory.

use std::future::Future;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Sink, Stream};

use super::core::{ChunkOut, Commit};
use super::vocabulary::{
    Batch, ConsumerProgress, DeadLetterRecord, FeedbackError, FeedbackItem, FetchError,
    PublishFailure, Published, Recorded, StoreFailure,
};
use crate::catalogue::Service;

/// Where batches come from (Sisu).
pub trait BatchSource: Send + Sync {
    /// The batches of `service` after `since`, fetched lazily: at most one
    /// page is asked for ahead of the batch not yet taken (memory stays
    /// bounded by what the core holds, plus one page).
    fn batches(
        &self,
        service: &Service,
        since: i64,
        fetch_amount: u32,
    ) -> BoxStream<'static, Result<Batch, FetchError>>;
}

/// Where chunks go (JetStream): a `Sink` of chunks whose `poll_ready`
/// holds back while its publish window is full or its rate limit says
/// wait, and a `Stream` of the publishes' outcomes (the broker's acks,
/// retries inside), in the order they finish. The stream never ends while
/// the sink lives; it is pending while nothing is under way.
pub trait ChunkSink:
    Sink<ChunkOut, Error = PublishFailure>
    + Stream<Item = Result<Published, PublishFailure>>
    + Send
    + Unpin
{
}

impl<T> ChunkSink for T where
    T: Sink<ChunkOut, Error = PublishFailure>
        + Stream<Item = Result<Published, PublishFailure>>
        + Send
        + Unpin
{
}

/// Feedback messages as they come; an `Err` item means the stream broke.
pub type FeedbackStream = BoxStream<'static, Result<FeedbackItem, FeedbackError>>;

/// Live feedback, and where it starts in the stream that stores it.
pub struct Subscription {
    /// Feedback stored from now on.
    pub stream: FeedbackStream,
    /// Stream sequence of the last feedback stored before `stream`'s
    /// first; `None` when feedback is not read from a stream (then none
    /// can be recovered after a crash).
    pub after: Option<u64>,
}

/// A feedback message read back from the stream, with its sequence.
#[derive(Debug)]
pub struct StoredFeedback {
    /// Its stream sequence.
    pub sequence: u64,
    /// The message.
    pub item: FeedbackItem,
}

/// Where feedback comes from.
pub trait FeedbackSource: Send + Sync {
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

/// What the durable consumers reading a subject have acknowledged (a
/// seed-form wave waits for it, see `core/seed.rs`).
pub trait ConsumerAcks: Send + Sync {
    /// The durable consumers with acknowledgements that read `subject`.
    fn progress(
        &self,
        subject: &str,
    ) -> BoxFuture<'static, Result<Vec<ConsumerProgress>, FeedbackError>>;
}

/// The committed cursor and what goes with it (Redis). Every method
/// returns a `'static` future so the store writer can keep one write under
/// way while the attempt goes on handling feedback.
pub trait CursorStore: Send + Sync {
    /// Adds to the `_SCHEDULED` / `_UPDATED` window counters.
    fn add_window(
        &self,
        service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> BoxFuture<'static, Result<(), StoreFailure>>;
    /// Records a dead letter, keeping its entity while the service's
    /// letters hold fewer than `entity_budget` bytes of entities.
    fn dead_letter(
        &self,
        letter: DeadLetterRecord,
        entity_budget: u64,
    ) -> BoxFuture<'static, Result<Recorded, StoreFailure>>;
    /// Commits a batch's ordinal (under the lease, when given); returns
    /// the committed ordinal.
    fn commit(
        &self,
        service: &Service,
        ordinal: i64,
        entities: u64,
        lease: Option<(String, String)>,
    ) -> BoxFuture<'static, Result<i64, StoreFailure>>;
}

/// A finished write into the [`CursorStore`], as the attempt's store
/// writer reports it back to the core (through the observer).
#[derive(Debug)]
pub(crate) enum StoreDone {
    /// Window counters added.
    Window(Result<(), StoreFailure>),
    /// A dead letter recorded.
    DeadLetter(DeadLetterRecord, Result<Recorded, StoreFailure>),
    /// A batch committed: the ordinal now stored.
    Commit(Commit, Result<i64, StoreFailure>),
}
