//! `AttemptObserver`: the one place an attempt reports to the operator:
//! logs, Prometheus counters and the live progress line. The hot path
//! (every chunk, every feedback message) only adds to local counters; they
//! reach the shared registries at `flush`(AttemptObserver::flush), a few
//! times a second and at every commit, so no lock is taken per message.

use std::time::{Duration, Instant};

use super::core::{
    ChunkOut, Commit, FeedbackForm, IgnoreReason, Opened, Verdict, WaveConfirmation, WaveEnd,
};
use super::import::AttemptStats;
use super::ports::MalformedFeedback;
use super::Importer;
use crate::catalogue::Service;
use crate::sinks::Feedback;
use crate::store::{DeadLetter, Recorded};

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

/// Feedback messages ignored, by [`IgnoreReason::index`].
pub(crate) type Ignored = [u64; IgnoreReason::ALL.len()];

/// At most one summary line of ignored feedback per service this often.
pub(crate) const IGNORED_NOTE_EVERY: Duration = Duration::from_secs(10);

/// Ignored feedback of one service not yet told to the operator: a storm
/// of garbage or stale feedback becomes one line every
/// [`IGNORED_NOTE_EVERY`] with counts by reason, not a line per message.
/// Kept per service across attempts (in the [`Importer`]); what is left at
/// the end of the service goes on its `service finished` line.
#[derive(Debug, Default)]
pub(crate) struct IgnoredNote {
    last: Option<Instant>,
    pending: Ignored,
    example: Option<String>,
    /// Everything ignored since the service started in this run, told or
    /// not (for the reason a service gives when it does not finish).
    total: Ignored,
    /// The latest malformed message's error, kept for that reason too.
    last_malformed: Option<String>,
}

impl IgnoredNote {
    /// Counts by reason (in the order of [`IgnoreReason::ALL`]) and the
    /// latest malformed message's error, if any.
    pub fn add(&mut self, counts: Ignored, example: Option<String>) {
        for ((p, t), n) in self.pending.iter_mut().zip(&mut self.total).zip(counts) {
            *p += n;
            *t += n;
        }
        if example.is_some() {
            self.last_malformed.clone_from(&example);
            self.example = example;
        }
    }

    /// Why this service's feedback did not count, since it started in
    /// this run: e.g. `47 feedback messages ignored: 40 with another
    /// execution hash (…), 7 not feedback JSON (last: …)`; `None` when
    /// nothing about this service was ignored. Feedback about other
    /// services is left out: with one feedback subject it is normal.
    pub(crate) fn why(&self) -> Option<String> {
        let parts: Vec<String> = IgnoreReason::ALL
            .iter()
            .zip(self.total)
            .filter(|(r, n)| *n > 0 && **r != IgnoreReason::OtherChannel)
            .map(|(r, n)| match (r, &self.last_malformed) {
                (IgnoreReason::Malformed, Some(last)) => {
                    format!("{n} {} (last: {last})", r.meaning())
                }
                _ => format!("{n} {}", r.meaning()),
            })
            .collect();
        let sum: u64 = IgnoreReason::ALL
            .iter()
            .zip(self.total)
            .filter(|(r, _)| **r != IgnoreReason::OtherChannel)
            .map(|(_, n)| n)
            .sum();
        (sum > 0).then(|| format!("{sum} feedback messages ignored: {}", parts.join(", ")))
    }

    /// Whether a summary is due at `now`: something is pending and none was
    /// told in the last [`IGNORED_NOTE_EVERY`] (the first one goes at once).
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.pending.iter().any(|n| *n > 0)
            && self
                .last
                .is_none_or(|l| now.duration_since(l) >= IGNORED_NOTE_EVERY)
    }

    /// Takes what is pending as `reason=count` pairs and the example, if
    /// anything is pending; `now` becomes the time of the last summary.
    pub fn take(&mut self, now: Instant) -> Option<(String, Option<String>)> {
        if self.pending.iter().all(|n| *n == 0) {
            return None;
        }
        self.last = Some(now);
        let counts = std::mem::take(&mut self.pending);
        let text: Vec<String> = IgnoreReason::ALL
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{}={n}", r.as_str()))
            .collect();
        Some((text.join(" "), self.example.take()))
    }

    /// Whether malformed messages are among those pending.
    pub(crate) fn has_malformed(&self) -> bool {
        self.pending[IgnoreReason::Malformed.index()] > 0
    }
}

/// See the module doc.
pub(crate) struct AttemptObserver<'a> {
    importer: &'a Importer,
    service: &'a Service,
    stats: AttemptStats,
    unreported: Unreported,
    /// The live progress line needs an update.
    dirty: bool,
    /// The feedback form last told to the importer.
    form: FeedbackForm,
    /// Waves ended on their amounts alone after the ack-floor wait.
    unconfirmed_waves: u64,
}

impl<'a> AttemptObserver<'a> {
    /// An observer for one attempt starting at the committed `since`.
    pub fn new(importer: &'a Importer, service: &'a Service, since: i64) -> Self {
        AttemptObserver {
            importer,
            service,
            stats: AttemptStats {
                ordinal: Some(since),
                ..Default::default()
            },
            unreported: Unreported::default(),
            dirty: false,
            form: FeedbackForm::Unknown,
            unconfirmed_waves: 0,
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
                tracing::warn!(service = %self.service.id, chunk_id = %failed, stack = %fb.stack_text(), halves = ?halves, "chunk failed; re-publishing it in two halves");
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

    /// The form the consumers answer in, as the core sees it now: a change
    /// is told to the importer (which says so once per process).
    /// `ack_floors`: whether a seed-form wave also waits for the durable
    /// consumers' ack floors (some durable reads the subject).
    pub(crate) fn form_seen(&mut self, form: FeedbackForm, ack_floors: bool) {
        if form != self.form {
            self.form = form;
            self.importer.note_form(self.service, form, ack_floors);
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
                tracing::warn!(service = %self.service.id, chunks = wave.chunks, wait_secs = super::core::ACK_FLOOR_WAIT.as_secs(), "a seed-form wave ended on its OK amounts alone: the durable consumers' ack floors did not cover it in time (a consumer that died after answering, or a duplicated OK); told once per attempt");
            }
        }
    }

    /// A dead letter was written (`new`: not recorded before;
    /// `entity_kept`: it can be replayed).
    pub(crate) fn dead_lettered(&mut self, letter: &DeadLetter, recorded: Recorded) {
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
            self.importer
                .note_ignored(&self.service.id, u.ignored, u.malformed_example);
        }
        if std::mem::take(&mut self.dirty) {
            self.importer.progress(id, &self.stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_feedback_is_told_at_once_then_at_most_every_ten_seconds() {
        let t0 = Instant::now();
        let mut note = IgnoredNote::default();
        assert!(!note.due(t0), "nothing pending");
        note.add([0, 0, 0, 0, 0, 0, 3], Some("expected value".into()));
        assert!(note.due(t0), "the first one goes at once");
        let (text, example) = note.take(t0).unwrap();
        assert_eq!(text, "malformed=3");
        assert_eq!(example.as_deref(), Some("expected value"));
        note.add([2, 1, 0, 0, 0, 0, 0], None);
        assert!(!note.due(t0 + Duration::from_secs(9)));
        assert!(note.due(t0 + IGNORED_NOTE_EVERY));
        let (text, example) = note.take(t0 + IGNORED_NOTE_EVERY).unwrap();
        assert_eq!(text, "other_channel=2 old_execution=1");
        assert_eq!(example, None);
        assert!(note.take(t0 + IGNORED_NOTE_EVERY).is_none(), "all told");
    }
}
