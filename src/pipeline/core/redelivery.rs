//! The panic timeout against JetStream's own redelivery. When no feedback
//! has come for `PANIC_TIMEOUT` while chunks are unfinished, the core does
//! not abandon the attempt at once: it first asks how the durable consumers
//! reading the service's subject stand. If one of them holds delivered,
//! unacknowledged messages (a consumer that vanished mid-chunk, a node that
//! died under it), JetStream will deliver those again once the durable's
//! `ack_wait` has passed, and a surviving consumer answers them: abandoning
//! now would only send everything unfinished again under a new hash.
//!
//! So the attempt is held until the reading's time + the longest such
//! `ack_wait` (at most [`MAX_HOLD`]) + `PANIC_TIMEOUT`. Feedback in between
//! ends the stall as usual; if none comes by then, or no durable holds
//! anything, or the reading fails or takes longer than [`READ_WAIT`], the
//! attempt is abandoned as before. One hold per stall.

use super::*;

/// The longest `ack_wait` a hold waits for: a durable that redelivers
/// later than this is not waited for (`check` and the run start warn
/// about such ack waits).
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(600);

/// How long the reading of the consumers may take before the attempt is
/// abandoned without it.
pub(crate) const READ_WAIT: Duration = Duration::from_secs(10);

/// One stall's dealings with redelivery.
#[derive(Debug, Default)]
pub(super) struct Redelivery {
    /// The stall (its last feedback progress) this is about.
    stall: Option<Instant>,
    /// A reading was asked for.
    asked: bool,
    /// The reading said: wait until then.
    hold_until: Option<Instant>,
    /// The reading said nothing will come again (or failed).
    give_up: bool,
}

/// A hold decided on a reading: for the observer to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The durables holding delivered, unacknowledged messages, with how
    /// many and their ack wait.
    pub durables: Vec<(String, u64, Duration)>,
    /// How long from the reading the attempt waits at most.
    pub wait: Duration,
}

impl AttemptCore {
    /// The redelivery state of the stall going on now.
    fn stall(&mut self) -> &mut Redelivery {
        if self.redelivery.stall != Some(self.last_progress) {
            self.redelivery = Redelivery {
                stall: Some(self.last_progress),
                ..Redelivery::default()
            };
        }
        &mut self.redelivery
    }

    /// The panic deadline passed at `now` with chunks unfinished: whether
    /// to abandon the attempt now (see the module doc).
    pub(super) fn abandon_stall(&mut self, now: Instant) -> bool {
        let read_by = self.panic_deadline() + READ_WAIT;
        let state = self.stall();
        if state.give_up {
            return true;
        }
        match state.hold_until {
            Some(until) => now >= until,
            None => state.asked && now >= read_by,
        }
    }

    /// Whether the durable consumers are to be read for a stall now; a
    /// `true` starts one reading per stall.
    pub(crate) fn wants_redelivery_read(&mut self, now: Instant) -> bool {
        if self.unfinished_chunks() == 0 || now < self.panic_deadline() {
            return false;
        }
        let state = self.stall();
        if state.asked {
            return false;
        }
        state.asked = true;
        true
    }

    /// The reading came: holds the stall while a durable reading the
    /// subject has something JetStream will deliver again; returns the
    /// hold, if any.
    pub(crate) fn on_redelivery_read(
        &mut self,
        consumers: &[ConsumerProgress],
        now: Instant,
    ) -> Option<Hold> {
        let panic = self.timeouts.panic;
        let durables: Vec<_> = consumers
            .iter()
            .filter(|c| c.ack_pending > 0 && c.ack_wait <= MAX_HOLD)
            .map(|c| (c.name.clone(), c.ack_pending, c.ack_wait))
            .collect();
        let state = self.stall();
        let Some(longest) = durables.iter().map(|d| d.2).max() else {
            state.give_up = true;
            return None;
        };
        let wait = longest + panic;
        state.hold_until = Some(now + wait);
        Some(Hold { durables, wait })
    }

    /// The reading failed: the stall is not held.
    pub(crate) fn on_redelivery_read_failed(&mut self) {
        self.stall().give_up = true;
    }
}
