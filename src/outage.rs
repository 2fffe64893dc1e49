//! [`Outage`]: what the importer tells about Redis or NATS going away and
//! coming back, and about JetStream refusing or not answering publishes
//! (a stream without quorum) while the connection stays up. The first failure of an outage is logged once at WARN, the
//! recovery once at WARN with how long it lasted; both are counted in
//! metrics (`sis_importer_outages_total`, `sis_importer_outage_seconds_total`).
//! Retries in between stay at debug, so an outage is two lines, however
//! many operations it fails.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

// Tokio's clock, so that tests can pause and advance it.
use tokio::time::Instant;

/// One system's availability as the importer sees it.
#[derive(Debug)]
pub(crate) struct Outage {
    system: &'static str,
    /// Fast path: false while all is well.
    down: AtomicBool,
    since: Mutex<Option<Instant>>,
    /// Successes so far: an operation notes it when it begins
    /// ([`Outage::mark`]), so that its failure can tell whether something
    /// succeeded meanwhile ([`Outage::failed_since`]).
    successes: AtomicU64,
}

impl Outage {
    /// `system`: `redis` or `nats` (the metrics label and the log text).
    pub fn new(system: &'static str) -> Outage {
        Outage {
            system,
            down: AtomicBool::new(false),
            since: Mutex::new(None),
            successes: AtomicU64::new(0),
        }
    }

    /// Where things stand as an operation begins; see
    /// [`Outage::failed_since`].
    pub(crate) fn mark(&self) -> u64 {
        self.successes.load(Ordering::Acquire)
    }

    /// An operation begun at `mark` failed. When another one succeeded
    /// since it began, the failure is a straggler of what already passed
    /// (a publish sent while the stream had no leader, timing out after
    /// the leader came back): it begins no outage. Its retry begins after
    /// that success, so an outage still going on is told by the retry.
    pub(crate) fn failed_since(&self, mark: u64, error: &str) {
        if self.mark() == mark {
            self.failed(error);
        }
    }

    /// An operation failed, or the connection dropped: the first time of
    /// an outage logs and counts it.
    pub fn failed(&self, error: &str) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
            self.down.store(true, Ordering::Release);
            tracing::warn!(
                system = self.system,
                error,
                "{}; retrying (logged once per outage)",
                self.down_text()
            );
            crate::metrics::outage_began(self.system);
        }
    }

    /// An operation succeeded or the connection is back: ends an outage,
    /// if one was going on, and returns how long it lasted.
    pub(crate) fn succeeded(&self) -> Option<Duration> {
        self.successes.fetch_add(1, Ordering::AcqRel);
        if !self.down.load(Ordering::Acquire) {
            return None;
        }
        let began = self
            .since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        self.down.store(false, Ordering::Release);
        let lasted = began.elapsed();
        tracing::warn!(
            system = self.system,
            outage_ms = lasted.as_millis() as u64,
            "{} after {:.1} s",
            self.up_text(),
            lasted.as_secs_f64()
        );
        crate::metrics::outage_ended(self.system, lasted);
        Some(lasted)
    }

    fn down_text(&self) -> String {
        match self.system {
            "jetstream" => "JetStream publishes failing (no stream leader or quorum, or no ack \
                            in time); the chunks are sent again under the same Nats-Msg-Id"
                .to_owned(),
            "redis" => "Redis unreachable".to_owned(),
            "nats" => "NATS unreachable".to_owned(),
            other => format!("{other} unreachable"),
        }
    }

    fn up_text(&self) -> String {
        match self.system {
            "jetstream" => "JetStream publishes succeed again".to_owned(),
            "redis" => "Redis reachable again".to_owned(),
            "nats" => "NATS reachable again".to_owned(),
            other => format!("{other} reachable again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_outage_lasts_from_its_first_failure_to_the_first_success() {
        let o = Outage::new("nats");
        o.failed("disconnected");
        tokio::time::advance(Duration::from_secs(3)).await;
        o.failed("still disconnected");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(o.succeeded(), Some(Duration::from_secs(5)));
        o.failed("again");
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(
            o.succeeded(),
            Some(Duration::from_millis(250)),
            "the next outage is measured on its own"
        );
    }

    #[test]
    fn a_failure_of_an_operation_begun_before_a_success_begins_no_outage() {
        let o = Outage::new("jetstream");
        let straggler = o.mark();
        o.failed("no ack in time");
        assert!(o.succeeded().is_some(), "the outage ends");
        o.failed_since(straggler, "no ack in time");
        assert!(!o.down.load(Ordering::Acquire), "a straggler begins none");
        let retry = o.mark();
        o.failed_since(retry, "no ack in time");
        assert!(
            o.down.load(Ordering::Acquire),
            "an operation begun after the success does"
        );
    }

    #[test]
    fn an_outage_is_told_once_when_it_begins_and_once_when_it_ends() {
        let o = Outage::new("redis");
        assert_eq!(o.succeeded(), None, "nothing to end");
        o.failed("connection refused");
        o.failed("connection refused");
        let before = crate::metrics::render();
        assert!(o.succeeded().is_some());
        assert_eq!(o.succeeded(), None, "ended once");
        let after = crate::metrics::render();
        assert!(
            before.contains("sis_importer_outages_total{system=\"redis\"}"),
            "{before}"
        );
        assert!(
            after.contains("sis_importer_outage_seconds_total{system=\"redis\"}"),
            "{after}"
        );
    }
}
