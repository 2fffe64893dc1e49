//! The records the store keeps: dead letters, attempt records, run records,
//! and what `status` reads back about a service.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::entity::Entity;

/// A poison or too-large entity, kept for the operator (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Service id.
    pub service: String,
    /// Identity (`id`, or the composite identity of SISU-SHAPES.md).
    pub identity: Option<String>,
    /// `metadata.modificationOrdinal`, where present.
    pub modification_ordinal: Option<i64>,
    /// `poison` or `too_large`.
    pub reason: String,
    /// What the consumer said, or the sizes involved.
    pub detail: String,
    /// When, RFC 3339.
    pub time: String,
    /// The attempt that dead-lettered it.
    pub execution_hash: String,
    /// The chunk it was in (poison) or would have been in.
    pub chunk_id: Option<String>,
    /// The entity's size in bytes, kept or not (`None` in letters written
    /// before entities were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_bytes: Option<u64>,
    /// Why the entity is not kept (the service's entity bytes were used
    /// up, see `dead_letter_entity_bytes`), when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_omitted: Option<String>,
    /// The entity exactly as Sisu sent it, so that `dead-letters replay`
    /// can send it again; last, so the letter's own fields come first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityJson>,
}

/// An entity's JSON text inside a dead letter: written into the letter's
/// JSON as the value it is (not as a string) and read back byte for byte.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityJson(Box<RawValue>);

impl EntityJson {
    /// The entity's JSON, if it is the text of one JSON value (an entity
    /// sliced out of a Sisu page always is).
    pub fn new(entity: &Entity) -> Option<EntityJson> {
        let text = std::str::from_utf8(entity.as_bytes()).ok()?;
        RawValue::from_string(text.to_owned()).ok().map(EntityJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    /// Whether it is empty (never, for a JSON value).
    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }

    /// The entity, to be sent again.
    pub fn to_entity(&self) -> Entity {
        Entity::from_json(self.0.get().to_owned())
    }
}

impl PartialEq for EntityJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for EntityJson {
    // Entities hold personal data: debug output shows their size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntityJson({} bytes)", self.len())
    }
}

impl DeadLetter {
    /// The entity version, `<identity>@<modificationOrdinal>` (`?` for
    /// either when unknown): the same version is listed once.
    pub(crate) fn version(&self) -> String {
        format!(
            "{}@{}",
            self.identity.as_deref().unwrap_or("?"),
            self.modification_ordinal
                .map_or("?".into(), |o| o.to_string())
        )
    }

    /// Why `dead-letters replay` cannot send this letter's entity again,
    /// or `None` when its entity is kept.
    pub fn not_replayable(&self) -> Option<String> {
        match (&self.entity, &self.entity_omitted) {
            (Some(_), _) => None,
            (None, Some(why)) => Some(why.clone()),
            (None, None) => {
                Some("no entity kept: recorded before dead letters kept their entities".to_owned())
            }
        }
    }
}

/// The latest attempt at a service, written before its first publish, so
/// that the attempt a crash or shutdown interrupts can be resumed under the
/// same execution hash and epoch (the same chunk ids). Kept as a Redis hash
/// under `SIS_IMPORTER:ATTEMPT:<service>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Goes up by one with every new execution hash of the service.
    pub epoch: u64,
    /// The attempt's execution hash.
    pub execution_hash: String,
    /// The committed ordinal it started from.
    pub since: i64,
    /// Stream sequence of the last feedback message stored when it started
    /// (its feedback comes after); `None` when the stream does not capture
    /// feedback (nothing to recover from).
    pub feedback_after: Option<u64>,
    /// False once it completed or was abandoned after a panic timeout:
    /// nothing to resume.
    pub open: bool,
}

impl AttemptRecord {
    /// The hash fields it is stored as (`feedback_after` empty for `None`,
    /// `open` `1` or `0`).
    pub(crate) fn to_fields(&self) -> [(&'static str, String); 5] {
        [
            ("epoch", self.epoch.to_string()),
            ("execution_hash", self.execution_hash.clone()),
            ("since", self.since.to_string()),
            (
                "feedback_after",
                self.feedback_after.map_or(String::new(), |n| n.to_string()),
            ),
            ("open", u8::from(self.open).to_string()),
        ]
    }

    /// Reads the hash fields back; `None` when any is missing or garbled.
    pub(crate) fn from_fields(fields: &BTreeMap<String, String>) -> Option<AttemptRecord> {
        let get = |name: &str| fields.get(name).map(String::as_str);
        Some(AttemptRecord {
            epoch: get("epoch")?.parse().ok()?,
            execution_hash: get("execution_hash")?.to_owned(),
            since: get("since")?.parse().ok()?,
            feedback_after: get("feedback_after")?.parse().ok(),
            open: get("open")? == "1",
        })
    }
}

/// The last run of one service, as `status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Start, RFC 3339.
    pub started: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// `ok`, `failed`, `forbidden`, `interrupted` or `skipped`.
    pub result: String,
    /// The error, if any (never a secret).
    pub error: Option<String>,
    /// Entities committed in that run.
    pub entities: u64,
}

/// What Redis holds about one service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceState {
    /// Committed ordinal.
    pub ordinal: Option<i64>,
    /// `_SCHEDULED`.
    pub scheduled: i64,
    /// `_UPDATED`.
    pub updated: i64,
    /// Last run record.
    pub last_run: Option<RunRecord>,
    /// Number of dead letters.
    pub dead_letters: u64,
    /// How its consumers were last seen to answer (`precise`, `seed`).
    pub feedback_form: Option<String>,
    /// When it last finished a run (RFC 3339).
    pub last_success: Option<String>,
}

/// A stored ordinal: one another program wrote that is not a number counts
/// as 0 (import from the start) rather than stopping the importer.
pub(crate) fn parse_ordinal(raw: &str) -> i64 {
    raw.trim().parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_attempt_record_round_trips_through_its_hash_fields() {
        for feedback_after in [Some(41), None] {
            let record = AttemptRecord {
                epoch: 3,
                execution_hash: "abc".into(),
                since: -1,
                feedback_after,
                open: true,
            };
            let fields = record
                .to_fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            assert_eq!(AttemptRecord::from_fields(&fields), Some(record));
        }
        assert_eq!(AttemptRecord::from_fields(&BTreeMap::new()), None);
    }

    #[test]
    fn store_dead_letter_version_and_ordinal_parsing() {
        let mut letter = DeadLetter {
            service: "PERSON".into(),
            identity: Some("hy-hlo-1".into()),
            modification_ordinal: Some(42),
            reason: "poison".into(),
            detail: String::new(),
            time: String::new(),
            execution_hash: String::new(),
            chunk_id: None,
            entity_bytes: None,
            entity_omitted: None,
            entity: None,
        };
        assert_eq!(letter.version(), "hy-hlo-1@42");
        letter.identity = None;
        letter.modification_ordinal = None;
        assert_eq!(letter.version(), "?@?");
        assert_eq!(parse_ordinal(" 17\n"), 17);
        assert_eq!(parse_ordinal("junk"), 0);
    }

    #[test]
    fn store_dead_letter_keeps_its_entity_byte_for_byte_and_reads_old_letters() {
        let raw = r#"{ "id":"hy-1","big":123456789012345678901234567890,"s":"\u00e4ä \"q\"" }"#;
        let entity = EntityJson::new(&Entity::from_json(raw.into())).unwrap();
        assert_eq!(
            format!("{entity:?}"),
            format!("EntityJson({} bytes)", raw.len())
        );
        let letter = DeadLetter {
            service: "PERSON".into(),
            identity: Some("hy-1".into()),
            modification_ordinal: Some(4),
            reason: "poison".into(),
            detail: "x".into(),
            time: "t".into(),
            execution_hash: "h".into(),
            chunk_id: None,
            entity_bytes: Some(raw.len() as u64),
            entity_omitted: None,
            entity: Some(entity),
        };
        let json = serde_json::to_string(&letter).unwrap();
        assert!(
            json.ends_with(&format!(r#""entityBytes":{},"entity":{raw}}}"#, raw.len())),
            "inline, as it came, last: {json}"
        );
        let back: DeadLetter = serde_json::from_str(&json).unwrap();
        assert_eq!(back, letter);
        let sent = back.entity.as_ref().unwrap().to_entity();
        assert_eq!(sent.as_bytes(), raw.as_bytes());
        assert_eq!(back.not_replayable(), None);
        assert_eq!(EntityJson::new(&Entity::from_json("{\"id\":".into())), None);

        let old = r#"{"service":"PERSON","identity":"hy-1","modificationOrdinal":4,"reason":"poison","detail":"x","time":"t","executionHash":"h","chunkId":null}"#;
        let old: DeadLetter = serde_json::from_str(old).unwrap();
        assert_eq!(old.entity, None);
        assert!(old
            .not_replayable()
            .unwrap()
            .contains("before dead letters kept"));
        let omitted = DeadLetter {
            entity: None,
            entity_omitted: Some("over the bound".into()),
            ..letter
        };
        assert_eq!(omitted.not_replayable().as_deref(), Some("over the bound"));
    }
}
