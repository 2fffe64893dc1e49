//! [`AttemptCore`]: the rules of one import attempt as pure state, with no
//! I/O and no clock of its own (the quinn-proto model). Events go in
//! (`on_batch`, `on_published`, `on_feedback`, `on_timeout`); work comes
//! out (`poll_publish` for chunks to send, `poll_action` for cursor-store
//! writes, `poll_timeout` for the panic deadline). The driver in `import`
//! moves bytes and time and does nothing else.
//!
//! The rules it keeps:
//! - at most `pipeline_depth` batches open (fetched, not yet committed);
//! - at most `max_chunks_in_flight` chunks published and awaiting feedback,
//!   at most `max_publishes_in_flight` awaiting their JetStream ack;
//! - per-identity order through the `OrderBarrier`;
//! - `OK` finishes a chunk once, `FAIL` halves it, a failing lone entity is
//!   dead-lettered; feedback for anything else is ignored;
//! - an ordinal is committed only for a batch that is done, after every
//!   earlier batch, and after its dead letters are recorded (actions come
//!   out in order and the store performs them in order);
//! - no feedback progress for `panic_timeout` while chunks are unfinished
//!   ends the attempt;
//! - resuming an interrupted attempt (same execution hash and epoch, so the
//!   same chunk ids), feedback for chunks not sent again yet is remembered
//!   (`Recovered`): such a chunk is finished when its turn comes instead
//!   of being sent, and a chunk the interrupted attempt split is made as
//!   its halves;
//! - feedback in the seed's form (an OK without `chunkId`) switches the
//!   attempt to waves: see `seed.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::entity::Entity;
use std::time::Instant;

use super::chunker::{self, ChunkLimits};

mod types;
use super::identity::{distinct_keys, order_key};
use super::order::{ChunkSeq, IdentityKey, OrderBarrier};
use super::vocabulary::{
    Batch, ConsumerProgress, DeadLetterRecord, Feedback, FeedbackStatus, FetchError,
};
use crate::catalogue::IdentityKind;
pub use redelivery::Hold;
pub use types::*;

struct OpenBatch {
    no: u64,
    greatest_ordinal: i64,
    entities: u64,
    unfinished: usize,
    chunks_made: u32,
    fetched_in: Duration,
    opened: Instant,
}

struct Chunk {
    id: String,
    key: ChunkKey,
    batch_no: u64,
    entities: Arc<[Entity]>,
    keys: Vec<Option<IdentityKey>>,
    distinct: Vec<IdentityKey>,
    /// A half of a failed chunk: its entities are counted in `_SCHEDULED`.
    half: bool,
    published: bool,
    /// Its stream sequence, once JetStream acknowledged the publish.
    stream_seq: Option<u64>,
}

/// See the module doc.
pub struct AttemptCore {
    /// The service (its identity makes dead-letter records).
    service: crate::catalogue::Service,
    service_id: String,
    subject: String,
    execution_hash: Arc<str>,
    epoch: u64,
    /// Resuming: what the interrupted attempt's feedback said, by chunk.
    recovered: Option<BTreeMap<ChunkKey, Recovered>>,
    /// The committed ordinal the attempt started from.
    since: i64,
    /// Chunks finished from recovered feedback, without being sent.
    recovered_chunks: u64,
    identity: IdentityKind,
    limits: ChunkLimits,
    windows: Windows,
    timeouts: Timeouts,
    /// Fetching, shutdown, failures and the end (`course.rs`).
    course: course::Course,
    batches: VecDeque<OpenBatch>,
    next_batch_no: u64,
    chunks: HashMap<ChunkSeq, Chunk>,
    by_id: HashMap<String, ChunkSeq>,
    next_seq: ChunkSeq,
    barrier: OrderBarrier,
    /// Chunks free to publish, oldest batch first.
    ready: BTreeSet<(u64, ChunkSeq)>,
    awaiting_feedback: usize,
    awaiting_publish_ack: usize,
    /// Entities of the chunks awaiting feedback.
    awaiting_entities: u64,
    actions: VecDeque<Action>,
    window: WindowDelta,
    last_progress: Instant,
    /// How the consumers answer: see [`FeedbackForm`].
    form: FeedbackForm,
    /// Seed form: the wave under way.
    wave: seed::Wave,
    /// Seed form: a wave's end waits for the durable consumers' ack
    /// floors (some durable consumer reads the subject).
    ack_floor_guard: bool,
    /// Seed form: waves that ended, for telemetry.
    wave_ends: VecDeque<WaveEnd>,
    /// A replay (see [`Lineage::replay`]).
    replay: bool,
    /// A replay: the dead letters met again, held back.
    met_again: Vec<DeadLetterRecord>,
    /// A stall held for JetStream's redelivery.
    redelivery: redelivery::Redelivery,
}

impl AttemptCore {
    /// The core of one attempt. Batch numbers start at `first_batch_no` so
    /// chunk ids stay unique across the attempts of a run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        service: &crate::catalogue::Service,
        lineage: &Lineage,
        first_batch_no: u64,
        limits: ChunkLimits,
        windows: Windows,
        timeouts: Timeouts,
        now: Instant,
    ) -> Self {
        AttemptCore {
            service: service.clone(),
            service_id: service.id.clone(),
            subject: service.subject.clone(),
            execution_hash: lineage.execution_hash.as_str().into(),
            epoch: lineage.epoch,
            recovered: lineage.resuming.then(BTreeMap::new),
            since: lineage.since,
            recovered_chunks: 0,
            identity: service.identity,
            limits,
            windows,
            timeouts,
            course: course::Course::default(),
            batches: VecDeque::new(),
            next_batch_no: first_batch_no,
            chunks: HashMap::new(),
            by_id: HashMap::new(),
            next_seq: 0,
            barrier: OrderBarrier::default(),
            ready: BTreeSet::new(),
            awaiting_feedback: 0,
            awaiting_publish_ack: 0,
            awaiting_entities: 0,
            actions: VecDeque::new(),
            window: WindowDelta::default(),
            last_progress: now,
            form: lineage.form,
            wave: seed::Wave::default(),
            ack_floor_guard: false,
            wave_ends: VecDeque::new(),
            replay: lineage.replay,
            met_again: Vec::new(),
            redelivery: redelivery::Redelivery::default(),
        }
    }

    /// A replay: the dead letters it met again (they stay listed).
    pub(crate) fn take_met_again(&mut self) -> Vec<DeadLetterRecord> {
        std::mem::take(&mut self.met_again)
    }

    /// Seed form: whether a wave's end also waits (a bounded while) for
    /// the ack floors of the durable consumers reading the subject.
    pub(crate) fn guard_with_ack_floors(&mut self, on: bool) {
        self.ack_floor_guard = on;
    }

    /// Whether seed-form waves wait for the ack floors.
    pub(crate) fn ack_floor_guarded(&self) -> bool {
        self.ack_floor_guard
    }

    /// Opens a fetched batch: chunks it, dead-letters what no chunk can
    /// carry, and admits its chunks to the order barrier.
    pub fn on_batch(&mut self, batch: Batch, now: Instant) -> Opened {
        if self.unfinished_chunks() == 0 {
            self.last_progress = now;
        }
        let count = batch.entities.len() as u64;
        let plan = chunker::plan(batch.entities, self.limits);
        let too_large = plan.too_large.len();
        // Never published, yet part of the batch the commit counts off.
        self.window.scheduled += too_large as u64;
        for entity in plan.too_large {
            let detail = format!(
                "entity is {} bytes; a chunk carries at most {} (MAX_CHUNK_BYTES / server max_payload)",
                entity.get().len(),
                self.limits.max_entity_bytes
            );
            self.dead_letter(entity, "too_large", detail, None);
        }
        let no = self.next_batch_no;
        self.next_batch_no += 1;
        self.batches.push_back(OpenBatch {
            no,
            greatest_ordinal: batch.greatest_ordinal,
            entities: count,
            unfinished: 0,
            chunks_made: 0,
            fetched_in: batch.fetched_in,
            opened: now,
        });
        let made = self.chunks.len();
        let mut start = 0;
        for entities in plan.chunks {
            let key = ChunkKey {
                since: batch.since,
                greatest: batch.greatest_ordinal,
                start,
                len: entities.len() as u32,
            };
            start += key.len;
            let keys = entities
                .iter()
                .map(|e| order_key(self.identity, e))
                .collect();
            self.admit(no, key, entities.into(), keys);
        }
        let chunks = self.chunks.len() - made;
        self.commit_ready();
        Opened {
            batch_no: no,
            chunks,
            too_large,
        }
    }

    /// Makes a new chunk and admits it to the order barrier; as its halves
    /// when the interrupted attempt being resumed split it.
    fn admit(
        &mut self,
        batch_no: u64,
        key: ChunkKey,
        entities: Arc<[Entity]>,
        keys: Vec<Option<IdentityKey>>,
    ) {
        if key.len > 1 && self.made_as_halves(&key) {
            let mid = key.len as usize / 2;
            let [a, b] = key.halves();
            self.admit(batch_no, a, entities[..mid].into(), keys[..mid].to_vec());
            self.admit(batch_no, b, entities[mid..].into(), keys[mid..].to_vec());
            return;
        }
        let seq = self.make_chunk(batch_no, key, entities, keys, false);
        let distinct = self.chunks[&seq].distinct.clone();
        if self.barrier.admit(seq, &distinct) {
            self.ready.insert((batch_no, seq));
        }
    }

    /// The next chunk to publish, if one is free and the windows have room.
    /// Chunks the interrupted attempt finished are finished on the way,
    /// in their turn, without being sent.
    pub fn poll_publish(&mut self) -> Option<ChunkOut> {
        loop {
            let &(_, seq) = self.ready.first()?;
            let Some(status) = self.recovered_status(seq) else {
                break;
            };
            self.ready.pop_first();
            self.finish_recovered(seq, status);
        }
        if self.awaiting_feedback >= self.windows.max_chunks_in_flight
            || self.awaiting_publish_ack >= self.windows.max_publishes_in_flight
            || self.wave_under_way()
        {
            return None;
        }
        let (_, seq) = self.ready.pop_first()?;
        let chunk = self.chunks.get_mut(&seq).expect("a ready chunk exists");
        chunk.published = true;
        self.awaiting_feedback += 1;
        self.awaiting_entities += chunk.entities.len() as u64;
        self.awaiting_publish_ack += 1;
        if !chunk.half {
            self.window.scheduled += chunk.entities.len() as u64;
        }
        Some(ChunkOut {
            chunk_id: chunk.id.clone(),
            execution_hash: self.execution_hash.clone(),
            entities: chunk.entities.clone(),
            half: chunk.half,
        })
    }

    /// JetStream acknowledged (stored) the publish of `chunk_id` at
    /// `stream_seq`.
    pub(crate) fn on_published(&mut self, chunk_id: &str, stream_seq: u64) {
        self.awaiting_publish_ack = self.awaiting_publish_ack.saturating_sub(1);
        if let Some(seq) = self.by_id.get(chunk_id) {
            if let Some(chunk) = self.chunks.get_mut(seq) {
                chunk.stream_seq = Some(stream_seq);
            }
        }
    }

    /// Applies one feedback message. Duplicates and strangers are ignored,
    /// so nothing ever counts twice. Resuming, feedback for a chunk not
    /// sent (again) yet is remembered. A seed-form OK counts towards the
    /// wave under way.
    pub fn on_feedback(&mut self, fb: &Feedback, now: Instant) -> Verdict {
        if fb.channel != self.subject {
            return Verdict::Ignored(IgnoreReason::OtherChannel);
        }
        if *fb.execution_hash != *self.execution_hash {
            return Verdict::Ignored(IgnoreReason::OldExecution);
        }
        let verdict = match (&fb.chunk_id, fb.status) {
            (Some(id), _) => match self.by_id.get(id).copied() {
                Some(seq) if self.chunks[&seq].published => self.answer(seq, fb, now),
                _ => return self.remember(fb),
            },
            (None, FeedbackStatus::Ok) => self.credit(fb.amount, now),
            (None, FeedbackStatus::Fail) => match self.chunk_of_echo(&fb.echoed) {
                Some(seq) => self.answer(seq, fb, now),
                None => Verdict::Ignored(IgnoreReason::UnidentifiedFail),
            },
        };
        self.wave_answered(now);
        self.commit_ready();
        verdict
    }

    /// Feedback about the published chunk `seq`: OK finishes it, FAIL
    /// halves it or, alone, dead-letters its entity.
    fn answer(&mut self, seq: ChunkSeq, fb: &Feedback, now: Instant) -> Verdict {
        self.last_progress = now;
        self.seal_wave();
        self.awaiting_feedback -= 1;
        let chunk = self.remove_chunk(seq);
        self.awaiting_entities -= chunk.entities.len() as u64;
        match fb.status {
            FeedbackStatus::Ok => {
                if self.form == FeedbackForm::Unknown {
                    self.form = FeedbackForm::Precise;
                }
                self.window.updated += chunk.entities.len() as u64;
                self.finish(seq, &chunk);
                Verdict::Done {
                    entities: chunk.entities.len(),
                }
            }
            FeedbackStatus::Fail if chunk.entities.len() <= 1 => {
                let entity = chunk
                    .entities
                    .first()
                    .expect("a chunk has an entity")
                    .clone();
                self.dead_letter(entity, "poison", fb.stack.clone(), Some(chunk.id.clone()));
                self.finish(seq, &chunk);
                Verdict::Poison { chunk_id: chunk.id }
            }
            FeedbackStatus::Fail => self.split(seq, chunk),
        }
    }

    /// The next deadline: the panic deadline while chunks are unfinished,
    /// or sooner the end of a seed-form wave's wait for ack floors. (The
    /// driver checks deadlines at its ticks; tests ask for them.)
    #[cfg(test)]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let panic = (self.unfinished_chunks() > 0).then(|| self.panic_deadline());
        match (panic, self.ack_floor_deadline()) {
            (Some(p), Some(f)) => Some(p.min(f)),
            (p, f) => p.or(f),
        }
    }

    fn panic_deadline(&self) -> Instant {
        self.last_progress + self.timeouts.panic
    }

    /// A deadline passed: a wave whose ack floors did not come ends on
    /// its amounts; then, whether the attempt must be abandoned at `now`
    /// (no feedback progress for the panic timeout while chunks are
    /// unfinished).
    pub(crate) fn on_timeout(&mut self, now: Instant) -> bool {
        if self.ack_floor_deadline().is_some_and(|at| now >= at) {
            self.end_wave(WaveConfirmation::AmountsAfterWait, now);
            self.commit_ready();
        }
        self.unfinished_chunks() > 0 && now >= self.panic_deadline() && self.abandon_stall(now)
    }

    /// The next store write, in the order they must happen.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Queues the window counters gathered so far (the driver calls this
    /// now and then, so `_SCHEDULED` / `_UPDATED` stay near the truth).
    pub(crate) fn flush_window(&mut self) {
        let delta = std::mem::take(&mut self.window);
        if delta != WindowDelta::default() {
            self.act(Action::Window(delta));
        }
    }

    /// Open batches (fetched, commit not yet handed out).
    #[cfg(test)]
    pub(crate) fn open_batches(&self) -> usize {
        self.batches.len()
    }

    /// Chunks not yet done: waiting, ready or published.
    pub(crate) fn unfinished_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// The batch number the next attempt should start from.
    pub(crate) fn next_batch_no(&self) -> u64 {
        self.next_batch_no
    }

    /// The attempt's windows.
    pub(crate) fn windows(&self) -> Windows {
        self.windows
    }

    /// This attempt's execution hash.
    pub fn execution_hash(&self) -> &str {
        &self.execution_hash
    }

    /// How the service's consumers answer, as far as seen.
    pub fn form(&self) -> FeedbackForm {
        self.form
    }
}

mod chunks;
mod course;
mod recovery;
mod redelivery;
mod seed;
#[cfg(test)]
use redelivery::MAX_HOLD;
pub(crate) use redelivery::READ_WAIT;
pub(crate) use seed::ACK_FLOOR_WAIT;
#[cfg(test)]
mod tests;
