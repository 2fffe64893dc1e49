//! Resuming an interrupted attempt: what its stored feedback said about
//! chunks of this epoch, where the next resumption must start reading, and
//! chunks finished or made as halves because of it.

use super::*;

impl AttemptCore {
    /// Whether the interrupted attempt split the chunk at `key`: it said
    /// FAIL for it, or something about a part of it.
    pub(super) fn made_as_halves(&self, key: &ChunkKey) -> bool {
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

    /// Resuming: keeps the first word of the interrupted attempt's
    /// feedback about a chunk of this epoch.
    pub(super) fn remember(&mut self, fb: &Feedback) -> Verdict {
        let ignored = Verdict::Ignored(IgnoreReason::UnknownOrDone);
        let Some(key) = self.uncommitted_key(fb) else {
            return ignored;
        };
        let Some(recovered) = self.recovered.as_mut() else {
            return ignored;
        };
        let status = match fb.status {
            FeedbackStatus::Ok => Recovered::Ok,
            FeedbackStatus::Fail if key.len <= 1 => Recovered::Poison(fb.stack.clone()),
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
    pub(super) fn uncommitted_key(&self, fb: &Feedback) -> Option<ChunkKey> {
        if fb.channel != self.subject || *fb.execution_hash != *self.execution_hash {
            return None;
        }
        ChunkKey::parse(fb.chunk_id.as_deref()?, &self.service_id, self.epoch)
            .filter(|key| key.since >= self.since)
    }

    /// Whether stored feedback `fb` may still matter to a resumed attempt
    /// of this lineage: it is about a chunk of a batch not yet committed.
    /// The first such message in the stream bounds where the next
    /// resumption must start reading.
    fn concerns_uncommitted(&self, fb: &Feedback) -> bool {
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
    pub(super) fn recovered_status(&self, seq: ChunkSeq) -> Option<Recovered> {
        let key = self.chunks[&seq].key;
        match self.recovered.as_ref()?.get(&key)? {
            Recovered::Split => None,
            done => Some(done.clone()),
        }
    }

    /// Finishes a chunk from recovered feedback, as its feedback would
    /// have live.
    pub(super) fn finish_recovered(&mut self, seq: ChunkSeq, status: Recovered) {
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
}
