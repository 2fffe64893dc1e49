//! [`Reporter`]: what the attempts of a process tell the operator beyond a
//! single attempt: each service's live progress (the progress line,
//! `/status`), ignored feedback summarised across attempts, the feedback
//! form each service's consumers answer in (said once per process), and
//! whether the import lease was lost. Attempts report through their
//! observer; the run reads it back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::super::core::FeedbackForm;
use super::ignored::{Ignored, IgnoredNote};
use crate::catalogue::Service;

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
    pub started: Option<Instant>,
    /// When it finished, and how (`ok`, `failed`, ...); `None` while running.
    #[serde(skip)]
    pub finished: Option<Instant>,
    /// The outcome, once finished.
    pub result: Option<String>,
    /// Start order within the process.
    #[serde(skip)]
    pub seq: u64,
    /// Totals of the service's earlier attempts in this run.
    #[serde(skip)]
    pub(crate) base: AttemptStats,
}

/// See the module doc. One per process, shared by its runs.
#[derive(Debug, Default)]
pub struct Reporter {
    live: Mutex<BTreeMap<String, LiveProgress>>,
    /// Ignored feedback not yet told, per service.
    ignored: Mutex<HashMap<String, IgnoredNote>>,
    /// How each service's consumers answer, as last seen.
    forms: Mutex<HashMap<String, FeedbackForm>>,
    /// Set when a commit was refused for a lost lease.
    lease_lost: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reporter {
    /// Live progress of every service touched by this process.
    pub fn live(&self) -> BTreeMap<String, LiveProgress> {
        lock(&self.live).clone()
    }

    fn update_live(&self, service: &str, f: impl FnOnce(&mut LiveProgress, u64)) {
        let mut live = lock(&self.live);
        let seq = live.len() as u64;
        // Called per flush: allocate the key only the first time.
        match live.get_mut(service) {
            Some(p) => f(p, seq),
            None => f(live.entry(service.to_owned()).or_default(), seq),
        }
    }

    /// A service starts in a run: its live progress starts from zero and
    /// what was ignored before is forgotten.
    pub fn service_started(&self, service: &str) {
        self.update_live(service, |p, seq| {
            *p = LiveProgress {
                started: Some(Instant::now()),
                seq,
                ..LiveProgress::default()
            }
        });
        lock(&self.ignored).remove(service);
    }

    /// Attempt `attempt` of a service begins: what earlier attempts did
    /// becomes the base the new attempt's numbers add to.
    pub fn attempt_started(&self, service: &str, attempt: u32) {
        self.update_live(service, |p, _| {
            p.attempt = attempt;
            p.base = AttemptStats {
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
    pub(crate) fn progress(&self, service: &str, stats: &AttemptStats) {
        self.update_live(service, |p, _| {
            p.ordinal = stats.ordinal.or(p.base.ordinal);
            p.chunks = p.base.chunks + stats.chunks;
            p.dead_letters = p.base.dead_letters + stats.dead_letters;
            p.entities = p.base.entities + stats.entities;
            p.acknowledged = p.base.acknowledged + stats.acknowledged;
        });
    }

    /// A service finished with `result`.
    pub fn service_finished(&self, service: &str, result: &str, ordinal: Option<i64>) {
        self.update_live(service, |p, _| {
            p.finished = Some(Instant::now());
            p.result = Some(result.to_owned());
            p.ordinal = p.ordinal.or(ordinal);
        });
    }

    /// Adds ignored feedback of `service` (counts by reason) and tells the
    /// operator in one summary line when one is due (see [`IgnoredNote`]).
    pub(crate) fn note_ignored(&self, service: &str, counts: Ignored, example: Option<String>) {
        let now = Instant::now();
        let mut notes = lock(&self.ignored);
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
    /// not count, if any was ignored (see `IgnoredNote::why`).
    pub fn ignored_why(&self, service: &str) -> Option<String> {
        lock(&self.ignored).get(service).and_then(|n| n.why())
    }

    /// What ignored feedback of `service` was not told yet, for its
    /// `service finished` line (`""` when nothing).
    pub fn untold_ignored(&self, service: &str) -> String {
        lock(&self.ignored)
            .get_mut(service)
            .and_then(|n| n.take(Instant::now()))
            .map(|(text, _)| text)
            .unwrap_or_default()
    }

    /// How `service`'s consumers were last seen to answer.
    pub fn known_form(&self, service: &str) -> FeedbackForm {
        lock(&self.forms).get(service).copied().unwrap_or_default()
    }

    /// Forms remembered elsewhere (Redis), for services not seen here yet.
    pub fn remember_forms(&self, stored: impl IntoIterator<Item = (String, FeedbackForm)>) {
        let mut forms = lock(&self.forms);
        for (service, form) in stored {
            if form != FeedbackForm::Unknown {
                forms.entry(service).or_insert(form);
            }
        }
    }

    /// `service`'s consumers answer in `form`: said once per process (log,
    /// metric). `ack_floors`: whether a seed-form wave also waits for the
    /// durable consumers' ack floors.
    pub(crate) fn note_form(&self, service: &Service, form: FeedbackForm, ack_floors: bool) {
        if form == FeedbackForm::Unknown {
            return;
        }
        let before = lock(&self.forms).insert(service.id.clone(), form);
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

    /// A commit was refused: another instance holds the lease now.
    pub(crate) fn lease_lost(&self) {
        self.lease_lost.store(true, Ordering::SeqCst);
    }

    /// Whether a commit of the current run was refused for a lost lease.
    pub fn was_lease_lost(&self) -> bool {
        self.lease_lost.load(Ordering::SeqCst)
    }

    /// A new run holds the lease afresh.
    pub fn lease_held(&self) {
        self.lease_lost.store(false, Ordering::SeqCst);
    }
}
