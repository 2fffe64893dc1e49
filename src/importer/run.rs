//! A whole run: every selected service in catalogue order, one at a time
//! (or up to `SERVICE_CONCURRENCY` side by side, each with its own
//! windows), each retried after panic timeouts; then, once, `POST_UPDATE`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use super::attempt::AttemptEnd;
use super::{ImportError, Importer};
use crate::catalogue::Service;
use crate::pipeline::core::{AttemptFailure, FeedbackForm};
use crate::pipeline::AttemptStats;
use crate::shutdown::Shutdown;
use crate::store::{AttemptRecord, RunRecord};

/// How one service's part of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceOutcome {
    /// Everything fetched was acknowledged and committed.
    Ok,
    /// One-time service already fetched.
    Skipped,
    /// Sisu answered 403 (now or earlier in this process).
    Forbidden,
    /// Failed; the ordinal stays at the last fully acknowledged batch.
    Failed,
    /// Stopped by shutdown.
    Interrupted,
}

impl ServiceOutcome {
    /// Whether this counts as finished for `once`'s exit code and
    /// `POST_UPDATE`'s `success`.
    pub fn finished(self) -> bool {
        matches!(self, ServiceOutcome::Ok | ServiceOutcome::Skipped)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceOutcome::Ok => "ok",
            ServiceOutcome::Skipped => "skipped",
            ServiceOutcome::Forbidden => "forbidden",
            ServiceOutcome::Failed => "failed",
            ServiceOutcome::Interrupted => "interrupted",
        }
    }
}

/// One service's result in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    /// Service id.
    pub service: String,
    /// How it ended.
    pub result: ServiceOutcome,
    /// Entities committed.
    pub entities: u64,
    /// Chunks published.
    pub chunks: u64,
    /// Dead letters recorded.
    pub dead_letters: u64,
    /// Chunks not sent again because the interrupted attempt this run
    /// resumed had them acknowledged (logged, not in `POST_UPDATE`).
    #[serde(skip)]
    pub recovered_chunks: u64,
    /// Committed ordinal at the end.
    pub ordinal: Option<i64>,
    /// Attempts made.
    pub attempts: u32,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// The error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of a whole run (also the body of `POST_UPDATE`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// True when every service finished.
    pub success: bool,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// Per-service results, in import order.
    pub services: Vec<ServiceReport>,
    /// Whether `POST_UPDATE` was published (not part of its body): `once`
    /// fails without it, since consumers waiting for it did not hear.
    #[serde(skip)]
    pub announced: bool,
}

/// A run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another run is in progress in this process.
    #[error("a run is already in progress")]
    AlreadyRunning,
}

impl Importer {
    /// Runs `services` in order, then publishes `POST_UPDATE`. Refuses to
    /// start while another run is in progress.
    pub async fn run(
        &self,
        services: &[Service],
        shutdown: Shutdown,
    ) -> Result<RunSummary, RunError> {
        let _running = self
            .run
            .lock
            .try_lock()
            .map_err(|_| RunError::AlreadyRunning)?;
        let started_at = chrono::Utc::now().to_rfc3339();
        let started = Instant::now();
        let concurrency = self.config.service_concurrency.max(1);
        self.load_forms().await;
        self.sync_forbidden().await;
        self.begin_run_hash(services).await;
        self.warn_about_ack_waits(services).await;
        tracing::info!(services = services.len(), concurrency, "run started");
        // Services start in catalogue order, at most `concurrency` at once;
        // reports come back in that order.
        let mut reports = Vec::with_capacity(services.len());
        let mut pending = futures::stream::FuturesOrdered::new();
        let mut next = services.iter();
        loop {
            while pending.len() < concurrency {
                let Some(service) = next.next() else { break };
                pending.push_back(self.service_in_run(service, shutdown.clone()));
            }
            match pending.next().await {
                Some(report) => reports.push(report),
                None => break,
            }
        }
        let mut summary = RunSummary {
            success: reports.iter().all(|r| r.result.finished()),
            started_at,
            finished_at: chrono::Utc::now().to_rfc3339(),
            services: reports,
            announced: false,
        };
        summary.announced = self.announce(&summary).await;
        let failed: Vec<&str> = summary
            .services
            .iter()
            .filter(|r| !r.result.finished())
            .map(|r| r.service.as_str())
            .collect();
        tracing::info!(success = summary.success, took_ms = started.elapsed().as_millis() as u64, failed = ?failed, "run finished");
        Ok(summary)
    }

    /// Drops the forbidden marks another process cleared in Redis.
    async fn sync_forbidden(&self) {
        match self.io.store.forbidden().await {
            Ok(stored) => self.run.forbidden.keep_only(&stored.into_iter().collect()),
            Err(e) => tracing::debug!(error = %e, "could not read the forbidden services"),
        }
    }

    /// Warns about durable consumers whose ack wait is longer than the
    /// importer waits for a service's feedback (once per process for each).
    async fn warn_about_ack_waits(&self, services: &[Service]) {
        let durables = match self.io.nats.durable_consumers().await {
            Ok(durables) => durables,
            Err(e) => {
                tracing::debug!(error = %e, "could not list the durable consumers");
                return;
            }
        };
        let budget = self.config.panic_timeout * self.config.update_retry_limit;
        for slow in crate::sinks::consumers::ack_waits_beyond(services, &durables, budget) {
            if self.first_warning(&slow) {
                tracing::warn!(consumer = %slow, panic_timeout_secs = self.config.panic_timeout.as_secs_f64(), update_retry_limit = self.config.update_retry_limit, "a durable consumer redelivers an unacknowledged chunk later than PANIC_TIMEOUT × UPDATE_RETRY_LIMIT: a consumer killed in the middle of a chunk gets it back only after the importer has given up on the service; raise PANIC_TIMEOUT or UPDATE_RETRY_LIMIT, or lower the consumer's ack wait");
            }
        }
    }

    /// One service's part of a run; nothing more starts after a shutdown
    /// or once the lease is lost.
    async fn service_in_run(&self, service: &Service, shutdown: Shutdown) -> ServiceReport {
        if shutdown.is_shutdown() || self.lease_lost() {
            ServiceReport::new(service, ServiceOutcome::Interrupted)
        } else {
            self.import_service(service, shutdown).await
        }
    }

    /// Publishes `POST_UPDATE` and records the run in Redis; whether
    /// `POST_UPDATE` was published.
    async fn announce(&self, summary: &RunSummary) -> bool {
        let body = serde_json::to_vec(summary).expect("summary serializes");
        let announced = match self.io.nats.announce(body, Duration::from_secs(30)).await {
            Ok(()) => {
                tracing::info!(success = summary.success, "POST_UPDATE published");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "could not publish POST_UPDATE: consumers that wait for it do not hear of this run; check that NATS answers and that the stream captures POST_UPDATE (sis-importer check)");
                false
            }
        };
        let fields: BTreeMap<String, String> = [
            ("success", summary.success.to_string()),
            ("started_at", summary.started_at.clone()),
            ("finished_at", summary.finished_at.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Err(e) = self.io.store.record_last_run(&fields).await {
            tracing::warn!(error = %e, "could not record the run in Redis");
        }
        announced
    }

    /// Imports one service: up to `UPDATE_RETRY_LIMIT` attempts, each from
    /// the committed ordinal with a new execution hash.
    pub(crate) async fn import_service(
        &self,
        service: &Service,
        mut shutdown: Shutdown,
    ) -> ServiceReport {
        let started = Instant::now();
        let started_at = chrono::Utc::now().to_rfc3339();
        let mut report = ServiceReport::new(service, ServiceOutcome::Ok);
        self.reporter.service_started(&service.id);
        self.service_entered();
        let (outcome, error) = self
            .import_attempts(service, &mut shutdown, &mut report)
            .await;
        self.service_left();
        let form = self.reporter.known_form(&service.id);
        if form != FeedbackForm::Unknown {
            if let Err(e) = self
                .io
                .store
                .set_feedback_form(&service.id, form.as_str())
                .await
            {
                tracing::warn!(service = %service.id, error = %e, "could not record the feedback form");
            }
        }
        report.result = outcome;
        report.error = error.map(|e| e.to_string());
        report.duration_ms = started.elapsed().as_millis() as u64;
        self.reporter
            .service_finished(&service.id, outcome.as_str(), report.ordinal);
        crate::metrics::run_finished(&service.id, started.elapsed(), outcome.finished());
        let ignored = self.reporter.untold_ignored(&service.id);
        match outcome {
            ServiceOutcome::Ok | ServiceOutcome::Skipped => {
                tracing::info!(service = %service.id, result = outcome.as_str(), entities = report.entities, chunks = report.chunks, dead_letters = report.dead_letters, recovered_chunks = report.recovered_chunks, ordinal = report.ordinal, took_ms = report.duration_ms, feedback_ignored = %ignored, "service finished")
            }
            _ => {
                tracing::error!(service = %service.id, result = outcome.as_str(), error = report.error.as_deref().unwrap_or(""), entities = report.entities, ordinal = report.ordinal, feedback_ignored = %ignored, "service did not finish")
            }
        }
        let record = RunRecord {
            started: started_at,
            duration_ms: report.duration_ms,
            result: outcome.as_str().into(),
            error: report.error.clone(),
            entities: report.entities,
        };
        if let Err(e) = self.io.store.record_run(&service.id, &record).await {
            tracing::warn!(service = %service.id, error = %e, "could not record the service's run");
        }
        if outcome.finished() {
            let now = chrono::Utc::now().to_rfc3339();
            if let Err(e) = self.io.store.record_success(&service.id, &now).await {
                tracing::warn!(service = %service.id, error = %e, "could not record the service's success");
            }
        }
        if let Ok(n) = self.io.store.dead_letter_count(&service.id).await {
            crate::metrics::dead_letters(&service.id, n);
        }
        report
    }

    /// Sets the gauges that outlive a process from what Redis remembers:
    /// each service's last success, forbidden mark and dead letters (a
    /// restarted importer's alerts see the same as before the restart).
    pub(crate) async fn seed_gauges(
        &self,
        services: &[Service],
    ) -> Result<(), crate::store::StoreError> {
        for (service, at) in self.io.store.last_successes().await? {
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&at) {
                crate::metrics::last_success(&service, at.timestamp_millis() as f64 / 1000.0);
            }
        }
        let forbidden = self.io.store.forbidden().await?;
        for service in services {
            crate::metrics::forbidden(&service.id, forbidden.contains(&service.id));
            let n = self.io.store.dead_letter_count(&service.id).await?;
            crate::metrics::dead_letters(&service.id, n);
        }
        Ok(())
    }

    async fn import_attempts(
        &self,
        service: &Service,
        shutdown: &mut Shutdown,
        report: &mut ServiceReport,
    ) -> (ServiceOutcome, Option<ImportError>) {
        let now = Instant::now();
        if self.run.forbidden.skips(&service.id, now) {
            return (ServiceOutcome::Forbidden, None);
        }
        if self.run.forbidden.due_again(&service.id, now) {
            tracing::info!(service = %service.id, retry_after_secs = self.config.forbidden_retry.as_secs(), "trying a forbidden service again (forbidden_retry_secs passed)");
        }
        let mut batch_no = 1;
        let limit = self.config.update_retry_limit;
        for attempt in 1..=limit {
            let committed = match self.io.store.ordinal(service).await {
                Ok(o) => o,
                Err(e) => return (ServiceOutcome::Failed, Some(e.into())),
            };
            if service.one_time && committed.is_some() {
                report.ordinal = committed;
                return (ServiceOutcome::Skipped, None);
            }
            let record = match self.io.store.attempt_record(service).await {
                Ok(r) => r,
                Err(e) => return (ServiceOutcome::Failed, Some(e.into())),
            };
            let since = committed.unwrap_or(0);
            let hash = self.attempt_hash(attempt > 1);
            // Only a run's first attempt resumes, under the run's hash:
            // later ones follow a panic timeout or a feedback failure, and
            // SPEC §4 wants their data to arrive again (new chunk ids). A
            // committed ordinal below where the record started means
            // someone moved it back; seed-form feedback names no chunk to
            // recover: both start afresh.
            let resumable = record.as_ref().filter(|r| {
                attempt == 1
                    && r.open
                    && r.feedback_after.is_some()
                    && since >= r.since
                    && r.execution_hash == hash
                    && self.reporter.known_form(&service.id) != FeedbackForm::Seed
            });
            let (record, resuming) = match resumable {
                Some(r) => (r.clone(), true),
                None => (
                    AttemptRecord {
                        epoch: record.map_or(0, |r| r.epoch) + 1,
                        execution_hash: hash,
                        since,
                        feedback_after: None,
                        open: true,
                    },
                    false,
                ),
            };
            tracing::info!(service = %service.id, attempt, since, execution_hash = %record.execution_hash, epoch = record.epoch, resuming, "importing");
            report.attempts = attempt;
            self.reporter.attempt_started(&service.id, attempt);
            let (end, stats) = self
                .attempt(service, record, resuming, since, &mut batch_no, shutdown)
                .await;
            report.add(&stats);
            // A completed attempt leaves nothing to resume; one abandoned
            // after a panic timeout must not be resumed (its data goes out
            // again under a new hash).
            if matches!(end, AttemptEnd::Completed | AttemptEnd::PanicTimeout) {
                if let Err(e) = self.io.store.close_attempt(service).await {
                    tracing::warn!(service = %service.id, error = %e, "could not close the attempt record; the next run resumes it");
                }
            }
            match end {
                AttemptEnd::Completed => {
                    // A 403 recorded earlier no longer holds.
                    self.run.forbidden.clear(&service.id);
                    crate::metrics::forbidden(&service.id, false);
                    if let Err(e) = self.io.store.set_forbidden(&service.id, false).await {
                        tracing::warn!(service = %service.id, error = %e, "could not clear the forbidden mark");
                    }
                    return (ServiceOutcome::Ok, None);
                }
                AttemptEnd::Interrupted => return (ServiceOutcome::Interrupted, None),
                AttemptEnd::PanicTimeout if shutdown.is_shutdown() => {
                    return (ServiceOutcome::Interrupted, None)
                }
                AttemptEnd::PanicTimeout => {
                    tracing::warn!(service = %service.id, attempt, limit, "panic timeout; retrying from the committed ordinal with a new execution hash");
                }
                AttemptEnd::Failed(AttemptFailure::Source(e)) if e.forbidden => {
                    self.run.forbidden.mark(&service.id, Instant::now());
                    crate::metrics::forbidden(&service.id, true);
                    if let Err(e) = self.io.store.set_forbidden(&service.id, true).await {
                        tracing::warn!(service = %service.id, error = %e, "could not record forbidden service");
                    }
                    return (
                        ServiceOutcome::Forbidden,
                        Some(AttemptFailure::Source(e).into()),
                    );
                }
                // The broker not answering (a clustered stream electing a
                // leader, a node catching up) is cured by waiting: retry
                // from the committed ordinal, as after a panic timeout.
                AttemptEnd::Failed(AttemptFailure::Feedback(e))
                    if attempt < limit && !shutdown.is_shutdown() =>
                {
                    tracing::warn!(service = %service.id, attempt, limit, error = %e, "feedback unavailable; retrying from the committed ordinal with a new execution hash");
                }
                AttemptEnd::Failed(e) => return (ServiceOutcome::Failed, Some(e.into())),
            }
        }
        (
            ServiceOutcome::Failed,
            Some(ImportError::PanicTimeouts {
                attempts: limit,
                timeout_secs: self.config.panic_timeout.as_secs_f64(),
                why: self
                    .reporter
                    .ignored_why(&service.id)
                    .unwrap_or_else(|| format!("no feedback about {} arrived", service.subject)),
            }),
        )
    }
}

impl ServiceReport {
    fn new(service: &Service, result: ServiceOutcome) -> Self {
        ServiceReport {
            service: service.id.clone(),
            result,
            entities: 0,
            chunks: 0,
            dead_letters: 0,
            recovered_chunks: 0,
            ordinal: None,
            attempts: 0,
            duration_ms: 0,
            error: None,
        }
    }

    fn add(&mut self, stats: &AttemptStats) {
        self.entities += stats.entities;
        self.chunks += stats.chunks;
        self.dead_letters += stats.dead_letters;
        self.recovered_chunks += stats.recovered;
        self.ordinal = stats.ordinal.or(self.ordinal);
    }
}
