//! Splits a batch into chunks bounded by entity count and bytes. Entities
//! stay raw JSON; only their lengths are read.

use crate::entity::Entity;

/// Bounds for one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// `MAX_CHUNK_SIZE`: entities per chunk.
    pub max_entities: usize,
    /// Bytes the entities (with their separating commas) may take: the
    /// smaller of `MAX_CHUNK_BYTES` and the server's `max_payload`, less
    /// the envelope's reserve.
    pub max_entity_bytes: usize,
}

impl ChunkLimits {
    /// Limits from `MAX_CHUNK_SIZE`, `MAX_CHUNK_BYTES`, the server's
    /// `max_payload` and the envelope reserve.
    pub fn new(
        max_entities: usize,
        max_chunk_bytes: usize,
        max_payload: usize,
        envelope_reserve: usize,
    ) -> Self {
        ChunkLimits {
            max_entities: max_entities.max(1),
            max_entity_bytes: max_chunk_bytes
                .min(max_payload)
                .saturating_sub(envelope_reserve)
                .max(1),
        }
    }
}

/// A batch cut into chunks, plus the entities no chunk can carry.
#[derive(Debug, Default)]
pub struct Plan {
    /// Chunks in Sisu's order.
    pub chunks: Vec<Vec<Entity>>,
    /// Entities larger than any chunk may be: to be dead-lettered.
    pub too_large: Vec<Entity>,
}

/// Greedy split keeping Sisu's order: a chunk closes when the next entity
/// would pass either bound.
pub fn plan(entities: Vec<Entity>, limits: ChunkLimits) -> Plan {
    let mut plan = Plan::default();
    let mut current: Vec<Entity> = Vec::with_capacity(limits.max_entities.min(entities.len()));
    let mut bytes = 0usize;
    for entity in entities {
        let len = entity.len();
        if len > limits.max_entity_bytes {
            plan.too_large.push(entity);
            continue;
        }
        let comma = usize::from(!current.is_empty());
        if current.len() == limits.max_entities || bytes + comma + len > limits.max_entity_bytes {
            plan.chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += usize::from(!current.is_empty()) + len;
        current.push(entity);
    }
    if !current.is_empty() {
        plan.chunks.push(current);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(body_len: usize, fill: char) -> Entity {
        // {"s":"…"} is 8 bytes of frame around the string.
        let s: String = std::iter::repeat_n(fill, body_len).collect();
        Entity::from_json(format!("{{\"s\":\"{s}\"}}"))
    }

    fn limits(max_entities: usize, max_entity_bytes: usize) -> ChunkLimits {
        ChunkLimits {
            max_entities,
            max_entity_bytes,
        }
    }

    fn chunk_bytes(chunk: &[Entity]) -> usize {
        chunk.iter().map(|e| e.len()).sum::<usize>() + chunk.len().saturating_sub(1)
    }

    #[test]
    fn count_bound() {
        let p = plan(
            (0..250).map(|_| entity(1, 'a')).collect(),
            limits(100, 1 << 20),
        );
        let sizes: Vec<_> = p.chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(p.too_large.is_empty());
    }

    #[test]
    fn byte_bound_is_exact() {
        // Each entity is 18 bytes; two plus a comma are 37.
        let p = plan((0..5).map(|_| entity(10, 'a')).collect(), limits(100, 37));
        assert_eq!(p.chunks.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        let p = plan((0..5).map(|_| entity(10, 'a')).collect(), limits(100, 36));
        assert_eq!(
            p.chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 1, 1, 1, 1]
        );
    }

    #[test]
    fn multibyte_text_counts_bytes_not_chars() {
        // 'ä' is two bytes: 10 of them make a 28-byte entity.
        let p = plan((0..4).map(|_| entity(10, 'ä')).collect(), limits(100, 57));
        assert_eq!(p.chunks.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
        for c in &p.chunks {
            assert!(chunk_bytes(c) <= 57);
        }
        let p = plan((0..4).map(|_| entity(10, 'ä')).collect(), limits(100, 56));
        assert_eq!(p.chunks.len(), 4);
    }

    #[test]
    fn too_large_is_set_aside_and_order_kept() {
        let entities = vec![entity(1, 'a'), entity(100, 'b'), entity(2, 'c')];
        let p = plan(entities, limits(10, 50));
        assert_eq!(p.too_large.len(), 1);
        assert!(p.too_large[0].get().contains('b'));
        assert_eq!(p.chunks.len(), 1);
        assert!(p.chunks[0][0].get().contains('a'));
        assert!(p.chunks[0][1].get().contains('c'));
    }

    #[test]
    fn limits_respect_max_payload() {
        let l = ChunkLimits::new(100, 900_000, 65_536, 512);
        assert_eq!(l.max_entity_bytes, 65_024);
    }

    #[test]
    fn random_batches_never_pass_bounds_and_lose_nothing() {
        let mut seed = 7u64;
        for _ in 0..200 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (seed >> 33) as usize % 300;
            let l = limits(
                1 + (seed >> 20) as usize % 40,
                64 + (seed >> 40) as usize % 2000,
            );
            let entities: Vec<_> = (0..n)
                .map(|i| entity((i * 37 + seed as usize) % 700, 'x'))
                .collect();
            let total = entities.len();
            let p = plan(entities, l);
            let mut count = p.too_large.len();
            for c in &p.chunks {
                assert!(!c.is_empty() && c.len() <= l.max_entities);
                assert!(chunk_bytes(c) <= l.max_entity_bytes);
                count += c.len();
            }
            assert_eq!(count, total);
        }
    }
}
