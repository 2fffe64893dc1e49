//! The chunk message of SPEC §4 as the consumer sees it: decoded with its
//! top-level fields kept in order (the seed's FAIL echoes them), and its
//! entities judged: the fail field, identity, document state.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use sis_importer::catalogue::Service;

/// A chunk message (SPEC §4); entities stay raw JSON, forwarded as received.
pub(super) struct ChunkMessage<'a> {
    pub(super) execution_hash: String,
    pub(super) chunk_id: String,
    pub(super) entities: Vec<&'a RawValue>,
    /// Every top-level field as received, in order, the three above
    /// included: the seed's FAIL answer is this message echoed.
    pub(super) fields: Fields<'a>,
}

impl<'a> ChunkMessage<'a> {
    /// Decodes a chunk message body; other top-level fields are allowed and
    /// kept in `fields`.
    pub(super) fn decode(payload: &'a [u8]) -> Result<Self, serde_json::Error> {
        let fields: Fields<'a> = serde_json::from_slice(payload)?;
        let field = |name: &'static str| {
            fields
                .get(name)
                .ok_or_else(|| <serde_json::Error as de::Error>::missing_field(name))
        };
        let execution_hash = serde_json::from_str(field("executionHash")?.get())?;
        let chunk_id = serde_json::from_str(field("chunkId")?.get())?;
        let entities = serde_json::from_str(field("entities")?.get())?;
        Ok(ChunkMessage {
            execution_hash,
            chunk_id,
            entities,
            fields,
        })
    }

    /// The first entity whose `fail_field` is truthy, if any.
    pub(super) fn failing_entity(&self, fail_field: &str) -> Option<&'a RawValue> {
        self.entities
            .iter()
            .copied()
            .find(|entity| is_truthy(entity, fail_field))
    }
}

/// The top-level fields of a JSON object in their order, values raw.
pub(super) struct Fields<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The (last) value of field `name`.
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(Key(key)) = map.next_key()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// An object key, borrowed from the input unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Field `name` of an entity that is a JSON object, if it has one.
fn field<'a>(entity: &'a RawValue, name: &str) -> Option<&'a RawValue> {
    // Only objects: serde would read a JSON array into a struct by position.
    if !is_object(entity) {
        return None;
    }
    serde_json::from_str::<Fields<'a>>(entity.get())
        .ok()?
        .get(name)
}

/// True when the entity is an object whose field `name` is truthy in the
/// JavaScript sense (importer-mankeli's `if (entity.testError)`).
pub(super) fn is_truthy(entity: &RawValue, name: &str) -> bool {
    use serde_json::Value;
    match field(entity, name).and_then(|raw| serde_json::from_str(raw.get()).ok()) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// The entity's `documentState` when it is a string.
pub(super) fn document_state(entity: &RawValue) -> Option<String> {
    serde_json::from_str(field(entity, "documentState")?.get()).ok()
}

fn is_object(entity: &RawValue) -> bool {
    entity.get().trim_start().starts_with('{')
}

/// The service's identity of an entity, else its `id`, else its raw JSON.
pub(super) fn identity(service: &Service, entity: &RawValue) -> String {
    service
        .identity_of(entity.get())
        .or_else(|| {
            let id: serde_json::Value = serde_json::from_str(field(entity, "id")?.get()).ok()?;
            Some(match id {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => return None,
                other => other.to_string(),
            })
        })
        .unwrap_or_else(|| entity.get().to_owned())
}
