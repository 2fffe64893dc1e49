//! [`AckGate`]: which chunks of which batches are still waiting for their
//! consumers, and which batch ordinals may be committed. Pure state, no
//! I/O: the import loop feeds it feedback and acts on its verdicts.
//!
//! A batch is committable when it has no outstanding chunk and neither has
//! any batch before it; the gate hands out commits strictly in batch order,
//! so the ordinal never passes an entity that was not acknowledged.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::catalogue::Service;
use crate::sinks::wire::{decode_chunk_entities, encode_chunk};
use crate::sinks::{Feedback, FeedbackStatus, OutgoingChunk};

/// Why a feedback message was ignored (also a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Feedback for another service's subject.
    OtherChannel,
    /// Feedback from an earlier attempt or run.
    OldExecution,
    /// Not a chunk this attempt is waiting for (unknown, or already done).
    UnknownOrDone,
}

impl IgnoreReason {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::OtherChannel => "other_channel",
            IgnoreReason::OldExecution => "old_execution",
            IgnoreReason::UnknownOrDone => "unknown_or_done",
        }
    }
}

/// What to do about one feedback message.
#[derive(Debug)]
pub enum Verdict {
    /// Nothing: it does not concern a waiting chunk.
    Ignored(IgnoreReason),
    /// The chunk is stored by the consumer.
    Done {
        /// Entities acknowledged.
        entities: usize,
    },
    /// The chunk failed: publish these two halves instead.
    Split {
        /// The failed chunk.
        failed: String,
        /// The halves, as new chunks of the same batch.
        halves: Vec<OutgoingChunk>,
    },
    /// A chunk of one entity failed: that entity is a poison entity.
    Poison {
        /// The failed chunk.
        chunk_id: String,
        /// The entity, raw.
        entity: Box<RawValue>,
    },
}

/// A batch ordinal ready to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The batch's `greatestOrdinal`.
    pub greatest_ordinal: i64,
    /// Entities in the batch (published, acknowledged or dead-lettered).
    pub entities: u64,
    /// The batch's number in this run.
    pub batch_no: u64,
    /// Chunks published for it, halves included.
    pub chunks: u32,
}

struct BatchWindow {
    no: u64,
    greatest_ordinal: i64,
    entities: u64,
    outstanding: usize,
    next_chunk_no: u32,
}

struct PendingChunk {
    batch_no: u64,
    payload: Bytes,
    entities: usize,
}

/// The acknowledgement state of one service attempt.
pub struct AckGate {
    service_id: String,
    subject: String,
    execution_hash: String,
    batches: VecDeque<BatchWindow>,
    /// Outstanding chunks by id; the payload is kept to split a failure.
    chunks: HashMap<String, PendingChunk>,
    next_batch_no: u64,
}

impl AckGate {
    /// A gate for one attempt; batch numbers start at `first_batch_no` so
    /// chunk ids stay unique across the attempts of a run.
    pub fn new(service: &Service, execution_hash: &str, first_batch_no: u64) -> Self {
        AckGate {
            service_id: service.id.clone(),
            subject: service.subject.clone(),
            execution_hash: execution_hash.to_owned(),
            batches: VecDeque::new(),
            chunks: HashMap::new(),
            next_batch_no: first_batch_no,
        }
    }

    /// Opens a batch of `entities` entities (some may already be
    /// dead-lettered and not in `chunks`) and returns its chunks, encoded.
    pub fn add_batch(
        &mut self,
        greatest_ordinal: i64,
        entities: u64,
        chunks: Vec<Vec<Box<RawValue>>>,
    ) -> Vec<OutgoingChunk> {
        let mut window = BatchWindow {
            no: self.next_batch_no,
            greatest_ordinal,
            entities,
            outstanding: 0,
            next_chunk_no: 1,
        };
        self.next_batch_no += 1;
        let out = chunks
            .into_iter()
            .map(|c| self.open_chunk(&mut window, &c, false))
            .collect();
        self.batches.push_back(window);
        out
    }

    fn open_chunk(
        &mut self,
        window: &mut BatchWindow,
        entities: &[Box<RawValue>],
        half: bool,
    ) -> OutgoingChunk {
        let chunk_id = format!(
            "{}-{}-{:04}",
            self.service_id, window.no, window.next_chunk_no
        );
        window.next_chunk_no += 1;
        window.outstanding += 1;
        let payload = encode_chunk(&self.execution_hash, &chunk_id, entities);
        self.chunks.insert(
            chunk_id.clone(),
            PendingChunk {
                batch_no: window.no,
                payload: payload.clone(),
                entities: entities.len(),
            },
        );
        OutgoingChunk {
            msg_id: format!("{}:{}", self.execution_hash, chunk_id),
            chunk_id,
            payload,
            entities: entities.len(),
            half,
        }
    }

    /// Applies one feedback message. Duplicates and strangers are ignored,
    /// so nothing ever counts twice.
    pub fn feedback(&mut self, fb: &Feedback) -> Verdict {
        if fb.channel != self.subject {
            return Verdict::Ignored(IgnoreReason::OtherChannel);
        }
        if fb.execution_hash != self.execution_hash {
            return Verdict::Ignored(IgnoreReason::OldExecution);
        }
        let Some(chunk) = self.chunks.remove(&fb.chunk_id) else {
            return Verdict::Ignored(IgnoreReason::UnknownOrDone);
        };
        let idx = self
            .batches
            .iter()
            .position(|b| b.no == chunk.batch_no)
            .expect("an outstanding chunk's batch is open");
        match fb.status {
            FeedbackStatus::Ok => {
                self.batches[idx].outstanding -= 1;
                Verdict::Done {
                    entities: chunk.entities,
                }
            }
            FeedbackStatus::Fail => {
                let mut entities = decode_chunk_entities(&chunk.payload)
                    .expect("the gate decodes what it encoded");
                if entities.len() <= 1 {
                    self.batches[idx].outstanding -= 1;
                    return Verdict::Poison {
                        chunk_id: fb.chunk_id.clone(),
                        entity: entities.pop().expect("a chunk has an entity"),
                    };
                }
                let second = entities.split_off(entities.len() / 2);
                let mut window = std::mem::replace(
                    &mut self.batches[idx],
                    BatchWindow {
                        no: 0,
                        greatest_ordinal: 0,
                        entities: 0,
                        outstanding: 0,
                        next_chunk_no: 0,
                    },
                );
                window.outstanding -= 1;
                let halves = vec![
                    self.open_chunk(&mut window, &entities, true),
                    self.open_chunk(&mut window, &second, true),
                ];
                self.batches[idx] = window;
                Verdict::Split {
                    failed: fb.chunk_id.clone(),
                    halves,
                }
            }
        }
    }

    /// Pops every leading batch that is fully acknowledged.
    pub fn take_committable(&mut self) -> Vec<Commit> {
        let mut commits = Vec::new();
        while self.batches.front().is_some_and(|b| b.outstanding == 0) {
            let b = self.batches.pop_front().expect("front exists");
            commits.push(Commit {
                greatest_ordinal: b.greatest_ordinal,
                entities: b.entities,
                batch_no: b.no,
                chunks: b.next_chunk_no - 1,
            });
        }
        commits
    }

    /// Chunks published (or about to be) and not yet done.
    pub fn outstanding_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Open batches.
    pub fn open_batches(&self) -> usize {
        self.batches.len()
    }

    /// The batch number the next attempt should start from.
    pub fn next_batch_no(&self) -> u64 {
        self.next_batch_no
    }

    /// This attempt's execution hash.
    pub fn execution_hash(&self) -> &str {
        &self.execution_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::builtin;

    fn entities(range: std::ops::Range<u32>) -> Vec<Box<RawValue>> {
        range
            .map(|i| RawValue::from_string(format!("{{\"id\":\"e{i}\"}}")).unwrap())
            .collect()
    }

    fn fb(gate: &AckGate, chunk: &str, status: FeedbackStatus) -> Feedback {
        Feedback {
            channel: gate.subject.clone(),
            status,
            execution_hash: gate.execution_hash.clone(),
            chunk_id: chunk.into(),
            stack: None,
        }
    }

    fn gate() -> AckGate {
        AckGate::new(&builtin()[0], "hash1", 1)
    }

    #[test]
    fn commits_only_in_order_and_only_when_done() {
        let mut g = gate();
        let a = g.add_batch(10, 4, vec![entities(0..2), entities(2..4)]);
        let b = g.add_batch(20, 2, vec![entities(4..6)]);
        assert_eq!(a[0].chunk_id, "PERSON-1-0001");
        assert_eq!(b[0].chunk_id, "PERSON-2-0001");
        assert_eq!(a[0].msg_id, "hash1:PERSON-1-0001");
        // Batch 2 done first: nothing may be committed yet.
        assert!(matches!(
            g.feedback(&fb(&g, &b[0].chunk_id, FeedbackStatus::Ok)),
            Verdict::Done { entities: 2 }
        ));
        assert!(g.take_committable().is_empty());
        g.feedback(&fb(&g, &a[0].chunk_id, FeedbackStatus::Ok));
        assert!(g.take_committable().is_empty());
        g.feedback(&fb(&g, &a[1].chunk_id, FeedbackStatus::Ok));
        let commits = g.take_committable();
        assert_eq!(
            commits
                .iter()
                .map(|c| c.greatest_ordinal)
                .collect::<Vec<_>>(),
            [10, 20]
        );
        assert_eq!(g.outstanding_chunks(), 0);
    }

    #[test]
    fn duplicates_and_strangers_never_count() {
        let mut g = gate();
        let a = g.add_batch(10, 2, vec![entities(0..1), entities(1..2)]);
        g.feedback(&fb(&g, &a[0].chunk_id, FeedbackStatus::Ok));
        assert!(matches!(
            g.feedback(&fb(&g, &a[0].chunk_id, FeedbackStatus::Ok)),
            Verdict::Ignored(IgnoreReason::UnknownOrDone)
        ));
        let mut other = fb(&g, &a[1].chunk_id, FeedbackStatus::Ok);
        other.execution_hash = "old".into();
        assert!(matches!(
            g.feedback(&other),
            Verdict::Ignored(IgnoreReason::OldExecution)
        ));
        other = fb(&g, &a[1].chunk_id, FeedbackStatus::Ok);
        other.channel = "KORI_MODULE_CHANNEL".into();
        assert!(matches!(
            g.feedback(&other),
            Verdict::Ignored(IgnoreReason::OtherChannel)
        ));
        assert!(
            g.take_committable().is_empty(),
            "chunk 2 is still outstanding"
        );
    }

    #[test]
    fn failures_halve_until_the_poison_entity_is_alone() {
        let mut g = gate();
        let first = g.add_batch(10, 8, vec![entities(0..8)]);
        let poison = "{\"id\":\"e5\"}";
        let mut queue: VecDeque<OutgoingChunk> = first.into();
        let mut poisoned = Vec::new();
        let mut ok_entities = 0;
        while let Some(chunk) = queue.pop_front() {
            let text = std::str::from_utf8(&chunk.payload).unwrap();
            let status = if text.contains(poison) {
                FeedbackStatus::Fail
            } else {
                FeedbackStatus::Ok
            };
            match g.feedback(&fb(&g, &chunk.chunk_id, status)) {
                Verdict::Done { entities } => ok_entities += entities,
                Verdict::Split { halves, .. } => queue.extend(halves),
                Verdict::Poison { entity, .. } => poisoned.push(entity.get().to_owned()),
                Verdict::Ignored(r) => panic!("ignored {r:?}"),
            }
        }
        assert_eq!(poisoned, [poison]);
        assert_eq!(ok_entities, 7);
        let commits = g.take_committable();
        assert_eq!(
            commits,
            [Commit {
                greatest_ordinal: 10,
                entities: 8,
                batch_no: 1,
                chunks: 7,
            }]
        );
    }

    #[test]
    fn a_batch_without_chunks_commits_at_once() {
        let mut g = gate();
        assert!(g.add_batch(1, 0, vec![]).is_empty());
        assert_eq!(g.take_committable().len(), 1);
    }
}
