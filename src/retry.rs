//! The one retry policy every retry loop uses: Sisu requests, Redis
//! operations, publishing a chunk, opening the feedback consumer and
//! waiting for the import lease. Each caller names its own settings next to
//! its loop; the loops differ only in what they call a failure. (Renewing a
//! held lease is a schedule, every third of its time to live, not a retry.)

use std::time::Duration;

use rand::Rng;

/// When a retry loop gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    /// After this many attempts in all (the first one included).
    Attempts(u32),
    /// When the next wait would end later than this after the first attempt.
    For(Duration),
    /// Never: the caller stops the loop itself (shutdown, success).
    Forever,
}

/// Exponential backoff: the wait after the n-th failed attempt is
/// `first · 2^(n-1)`, at most `max`; with `jitter` it is drawn uniformly
/// from the upper half of that, so that instances restarted together do
/// not retry in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
    pub jitter: bool,
    pub budget: Budget,
}

impl RetryPolicy {
    /// The same wait every time (polling), never giving up.
    pub const fn every(interval: Duration) -> RetryPolicy {
        RetryPolicy {
            first: interval,
            max: interval,
            jitter: false,
            budget: Budget::Forever,
        }
    }

    /// The wait after the `failed`-th failed attempt (1-based), before
    /// jitter.
    pub(crate) fn ceiling(&self, failed: u32) -> Duration {
        self.first
            .saturating_mul(1u32 << failed.saturating_sub(1).min(16))
            .min(self.max)
    }

    /// The wait after the `failed`-th failed attempt, jitter included.
    pub fn delay(&self, failed: u32) -> Duration {
        let cap = self.ceiling(failed);
        if !self.jitter {
            return cap;
        }
        let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(rand::rng().random_range(nanos / 2..=nanos))
    }

    /// A fresh loop under this policy, its clock starting now.
    pub fn start(&self) -> Retry {
        Retry {
            policy: *self,
            failed: 0,
            started: tokio::time::Instant::now(),
        }
    }
}

/// One retry loop in progress: counts failed attempts and says how long to
/// wait before the next, or that the budget is spent.
#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
    failed: u32,
    started: tokio::time::Instant,
}

impl Retry {
    /// Records a failed attempt; the wait before the next one, or `None`
    /// when the budget does not allow another.
    pub fn failed(&mut self) -> Option<Duration> {
        self.failed += 1;
        let wait = self.policy.delay(self.failed);
        let more = match self.policy.budget {
            Budget::Attempts(n) => self.failed < n,
            Budget::For(window) => self.started.elapsed() + wait <= window,
            Budget::Forever => true,
        };
        more.then_some(wait)
    }

    /// Attempts made so far that failed.
    pub(crate) fn failures(&self) -> u32 {
        self.failed
    }

    /// The attempt about to be made (1-based).
    pub fn attempt(&self) -> u32 {
        self.failed + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_maximum() {
        let p = RetryPolicy {
            first: 100 * MS,
            max: 1000 * MS,
            jitter: false,
            budget: Budget::Forever,
        };
        let waits: Vec<_> = (1..=6).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let p = RetryPolicy {
            first: 400 * MS,
            max: 400 * MS,
            jitter: true,
            budget: Budget::Forever,
        };
        for _ in 0..200 {
            let d = p.delay(3);
            assert!(d >= 200 * MS && d <= 400 * MS, "{d:?}");
        }
    }

    #[test]
    fn an_attempt_budget_counts_the_first_attempt() {
        let mut r = RetryPolicy {
            first: MS,
            max: MS,
            jitter: false,
            budget: Budget::Attempts(3),
        }
        .start();
        assert!(r.failed().is_some());
        assert!(r.failed().is_some());
        assert_eq!(r.failed(), None, "the third failure is the last");
        assert_eq!(r.failures(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_time_budget_refuses_a_wait_that_would_end_after_it() {
        let mut r = RetryPolicy {
            first: 100 * MS,
            max: 400 * MS,
            jitter: false,
            budget: Budget::For(Duration::from_secs(1)),
        }
        .start();
        let mut slept = Duration::ZERO;
        while let Some(wait) = r.failed() {
            tokio::time::sleep(wait).await;
            slept += wait;
        }
        // 100 + 200 + 400 = 700; another 400 would end at 1.1 s.
        assert_eq!(slept, 700 * MS);
        assert_eq!(r.failures(), 4);
    }

    #[test]
    fn every_polls_at_one_interval_forever() {
        let mut r = RetryPolicy::every(5 * MS).start();
        for _ in 0..100 {
            assert_eq!(r.failed(), Some(5 * MS));
        }
    }
}
