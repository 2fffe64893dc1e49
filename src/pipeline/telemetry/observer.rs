//! [`AttemptObserver`]: the one place an attempt reports to the operator:
//! logs, Prometheus counters and, through the [`Reporter`], the live
//! progress. The hot path (every chunk, every feedback message) only adds
//! to local counters; they reach the shared registries at
//! [`flush`](AttemptObserver::flush), a few times a second and at every
//! commit, so no lock is taken per message.

use super::super::core::{
    AttemptCore, AttemptEnd, ChunkOut, Commit, FeedbackForm, Hold, IgnoreReason, Opened, Verdict,
    WaveConfirmation, WaveEnd,
};
use super::super::ports::StoreDone;
use super::super::vocabulary::{
    DeadLetterRecord, Feedback, MalformedFeedback, Recorded, StoreFailure,
};
use super::ignored::Ignored;
use super::reporter::{AttemptStats, Reporter};
use crate::catalogue::Service;

/// Counts not yet added to the metrics registry.
#[derive(Default)]
struct Unreported {
    fetched: u64,
    published_entities: u64,
    chunks: u64,
    acknowledged: u64,
    splits: u64,
    poisons: u64,
    ignored: Ignored,
    malformed_example: Option<String>,
}

/// See the module doc.
pub(crate) struct AttemptObserver<'a> {
    reporter: &'a Reporter,
    service: &'a Service,
    stats: AttemptStats,
    unreported: Unreported,
    /// The live progress line needs an update.
    dirty: bool,
    /// The feedback form last told to the importer.
    form: FeedbackForm,
    /// Waves ended on their amounts alone after the ack-floor wait.
    unconfirmed_waves: u64,
    /// A replay: its batch was fetched long ago (not counted again).
    replay: bool,
}

impl<'a> AttemptObserver<'a> {
    /// An observer for one attempt starting at the committed `since`
    /// (`replay`: an attempt replaying dead letters).
    pub fn new(reporter: &'a Reporter, service: &'a Service, since: i64, replay: bool) -> Self {
        AttemptObserver {
            reporter,
            service,
            stats: AttemptStats {
                ordinal: Some(since),
                ..Default::default()
            },
            unreported: Unreported::default(),
            dirty: false,
            form: FeedbackForm::Unknown,
            unconfirmed_waves: 0,
            replay,
        }
    }

    /// The attempt's totals.
    pub(crate) fn into_stats(self) -> AttemptStats {
        self.stats
    }

    /// A batch was fetched and chunked.
    pub(crate) fn batch_opened(
        &mut self,
        opened: &Opened,
        entities: usize,
        since: i64,
        greatest: i64,
    ) {
        if self.replay {
            return;
        }
        self.unreported.fetched += entities as u64;
        tracing::debug!(service = %self.service.id, batch = opened.batch_no, since, greatest_ordinal = greatest, entities, chunks = opened.chunks, "batch fetched");
    }

    /// A chunk was handed to the sink. Counted then: the attempt may end
    /// (all feedback in) before the last JetStream acks are read.
    pub(crate) fn chunk_published(&mut self, chunk: &ChunkOut) {
        self.stats.chunks += 1;
        self.unreported.chunks += 1;
        if !chunk.half {
            self.unreported.published_entities += chunk.entities.len() as u64;
        }
        self.dirty = true;
    }

    /// What one feedback message did.
    pub fn feedback(&mut self, fb: &Feedback, verdict: &Verdict) {
        match verdict {
            Verdict::Ignored(reason) => {
                tracing::debug!(service = %self.service.id, chunk_id = %fb.chunk_label(), reason = reason.as_str(), "feedback ignored");
                self.unreported.ignored[reason.index()] += 1;
            }
            Verdict::Credited { entities, .. } => {
                tracing::trace!(service = %self.service.id, amount = entities, "seed-form OK counted towards the wave");
            }
            Verdict::Done { entities } => {
                self.stats.acknowledged += *entities as u64;
                self.unreported.acknowledged += *entities as u64;
                self.dirty = true;
            }
            Verdict::Split { failed, halves } => {
                self.unreported.splits += 1;
                tracing::warn!(service = %self.service.id, chunk_id = %failed, stack = %fb.stack, halves = ?halves, "chunk failed; re-publishing it in two halves");
            }
            Verdict::Remembered => {
                tracing::debug!(service = %self.service.id, chunk_id = %fb.chunk_label(), "feedback of the interrupted attempt remembered");
            }
            Verdict::Poison { chunk_id } => {
                self.unreported.poisons += 1;
                tracing::debug!(service = %self.service.id, chunk_id = %chunk_id, "lone entity failed: dead-lettering it");
            }
        }
    }

    /// A feedback message could not be read (told in the next summary,
    /// see [`IgnoredNote`]).
    pub fn malformed(&mut self, m: &MalformedFeedback) {
        tracing::debug!(service = %self.service.id, error = %m.reason, bytes = m.bytes, "malformed feedback ignored");
        self.unreported.ignored[IgnoreReason::Malformed.index()] += 1;
        self.unreported.malformed_example = Some(format!("{} ({} bytes)", m.reason, m.bytes));
    }

    /// What the core has to say after an event: the form the consumers
    /// answer in (a change is told to the reporter, which says so once per
    /// process) and the seed-form waves that ended.
    pub(crate) fn core_said(&mut self, core: &mut AttemptCore) {
        let form = core.form();
        if form != self.form {
            self.form = form;
            self.reporter
                .note_form(self.service, form, core.ack_floor_guarded());
        }
        while let Some(wave) = core.poll_wave_end() {
            self.wave_ended(&wave);
        }
    }

    /// Shutdown came with `unfinished` chunks.
    pub(crate) fn shutting_down(&self, unfinished: usize) {
        tracing::info!(service = %self.service.id, unfinished, "shutdown: no more fetching, waiting for outstanding acknowledgements");
    }

    /// The panic timeout passed and is held for JetStream's redelivery.
    pub(crate) fn holding_for_redelivery(&self, hold: &Hold, unfinished: usize) {
        crate::metrics::panic_timeout_held();
        let durables: Vec<String> = hold
            .durables
            .iter()
            .map(|(name, pending, wait)| {
                format!(
                    "{name} ({pending} unacknowledged, ack wait {} s)",
                    wait.as_secs_f64()
                )
            })
            .collect();
        tracing::warn!(
            service = %self.service.id,
            unfinished,
            wait_s = hold.wait.as_secs_f64(),
            durables = %durables.join(", "),
            "no feedback progress for PANIC_TIMEOUT, but JetStream will deliver the chunks again that {} holds unacknowledged: waiting up to {:.0} s more before abandoning the attempt",
            durables.join(", "),
            hold.wait.as_secs_f64()
        );
    }

    /// The attempt ended so, `unfinished` chunks left.
    pub(crate) fn ended(&self, end: &AttemptEnd, unfinished: usize) {
        match end {
            AttemptEnd::PanicTimeout => {
                tracing::warn!(service = %self.service.id, unfinished, "no feedback progress: abandoning the attempt")
            }
            AttemptEnd::Interrupted if unfinished > 0 => {
                tracing::warn!(service = %self.service.id, unfinished, "shutdown grace period over; unacknowledged batches stay uncommitted")
            }
            _ => {}
        }
    }

    /// A store write finished: told, or its failure handed back (a commit
    /// refused for a lost lease is told to the reporter too).
    pub(crate) fn stored(&mut self, done: StoreDone) -> Result<(), StoreFailure> {
        match done {
            StoreDone::Window(result) => result,
            StoreDone::DeadLetter(letter, result) => {
                self.dead_lettered(&letter, result?);
                Ok(())
            }
            StoreDone::Commit(commit, result) => {
                let ordinal = result.inspect_err(|e| {
                    if matches!(e, StoreFailure::LeaseLost { .. }) {
                        self.reporter.lease_lost();
                    }
                })?;
                self.committed(&commit, ordinal);
                Ok(())
            }
        }
    }

    /// A seed-form wave ended: its chunks are acknowledged.
    pub(crate) fn wave_ended(&mut self, wave: &WaveEnd) {
        self.stats.acknowledged += wave.entities;
        self.unreported.acknowledged += wave.entities;
        self.dirty = true;
        tracing::debug!(service = %self.service.id, chunks = wave.chunks, entities = wave.entities, by = ?wave.by, "seed-form wave answered");
        if wave.surplus > 0 {
            tracing::warn!(service = %self.service.id, surplus = wave.surplus, entities = wave.entities, "seed-form OK amounts exceeded the wave's entities (duplicated feedback?); the surplus is dropped");
        }
        if wave.by == WaveConfirmation::AmountsAfterWait {
            self.unconfirmed_waves += 1;
            if self.unconfirmed_waves == 1 {
                tracing::warn!(service = %self.service.id, chunks = wave.chunks, wait_secs = super::super::core::ACK_FLOOR_WAIT.as_secs(), "a seed-form wave ended on its OK amounts alone: the durable consumers' ack floors did not cover it in time (a consumer that died after answering, or a duplicated OK); told once per attempt");
            }
        }
    }

    /// A dead letter was written (`new`: not recorded before;
    /// `entity_kept`: it can be replayed).
    pub(crate) fn dead_lettered(&mut self, letter: &DeadLetterRecord, recorded: Recorded) {
        let Recorded { new, entity_kept } = recorded;
        tracing::error!(
            service = %letter.service,
            new,
            entity_kept,
            identity = letter.identity.as_deref().unwrap_or("<none>"),
            modification_ordinal = letter.modification_ordinal,
            reason = %letter.reason,
            detail = %letter.detail,
            "dead letter"
        );
        if new {
            let reason = if letter.reason == "poison" {
                "poison"
            } else {
                "too_large"
            };
            crate::metrics::dead_lettered(&self.service.id, reason);
        }
        self.stats.dead_letters += 1;
        self.dirty = true;
    }

    /// A batch's ordinal was written.
    pub fn committed(&mut self, commit: &Commit, ordinal: i64) {
        let since = self.stats.ordinal;
        self.stats.entities += commit.entities;
        self.stats.batches += 1;
        self.stats.ordinal = Some(ordinal);
        tracing::info!(
            service = %self.service.id,
            batch = commit.batch_no,
            since,
            ordinal,
            entities = commit.entities,
            chunks = commit.chunks,
            fetch_ms = commit.fetched_in.as_millis() as u64,
            ack_ms = commit.opened.elapsed().as_millis() as u64,
            "batch committed"
        );
        self.dirty = true;
        self.flush();
        crate::metrics::committed(&self.service.id, ordinal);
    }

    /// Hands the counters gathered so far to the metrics registry and the
    /// live progress.
    pub fn flush(&mut self) {
        let u = std::mem::take(&mut self.unreported);
        let id = &self.service.id;
        if u.fetched > 0 {
            crate::metrics::fetched(id, u.fetched);
        }
        if u.chunks > 0 {
            crate::metrics::chunks_published(id, u.chunks, u.published_entities);
        }
        if u.acknowledged > 0 {
            crate::metrics::acknowledged(id, u.acknowledged);
        }
        if u.splits + u.poisons > 0 {
            crate::metrics::chunks_failed(id, u.splits, u.poisons);
        }
        for (n, reason) in u.ignored.iter().zip(IgnoreReason::ALL) {
            if *n > 0 {
                crate::metrics::feedback_ignored(id, reason.as_str(), *n);
            }
        }
        if u.ignored.iter().any(|n| *n > 0) {
            self.reporter
                .note_ignored(&self.service.id, u.ignored, u.malformed_example);
        }
        if std::mem::take(&mut self.dirty) {
            self.reporter.progress(id, &self.stats);
        }
    }
}
