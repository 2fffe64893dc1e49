//! Chunk bookkeeping of the core: making a chunk and admitting it through
//! the order barrier, finishing it, halving a failed one, dead-lettering a
//! lone failing entity, and handing out commits in batch order.

use super::*;

impl AttemptCore {
    pub(super) fn make_chunk(
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
                stream_seq: None,
            },
        );
        seq
    }

    pub(super) fn remove_chunk(&mut self, seq: ChunkSeq) -> Chunk {
        let chunk = self.chunks.remove(&seq).expect("the chunk exists");
        self.by_id.remove(&chunk.id);
        chunk
    }

    /// A chunk is done: its batch has one fewer, newer versions may go.
    pub(super) fn finish(&mut self, seq: ChunkSeq, chunk: &Chunk) {
        self.batch_mut(chunk.batch_no).unfinished -= 1;
        for freed in self.barrier.release(seq, &chunk.distinct) {
            let batch_no = self.chunks[&freed].batch_no;
            self.ready.insert((batch_no, freed));
        }
    }

    pub(super) fn split(&mut self, seq: ChunkSeq, chunk: Chunk) -> Verdict {
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

    pub(super) fn dead_letter(
        &mut self,
        entity: Entity,
        reason: &'static str,
        detail: String,
        chunk_id: Option<String>,
    ) {
        self.window.updated += 1;
        let json = entity.get();
        self.act(Action::DeadLetter(DeadLetterRecord {
            service: self.service.id.clone(),
            identity: self.service.identity_of(json),
            modification_ordinal: crate::catalogue::modification_ordinal(json),
            reason,
            detail,
            execution_hash: self.execution_hash.to_string(),
            chunk_id,
            entity,
        }));
    }

    /// Hands out a store write; a replay keeps its dead letters back and
    /// writes no counter and no commit.
    pub(super) fn act(&mut self, action: Action) {
        match action {
            Action::DeadLetter(letter) if self.replay => self.met_again.push(letter),
            Action::Window(_) | Action::Commit(_) if self.replay => {}
            action => self.actions.push_back(action),
        }
    }

    pub(super) fn batch_mut(&mut self, no: u64) -> &mut OpenBatch {
        self.batches
            .iter_mut()
            .find(|b| b.no == no)
            .expect("an unfinished chunk's batch is open")
    }

    /// Hands out a commit for every leading batch that is done.
    pub(super) fn commit_ready(&mut self) {
        while self.batches.front().is_some_and(|b| b.unfinished == 0) {
            let b = self.batches.pop_front().expect("front exists");
            let window = std::mem::take(&mut self.window);
            self.act(Action::Commit(Commit {
                greatest_ordinal: b.greatest_ordinal,
                entities: b.entities,
                batch_no: b.no,
                chunks: b.chunks_made,
                window,
                fetched_in: b.fetched_in,
                opened: b.opened,
            }));
        }
    }
}
