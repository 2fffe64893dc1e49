//! How an attempt goes on and when it ends, as rules of the core:
//! fetching stops when the source ends or fails, or at shutdown; after a
//! source failure what is in flight is drained and committed before the
//! attempt fails; a shutdown waits at most the grace period for
//! outstanding feedback; a broken port ends the attempt at once; and no
//! feedback progress for the panic timeout abandons it.

use super::*;

/// What has happened to the attempt beyond its chunks.
#[derive(Debug, Default)]
pub(super) struct Course {
    /// The source has no more batches (or failed, or shutdown came).
    pub(super) fetching_done: bool,
    /// The source's failure, told once the batches in flight are done.
    pub(super) source_error: Option<FetchError>,
    /// Shutdown came: the attempt ends by this instant at the latest.
    pub(super) grace_until: Option<Instant>,
    /// The attempt is over (a port broke, a deadline passed).
    pub(super) ended: Option<AttemptEnd>,
}

impl AttemptCore {
    /// Whether another batch may be taken from the source now.
    pub(crate) fn wants_batch(&self) -> bool {
        !self.course.fetching_done
            && self.course.ended.is_none()
            && self.batches.len() < self.windows.pipeline_depth
    }

    /// The source has no more batches.
    pub(crate) fn on_source_end(&mut self) {
        self.course.fetching_done = true;
    }

    /// The source failed: no more fetching; the batches in flight finish
    /// and commit, then the attempt fails with `error`.
    pub(crate) fn on_source_error(&mut self, error: FetchError) {
        self.course.fetching_done = true;
        self.course.source_error = Some(error);
    }

    /// Shutdown at `now`: no more fetching; outstanding feedback is waited
    /// for until the grace period is over. Whether this is news (the first
    /// shutdown).
    pub(crate) fn on_shutdown(&mut self, now: Instant) -> bool {
        if self.course.grace_until.is_some() {
            return false;
        }
        self.course.fetching_done = true;
        self.course.grace_until = Some(now + self.timeouts.shutdown_grace);
        true
    }

    /// A port failed in a way retrying this attempt would not cure (the
    /// publisher gave up, the feedback stream broke, the store refused).
    pub(crate) fn on_failure(&mut self, failure: AttemptFailure) {
        self.course.ended.get_or_insert(AttemptEnd::Failed(failure));
    }

    /// Time passed: a wave's wait for ack floors, the panic timeout and the
    /// shutdown grace are checked.
    pub(crate) fn on_tick(&mut self, now: Instant) {
        if self.on_timeout(now) {
            self.course.ended.get_or_insert(AttemptEnd::PanicTimeout);
        }
        if self.course.grace_until.is_some_and(|until| now >= until) {
            self.course.ended.get_or_insert(AttemptEnd::Interrupted);
        }
    }

    /// How the attempt ended, once it has: every batch done after the
    /// source ended (completed), failed or shutdown came; or a port broke
    /// or a deadline passed. What is fully acknowledged is committed
    /// whatever ended it (the store's queue is drained after), unless the
    /// store itself failed.
    pub(crate) fn poll_end(&mut self) -> Option<AttemptEnd> {
        if let Some(end) = self.course.ended.take() {
            return Some(end);
        }
        if !self.course.fetching_done || !self.batches.is_empty() {
            return None;
        }
        Some(
            match (&self.course.grace_until, self.course.source_error.take()) {
                (_, Some(error)) => AttemptEnd::Failed(AttemptFailure::Source(error)),
                (Some(_), None) => AttemptEnd::Interrupted,
                (None, None) => AttemptEnd::Completed,
            },
        )
    }
}
