//! [`Entity`]: one entity's JSON text exactly as Sisu sent it, as a slice
//! of the page body it came in (a reference-counted view, not a copy).
//! A chunk is a list of such slices; splitting a failed chunk slices the
//! list again, and only the chunk envelope copies the bytes, once.

use bytes::Bytes;

/// See the module doc. Always the text of one JSON value (it was parsed
/// as one before it was sliced out).
#[derive(Clone)]
pub struct Entity(Bytes, Option<Option<u64>>);

/// Entities are equal when their JSON text is: the order key is only a
/// finding about that text.
impl PartialEq for Entity {
    fn eq(&self, other: &Entity) -> bool {
        self.0 == other.0
    }
}

impl Eq for Entity {}

impl Entity {
    /// The entity at `range` of `body` (a range found by scanning it as
    /// JSON): a slice of `body`, no bytes copied.
    pub fn at(body: &Bytes, range: std::ops::Range<usize>) -> Entity {
        Entity(body.slice(range), None)
    }

    /// The same entity with its order key (the order barrier's hash of its
    /// identity fields, `None` for an entity without identity) already
    /// found, by a source that scanned its fields anyway.
    pub fn with_order_key(self, key: Option<u64>) -> Entity {
        Entity(self.0, Some(key))
    }

    /// The order key its source found, if one did.
    pub fn order_key(&self) -> Option<Option<u64>> {
        self.1
    }

    /// An entity made by the importer itself (URN code-book items) or a
    /// test; `json` must be the text of one JSON value.
    pub fn from_json(json: String) -> Entity {
        Entity(Bytes::from(json), None)
    }

    /// The JSON text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text (checked as UTF-8: for the rare paths that parse an
    /// entity, such as dead letters; the hot path uses `as_bytes`).
    pub fn get(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for a parsed JSON value).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entity({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entity_is_a_view_of_its_page() {
        let body = Bytes::from_static(br#"{"entities":[{"id":"a"},{"id":"b"}]}"#);
        let e = Entity::at(&body, 24..34);
        assert_eq!(e.get(), r#"{"id":"b"}"#);
        assert_eq!(e.as_bytes().as_ptr(), body[24..].as_ptr(), "no copy");
    }
}
