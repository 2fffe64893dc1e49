//! [`OrderBarrier`]: per-identity order across chunks. Pure state.
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
//! make a chunk wait for an unrelated one, never reorder versions.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};

/// Keys are hashes already and chunk numbers are not chosen by anyone
/// outside, so the maps need no DoS-resistant hasher: foldhash costs a
/// fraction of SipHash on this per-entity path.
type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

use crate::catalogue::IdentityKind;

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

/// The order key of an entity of a service whose identity is `kind`, or
/// `None` when it has no identity (not an object, or a field missing):
/// such an entity is ordered with nothing, since nothing can tell which
/// entity it is a version of (consumers cannot upsert it either).
pub(crate) fn identity_key(kind: IdentityKind, entity: &[u8]) -> Option<IdentityKey> {
    const ID: &[&str] = &["id"];
    const STUDY_RIGHT_STUDENT: &[&str] = &["studyRightId", "studentId"];
    const WITH_START: &[&str] = &["studyRightId", "studentId", "startDate"];
    let (names, required) = match kind {
        IdentityKind::Id => (ID, 1),
        IdentityKind::StudyRightStudent => (STUDY_RIGHT_STUDENT, 2),
        // As in dead letters, a missing start date is part of the key.
        IdentityKind::StudyRightStudentStart => (WITH_START, 2),
    };
    let mut found = [None; 3];
    top_level_fields(entity, names, &mut found[..names.len()])?;
    // Fixed seed: the same identity has the same key in every attempt.
    let mut hasher = foldhash::fast::FixedState::with_seed(0).build_hasher();
    for (i, value) in found[..names.len()].iter().enumerate() {
        match value {
            Some(v) if *v != b"null" => v.hash(&mut hasher),
            _ if i < required => return None,
            _ => 0u8.hash(&mut hasher),
        }
    }
    Some(hasher.finish())
}

/// The raw JSON text of the top-level fields `names` of the object `json`
/// (`out[i]` for `names[i]`), read without parsing the rest: the scan
/// stops as soon as every name is found, and nested values are skipped by
/// counting brackets. Identity fields come first in Sisu's entities, so
/// this usually reads a few dozen bytes. `None` when `json` is not an
/// object (it is valid JSON: Sisu's answer was parsed already).
fn top_level_fields<'a>(
    bytes: &'a [u8],
    names: &[&str],
    out: &mut [Option<&'a [u8]>],
) -> Option<()> {
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut missing = names.len();
    loop {
        i = skip_ws(bytes, i);
        match bytes.get(i)? {
            b'}' => return Some(()),
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(bytes, i)?;
        let key = &bytes[i + 1..key_end - 1];
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(bytes, i + 1);
        let end = value_end(bytes, start)?;
        if let Some(slot) = names.iter().position(|n| n.as_bytes() == key) {
            if out[slot].is_none() {
                out[slot] = Some(&bytes[start..end]);
                missing -= 1;
                if missing == 0 {
                    return Some(());
                }
            }
        }
        i = end;
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The index just past the string starting at `i` (a `"`).
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just past the value starting at `i`.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = string_end(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while !matches!(
                bytes.get(j),
                None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            ) {
                j += 1;
            }
            Some(j)
        }
    }
}

/// The distinct keys of `entities`, in first-seen order.
pub(crate) fn distinct_keys(
    keys: impl IntoIterator<Item = Option<IdentityKey>>,
) -> Vec<IdentityKey> {
    let mut out: Vec<IdentityKey> = Vec::new();
    for key in keys.into_iter().flatten() {
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
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

    fn raw(s: &str) -> &[u8] {
        s.as_bytes()
    }

    #[test]
    fn keys_follow_the_identity_rules() {
        let id = |s| identity_key(IdentityKind::Id, raw(s));
        assert_eq!(id(r#"{"id":"a","x":1}"#), id(r#"{"x":2,"id":"a"}"#));
        assert_ne!(id(r#"{"id":"a"}"#), id(r#"{"id":"b"}"#));
        assert_eq!(id(r#"{"x":1}"#), None);
        assert_eq!(id(r#"{"id":null}"#), None);
        assert_eq!(id("[1]"), None);
        let tr = |s| identity_key(IdentityKind::StudyRightStudent, raw(s));
        assert_eq!(
            tr(r#"{"studyRightId":"r","studentId":"s","t":1}"#),
            tr(r#"{"studentId":"s","studyRightId":"r"}"#)
        );
        assert_ne!(
            tr(r#"{"studyRightId":"r","studentId":"s"}"#),
            tr(r#"{"studyRightId":"r","studentId":"t"}"#)
        );
        assert_eq!(tr(r#"{"studyRightId":"r"}"#), None);
        let pr = |s| identity_key(IdentityKind::StudyRightStudentStart, raw(s));
        assert_ne!(
            pr(r#"{"studyRightId":"r","studentId":"s","startDate":"2020-01-01"}"#),
            pr(r#"{"studyRightId":"r","studentId":"s","startDate":"2021-01-01"}"#)
        );
        assert!(distinct_keys([Some(1), None, Some(1), Some(2)]) == [1, 2]);
    }

    #[test]
    fn the_scanner_finds_what_a_parser_finds() {
        let texts = [
            r#"{"a":{"id":"nested"},"b":[1,{"id":2}],"s":"x\"id\":3","id":"top"}"#,
            r#" { "x" : [ ] , "id" : 12 , "y" : {"z":"}"} } "#,
            r#"{"studentId":"s","n":-1.5e3,"t":true,"studyRightId":{"k":[1,2]}}"#,
            r#"{"startDate":null,"studyRightId":"r","studentId":"s"}"#,
            r#"{"esc\u0041":"a","id":"\u00e4\\"}"#,
            r#"{}"#,
            r#"[{"id":1}]"#,
            r#""id""#,
        ];
        for text in texts {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let names = ["id", "studyRightId", "studentId", "startDate"];
            let mut found = [None; 4];
            let scanned = top_level_fields(text.as_bytes(), &names, &mut found);
            assert_eq!(scanned.is_some(), value.is_object(), "{text}");
            for (name, raw) in names.iter().zip(found) {
                let parsed = raw.map(|r| serde_json::from_slice::<serde_json::Value>(r).unwrap());
                assert_eq!(parsed.as_ref(), value.get(name), "{text}: {name}");
            }
        }
    }
}
