//! One attempt of a service set up and run: the feedback subscribed before
//! the first publish, the core made for the attempt's lineage (resuming an
//! interrupted one reads its stored feedback first), the attempt record
//! and execution hash written, then the pipeline's driver
//! (`pipeline::attempt`) run over the adapters.
//!
//! The same setup replays dead letters ([`AttemptKind::Replay`]): the
//! batch comes from the stored entities, and the core moves no ordinal.

use std::sync::Arc;

use super::{ImportError, Importer};
use crate::catalogue::Service;
use crate::pipeline::attempt::{self, AttemptIo};
use crate::pipeline::core::{AttemptCore, Lineage, Timeouts, Verdict, Windows};
use crate::pipeline::ports::{BatchSource, FeedbackSource};
use crate::pipeline::telemetry::{AttemptObserver, AttemptStats};
use crate::pipeline::vocabulary::DeadLetterRecord;
use crate::shutdown::Shutdown;
use crate::sinks::ChunkPublisher;
use crate::store::AttemptRecord;

pub use crate::pipeline::core::AttemptEnd;

/// What an attempt is for.
pub(crate) enum AttemptKind<'a> {
    /// An import from the committed ordinal: Sisu's batches; window
    /// counters, dead letters and commits written as they come; the
    /// attempt record written first. `resuming`: the record is an
    /// interrupted attempt's, whose stored feedback is read first.
    Import {
        /// Whether the attempt resumes an interrupted one.
        resuming: bool,
    },
    /// A replay of dead letters: the batches of `source`; no commit, no
    /// window count and no attempt record written, only the execution
    /// hash published; the dead letters met again are handed back, not
    /// written (the replay settles the list when it is over).
    Replay(&'a dyn BatchSource),
}

impl Importer {
    /// Runs one attempt of `service` from the committed `since`, as `record` says
    /// (written to Redis once feedback is subscribed, before the first
    /// publish). `resuming`: `record` is an interrupted attempt's, whose
    /// stored feedback is read first so its finished chunks are not sent
    /// again. `batch_no` carries batch numbering across the attempts of a
    /// run.
    pub async fn attempt(
        &self,
        service: &Service,
        record: AttemptRecord,
        resuming: bool,
        since: i64,
        batch_no: &mut u64,
        shutdown: &mut Shutdown,
    ) -> (AttemptEnd, AttemptStats) {
        let kind = AttemptKind::Import { resuming };
        let (end, stats, _) = self
            .attempt_of(kind, service, record, since, batch_no, shutdown)
            .await;
        (end, stats)
    }

    /// Runs one attempt of `kind` (see [`Importer::attempt`]); a replay
    /// also gets back the dead letters it met again.
    pub(crate) async fn attempt_of(
        &self,
        kind: AttemptKind<'_>,
        service: &Service,
        mut record: AttemptRecord,
        since: i64,
        batch_no: &mut u64,
        shutdown: &mut Shutdown,
    ) -> (AttemptEnd, AttemptStats, Vec<DeadLetterRecord>) {
        let config = &self.config;
        let resuming = matches!(kind, AttemptKind::Import { resuming: true });
        let replay = matches!(kind, AttemptKind::Replay(_));
        let failed = |e: ImportError| {
            let failure = match e {
                ImportError::Attempt(failure) => failure,
                other => {
                    crate::pipeline::vocabulary::StoreFailure::Failed(other.to_string()).into()
                }
            };
            (
                AttemptEnd::Failed(failure),
                AttemptStats::default(),
                Vec::new(),
            )
        };
        // Opened before the first publish, so no feedback can be missed.
        let subscription = match self.io.feedback.subscribe().await {
            Ok(s) => s,
            Err(e) => return failed(ImportError::Attempt(e.into())),
        };
        let windows = Windows {
            pipeline_depth: config.pipeline_depth,
            max_chunks_in_flight: config.max_chunks_in_flight,
            max_publishes_in_flight: config.max_publishes_in_flight,
        };
        let lineage = Lineage {
            execution_hash: record.execution_hash.clone(),
            epoch: record.epoch,
            resuming,
            since,
            form: self.reporter.known_form(&service.id),
            replay,
        };
        let timeouts = Timeouts {
            panic: config.panic_timeout,
            shutdown_grace: config.shutdown_grace,
        };
        let now = tokio::time::Instant::now().into_std();
        let mut core = AttemptCore::new(
            service,
            &lineage,
            *batch_no,
            self.io.limits,
            windows,
            timeouts,
            now,
        );
        // A seed-form wave also waits for the ack floors when some durable
        // consumer reads the subject (the reading fails: no guard, said).
        let acks: Arc<dyn crate::pipeline::ports::ConsumerAcks> = Arc::new(self.io.nats.clone());
        match acks.progress(&service.subject).await {
            Ok(durables) => core.guard_with_ack_floors(!durables.is_empty()),
            Err(e) => {
                tracing::warn!(service = %service.id, error = %e, "cannot list the durable consumers; seed-form feedback is counted without their ack floors")
            }
        }
        match (resuming, record.feedback_after, subscription.after) {
            (true, Some(after), Some(through)) => {
                match self.io.feedback.stored(after, through).await {
                    Ok(stored) => {
                        let read = stored
                            .iter()
                            .filter_map(|s| Some((s.sequence, s.item.as_ref().ok()?)));
                        record.feedback_after = Some(core.resume_after(read, through));
                        let now = tokio::time::Instant::now().into_std();
                        let remembered = stored
                            .iter()
                            .filter_map(|s| s.item.as_ref().ok())
                            .filter(|fb| core.on_feedback(fb, now) == Verdict::Remembered)
                            .count();
                        tracing::info!(service = %service.id, execution_hash = %record.execution_hash, epoch = record.epoch, feedback_read = stored.len(), chunks_remembered = remembered, "resuming an interrupted attempt: chunks its feedback finished are not sent again");
                    }
                    Err(e) => {
                        tracing::warn!(service = %service.id, error = %e, "could not read the interrupted attempt's feedback; its unacknowledged and acknowledged chunks alike are sent again")
                    }
                }
            }
            (false, _, after) => record.feedback_after = after,
            _ => {}
        }
        let begun = match kind {
            AttemptKind::Import { .. } => self.io.store.begin_attempt(service, &record).await,
            AttemptKind::Replay(_) => {
                self.io
                    .store
                    .publish_execution_hash(&record.execution_hash)
                    .await
            }
        };
        match begun {
            Ok(receivers) => self.hash_published(&record.execution_hash, receivers).await,
            Err(e) => return failed(e.into()),
        }
        let publisher = ChunkPublisher::new(
            self.io.nats.clone(),
            &service.subject,
            config.max_publishes_in_flight,
            config.publish_chunks_per_second,
            config.publish_timeout,
        );
        let batches = match kind {
            AttemptKind::Import { .. } => {
                self.io.source.batches(service, since, config.fetch_amount)
            }
            AttemptKind::Replay(source) => source.batches(service, since, config.fetch_amount),
        };
        let io = AttemptIo {
            batches,
            publisher,
            feedback: subscription.stream,
            store: self.io.store.clone(),
            entity_budget: config.dead_letter_entity_bytes,
            lease: self.lease_guard(),
            acks,
        };
        let mut observer = AttemptObserver::new(&self.reporter, service, since, replay);
        let end = attempt::run(&mut core, io, service, &mut observer, shutdown.clone()).await;
        *batch_no = core.next_batch_no();
        observer.flush();
        let mut stats = observer.into_stats();
        stats.recovered = core.recovered_chunks();
        (end, stats, core.take_met_again())
    }
}
