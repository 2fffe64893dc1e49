//! One attempt at one service, read top to bottom:
//! pages → chunks → publish → join acks → commit.
//!
//! The batch stream is pulled only while the window has room, so a slow
//! broker or slow consumers slow the fetcher down. Feedback, publish acks,
//! the panic timer, counter flushes and shutdown are joined in one
//! `select!`; after every event the gate hands out the batch ordinals that
//! are now fully acknowledged, and only those are committed.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{sleep_until, Instant};

use super::chunker;
use super::gate::{AckGate, Verdict};
use super::{ImportError, Importer};
use crate::catalogue::{Service, FEEDBACK_SUBJECT};
use crate::shutdown::Shutdown;
use crate::sinks::{ChunkPublisher, Feedback, OutgoingChunk};
use crate::sources::{self, SourceError};
use crate::store::DeadLetter;

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
    /// The committed ordinal at the end.
    pub ordinal: Option<i64>,
}

/// Entity counts not yet added to `_SCHEDULED` / `_UPDATED` in Redis.
#[derive(Default)]
struct WindowDelta {
    scheduled: u64,
    updated: u64,
}

/// What the per-batch log line needs besides the gate's [`Commit`].
struct OpenBatch {
    no: u64,
    fetched_in: Duration,
    opened: Instant,
}

/// The mutable state of one attempt besides the gate.
struct Attempt<'a> {
    importer: &'a Importer,
    service: &'a Service,
    gate: AckGate,
    /// Chunks made and not yet handed to the publisher; split halves go
    /// first so a failing batch finishes before new ones pile up.
    to_publish: VecDeque<OutgoingChunk>,
    window: WindowDelta,
    stats: AttemptStats,
    last_progress: Instant,
    /// Open batches in order, for the "batch committed" event.
    open: VecDeque<OpenBatch>,
}

impl Importer {
    /// Runs one attempt of `service` from `since` under `execution_hash`.
    /// `batch_no` carries batch numbering across the attempts of a run.
    pub async fn attempt(
        &self,
        service: &Service,
        execution_hash: &str,
        since: i64,
        batch_no: &mut u64,
        shutdown: &mut Shutdown,
    ) -> (AttemptEnd, AttemptStats) {
        // Subscribe before the first publish so no feedback can be missed.
        let mut feedback = match self.nats.client.subscribe(FEEDBACK_SUBJECT).await {
            Ok(sub) => sub,
            Err(e) => {
                return (
                    AttemptEnd::Failed(ImportError::Feedback(e.to_string())),
                    AttemptStats::default(),
                )
            }
        };
        let config = &self.config;
        let mut batches = sources::batches(
            self.client.clone(),
            self.store.clone(),
            service.clone(),
            since,
            config.fetch_amount,
        );
        let mut publisher = ChunkPublisher::new(
            self.nats.clone(),
            &service.subject,
            config.max_publishes_in_flight,
            config.publish_chunks_per_second,
            Duration::from_secs_f64(config.publish_timeout_secs),
        );
        let mut a = Attempt {
            importer: self,
            service,
            gate: AckGate::new(service, execution_hash, *batch_no),
            to_publish: VecDeque::new(),
            window: WindowDelta::default(),
            stats: AttemptStats {
                ordinal: Some(since),
                ..Default::default()
            },
            last_progress: Instant::now(),
            open: VecDeque::new(),
        };
        let panic_timeout = config.panic_timeout();
        let mut flush = tokio::time::interval(Duration::from_millis(250));
        let mut fetching = true;
        let mut source_error: Option<SourceError> = None;
        let mut grace: Option<Instant> = None;

        let end = loop {
            if let Err(e) = a.commit_ready().await {
                break AttemptEnd::Failed(e);
            }
            if !fetching && a.gate.outstanding_chunks() == 0 {
                break match (grace, source_error.take()) {
                    (_, Some(e)) => AttemptEnd::Failed(ImportError::Source(e)),
                    (Some(_), None) => AttemptEnd::Interrupted,
                    (None, None) => AttemptEnd::Completed,
                };
            }
            let window_has_room = a.gate.outstanding_chunks() < config.max_chunks_in_flight
                && a.gate.open_batches() <= config.prefetch_batches;
            let can_fetch = fetching && window_has_room;
            let can_publish = !a.to_publish.is_empty() && publisher.has_capacity();
            let panic_at = a.last_progress + panic_timeout;

            tokio::select! {
                biased;
                _ = shutdown.recv(), if grace.is_none() => {
                    tracing::info!(service = %service.id, outstanding = a.gate.outstanding_chunks(), "shutdown: no more fetching, waiting for outstanding acknowledgements");
                    fetching = false;
                    grace = Some(Instant::now() + Duration::from_secs_f64(config.shutdown_grace_secs));
                }
                _ = sleep_until(grace.unwrap_or_else(Instant::now)), if grace.is_some() => {
                    tracing::warn!(service = %service.id, outstanding = a.gate.outstanding_chunks(), "shutdown grace period over; unacknowledged batches stay uncommitted");
                    break AttemptEnd::Interrupted;
                }
                msg = feedback.next() => match msg {
                    Some(msg) => {
                        if let Err(e) = a.on_feedback(&msg.payload).await {
                            break AttemptEnd::Failed(e);
                        }
                    }
                    None => break AttemptEnd::Failed(ImportError::Feedback("feedback subscription closed".into())),
                },
                ack = publisher.next_ack() => {
                    if let Err(failure) = ack {
                        break AttemptEnd::Failed(ImportError::Publish(failure));
                    }
                }
                _ = sleep_until(panic_at), if a.gate.outstanding_chunks() > 0 => {
                    tracing::warn!(service = %service.id, outstanding = a.gate.outstanding_chunks(), timeout_secs = panic_timeout.as_secs_f64(), "no feedback progress: abandoning the attempt");
                    break AttemptEnd::PanicTimeout;
                }
                _ = flush.tick() => {
                    if let Err(e) = a.flush_window().await {
                        break AttemptEnd::Failed(e);
                    }
                }
                // select! evaluates every branch's expression even when its
                // condition is false, so the chunk is taken only in the handler.
                _ = std::future::ready(()), if can_publish => {
                    let chunk = a.to_publish.pop_front().expect("can_publish checked the queue");
                    // Counted when handed over: the attempt may end (all
                    // feedback in) before the last JetStream acks are read.
                    a.stats.chunks += 1;
                    crate::metrics::chunk_published(&service.id, chunk.entities as u64, !chunk.half);
                    publisher.publish(chunk).await;
                }
                batch = batches.next(), if can_fetch => match batch {
                    Some(Ok(batch)) => {
                        if let Err(e) = a.open_batch(batch).await {
                            break AttemptEnd::Failed(e);
                        }
                    }
                    Some(Err(e)) => {
                        // Let what is in flight finish and commit, then fail.
                        fetching = false;
                        source_error = Some(e);
                    }
                    None => fetching = false,
                },
            }
        };
        if let Err(e) = a.flush_window().await {
            tracing::warn!(service = %service.id, error = %e, "could not update window counters");
        }
        *batch_no = a.gate.next_batch_no();
        (end, a.stats)
    }
}

impl Attempt<'_> {
    /// Chunks a fetched batch, dead-letters what can never be sent, and
    /// queues the chunks.
    async fn open_batch(&mut self, batch: sources::Batch) -> Result<(), ImportError> {
        let service = &self.service.id;
        let count = batch.entities.len() as u64;
        crate::metrics::fetched(service, count);
        let plan = chunker::plan(batch.entities, self.importer.limits);
        for entity in &plan.too_large {
            let detail = format!(
                "entity is {} bytes; a chunk carries at most {} (MAX_CHUNK_BYTES / server max_payload)",
                entity.get().len(),
                self.importer.limits.max_entity_bytes
            );
            self.dead_letter(entity, "too_large", detail, None).await?;
        }
        if self.gate.outstanding_chunks() == 0 {
            self.last_progress = Instant::now();
        }
        self.open.push_back(OpenBatch {
            no: self.gate.next_batch_no(),
            fetched_in: batch.fetched_in,
            opened: Instant::now(),
        });
        let chunks = self
            .gate
            .add_batch(batch.greatest_ordinal, count, plan.chunks);
        tracing::debug!(service = %service, since = batch.since, greatest_ordinal = batch.greatest_ordinal, entities = count, chunks = chunks.len(), "batch fetched");
        self.to_publish.extend(chunks);
        self.window.scheduled += count;
        Ok(())
    }

    async fn on_feedback(&mut self, body: &[u8]) -> Result<(), ImportError> {
        let service = &self.service.id;
        let fb = match Feedback::parse(body) {
            Ok(fb) => fb,
            Err(e) => {
                tracing::warn!(service = %service, error = %e, bytes = body.len(), "malformed feedback ignored");
                crate::metrics::feedback_ignored("malformed");
                return Ok(());
            }
        };
        match self.gate.feedback(&fb) {
            Verdict::Ignored(reason) => {
                tracing::debug!(service = %service, chunk_id = %fb.chunk_id, reason = reason.as_str(), "feedback ignored");
                crate::metrics::feedback_ignored(reason.as_str());
            }
            Verdict::Done { entities } => {
                self.last_progress = Instant::now();
                self.window.updated += entities as u64;
                self.stats.acknowledged += entities as u64;
                crate::metrics::acknowledged(service, entities as u64);
                self.importer.progress(service, &self.stats);
            }
            Verdict::Split { failed, halves } => {
                self.last_progress = Instant::now();
                crate::metrics::chunk_failed(service, true);
                tracing::warn!(service = %service, chunk_id = %failed, stack = %fb.stack_text(), halves = ?halves.iter().map(|h| (&h.chunk_id, h.entities)).collect::<Vec<_>>(), "chunk failed; re-publishing it in two halves");
                for half in halves.into_iter().rev() {
                    self.to_publish.push_front(half);
                }
            }
            Verdict::Poison { chunk_id, entity } => {
                self.last_progress = Instant::now();
                crate::metrics::chunk_failed(service, false);
                self.dead_letter(&entity, "poison", fb.stack_text(), Some(chunk_id))
                    .await?;
            }
        }
        Ok(())
    }

    /// Records a dead letter; it counts as done for the window.
    async fn dead_letter(
        &mut self,
        entity: &serde_json::value::RawValue,
        reason: &'static str,
        detail: String,
        chunk_id: Option<String>,
    ) -> Result<(), ImportError> {
        let letter = DeadLetter {
            service: self.service.id.clone(),
            identity: self.service.identity_of(entity),
            modification_ordinal: crate::catalogue::modification_ordinal(entity),
            reason: reason.into(),
            detail,
            time: chrono::Utc::now().to_rfc3339(),
            execution_hash: self.gate.execution_hash().to_owned(),
            chunk_id,
        };
        let new = self.importer.store.dead_letter(&letter).await?;
        tracing::error!(
            service = %letter.service,
            new,
            identity = letter.identity.as_deref().unwrap_or("<none>"),
            modification_ordinal = letter.modification_ordinal,
            reason,
            detail = %letter.detail,
            "dead letter"
        );
        if new {
            crate::metrics::dead_lettered(&self.service.id, reason);
        }
        self.window.updated += 1;
        self.stats.dead_letters += 1;
        self.importer.progress(&self.service.id, &self.stats);
        Ok(())
    }

    async fn flush_window(&mut self) -> Result<(), ImportError> {
        let WindowDelta { scheduled, updated } = std::mem::take(&mut self.window);
        self.importer
            .store
            .add_window(self.service, scheduled, updated)
            .await?;
        Ok(())
    }

    /// Commits every batch the gate says is fully acknowledged, in order.
    async fn commit_ready(&mut self) -> Result<(), ImportError> {
        for commit in self.gate.take_committable() {
            // Batches commit in order, so each starts at the last commit.
            let since = self.stats.ordinal;
            self.flush_window().await?;
            let lease = self.importer.lease_guard();
            let ordinal = self
                .importer
                .store
                .commit(
                    self.service,
                    commit.greatest_ordinal,
                    commit.entities,
                    lease.as_ref().map(|(k, o)| (k.as_str(), o.as_str())),
                )
                .await
                .inspect_err(|e| {
                    if matches!(e, crate::store::StoreError::LeaseLost { .. }) {
                        self.importer.mark_lease_lost();
                    }
                })?;
            self.stats.entities += commit.entities;
            self.stats.batches += 1;
            self.stats.ordinal = Some(ordinal);
            crate::metrics::committed(&self.service.id, ordinal);
            self.importer.progress(&self.service.id, &self.stats);
            // Batches commit in the order they were opened.
            let open = self.open.pop_front().filter(|o| o.no == commit.batch_no);
            debug_assert!(open.is_some(), "open batches and commits stay in step");
            tracing::info!(
                service = %self.service.id,
                batch = commit.batch_no,
                since,
                ordinal,
                entities = commit.entities,
                chunks = commit.chunks,
                fetch_ms = open.as_ref().map(|o| o.fetched_in.as_millis() as u64),
                ack_ms = open.as_ref().map(|o| o.opened.elapsed().as_millis() as u64),
                "batch committed"
            );
        }
        Ok(())
    }
}
