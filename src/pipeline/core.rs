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
//! - per-identity order through the [`OrderBarrier`];
//! - `OK` finishes a chunk once, `FAIL` halves it, a failing lone entity is
//!   dead-lettered; feedback for anything else is ignored;
//! - an ordinal is committed only for a batch that is done, after every
//!   earlier batch, and after its dead letters are recorded (actions come
//!   out in order and the store performs them in order);
//! - no feedback progress for `panic_timeout` while chunks are unfinished
//!   ends the attempt;
//! - resuming an interrupted attempt (same execution hash and epoch, so the
//!   same chunk ids), feedback for chunks not sent again yet is remembered
//!   ([`Recovered`]): such a chunk is finished when its turn comes instead
//!   of being sent, and a chunk the interrupted attempt split is made as
//!   its halves.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::entity::Entity;
use tokio::time::Instant;

use super::chunker::{self, ChunkLimits};
pub use super::core_types::*;
use super::order::{distinct_keys, identity_key, ChunkSeq, IdentityKey, OrderBarrier};
use crate::catalogue::IdentityKind;
use crate::sinks::{Feedback, FeedbackStatus};

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
}

/// See the module doc.
pub struct AttemptCore {
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
    panic_timeout: Duration,
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
    actions: VecDeque<Action>,
    window: WindowDelta,
    last_progress: Instant,
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
        panic_timeout: Duration,
        now: Instant,
    ) -> Self {
        AttemptCore {
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
            panic_timeout,
            batches: VecDeque::new(),
            next_batch_no: first_batch_no,
            chunks: HashMap::new(),
            by_id: HashMap::new(),
            next_seq: 0,
            barrier: OrderBarrier::default(),
            ready: BTreeSet::new(),
            awaiting_feedback: 0,
            awaiting_publish_ack: 0,
            actions: VecDeque::new(),
            window: WindowDelta::default(),
            last_progress: now,
        }
    }

    /// Whether another batch may be opened now.
    pub(crate) fn wants_batch(&self) -> bool {
        self.batches.len() < self.windows.pipeline_depth
    }

    /// Opens a fetched batch: chunks it, dead-letters what no chunk can
    /// carry, and admits its chunks to the order barrier.
    pub fn on_batch(&mut self, batch: BatchIn, now: Instant) -> Opened {
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
                .map(|e| identity_key(self.identity, e.as_bytes()))
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

    /// Whether the interrupted attempt split the chunk at `key`: it said
    /// FAIL for it, or something about a part of it.
    fn made_as_halves(&self, key: &ChunkKey) -> bool {
        let Some(recovered) = &self.recovered else {
            return false;
        };
        match recovered.get(key) {
            Some(Recovered::Split) => true,
            Some(_) => false,
            None => {
                let at = |start| ChunkKey {
                    start,
                    len: 0,
                    ..*key
                };
                let end = key.start + key.len;
                recovered
                    .range(at(key.start)..at(end))
                    .any(|(k, _)| k.start + k.len <= end)
            }
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
        {
            return None;
        }
        let (_, seq) = self.ready.pop_first()?;
        let chunk = self.chunks.get_mut(&seq).expect("a ready chunk exists");
        chunk.published = true;
        self.awaiting_feedback += 1;
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

    /// JetStream acknowledged (stored) a publish.
    pub(crate) fn on_published(&mut self) {
        self.awaiting_publish_ack = self.awaiting_publish_ack.saturating_sub(1);
    }

    /// Applies one feedback message. Duplicates and strangers are ignored,
    /// so nothing ever counts twice. Resuming, feedback for a chunk not
    /// sent (again) yet is remembered.
    pub fn on_feedback(&mut self, fb: &Feedback, now: Instant) -> Verdict {
        if fb.channel != self.subject {
            return Verdict::Ignored(IgnoreReason::OtherChannel);
        }
        if *fb.execution_hash != *self.execution_hash {
            return Verdict::Ignored(IgnoreReason::OldExecution);
        }
        let sent = self.by_id.get(&fb.chunk_id).copied();
        let Some(seq) = sent.filter(|seq| self.chunks[seq].published) else {
            return self.remember(fb);
        };
        self.last_progress = now;
        self.awaiting_feedback -= 1;
        let chunk = self.remove_chunk(seq);
        let verdict = match fb.status {
            FeedbackStatus::Ok => {
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
                self.dead_letter(entity, "poison", fb.stack_text(), Some(chunk.id.clone()));
                self.finish(seq, &chunk);
                Verdict::Poison { chunk_id: chunk.id }
            }
            FeedbackStatus::Fail => self.split(seq, chunk),
        };
        self.commit_ready();
        verdict
    }

    /// Resuming: keeps the first word of the interrupted attempt's
    /// feedback about a chunk of this epoch.
    fn remember(&mut self, fb: &Feedback) -> Verdict {
        let ignored = Verdict::Ignored(IgnoreReason::UnknownOrDone);
        let Some(key) = self.uncommitted_key(fb) else {
            return ignored;
        };
        let Some(recovered) = self.recovered.as_mut() else {
            return ignored;
        };
        let status = match fb.status {
            FeedbackStatus::Ok => Recovered::Ok,
            FeedbackStatus::Fail if key.len <= 1 => Recovered::Poison(fb.stack_text()),
            FeedbackStatus::Fail => Recovered::Split,
        };
        match recovered.entry(key) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(status);
                Verdict::Remembered
            }
            std::collections::btree_map::Entry::Occupied(_) => ignored,
        }
    }

    /// The chunk `fb` is about, when it is one of this lineage's chunks in
    /// a batch not committed yet (at or after the attempt's `since`).
    fn uncommitted_key(&self, fb: &Feedback) -> Option<ChunkKey> {
        if fb.channel != self.subject || *fb.execution_hash != *self.execution_hash {
            return None;
        }
        ChunkKey::parse(&fb.chunk_id, &self.service_id, self.epoch)
            .filter(|key| key.since >= self.since)
    }

    /// Whether stored feedback `fb` may still matter to a resumed attempt
    /// of this lineage: it is about a chunk of a batch not yet committed.
    /// The first such message in the stream bounds where the next
    /// resumption must start reading.
    pub(crate) fn concerns_uncommitted(&self, fb: &Feedback) -> bool {
        self.uncommitted_key(fb).is_some()
    }

    /// Resuming: where the next resumption of this lineage must start
    /// reading stored feedback, given the messages just read back (stream
    /// sequence, message) up to `through`: just before the first one about
    /// a batch not yet committed (everything before it is about committed
    /// batches, other services or nothing), or `through` when there is
    /// none. Moving it forward at every resumption keeps the read-back to
    /// what the interrupted processes heard since the oldest open batch, not
    /// everything since the lineage began.
    pub(crate) fn resume_after<'a>(
        &self,
        stored: impl IntoIterator<Item = (u64, &'a Feedback)>,
        through: u64,
    ) -> u64 {
        stored
            .into_iter()
            .find(|(_, fb)| self.concerns_uncommitted(fb))
            .map_or(through, |(sequence, _)| sequence - 1)
    }

    /// What the interrupted attempt's feedback finished a chunk with.
    fn recovered_status(&self, seq: ChunkSeq) -> Option<Recovered> {
        let key = self.chunks[&seq].key;
        match self.recovered.as_ref()?.get(&key)? {
            Recovered::Split => None,
            done => Some(done.clone()),
        }
    }

    /// Finishes a chunk from recovered feedback, as its feedback would
    /// have live.
    fn finish_recovered(&mut self, seq: ChunkSeq, status: Recovered) {
        let chunk = self.remove_chunk(seq);
        if !chunk.half {
            self.window.scheduled += chunk.entities.len() as u64;
        }
        match status {
            Recovered::Poison(stack) => {
                let entity = chunk.entities[0].clone();
                self.dead_letter(entity, "poison", stack, Some(chunk.id.clone()));
            }
            _ => self.window.updated += chunk.entities.len() as u64,
        }
        self.recovered_chunks += 1;
        self.finish(seq, &chunk);
        self.commit_ready();
    }

    /// Chunks finished from the feedback of the interrupted attempt being
    /// resumed, without being sent again.
    pub(crate) fn recovered_chunks(&self) -> u64 {
        self.recovered_chunks
    }

    /// The panic deadline, while chunks are unfinished.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        (self.unfinished_chunks() > 0).then(|| self.last_progress + self.panic_timeout)
    }

    /// Whether the attempt must be abandoned at `now` (no feedback
    /// progress for the panic timeout while chunks are unfinished).
    pub(crate) fn on_timeout(&self, now: Instant) -> bool {
        self.poll_timeout().is_some_and(|deadline| now >= deadline)
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
            self.actions.push_back(Action::Window(delta));
        }
    }

    /// Open batches (fetched, commit not yet handed out).
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

    /// This attempt's execution hash.
    pub fn execution_hash(&self) -> &str {
        &self.execution_hash
    }

    fn make_chunk(
        &mut self,
        batch_no: u64,
        key: ChunkKey,
        entities: Arc<[Entity]>,
        keys: Vec<Option<IdentityKey>>,
        half: bool,
    ) -> ChunkSeq {
        let batch = self
            .batches
            .iter_mut()
            .find(|b| b.no == batch_no)
            .expect("a chunk's batch is open");
        batch.chunks_made += 1;
        batch.unfinished += 1;
        let id = key.id(&self.service_id, self.epoch);
        let seq = self.next_seq;
        self.next_seq += 1;
        let earlier = self.by_id.insert(id.clone(), seq);
        debug_assert!(earlier.is_none(), "chunk id {id} made twice");
        let distinct = distinct_keys(keys.iter().copied());
        self.chunks.insert(
            seq,
            Chunk {
                id,
                key,
                batch_no,
                entities,
                keys,
                distinct,
                half,
                published: false,
            },
        );
        seq
    }

    fn remove_chunk(&mut self, seq: ChunkSeq) -> Chunk {
        let chunk = self.chunks.remove(&seq).expect("the chunk exists");
        self.by_id.remove(&chunk.id);
        chunk
    }

    /// A chunk is done: its batch has one fewer, newer versions may go.
    fn finish(&mut self, seq: ChunkSeq, chunk: &Chunk) {
        self.batch_mut(chunk.batch_no).unfinished -= 1;
        for freed in self.barrier.release(seq, &chunk.distinct) {
            let batch_no = self.chunks[&freed].batch_no;
            self.ready.insert((batch_no, freed));
        }
    }

    fn split(&mut self, seq: ChunkSeq, chunk: Chunk) -> Verdict {
        let mid = chunk.key.halves()[0].len as usize;
        let (first, second) = chunk.entities.split_at(mid);
        let (first_keys, second_keys) = chunk.keys.split_at(mid);
        self.batch_mut(chunk.batch_no).unfinished -= 1;
        let [ka, kb] = chunk.key.halves();
        let a = self.make_chunk(chunk.batch_no, ka, first.into(), first_keys.to_vec(), true);
        let b = self.make_chunk(
            chunk.batch_no,
            kb,
            second.into(),
            second_keys.to_vec(),
            true,
        );
        let (a_keys, b_keys) = (
            self.chunks[&a].distinct.clone(),
            self.chunks[&b].distinct.clone(),
        );
        for ready in self
            .barrier
            .split(seq, &chunk.distinct, [(a, &a_keys), (b, &b_keys)])
        {
            self.ready.insert((chunk.batch_no, ready));
        }
        let half = |s: ChunkSeq| (self.chunks[&s].id.clone(), self.chunks[&s].entities.len());
        Verdict::Split {
            failed: chunk.id,
            halves: [half(a), half(b)],
        }
    }

    fn dead_letter(
        &mut self,
        entity: Entity,
        reason: &'static str,
        detail: String,
        chunk_id: Option<String>,
    ) {
        self.window.updated += 1;
        self.actions.push_back(Action::DeadLetter(DeadLetterOrder {
            entity,
            reason,
            detail,
            chunk_id,
        }));
    }

    fn batch_mut(&mut self, no: u64) -> &mut OpenBatch {
        self.batches
            .iter_mut()
            .find(|b| b.no == no)
            .expect("an unfinished chunk's batch is open")
    }

    /// Hands out a commit for every leading batch that is done.
    fn commit_ready(&mut self) {
        while self.batches.front().is_some_and(|b| b.unfinished == 0) {
            let b = self.batches.pop_front().expect("front exists");
            self.actions.push_back(Action::Commit(Commit {
                greatest_ordinal: b.greatest_ordinal,
                entities: b.entities,
                batch_no: b.no,
                chunks: b.chunks_made,
                window: std::mem::take(&mut self.window),
                fetched_in: b.fetched_in,
                opened: b.opened,
            }));
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
