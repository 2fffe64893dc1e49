//! The records the store keeps: dead letters, attempt records, run records,
//! and what `status` reads back about a service.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
        };
        assert_eq!(letter.version(), "hy-hlo-1@42");
        letter.identity = None;
        letter.modification_ordinal = None;
        assert_eq!(letter.version(), "?@?");
        assert_eq!(parse_ordinal(" 17\n"), 17);
        assert_eq!(parse_ordinal("junk"), 0);
    }
}
