//! The seed's feedback form (SPEC §4). Consumers written for the Node
//! importer, importer-mankeli among them, answer OK with an `amount` and
//! no `chunkId`, so an OK cannot say which chunk it is about. The seed's
//! importer counted (`_UPDATED += amount` until it equalled `_SCHEDULED`);
//! this core does the same, in *waves*:
//!
//! - The first seed-form OK switches the attempt to waves, for good. The
//!   chunks awaiting feedback at that moment are the first wave (the order
//!   barrier made them identity-disjoint, as every wave is).
//! - A wave takes the chunks that are ready when it starts (up to the
//!   windows) until the first feedback about it arrives; from then on
//!   nothing else is published until it ends: the chunks that became ready
//!   wait for the next wave.
//! - A seed-form OK adds its amount to the wave's credit. A FAIL names its
//!   chunk (by the echoed `chunkId`, or by the echoed entities' identities:
//!   a published chunk is the only one awaiting feedback for each of its
//!   identities) and is halved or dead-lettered at once, as an OK with a
//!   `chunkId` finishes its chunk at once.
//! - When the credit covers every entity still awaiting feedback, the wave
//!   is answered: its chunks finish together (their newer versions may go,
//!   their batches may commit). With durable consumers reading the subject
//!   it first waits, at most `ACK_FLOOR_WAIT`, until the ack floor of each
//!   durable that reached the wave covers the wave's last chunk.
//!
//! When each chunk is answered once, the credit reaches the wave's entities
//! only when every chunk is answered (every amount is positive), so no
//! ordinal passes an unacknowledged entity. A duplicated OK can make the
//! count complete early; the ack floors stop that unless the chunk still
//! unanswered stays unacknowledged for longer than the wait (then the batch
//! commits on the count, the chunk is still in the stream and is still
//! delivered, and only a FAIL for it would come too late to be halved).

use super::*;

/// The longest a wave whose OK amounts are complete waits for the durable
/// consumers' ack floors (never more than half the panic timeout). A
/// consumer acks right after its feedback, so a healthy wait is a few
/// milliseconds; a wait that runs out means an ack was lost with a
/// consumer that died after answering, or a duplicated OK.
pub(crate) const ACK_FLOOR_WAIT: Duration = Duration::from_secs(5);

/// The seed-form wave under way.
#[derive(Debug, Default)]
pub(super) struct Wave {
    /// Sum of the seed-form OK amounts counted in this wave.
    credit: u64,
    /// When the credit covered the chunks awaiting feedback (the wave then
    /// waits for the ack floors).
    answered_at: Option<Instant>,
    /// Feedback about the wave arrived: it takes no more chunks.
    sealed: bool,
    /// A reading of the ack floors is under way.
    floor_read: bool,
}

impl AttemptCore {
    /// Seed form: whether a wave is under way and sealed (then nothing
    /// else is published).
    pub(super) fn wave_under_way(&self) -> bool {
        self.form == FeedbackForm::Seed && self.wave.sealed && self.awaiting_feedback > 0
    }

    /// Seed form: feedback about the wave arrived, so it is sealed.
    pub(super) fn seal_wave(&mut self) {
        if self.form == FeedbackForm::Seed {
            self.wave.sealed = true;
        }
    }

    /// A seed-form OK of `amount` entities.
    pub(super) fn credit(&mut self, amount: Option<u64>, now: Instant) -> Verdict {
        let Some(amount) = amount.filter(|a| *a > 0) else {
            return Verdict::Ignored(IgnoreReason::NoAmount);
        };
        if self.awaiting_feedback == 0 || self.wave.answered_at.is_some() {
            return Verdict::Ignored(IgnoreReason::Surplus);
        }
        let switched = self.form != FeedbackForm::Seed;
        self.form = FeedbackForm::Seed;
        self.seal_wave();
        self.wave.credit += amount;
        self.last_progress = now;
        Verdict::Credited {
            entities: amount,
            switched,
        }
    }

    /// After feedback in seed form: the wave is answered when its credit
    /// covers every entity awaiting feedback; it ends at once unless the
    /// ack floors are to be asked.
    pub(super) fn wave_answered(&mut self, now: Instant) {
        if self.form != FeedbackForm::Seed {
            return;
        }
        if self.awaiting_feedback == 0 {
            // Everything left was answered by name (FAIL, or OK with a
            // chunkId): the next wave starts from nothing.
            self.wave = Wave::default();
        } else if self.wave.answered_at.is_none() && self.wave.credit >= self.awaiting_entities {
            self.wave.answered_at = Some(now);
            if !self.ack_floor_guard {
                self.end_wave(WaveConfirmation::Amounts, now);
            }
        }
    }

    /// The stream sequences of the answered wave's first and last chunk,
    /// while the wave waits for ack floors (and every publish ack is in).
    pub(crate) fn poll_ack_floor(&self) -> Option<(u64, u64)> {
        self.wave.answered_at?;
        let mut range: Option<(u64, u64)> = None;
        for chunk in self.chunks.values().filter(|c| c.published) {
            let seq = chunk.stream_seq?;
            range = Some(range.map_or((seq, seq), |(lo, hi)| (lo.min(seq), hi.max(seq))));
        }
        range
    }

    /// Whether the ack floors are to be read now (the answered wave waits
    /// for them, and no reading is under way); a `true` starts one.
    pub(crate) fn wants_ack_floor_read(&mut self) -> bool {
        if self.wave.floor_read || self.poll_ack_floor().is_none() {
            return false;
        }
        self.wave.floor_read = true;
        true
    }

    /// Reading the ack floors failed: the next call of
    /// `wants_ack_floor_read` asks again.
    pub(crate) fn on_ack_floor_read_failed(&mut self) {
        self.wave.floor_read = false;
    }

    /// The durable consumers' progress was read: the answered wave ends
    /// when every durable that reached it has acknowledged all of it.
    pub(crate) fn on_ack_floors(&mut self, consumers: &[ConsumerProgress], now: Instant) {
        self.wave.floor_read = false;
        let Some((first, last)) = self.poll_ack_floor() else {
            return;
        };
        let mut reached = consumers.iter().filter(|c| c.delivered >= first).peekable();
        if reached.peek().is_some() && reached.all(|c| c.ack_floor >= last) {
            self.end_wave(WaveConfirmation::AckFloor, now);
            self.commit_ready();
        }
    }

    /// When the answered wave stops waiting for ack floors.
    pub(super) fn ack_floor_deadline(&self) -> Option<Instant> {
        let wait = ACK_FLOOR_WAIT.min(self.timeouts.panic / 2);
        self.wave.answered_at.map(|at| at + wait)
    }

    /// Finishes every chunk awaiting feedback as acknowledged.
    pub(super) fn end_wave(&mut self, by: WaveConfirmation, now: Instant) {
        let mut members: Vec<ChunkSeq> = self
            .chunks
            .iter()
            .filter(|(_, c)| c.published)
            .map(|(seq, _)| *seq)
            .collect();
        members.sort_unstable();
        let mut entities = 0;
        for seq in &members {
            let chunk = self.remove_chunk(*seq);
            let n = chunk.entities.len() as u64;
            entities += n;
            self.awaiting_feedback -= 1;
            self.awaiting_entities -= n;
            self.window.updated += n;
            self.finish(*seq, &chunk);
        }
        let surplus = self.wave.credit.saturating_sub(entities);
        self.wave = Wave::default();
        self.last_progress = now;
        self.wave_ends.push_back(WaveEnd {
            chunks: members.len(),
            entities,
            surplus,
            by,
        });
    }

    /// The next wave that ended, for telemetry.
    pub(crate) fn poll_wave_end(&mut self) -> Option<WaveEnd> {
        self.wave_ends.pop_front()
    }

    /// The published chunk a FAIL without `chunkId` is about, found by the
    /// identities of its echoed entities: the order barrier lets only one
    /// chunk awaiting feedback carry an identity, and the echo must match
    /// that chunk's identities one for one.
    pub(super) fn chunk_of_echo(&self, echoed: &[Entity]) -> Option<ChunkSeq> {
        let keys: Vec<Option<IdentityKey>> =
            echoed.iter().map(|e| order_key(self.identity, e)).collect();
        let first = keys.iter().flatten().next()?;
        let seq = self.barrier.first_of(*first)?;
        let chunk = self.chunks.get(&seq)?;
        (chunk.published && chunk.keys == keys).then_some(seq)
    }
}
