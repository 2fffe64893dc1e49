//! [`Forbidden`]: the services Sisu answered 403 for, skipped by runs
//! until the mark is cleared (by `sis-importer forbidden clear`, the admin
//! API, or a daemon's start) or `forbidden_retry_secs` have passed, when
//! the next run tries the service again (a new 403 marks it afresh).
//!
//! The marks live in Redis (`SIS_IMPORTER:FORBIDDEN`, what `status` shows)
//! and, with the time each was made, in this process. A run starts by
//! dropping the marks Redis no longer has, so a clear made by another
//! process counts at the next run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Forbidden {
    /// When each service was marked in this process.
    marked: Mutex<BTreeMap<String, Instant>>,
    /// How long a mark keeps the service skipped.
    retry_after: Duration,
}

impl Forbidden {
    /// No marks; a mark keeps its service skipped for `retry_after`.
    pub fn new(retry_after: Duration) -> Self {
        Forbidden {
            marked: Mutex::new(BTreeMap::new()),
            retry_after,
        }
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Instant>> {
        self.marked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `service` is skipped at `now`: marked, and for less than
    /// the retry interval.
    pub fn skips(&self, service: &str, now: Instant) -> bool {
        self.marks()
            .get(service)
            .is_some_and(|at| now.duration_since(*at) < self.retry_after)
    }

    /// Whether `service` was marked, but long enough ago to be tried again.
    pub fn due_again(&self, service: &str, now: Instant) -> bool {
        self.marks()
            .get(service)
            .is_some_and(|at| now.duration_since(*at) >= self.retry_after)
    }

    /// Sisu answered 403 for `service` at `now`.
    pub fn mark(&self, service: &str, now: Instant) {
        self.marks().insert(service.to_owned(), now);
    }

    /// The mark of `service` is gone (it succeeded, or it was cleared).
    pub fn clear(&self, service: &str) {
        self.marks().remove(service);
    }

    /// Keeps only the marks Redis still has (`stored`).
    pub fn keep_only(&self, stored: &BTreeSet<String>) {
        self.marks().retain(|service, _| stored.contains(service));
    }

    /// The services marked in this process, sorted.
    pub fn list(&self) -> Vec<String> {
        self.marks().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_skips_its_service_until_the_retry_interval_has_passed() {
        let t0 = Instant::now();
        let forbidden = Forbidden::new(Duration::from_secs(60));
        assert!(!forbidden.skips("PLAN", t0));
        forbidden.mark("PLAN", t0);
        assert!(forbidden.skips("PLAN", t0 + Duration::from_secs(59)));
        assert!(!forbidden.due_again("PLAN", t0 + Duration::from_secs(59)));
        assert!(!forbidden.skips("PLAN", t0 + Duration::from_secs(60)));
        assert!(forbidden.due_again("PLAN", t0 + Duration::from_secs(60)));
        assert!(!forbidden.skips("PERSON", t0), "only the marked one");
    }

    #[test]
    fn a_mark_cleared_elsewhere_is_dropped_here() {
        let t0 = Instant::now();
        let forbidden = Forbidden::new(Duration::from_secs(60));
        forbidden.mark("PLAN", t0);
        forbidden.mark("DISCLOSURE", t0);
        forbidden.keep_only(&BTreeSet::from(["DISCLOSURE".to_owned()]));
        assert_eq!(forbidden.list(), ["DISCLOSURE"]);
        forbidden.clear("DISCLOSURE");
        assert!(forbidden.list().is_empty());
    }
}
