//! [`IgnoredNote`]: ignored feedback of one service not yet told to the
//! operator, and everything ignored since the service started in a run
//! (the reason it gives when it ends in panic timeouts).

use std::time::{Duration, Instant};

use super::super::core::IgnoreReason;

/// Feedback messages ignored, by [`IgnoreReason::index`].
pub(crate) type Ignored = [u64; IgnoreReason::ALL.len()];

/// At most one summary line of ignored feedback per service this often.
pub(crate) const IGNORED_NOTE_EVERY: Duration = Duration::from_secs(10);

/// Ignored feedback of one service not yet told to the operator: a storm
/// of garbage or stale feedback becomes one line every
/// [`IGNORED_NOTE_EVERY`] with counts by reason, not a line per message.
/// Kept per service across attempts (in the [`Reporter`](super::Reporter));
/// what is left at the end of the service goes on its `service finished`
/// line.
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
