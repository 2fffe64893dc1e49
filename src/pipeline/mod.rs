//! The pipeline: composes a source's batch stream with the chunker, the
//! publisher and the ack gate, and drives services one after another. It
//! knows neither HTTP nor the NATS wire format beyond what `sources` and
//! `sinks` hand it.
//!
//! - `ports`: the traits `sources`, `sinks` and `store` implement.
//! - `chunker`: batch → chunks bounded by count and bytes.
//! - `order`: the per-identity order barrier; `identity`: the order key
//!   of an entity, found by a scan of its top-level fields.
//! - `core/`: [`core::AttemptCore`], one attempt's rules as pure state
//!   (windows, order, halving, commit order, panic deadline); its events
//!   and actions in `core/types.rs`, chunk bookkeeping in `chunks.rs`,
//!   resumption in `recovery.rs`.
//! - `import`: the async driver of one attempt (streams joined in one
//!   `select!`); `store_queue`: its Redis writes, in order.
//! - `telemetry`: the attempt's one observer (logs, metrics, progress).
//! - `run`: a whole run: services in order (or side by side with
//!   `SERVICE_CONCURRENCY`), retries, `POST_UPDATE`.
//! - `replay`: dead letters sent again through an attempt that commits
//!   nothing.
//! - `daemon`: the cron schedule, start-up run and re-arming.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::sinks::{JetStreamFeedback, Nats, PublishFailure, SinkError};
use crate::sources::{SisuClient, SisuSource, SourceError};
use crate::store::{OrdinalStore, StoreError};

pub mod chunker;
pub mod core;
pub mod daemon;
mod forbidden;
pub(crate) mod identity;
pub mod import;
pub mod order;
pub mod ports;
pub mod replay;
pub mod run;
mod store_queue;
pub mod telemetry;

pub use chunker::ChunkLimits;
pub use run::{RunSummary, ServiceOutcome, ServiceReport};

/// Why a service's import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Sisu failed (after retries) or answered nonsense.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Redis failed (after retries).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A chunk could not be published.
    #[error(transparent)]
    Publish(#[from] PublishFailure),
    /// The feedback stream failed.
    #[error(transparent)]
    Feedback(#[from] ports::FeedbackError),
    /// Every attempt ended in a panic timeout.
    #[error("no feedback progress within PANIC_TIMEOUT ({timeout_secs} s) in {attempts} attempts: {why}; ordinal left at the last fully acknowledged batch")]
    PanicTimeouts {
        /// Attempts made (`UPDATE_RETRY_LIMIT`).
        attempts: u32,
        /// The timeout.
        timeout_secs: f64,
        /// What feedback came and why it did not count, or that none came.
        why: String,
    },
}

/// Why the importer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Redis unreachable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// NATS unreachable or the stream unusable.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The Sisu client could not be built.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Configuration problem found while starting.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Live progress of one service in the running process (the current or
/// last run), for the progress line.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LiveProgress {
    /// Entities in committed batches.
    pub entities: u64,
    /// Entities acknowledged by consumers, committed or not yet.
    pub acknowledged: u64,
    /// Committed ordinal.
    pub ordinal: Option<i64>,
    /// Dead letters.
    pub dead_letters: u64,
    /// Chunks published.
    pub chunks: u64,
    /// The attempt under way (1 unless panic timeouts forced retries).
    pub attempt: u32,
    /// When the service started; `None` before.
    #[serde(skip)]
    pub started: Option<std::time::Instant>,
    /// When it finished, and how (`ok`, `failed`, ...); `None` while running.
    #[serde(skip)]
    pub finished: Option<std::time::Instant>,
    /// The outcome, once finished.
    pub result: Option<String>,
    /// Start order within the process.
    #[serde(skip)]
    pub seq: u64,
    /// Totals of the service's earlier attempts in this run.
    #[serde(skip)]
    pub(crate) base: import::AttemptStats,
}

/// Everything a run needs: configuration and the three connections. One
/// per process; runs never overlap (`run_lock`).
pub struct Importer {
    /// The configuration.
    pub config: Arc<Config>,
    /// Redis.
    pub store: OrdinalStore,
    /// NATS.
    pub nats: Nats,
    /// Sisu.
    pub client: SisuClient,
    /// Batches from Sisu, for the pipeline.
    source: SisuSource,
    /// Feedback from the stream, for the pipeline.
    feedback: JetStreamFeedback,
    /// Chunk bounds (from config and the server's `max_payload`).
    pub limits: ChunkLimits,
    /// Services Sisu answered 403 for, skipped for a while.
    forbidden: forbidden::Forbidden,
    /// Held while a run is in progress.
    run_lock: tokio::sync::Mutex<()>,
    /// Per-service live progress for status and the progress line.
    live: Mutex<BTreeMap<String, LiveProgress>>,
    /// The lease (key, owner) every commit must hold, when replicas are used.
    lease: Mutex<Option<(String, String)>>,
    /// Set when the lease was found lost: the run imports nothing more.
    lease_lost: std::sync::atomic::AtomicBool,
    /// Ignored feedback not yet told, per service.
    ignored_notes: Mutex<std::collections::HashMap<String, telemetry::IgnoredNote>>,
    /// How each service's consumers answer, as last seen (in this process,
    /// or read from Redis when a run starts).
    forms: Mutex<std::collections::HashMap<String, core::FeedbackForm>>,
    /// The run's execution hash and the services importing under it.
    run_hash: Mutex<RunHash>,
    /// Warnings given once per process (their text).
    warned: Mutex<HashSet<String>>,
}

/// One execution hash for a whole run, shared by its services: consumers
/// that keep one current hash (importer-mankeli) drop chunks of any other,
/// so services side by side must not each have their own. It changes
/// between runs, and after a panic timeout when no other service is under
/// way (SPEC §2's new hash); with others under way the retry gets a new
/// epoch (new chunk ids) under the same hash instead.
#[derive(Debug, Default)]
struct RunHash {
    /// The hash attempts start under.
    hash: String,
    /// Services of the run importing now.
    in_flight: usize,
    /// The hash this process last published on `CURRENT_EXECUTION_HASH`.
    published: Option<String>,
}

/// After a new hash reached consumers, how long the first publish waits so
/// that they have taken it in before its chunks arrive (a consumer that
/// keeps one hash acks a chunk of another without feedback).
const HASH_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

impl Importer {
    /// Connects to Redis and NATS (failing fast), makes sure the stream
    /// exists and builds the Sisu client.
    pub async fn connect(config: Config) -> Result<Arc<Importer>, StartError> {
        let store = OrdinalStore::connect(&config.redis_url).await?;
        let nats = Nats::connect(&config).await?;
        // An existing stream that misses a subject the selected services
        // need is refused, as `check` refuses it: chunks, feedback or
        // POST_UPDATE would not be stored.
        let catalogue = config.catalogue()?;
        nats.ensure_stream(
            &catalogue,
            &config.selected_services()?,
            config.stream_max_age,
            config.nats_stream_replicas,
        )
        .await?;
        let feedback = JetStreamFeedback::new(nats.clone());
        let client = SisuClient::new(&config)?;
        let limits = ChunkLimits::new(
            config.max_chunk_size,
            config.max_chunk_bytes,
            nats.max_payload(),
            crate::sinks::wire::ENVELOPE_RESERVE,
        );
        if let Some(capped) = nats.payload_cap(config.max_chunk_bytes) {
            tracing::warn!(
                max_chunk_bytes = config.max_chunk_bytes,
                max_payload = nats.max_payload(),
                "{capped}"
            );
        }
        tracing::info!(
            max_entities = limits.max_entities,
            max_entity_bytes = limits.max_entity_bytes,
            max_payload = nats.max_payload(),
            "chunk limits"
        );
        let forbidden_retry = config.forbidden_retry;
        let importer = Arc::new(Importer {
            config: Arc::new(config),
            source: SisuSource {
                client: client.clone(),
                store: store.clone(),
            },
            feedback,
            store,
            nats,
            client,
            limits,
            forbidden: forbidden::Forbidden::new(forbidden_retry),
            run_lock: tokio::sync::Mutex::new(()),
            live: Mutex::new(BTreeMap::new()),
            lease: Mutex::new(None),
            lease_lost: std::sync::atomic::AtomicBool::new(false),
            ignored_notes: Mutex::new(std::collections::HashMap::new()),
            forms: Mutex::new(std::collections::HashMap::new()),
            run_hash: Mutex::new(RunHash::default()),
            warned: Mutex::new(HashSet::new()),
        });
        if let Err(e) = importer.seed_gauges(&catalogue).await {
            tracing::warn!(error = %e, "could not read the last successes, forbidden services and dead letters for the metrics");
        }
        Ok(importer)
    }

    /// Whether `warning` is new in this process (then it is remembered).
    fn first_warning(&self, warning: &str) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        warned.insert(warning.to_owned())
    }

    /// How `service`'s consumers were last seen to answer.
    fn known_form(&self, service: &str) -> core::FeedbackForm {
        let forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        forms.get(service).copied().unwrap_or_default()
    }

    /// `service`'s consumers answer in `form`: said once per process (log,
    /// metric); `import_service` records it in Redis for `status`.
    fn note_form(
        &self,
        service: &crate::catalogue::Service,
        form: core::FeedbackForm,
        ack_floors: bool,
    ) {
        use core::FeedbackForm;
        if form == FeedbackForm::Unknown {
            return;
        }
        let mut forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        let before = forms.insert(service.id.clone(), form);
        crate::metrics::feedback_form(&service.id, form.as_str());
        if before == Some(form) {
            return;
        }
        match form {
            FeedbackForm::Seed if ack_floors => {
                tracing::info!(service = %service.id, subject = %service.subject, feedback_form = form.as_str(), "consumers answer in the seed's form (OK without chunkId): chunks go out in waves, each wave's chunks finish together once the OK amounts and the durable consumers' ack floors cover them; no crash recovery without re-sending for this service")
            }
            FeedbackForm::Seed => {
                tracing::warn!(service = %service.id, subject = %service.subject, feedback_form = form.as_str(), "consumers answer in the seed's form (OK without chunkId): chunks go out in waves, each wave's chunks finish together once the OK amounts cover them; no durable consumer reads the subject, so a duplicated OK can end a wave early (docs/migrating.md); no crash recovery without re-sending for this service")
            }
            _ => {
                tracing::info!(service = %service.id, subject = %service.subject, feedback_form = form.as_str(), "consumers answer in the precise form (OK names the chunk)")
            }
        }
    }

    /// Reads the forms Redis remembers for services this process has not
    /// seen answer yet (a failure only means the first OK will tell).
    async fn load_forms(&self) {
        let stored = match self.store.feedback_forms().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the feedback forms");
                return;
            }
        };
        let mut forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        for (service, form) in stored {
            let form = core::FeedbackForm::parse(&form);
            if form != core::FeedbackForm::Unknown {
                forms.entry(service).or_insert(form);
            }
        }
    }

    /// Chooses the run's execution hash: the current one when it belongs to
    /// an interrupted run that one of `services` can resume (its attempt
    /// record is open under it; seed-form services never resume, their
    /// feedback cannot be matched to chunks), else a new one.
    async fn begin_run_hash(&self, services: &[crate::catalogue::Service]) {
        let current = self.store.execution_hash().await.ok().flatten();
        let mut resumable = false;
        if let Some(current) = &current {
            for service in services {
                if self.known_form(&service.id) == core::FeedbackForm::Seed {
                    continue;
                }
                if let Ok(Some(record)) = self.store.attempt_record(service).await {
                    if record.open && record.execution_hash == *current {
                        resumable = true;
                        break;
                    }
                }
            }
        }
        let hash = match current {
            Some(current) if resumable => current,
            _ => new_execution_hash(),
        };
        let mut run = self.run_hash.lock().unwrap_or_else(|e| e.into_inner());
        run.hash = hash;
        run.in_flight = 0;
    }

    /// A service of the run starts importing.
    fn service_entered(&self) {
        let mut run = self.run_hash.lock().unwrap_or_else(|e| e.into_inner());
        run.in_flight += 1;
    }

    /// A service of the run is done.
    fn service_left(&self) {
        let mut run = self.run_hash.lock().unwrap_or_else(|e| e.into_inner());
        run.in_flight = run.in_flight.saturating_sub(1);
    }

    /// The hash an attempt starts under. A retry (after a panic timeout or
    /// a feedback failure) gets a new hash when no other service is under
    /// way (see [`RunHash`]).
    fn attempt_hash(&self, retry: bool) -> String {
        let mut run = self.run_hash.lock().unwrap_or_else(|e| e.into_inner());
        if run.hash.is_empty() || (retry && run.in_flight <= 1) {
            run.hash = new_execution_hash();
        }
        run.hash.clone()
    }

    /// `hash` was published and reached `receivers` subscribers: when it is
    /// new to them, give them [`HASH_SETTLE`] to take it in.
    async fn hash_published(&self, hash: &str, receivers: u64) {
        let new = {
            let mut run = self.run_hash.lock().unwrap_or_else(|e| e.into_inner());
            let new = run.published.as_deref() != Some(hash);
            run.published = Some(hash.to_owned());
            new
        };
        if new && receivers > 0 {
            tokio::time::sleep(HASH_SETTLE).await;
        }
    }

    /// Adds ignored feedback of `service` (counts by reason) and tells the
    /// operator in one summary line when one is due (see
    /// [`telemetry::IgnoredNote`]).
    fn note_ignored(&self, service: &str, counts: telemetry::Ignored, example: Option<String>) {
        let now = std::time::Instant::now();
        let mut notes = self.ignored_notes.lock().unwrap_or_else(|e| e.into_inner());
        let note = notes.entry(service.to_owned()).or_default();
        note.add(counts, example);
        if !note.due(now) {
            return;
        }
        let malformed = note.has_malformed();
        if let Some((ignored, example)) = note.take(now) {
            let example = example.unwrap_or_default();
            if malformed {
                tracing::warn!(service, ignored = %ignored, last_malformed = %example, "feedback ignored (summary: at most one line per 10 s)");
            } else {
                tracing::info!(service, ignored = %ignored, "feedback ignored (summary: at most one line per 10 s)");
            }
        }
    }

    /// Why the feedback about `service` since it started in this run did
    /// not count, if any was ignored (see [`telemetry::IgnoredNote::why`]).
    fn ignored_why(&self, service: &str) -> Option<String> {
        let notes = self.ignored_notes.lock().unwrap_or_else(|e| e.into_inner());
        notes.get(service).and_then(|n| n.why())
    }

    /// A service starts in a run: what was ignored before is forgotten.
    fn forget_ignored(&self, service: &str) {
        let mut notes = self.ignored_notes.lock().unwrap_or_else(|e| e.into_inner());
        notes.remove(service);
    }

    /// What ignored feedback of `service` was not told yet, for its
    /// `service finished` line (`""` when nothing).
    fn untold_ignored(&self, service: &str) -> String {
        let mut notes = self.ignored_notes.lock().unwrap_or_else(|e| e.into_inner());
        notes
            .get_mut(service)
            .and_then(|n| n.take(std::time::Instant::now()))
            .map(|(text, _)| text)
            .unwrap_or_default()
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.run_lock.try_lock().is_err()
    }

    /// Services found forbidden in this process and still skipped.
    pub fn forbidden(&self) -> Vec<String> {
        let now = std::time::Instant::now();
        let mut skipped = self.forbidden.list();
        skipped.retain(|s| self.forbidden.skips(s, now));
        skipped
    }

    /// Clears the forbidden mark of `services` (all when empty), in Redis
    /// and here: the next run tries them again. Returns the ids cleared.
    pub async fn clear_forbidden(&self, services: &[String]) -> Result<Vec<String>, StoreError> {
        let cleared = self.store.unforbid(services).await?;
        for service in &cleared {
            self.forbidden.clear(service);
            crate::metrics::forbidden(service, false);
        }
        Ok(cleared)
    }

    /// Live progress of every service touched by this process.
    pub fn live(&self) -> BTreeMap<String, LiveProgress> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update_live(&self, service: &str, f: impl FnOnce(&mut LiveProgress, u64)) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let seq = live.len() as u64;
        // Called per feedback message: allocate the key only the first time.
        match live.get_mut(service) {
            Some(p) => f(p, seq),
            None => f(live.entry(service.to_owned()).or_default(), seq),
        }
    }

    /// A service starts: its live progress starts from zero.
    fn live_started(&self, service: &str) {
        self.update_live(service, |p, seq| {
            *p = LiveProgress {
                started: Some(std::time::Instant::now()),
                seq,
                ..LiveProgress::default()
            }
        });
    }

    /// Attempt `attempt` of a service begins: what earlier attempts did
    /// becomes the base the new attempt's numbers add to.
    fn live_attempt(&self, service: &str, attempt: u32) {
        self.update_live(service, |p, _| {
            p.attempt = attempt;
            p.base = import::AttemptStats {
                entities: p.entities,
                acknowledged: p.acknowledged,
                batches: 0,
                chunks: p.chunks,
                dead_letters: p.dead_letters,
                recovered: 0,
                ordinal: p.ordinal,
            };
        });
    }

    /// The running attempt's numbers so far.
    fn progress(&self, service: &str, stats: &import::AttemptStats) {
        self.update_live(service, |p, _| {
            p.ordinal = stats.ordinal.or(p.base.ordinal);
            p.chunks = p.base.chunks + stats.chunks;
            p.dead_letters = p.base.dead_letters + stats.dead_letters;
            p.entities = p.base.entities + stats.entities;
            p.acknowledged = p.base.acknowledged + stats.acknowledged;
        });
    }

    /// A service finished with `result`.
    fn live_finished(&self, service: &str, result: &str, ordinal: Option<i64>) {
        self.update_live(service, |p, _| {
            p.finished = Some(std::time::Instant::now());
            p.result = Some(result.to_owned());
            p.ordinal = p.ordinal.or(ordinal);
        });
    }

    /// Sets the lease every commit must hold (`None`: no check).
    pub(crate) fn set_lease(&self, lease: Option<(String, String)>) {
        *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = lease;
        self.lease_lost
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Another instance took the lease: the run stops starting services
    /// (commits are refused by Redis anyway).
    pub(crate) fn mark_lease_lost(&self) {
        self.lease_lost
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the lease this run holds was lost.
    pub(crate) fn lease_lost(&self) -> bool {
        self.lease_lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn lease_guard(&self) -> Option<(String, String)> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A new random execution hash (128 bits, hex).
pub(crate) fn new_execution_hash() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
