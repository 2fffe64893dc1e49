//! The importer: what a process runs around the pipeline. It connects the
//! adapters (Redis, NATS, Sisu) to the pipeline's ports, and runs services:
//! one [`Importer`] per process, its runs never overlapping.
//!
//! - `attempt`: one attempt set up (its record, hash, resumption) and run
//!   through `pipeline::attempt`.
//! - `run`: a whole run: services in order (or side by side with
//!   `SERVICE_CONCURRENCY`), retries after panic timeouts, `POST_UPDATE`.
//! - `hash`: one execution hash per run, shared by its services.
//! - `forbidden`: services Sisu answered 403 for, skipped for a while.
//! - `replay`: dead letters sent again through an attempt that commits
//!   nothing.
//! - `daemon`: the cron schedule, start-up run and re-arming.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::pipeline::core::{AttemptFailure, FeedbackForm};
use crate::pipeline::{ChunkLimits, LiveProgress, Reporter};
use crate::sinks::{JetStreamFeedback, Nats, SinkError};
use crate::sources::{SisuClient, SisuSource, SourceError};
use crate::store::{OrdinalStore, StoreError};

pub(crate) mod attempt;
pub mod daemon;
mod forbidden;
mod hash;
pub mod replay;
pub mod run;

pub use attempt::AttemptEnd;
pub use run::{RunSummary, ServiceOutcome, ServiceReport};

/// Why a service's import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An attempt failed: the source, the store, the publisher or the
    /// feedback stream.
    #[error(transparent)]
    Attempt(#[from] AttemptFailure),
    /// Redis failed (after retries) around the attempts.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// The adapters behind the pipeline's ports: what an attempt reaches the
/// world through (and what commands and the admin API use directly).
pub struct Connections {
    /// Redis: the cursor store and all other state.
    pub store: OrdinalStore,
    /// NATS: chunks out, feedback in, `POST_UPDATE`.
    pub nats: Nats,
    /// Sisu.
    pub client: SisuClient,
    /// Batches from Sisu, for the pipeline.
    pub(crate) source: SisuSource,
    /// Feedback from the stream, for the pipeline.
    pub(crate) feedback: JetStreamFeedback,
    /// Chunk bounds (from config and the server's `max_payload`).
    pub limits: ChunkLimits,
}

/// What a run keeps between its services and attempts.
struct RunState {
    /// Held while a run (or a replay) is in progress: runs never overlap.
    lock: tokio::sync::Mutex<()>,
    /// The run's execution hash and the services importing under it.
    hash: Mutex<hash::RunHash>,
    /// Services Sisu answered 403 for, skipped for a while.
    forbidden: forbidden::Forbidden,
    /// The lease (key, owner) every commit must hold, when replicas are used.
    lease: Mutex<Option<(String, String)>>,
    /// Warnings given once per process (their text).
    warned: Mutex<HashSet<String>>,
}

/// One per process: the configuration, the [`Connections`] an attempt
/// needs, the state a run keeps, and the [`Reporter`] the attempts tell
/// the operator through.
pub struct Importer {
    /// The configuration.
    pub config: Arc<Config>,
    /// The adapters.
    pub io: Connections,
    /// What the attempts tell the operator: live progress, ignored
    /// feedback, feedback forms, a lost lease.
    reporter: Arc<Reporter>,
    /// What runs keep.
    run: RunState,
}

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
            io: Connections {
                source: SisuSource {
                    client: client.clone(),
                    cache: Arc::new(store.clone()),
                },
                feedback,
                store,
                nats,
                client,
                limits,
            },
            reporter: Arc::new(Reporter::default()),
            run: RunState {
                lock: tokio::sync::Mutex::new(()),
                hash: Mutex::new(hash::RunHash::default()),
                forbidden: forbidden::Forbidden::new(forbidden_retry),
                lease: Mutex::new(None),
                warned: Mutex::new(HashSet::new()),
            },
        });
        if let Err(e) = importer.seed_gauges(&catalogue).await {
            tracing::warn!(error = %e, "could not read the last successes, forbidden services and dead letters for the metrics");
        }
        Ok(importer)
    }

    /// Whether `warning` is new in this process (then it is remembered).
    fn first_warning(&self, warning: &str) -> bool {
        let mut warned = self.run.warned.lock().unwrap_or_else(|e| e.into_inner());
        warned.insert(warning.to_owned())
    }

    /// Reads the forms Redis remembers for services this process has not
    /// seen answer yet (a failure only means the first OK will tell).
    async fn load_forms(&self) {
        match self.io.store.feedback_forms().await {
            Ok(stored) => self.reporter.remember_forms(
                stored
                    .into_iter()
                    .map(|(service, form)| (service, FeedbackForm::parse(&form))),
            ),
            Err(e) => tracing::debug!(error = %e, "could not read the feedback forms"),
        }
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.run.lock.try_lock().is_err()
    }

    /// Services found forbidden in this process and still skipped.
    pub fn forbidden(&self) -> Vec<String> {
        let now = std::time::Instant::now();
        let mut skipped = self.run.forbidden.list();
        skipped.retain(|s| self.run.forbidden.skips(s, now));
        skipped
    }

    /// Clears the forbidden mark of `services` (all when empty), in Redis
    /// and here: the next run tries them again. Returns the ids cleared.
    pub async fn clear_forbidden(&self, services: &[String]) -> Result<Vec<String>, StoreError> {
        let cleared = self.io.store.unforbid(services).await?;
        for service in &cleared {
            self.run.forbidden.clear(service);
            crate::metrics::forbidden(service, false);
        }
        Ok(cleared)
    }

    /// Live progress of every service touched by this process.
    pub fn live(&self) -> std::collections::BTreeMap<String, LiveProgress> {
        self.reporter.live()
    }

    /// What the attempts of this process tell the operator.
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Whether the lease this run holds was lost.
    pub(crate) fn lease_lost(&self) -> bool {
        self.reporter.was_lease_lost()
    }

    fn lease_guard(&self) -> Option<(String, String)> {
        self.run
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl crate::lease::LeaseUser for Importer {
    /// Sets the lease every commit must hold (`None`: no check).
    fn hold(&self, lease: Option<(String, String)>) {
        *self.run.lease.lock().unwrap_or_else(|e| e.into_inner()) = lease;
        self.reporter.lease_held();
    }

    /// Another instance took the lease: the run stops starting services
    /// (commits are refused by Redis anyway).
    fn lost(&self) {
        self.reporter.lease_lost();
    }
}

/// A new random execution hash (128 bits, hex).
pub(crate) fn new_execution_hash() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
