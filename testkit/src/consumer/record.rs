//! What the consumer received, for assertions: [`Received`] and its
//! [`ServiceReceived`] per service, including the upserting store and its
//! order-violation bookkeeping, and the [`SeenProbe`] that asks without
//! copying. Every change goes through `Shared::update`, which wakes
//! `wait_until`.

use std::collections::{hash_map, BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::value::RawValue;
use sis_importer::catalogue::{self, Service};

use super::message::{identity, ChunkMessage};
use super::Shared;

/// An entity as seen: its identity and its modification ordinal (none
/// for whole-set kinds).
type Sighting = (String, Option<i64>);

/// Most examples kept in [`ServiceReceived::order_violation_examples`].
const ORDER_VIOLATION_EXAMPLES: usize = 20;

/// What the consumer received so far (a snapshot, or borrowed in `wait_until`).
#[derive(Clone, Default, Debug)]
pub struct Received {
    /// Chunks answered (or, with `never_answer`, processed) as OK.
    pub chunks_ok: u64,
    /// Chunks answered FAIL because of an entity with a truthy fail field.
    pub chunks_failed: u64,
    /// Entities in OK chunks, redeliveries included.
    pub entities_ok: u64,
    /// Messages on a service subject that were not chunk JSON.
    pub malformed: u64,
    /// Chunks of an execution hash other than the current one, acked
    /// without processing or feedback (the seed's form only).
    pub dropped_other_hash: u64,
    /// Per service id.
    pub per_service: BTreeMap<String, ServiceReceived>,
    /// Chunks (OK or FAIL) processed per instance index.
    pub per_instance: BTreeMap<usize, u64>,
    /// The seed's form: the execution hash each instance (by index) holds
    /// current, once it knows one.
    pub current_hashes: BTreeMap<usize, String>,
}

/// What arrived for one service.
#[derive(Clone, Default, Debug)]
pub struct ServiceReceived {
    /// OK chunks.
    pub chunks: u64,
    /// FAIL chunks.
    pub chunks_failed: u64,
    /// Chunks of an execution hash other than the current one, acked
    /// without processing or feedback (the seed's form only).
    pub dropped_other_hash: u64,
    /// (execution hash, chunk id) of those chunks in arrival order
    /// (`record` only).
    pub dropped_chunks: Vec<(String, String)>,
    /// Entities in OK chunks, redeliveries included.
    pub entities: u64,
    /// (identity, `metadata.modificationOrdinal`) of every OK entity (`record` only).
    pub seen: HashSet<(String, Option<i64>)>,
    /// Largest OK chunk in entities.
    pub max_chunk_entities: usize,
    /// Largest chunk message body in bytes (OK or FAIL).
    pub max_chunk_bytes: usize,
    /// Execution hashes of OK chunks (`record` only).
    pub execution_hashes: BTreeSet<String>,
    /// Chunk ids of OK chunks in arrival order, repeats kept (`record` only).
    pub chunk_ids: Vec<String>,
    /// (execution hash, chunk id) of FAIL chunks in arrival order (`record`
    /// only).
    pub failed_chunks: Vec<(String, String)>,
    /// The upserting store: per identity ([`Service::identity_of`]), the
    /// `metadata.modificationOrdinal` of the version currently stored, last
    /// write wins as in a real upserting consumer (`record` only). Written
    /// when an OK chunk is processed (after its latency, before its
    /// feedback); entities without identity or ordinal are skipped.
    pub stored: HashMap<String, i64>,
    /// Entities whose ordinal was lower than the one already in `stored` for
    /// their identity when they were stored: an older version overwrote a
    /// newer one (`record` only). Checked and written under one lock, so
    /// concurrent instances are judged atomically. A JetStream redelivery of
    /// an old chunk (after `ack_wait`, a NAK or a server restart) also counts
    /// here: use a long `ack_wait` when asserting zero.
    pub order_violations: u64,
    /// The first violations (at most 20): (identity, stored ordinal,
    /// arriving ordinal).
    pub order_violation_examples: Vec<(String, i64, i64)>,
}

impl ServiceReceived {
    /// Stores version `ordinal` of `id` in the upserting store (last write
    /// wins), counting an order violation when it is older than the version
    /// it replaces. The caller holds the `received` lock: check and write
    /// are atomic across instances.
    fn store(&mut self, id: String, ordinal: i64) {
        match self.stored.entry(id) {
            hash_map::Entry::Vacant(slot) => {
                slot.insert(ordinal);
            }
            hash_map::Entry::Occupied(mut slot) => {
                let current = *slot.get();
                if ordinal < current {
                    self.order_violations += 1;
                    if self.order_violation_examples.len() < ORDER_VIOLATION_EXAMPLES {
                        let id = slot.key().clone();
                        self.order_violation_examples.push((id, current, ordinal));
                    }
                }
                // Last write wins, as in an upserting store.
                slot.insert(ordinal);
            }
        }
    }
}

/// See [`ReferenceConsumer::probe`](super::ReferenceConsumer::probe).
#[derive(Clone)]
pub struct SeenProbe {
    pub(super) shared: Arc<Shared>,
}

impl SeenProbe {
    /// Distinct versions of `service` received in OK chunks (`record` only).
    pub fn seen(&self, service: &str) -> usize {
        let received = self.shared.received.lock().expect("received lock");
        received
            .per_service
            .get(service)
            .map_or(0, |s| s.seen.len())
    }

    /// The first of `versions` ((identity, ordinal) of `service`) not
    /// received in an OK chunk (`record` only), checked under the lock.
    pub fn first_unseen<'a>(
        &self,
        service: &str,
        versions: impl IntoIterator<Item = &'a (String, Option<i64>)>,
    ) -> Option<&'a (String, Option<i64>)> {
        let received = self.shared.received.lock().expect("received lock");
        let seen = received.per_service.get(service).map(|s| &s.seen);
        versions
            .into_iter()
            .find(|v| !seen.is_some_and(|seen| seen.contains(*v)))
    }
}

impl Shared {
    /// Applies `change` under the lock, then wakes every `wait_until`.
    pub(super) fn update(&self, change: impl FnOnce(&mut Received)) {
        change(&mut self.received.lock().expect("received lock"));
        self.changed.notify_waiters();
    }

    /// Records an OK chunk `bytes` long, processed by `instance`.
    pub(super) fn record_ok(
        &self,
        instance: usize,
        service: &Service,
        chunk: &ChunkMessage<'_>,
        bytes: usize,
    ) {
        let record = self.config.record;
        // Parsed outside the lock: other loops keep recording meanwhile.
        let (seen, versions): (Vec<Sighting>, Vec<(String, i64)>) = if record {
            let pair = |e: &&RawValue| {
                (
                    identity(service, e),
                    catalogue::modification_ordinal(e.get()),
                )
            };
            let version = |e: &&RawValue| {
                Some((
                    service.identity_of(e.get())?,
                    catalogue::modification_ordinal(e.get())?,
                ))
            };
            (
                chunk.entities.iter().map(pair).collect(),
                chunk.entities.iter().filter_map(version).collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let n = chunk.entities.len();
        self.update(|r| {
            r.chunks_ok += 1;
            r.entities_ok += n as u64;
            *r.per_instance.entry(instance).or_default() += 1;
            let s = r.per_service.entry(service.id.clone()).or_default();
            s.chunks += 1;
            s.entities += n as u64;
            s.max_chunk_entities = s.max_chunk_entities.max(n);
            s.max_chunk_bytes = s.max_chunk_bytes.max(bytes);
            if record {
                s.seen.extend(seen);
                if !s.execution_hashes.contains(&chunk.execution_hash) {
                    s.execution_hashes.insert(chunk.execution_hash.clone());
                }
                s.chunk_ids.push(chunk.chunk_id.clone());
                // Inside `update`, so under the lock: atomic across instances.
                for (id, ordinal) in versions {
                    s.store(id, ordinal);
                }
            }
        });
    }

    /// Records a chunk of another execution hash than the current one,
    /// dropped unprocessed (the seed's form).
    pub(super) fn record_dropped(&self, service: &Service, chunk: &ChunkMessage<'_>) {
        let record = self.config.record;
        self.update(|r| {
            r.dropped_other_hash += 1;
            let s = r.per_service.entry(service.id.clone()).or_default();
            s.dropped_other_hash += 1;
            if record {
                s.dropped_chunks
                    .push((chunk.execution_hash.clone(), chunk.chunk_id.clone()));
            }
        });
    }

    /// Records a FAIL chunk `bytes` long, processed by `instance`.
    pub(super) fn record_failure(
        &self,
        instance: usize,
        service: &Service,
        chunk: &ChunkMessage<'_>,
        bytes: usize,
    ) {
        let record = self.config.record;
        self.update(|r| {
            r.chunks_failed += 1;
            *r.per_instance.entry(instance).or_default() += 1;
            let s = r.per_service.entry(service.id.clone()).or_default();
            s.chunks_failed += 1;
            if record {
                s.failed_chunks
                    .push((chunk.execution_hash.clone(), chunk.chunk_id.clone()));
            }
            s.max_chunk_bytes = s.max_chunk_bytes.max(bytes);
        });
    }
}
