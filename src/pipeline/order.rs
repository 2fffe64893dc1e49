//! `OrderBarrier`: per-identity order across chunks. Pure state.
//!
//! Every chunk is admitted in creation order with the identity keys of its
//! entities. For each key the barrier keeps the queue of unfinished chunks
//! carrying it; a chunk may be published only when it stands first in the
//! queue of every key it carries. So no two unfinished chunks that share an
//! identity are ever out at once, and a newer version goes out only after
//! every older one is done (acknowledged or dead-lettered).
//!
//! The earliest unfinished chunk is first in all its queues, so the barrier
//! never deadlocks. A failed chunk's halves take its place in its queues,
//! in order, so a split keeps the rule too (and an identity that appears
//! twice in one chunk stays ordered across its two halves).
//!
//! Keys are 64-bit hashes of the identity's JSON text: a collision can only
//! make a chunk wait for an unrelated one, never reorder versions (see
//! `identity` for how they are found).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

/// Keys are hashes already and chunk numbers are not chosen by anyone
/// outside, so the maps need no DoS-resistant hasher: foldhash costs a
/// fraction of SipHash on this per-entity path.
type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// A chunk's place in creation order; unique within an attempt.
pub(crate) type ChunkSeq = u64;

/// The unfinished chunks carrying one key, oldest first; never empty. The
/// first is kept apart because most identities have one chunk unfinished
/// at a time, and then the line allocates nothing.
#[derive(Debug)]
struct Line {
    first: ChunkSeq,
    rest: VecDeque<ChunkSeq>,
}

impl Line {
    fn new(chunk: ChunkSeq) -> Line {
        Line {
            first: chunk,
            rest: VecDeque::new(),
        }
    }

    /// Drops the first; false when nothing is left.
    fn pop_front(&mut self) -> bool {
        match self.rest.pop_front() {
            Some(next) => {
                self.first = next;
                true
            }
            None => false,
        }
    }

    fn push_front(&mut self, chunk: ChunkSeq) {
        self.rest.push_front(self.first);
        self.first = chunk;
    }
}

/// The order key of one entity identity.
pub(crate) type IdentityKey = u64;

/// See the module doc.
#[derive(Debug, Default)]
pub(crate) struct OrderBarrier {
    /// Unfinished chunks carrying each key, oldest first.
    queues: Map<IdentityKey, Line>,
    /// For each waiting chunk: how many of its queues it is not first in.
    pub(super) waiting: Map<ChunkSeq, usize>,
}

impl OrderBarrier {
    /// Admits a new chunk (newer than every chunk admitted before) with its
    /// distinct keys. Returns whether it may be published at once.
    pub(crate) fn admit(&mut self, chunk: ChunkSeq, keys: &[IdentityKey]) -> bool {
        let mut behind = 0;
        for key in keys {
            match self.queues.entry(*key) {
                Entry::Occupied(mut line) => {
                    line.get_mut().rest.push_back(chunk);
                    behind += 1;
                }
                Entry::Vacant(place) => {
                    place.insert(Line::new(chunk));
                }
            }
        }
        self.wait(chunk, behind)
    }

    /// The chunk first in line for `key`: the only one carrying it that
    /// may be published (or is).
    pub(crate) fn first_of(&self, key: IdentityKey) -> Option<ChunkSeq> {
        self.queues.get(&key).map(|line| line.first)
    }

    /// A published chunk is done: it leaves its queues. Returns the chunks
    /// that may now be published.
    pub fn release(&mut self, chunk: ChunkSeq, keys: &[IdentityKey]) -> Vec<ChunkSeq> {
        let mut freed = Vec::new();
        for key in keys {
            let Some(line) = self.queues.get_mut(key) else {
                debug_assert!(false, "a released chunk was admitted");
                continue;
            };
            debug_assert_eq!(line.first, chunk, "only a chunk first in line is out");
            if line.pop_front() {
                let next = line.first;
                if self.one_less(next) {
                    freed.push(next);
                }
            } else {
                self.queues.remove(key);
            }
        }
        freed
    }

    /// A published chunk failed and is replaced by `halves` (in order, each
    /// with its distinct keys, together exactly the parent's keys).
    /// Returns the halves that may be published at once.
    pub fn split(
        &mut self,
        parent: ChunkSeq,
        parent_keys: &[IdentityKey],
        halves: [(ChunkSeq, &[IdentityKey]); 2],
    ) -> Vec<ChunkSeq> {
        let mut behind = [0usize; 2];
        for key in parent_keys {
            let line = self
                .queues
                .get_mut(key)
                .expect("a split chunk was admitted");
            debug_assert_eq!(line.first, parent);
            // The halves carrying the key take the parent's place, in order.
            let carriers: Vec<usize> = (0..2).filter(|i| halves[*i].1.contains(key)).collect();
            debug_assert!(!carriers.is_empty(), "every key goes to a half");
            for (place, i) in carriers.iter().enumerate().rev() {
                if place == carriers.len() - 1 {
                    line.first = halves[*i].0;
                } else {
                    line.push_front(halves[*i].0);
                }
                if place > 0 {
                    behind[*i] += 1;
                }
            }
        }
        (0..2)
            .filter(|i| self.wait(halves[*i].0, behind[*i]))
            .map(|i| halves[i].0)
            .collect()
    }

    fn wait(&mut self, chunk: ChunkSeq, behind: usize) -> bool {
        if behind == 0 {
            return true;
        }
        self.waiting.insert(chunk, behind);
        false
    }

    /// One queue fewer in which `chunk` waits; true when it waits no more.
    fn one_less(&mut self, chunk: ChunkSeq) -> bool {
        let count = self
            .waiting
            .get_mut(&chunk)
            .expect("a chunk behind another is waiting");
        *count -= 1;
        if *count == 0 {
            self.waiting.remove(&chunk);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_version_waits_for_the_older_one() {
        let mut b = OrderBarrier::default();
        assert!(b.admit(1, &[10, 11]));
        assert!(b.admit(2, &[12]));
        assert!(!b.admit(3, &[11, 12]), "shares 11 with 1 and 12 with 2");
        assert!(b.release(1, &[10, 11]).is_empty(), "still behind 2 for 12");
        assert_eq!(b.release(2, &[12]), [3]);
        assert_eq!(b.waiting.len(), 0);
        assert!(b.release(3, &[11, 12]).is_empty());
        assert!(b.queues.is_empty());
    }

    #[test]
    fn halves_take_the_parents_place_in_order() {
        let mut b = OrderBarrier::default();
        // Chunk 1 carries identity 7 twice (one key) and 8; chunk 2 has 7.
        assert!(b.admit(1, &[7, 8]));
        assert!(!b.admit(2, &[7]));
        // Halves: 3 has 7 (older version) and 8, 4 has 7 (newer version).
        let ready = b.split(1, &[7, 8], [(3, &[7, 8]), (4, &[7])]);
        assert_eq!(ready, [3]);
        assert_eq!(b.release(3, &[7, 8]), [4]);
        assert_eq!(
            b.release(4, &[7]),
            [2],
            "the next batch's version goes last"
        );
    }

    #[test]
    fn a_half_without_shared_keys_goes_at_once() {
        let mut b = OrderBarrier::default();
        assert!(b.admit(1, &[1, 2]));
        assert!(!b.admit(2, &[2]));
        let mut ready = b.split(1, &[1, 2], [(3, &[1]), (4, &[2])]);
        ready.sort();
        assert_eq!(ready, [3, 4]);
        assert_eq!(b.release(4, &[2]), [2]);
    }
}
