//! One attempt at one service: the thin async driver around
//! [`AttemptCore`], read top to bottom as the design's chain:
//!
//! pages (a `Stream` of batches, pulled only while `pipeline_depth` has
//! room) → chunks (the core) → the chunk sink (publish acks awaited inside
//! it) joined with the feedback stream → commits, written by a store queue
//! that keeps one Redis write under way at a time, in order, while feedback
//! goes on being handled.
//!
//! The driver awaits nothing but the `select!`: every slow thing (Sisu and
//! its rate limit, publishing and its rate limit, Redis) is a future or a
//! stream polled there.
//!
//! The same driver replays dead letters (`AttemptKind::Replay`, see
//! `replay`): the batch comes from the stored entities, and the core's
//! commits and window counts are dropped, so a replay moves no ordinal.

use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{sleep_until, Instant};

use super::core::{
    Action, AttemptCore, BatchIn, ConsumerProgress, DeadLetterOrder, Lineage, Verdict, Windows,
};
use super::ports::{
    BatchSource, ChunkSink, ConsumerAcks, CursorStore, FeedbackError, FeedbackSource,
    FeedbackStream,
};
use super::store_queue::{StoreDone, StoreOp, StoreQueue};
use super::telemetry::AttemptObserver;
use super::{ImportError, Importer};
use crate::catalogue::Service;
use crate::shutdown::Shutdown;
use crate::sinks::ChunkPublisher;
use crate::store::{AttemptRecord, DeadLetter, EntityJson, Recorded, StoreError};

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
    Failed(ImportError),
}

/// What an attempt did.
#[derive(Debug, Default, Clone)]
pub struct AttemptStats {
    /// Entities in committed batches.
    pub entities: u64,
    /// Entities acknowledged (committed or not yet).
    pub acknowledged: u64,
    /// Committed batches.
    pub batches: u64,
    /// Chunks published (halves included).
    pub chunks: u64,
    /// Entities dead-lettered.
    pub dead_letters: u64,
    /// Chunks the interrupted attempt this one resumed had finished: not
    /// sent again.
    pub recovered: u64,
    /// The committed ordinal at the end.
    pub ordinal: Option<i64>,
}

/// How often window counters and telemetry are flushed.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Seed form: how often the durable consumers' ack floors are read while
/// an answered wave waits for them.
const ACK_FLOOR_EVERY: Duration = Duration::from_millis(50);

/// A read of the durable consumers' progress under way.
type FloorRead = futures::future::BoxFuture<'static, Result<Vec<ConsumerProgress>, FeedbackError>>;

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
    ) -> (AttemptEnd, AttemptStats, Vec<DeadLetter>) {
        let config = &self.config;
        let resuming = matches!(kind, AttemptKind::Import { resuming: true });
        let failed = |e| (AttemptEnd::Failed(e), AttemptStats::default(), Vec::new());
        // Opened before the first publish, so no feedback can be missed.
        let subscription = match self.feedback.subscribe().await {
            Ok(s) => s,
            Err(e) => return failed(ImportError::Feedback(e)),
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
            form: self.known_form(&service.id),
        };
        let mut core = AttemptCore::new(
            service,
            &lineage,
            *batch_no,
            self.limits,
            windows,
            config.panic_timeout,
            Instant::now(),
        );
        // A seed-form wave also waits for the ack floors when some durable
        // consumer reads the subject (the reading fails: no guard, said).
        match self.nats.progress(&service.subject).await {
            Ok(durables) => core.guard_with_ack_floors(!durables.is_empty()),
            Err(e) => {
                tracing::warn!(service = %service.id, error = %e, "cannot list the durable consumers; seed-form feedback is counted without their ack floors")
            }
        }
        match (resuming, record.feedback_after, subscription.after) {
            (true, Some(after), Some(through)) => {
                match self.feedback.stored(after, through).await {
                    Ok(stored) => {
                        let read = stored
                            .iter()
                            .filter_map(|s| Some((s.sequence, s.item.as_ref().ok()?)));
                        record.feedback_after = Some(core.resume_after(read, through));
                        let now = Instant::now();
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
            AttemptKind::Import { .. } => self.store.begin_attempt(service, &record).await,
            AttemptKind::Replay(_) => {
                self.store
                    .publish_execution_hash(&record.execution_hash)
                    .await
            }
        };
        match begun {
            Ok(receivers) => self.hash_published(&record.execution_hash, receivers).await,
            Err(e) => return failed(e.into()),
        }
        let sink = ChunkPublisher::new(
            self.nats.clone(),
            &service.subject,
            config.publish_chunks_per_second,
            config.publish_timeout,
        );
        let observer = AttemptObserver::new(self, service, since);
        let budget = config.dead_letter_entity_bytes;
        let (source, met_again): (&dyn BatchSource, _) = match kind {
            AttemptKind::Import { .. } => (&self.source, None),
            AttemptKind::Replay(source) => (source, Some(Vec::new())),
        };
        let mut driver = Driver {
            importer: self,
            service,
            core,
            observer,
            store: StoreQueue::new(self.store.clone(), service.clone(), budget),
            met_again,
        };
        let end = driver
            .run(source, sink, subscription.stream, since, shutdown)
            .await;
        *batch_no = driver.core.next_batch_no();
        driver.observer.flush();
        let mut stats = driver.observer.into_stats();
        stats.recovered = driver.core.recovered_chunks();
        (end, stats, driver.met_again.unwrap_or_default())
    }
}

struct Driver<'a, C: CursorStore> {
    importer: &'a Importer,
    service: &'a Service,
    core: AttemptCore,
    observer: AttemptObserver<'a>,
    store: StoreQueue<C>,
    /// A replay: the dead letters met again, held back from the store;
    /// `None` for an import. At most one per entity of the replayed batch.
    met_again: Option<Vec<DeadLetter>>,
}

impl<C: CursorStore + Clone + 'static> Driver<'_, C> {
    async fn run(
        &mut self,
        source: &dyn BatchSource,
        mut sink: impl ChunkSink,
        mut feedback: FeedbackStream,
        since: i64,
        shutdown: &mut Shutdown,
    ) -> AttemptEnd {
        let config = &self.importer.config;
        let mut batches = source.batches(self.service, since, config.fetch_amount);
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        let mut panic_at = pin!(sleep_until(Instant::now()));
        let mut fetching = true;
        let mut source_error = None;
        let mut grace: Option<Instant> = None;
        let mut floor_read: Option<FloorRead> = None;
        let service = &self.service.id;

        let end = loop {
            while let Some(chunk) = self.core.poll_publish() {
                self.observer.chunk_published(&chunk);
                sink.publish(chunk);
            }
            self.take_actions();
            self.observer
                .form_seen(self.core.form(), self.core.ack_floor_guarded());
            while let Some(wave) = self.core.poll_wave_end() {
                self.observer.wave_ended(&wave);
            }
            if floor_read.is_none() && self.core.poll_ack_floor().is_some() {
                let read = self.importer.nats.progress(&self.service.subject);
                floor_read = Some(Box::pin(async move {
                    tokio::time::sleep(ACK_FLOOR_EVERY).await;
                    read.await
                }));
            }
            if !fetching && self.core.open_batches() == 0 {
                break match (grace, source_error.take()) {
                    (_, Some(e)) => AttemptEnd::Failed(ImportError::Source(e)),
                    (Some(_), None) => AttemptEnd::Interrupted,
                    (None, None) => AttemptEnd::Completed,
                };
            }
            let deadline = self.core.poll_timeout();
            if let Some(at) = deadline {
                if panic_at.deadline() != at {
                    panic_at.as_mut().reset(at);
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.recv(), if grace.is_none() => {
                    tracing::info!(service = %service, unfinished = self.core.unfinished_chunks(), "shutdown: no more fetching, waiting for outstanding acknowledgements");
                    fetching = false;
                    grace = Some(Instant::now() + config.shutdown_grace);
                }
                _ = sleep_until(grace.unwrap_or_else(Instant::now)), if grace.is_some() => {
                    tracing::warn!(service = %service, unfinished = self.core.unfinished_chunks(), "shutdown grace period over; unacknowledged batches stay uncommitted");
                    break AttemptEnd::Interrupted;
                }
                done = self.store.next() => {
                    if let Err(e) = self.stored(done) {
                        break AttemptEnd::Failed(e);
                    }
                }
                item = feedback.next() => match item {
                    Some(Ok(Ok(fb))) => {
                        let verdict = self.core.on_feedback(&fb, Instant::now());
                        self.observer.feedback(&fb, &verdict);
                    }
                    Some(Ok(Err(malformed))) => self.observer.malformed(&malformed),
                    Some(Err(e)) => break AttemptEnd::Failed(ImportError::Feedback(e)),
                    None => break AttemptEnd::Failed(ImportError::Feedback(FeedbackError("the feedback stream ended".into()))),
                },
                ack = sink.next_ack() => match ack {
                    Ok(published) => self.core.on_published(&published.chunk_id, published.stream_seq),
                    Err(failure) => break AttemptEnd::Failed(ImportError::Publish(failure)),
                },
                progress = async { floor_read.as_mut().expect("guarded").await }, if floor_read.is_some() => {
                    floor_read = None;
                    match progress {
                        Ok(durables) => self.core.on_ack_floors(&durables, Instant::now()),
                        Err(e) => tracing::debug!(service = %service, error = %e, "reading the ack floors failed; asking again"),
                    }
                }
                _ = &mut panic_at, if deadline.is_some() => {
                    if self.core.on_timeout(Instant::now()) {
                        tracing::warn!(service = %service, unfinished = self.core.unfinished_chunks(), timeout_secs = config.panic_timeout.as_secs_f64(), "no feedback progress: abandoning the attempt");
                        break AttemptEnd::PanicTimeout;
                    }
                }
                batch = batches.next(), if fetching && self.core.wants_batch() => match batch {
                    Some(Ok(batch)) => {
                        let (since, entities) = (batch.since, batch.entities.len());
                        let opened = self.core.on_batch(BatchIn {
                            since,
                            greatest_ordinal: batch.greatest_ordinal,
                            entities: batch.entities,
                            fetched_in: batch.fetched_in,
                        }, Instant::now());
                        // A replay's batch was fetched long ago.
                        if self.met_again.is_none() {
                            self.observer.batch_opened(&opened, entities, since, batch.greatest_ordinal);
                        }
                    }
                    Some(Err(e)) => {
                        // Let what is in flight finish and commit, then fail.
                        fetching = false;
                        source_error = Some(e);
                    }
                    None => fetching = false,
                },
                _ = flush.tick() => {
                    self.core.flush_window();
                    self.observer.flush();
                }
            }
        };
        // What is fully acknowledged is committed whatever ended the
        // attempt, unless Redis itself is what failed.
        if matches!(end, AttemptEnd::Failed(ImportError::Store(_))) {
            return end;
        }
        self.core.flush_window();
        self.take_actions();
        while !self.store.is_idle() {
            let done = self.store.next().await;
            if let Err(e) = self.stored(done) {
                tracing::warn!(service = %service, error = %e, "could not write to Redis at the end of the attempt");
                return match end {
                    AttemptEnd::Completed => AttemptEnd::Failed(e),
                    other => other,
                };
            }
        }
        end
    }

    fn take_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            let replaying = self.met_again.is_some();
            let action = match action {
                Action::DeadLetter(order) => {
                    let letter = self.letter(order);
                    if let Some(again) = &mut self.met_again {
                        // Listed already, with its entity: the replay
                        // keeps the entry once it is over.
                        let listed = Recorded {
                            new: false,
                            entity_kept: true,
                        };
                        self.observer.dead_lettered(&letter, listed);
                        again.push(letter);
                        continue;
                    }
                    StoreOp::DeadLetter(letter)
                }
                // A replay moves no ordinal and counts no window.
                Action::Window(_) | Action::Commit(_) if replaying => continue,
                Action::Window(delta) => StoreOp::Window(delta.scheduled, delta.updated),
                Action::Commit(commit) => StoreOp::Commit(commit, self.importer.lease_guard()),
            };
            self.store.push(action);
        }
    }

    /// The dead letter of `order`, with the entity to replay it from.
    fn letter(&self, order: DeadLetterOrder) -> DeadLetter {
        let entity = EntityJson::new(&order.entity);
        DeadLetter {
            service: self.service.id.clone(),
            identity: self.service.identity_of(order.entity.get()),
            modification_ordinal: crate::catalogue::modification_ordinal(order.entity.get()),
            reason: order.reason.into(),
            detail: order.detail,
            time: chrono::Utc::now().to_rfc3339(),
            execution_hash: self.core.execution_hash().to_owned(),
            chunk_id: order.chunk_id,
            entity_bytes: Some(order.entity.len() as u64),
            entity_omitted: entity
                .is_none()
                .then(|| "entity not kept: it is not JSON text".to_owned()),
            entity,
        }
    }

    /// A store write finished: report it, or fail the attempt.
    fn stored(&mut self, done: StoreDone) -> Result<(), ImportError> {
        match done {
            StoreDone::Window(result) => result?,
            StoreDone::DeadLetter(letter, result) => {
                self.observer.dead_lettered(&letter, result?);
            }
            StoreDone::Commit(commit, result) => {
                let ordinal = result.inspect_err(|e| {
                    if matches!(e, StoreError::LeaseLost { .. }) {
                        self.importer.mark_lease_lost();
                    }
                })?;
                self.observer.committed(&commit, ordinal);
            }
        }
        Ok(())
    }
}
