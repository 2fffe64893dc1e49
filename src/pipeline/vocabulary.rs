//! The pipeline's own words: what comes in through its ports (batches,
//! feedback, publish acks, what durable consumers acknowledged) and what
//! goes out (dead-letter records), with the failures each port can report.
//! The adapters (`sources`, `sinks`, `store`) convert their own types into
//! these at their edge; nothing here knows HTTP, NATS or Redis.

use std::time::Duration;

use crate::entity::Entity;

/// One batch of a service, ready to be chunked: the entities exactly as
/// Sisu sent them, and the ordinal to commit once all are done.
#[derive(Debug)]
pub struct Batch {
    /// The (exclusive) ordinal the batch was fetched after.
    pub since: i64,
    /// The ordinal to commit when every entity is done.
    pub greatest_ordinal: i64,
    /// Whether more follow.
    pub has_more: bool,
    /// The entities, raw JSON, in Sisu's order.
    pub entities: Vec<Entity>,
    /// Time spent fetching it (retries and waits included).
    pub fetched_in: Duration,
}

/// Why a service's batches could not be fetched, as the source said it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    /// The source refused the service (Sisu's 403): skip it for a while.
    pub forbidden: bool,
    /// What went wrong, naming service and URL (never a secret).
    pub message: String,
}

/// What a consumer said about a chunk, in either of SPEC §4's forms: the
/// precise one names the chunk (`chunkId`) in OK and FAIL alike; the
/// seed's (importer-mankeli's) OK carries only `amount`, and its FAIL
/// echoes the chunk message, `chunkId` included when the chunk had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// The subject the chunk came on.
    pub channel: String,
    /// `OK` or `FAIL`.
    pub status: FeedbackStatus,
    /// The attempt's hash.
    pub execution_hash: String,
    /// The chunk; `None` in a seed-form OK.
    pub chunk_id: Option<String>,
    /// Entities the consumer stored (OK) or 0 (FAIL), as it counted them.
    pub amount: Option<u64>,
    /// The consumer's error text on FAIL, at most 2000 bytes.
    pub stack: String,
    /// A FAIL without `chunkId`: the echoed chunk's entities, by which the
    /// chunk is found (empty otherwise).
    pub echoed: Vec<Entity>,
}

/// Feedback status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackStatus {
    /// The chunk is stored.
    Ok,
    /// The chunk failed.
    Fail,
}

impl Feedback {
    /// Feedback in the precise form about `chunk_id`, as a consumer would
    /// send it (benchmarks and tests).
    pub fn precise(
        channel: &str,
        status: FeedbackStatus,
        execution_hash: &str,
        chunk_id: &str,
    ) -> Feedback {
        Feedback {
            channel: channel.to_owned(),
            status,
            execution_hash: execution_hash.to_owned(),
            chunk_id: Some(chunk_id.to_owned()),
            amount: None,
            stack: String::new(),
            echoed: Vec::new(),
        }
    }

    /// The chunk id for logs (`-` when the feedback names none).
    pub(crate) fn chunk_label(&self) -> &str {
        self.chunk_id.as_deref().unwrap_or("-")
    }
}

/// A feedback message that could not be read.
#[derive(Debug, Clone)]
pub struct MalformedFeedback {
    /// Why.
    pub reason: String,
    /// Its size in bytes.
    pub bytes: usize,
}

/// One item of the feedback stream.
pub type FeedbackItem = Result<Feedback, MalformedFeedback>;

/// Why the feedback stream could not be opened or broke.
#[derive(Debug, Clone, thiserror::Error)]
#[error("feedback on SCHEDULER_STATUS_CHANNEL: {0}")]
pub struct FeedbackError(pub String);

/// A publish the broker acknowledged (stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The chunk.
    pub chunk_id: String,
    /// Where the stream stored it.
    pub stream_seq: u64,
}

/// A chunk that could not be published within the retry window.
#[derive(Debug, Clone, thiserror::Error)]
#[error("publishing chunk {chunk_id} on {subject} failed after {attempts} attempts: {message}")]
pub struct PublishFailure {
    /// The chunk.
    pub chunk_id: String,
    /// The subject.
    pub subject: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last cause.
    pub message: String,
}

/// What a durable consumer of a service's subject has done, from the
/// broker's consumer info (stream sequences).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerProgress {
    /// The durable's name.
    pub name: String,
    /// The last stream sequence delivered to it.
    pub delivered: u64,
    /// Every message up to this stream sequence is acknowledged.
    pub ack_floor: u64,
    /// Messages delivered to it and not yet acknowledged: JetStream
    /// delivers each again once its `ack_wait` has passed.
    pub ack_pending: u64,
    /// Its `ack_wait`.
    pub ack_wait: std::time::Duration,
}

/// Why a write to the cursor store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreFailure {
    /// The write was refused: this instance no longer holds the import
    /// lease (another one imports now).
    #[error("Redis {operation} refused: this instance no longer holds the import lease")]
    LeaseLost {
        /// What was being done.
        operation: &'static str,
    },
    /// The store failed (after its retries).
    #[error("{0}")]
    Failed(String),
}

/// An entity the attempt gives up on, for the dead-letter list (SPEC §6):
/// built by the core, stored (with its time) by the cursor store.
#[derive(Debug, Clone)]
pub struct DeadLetterRecord {
    /// Service id.
    pub service: String,
    /// Its identity (`id`, or the composite identity of SISU-SHAPES.md).
    pub identity: Option<String>,
    /// `metadata.modificationOrdinal`, where present.
    pub modification_ordinal: Option<i64>,
    /// `poison` or `too_large`.
    pub reason: &'static str,
    /// What the consumer said, or the sizes involved.
    pub detail: String,
    /// The attempt's execution hash.
    pub execution_hash: String,
    /// The chunk it failed in (poison only).
    pub chunk_id: Option<String>,
    /// The entity, raw (kept with the letter so it can be replayed).
    pub entity: Entity,
}

/// What recording a dead letter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// It was not listed before (a retried attempt may meet it again).
    pub new: bool,
    /// Its entity is kept with it (it can be replayed).
    pub entity_kept: bool,
}
