//! Every Redis key the importer reads or writes, in one place. Key names
//! are a wire contract (SPEC §5, docs/wire-contract.md "Redis keys"): other programs read
//! them, so no key's text may change.
//!
//! - The committed ordinal of a service lives under its ordinal key
//!   ([`Service::ordinal_key`](crate::catalogue::Service::ordinal_key),
//!   fixed per service by the catalogue of SPEC §3, e.g.
//!   `LATEST_PERSON_ORDINAL`); its window counters are
//!   `scheduled_key` and `updated_key` of it.
//! - `EXECUTION_HASH` and a URN answer's URL (`urn_cache_key`) are
//!   SPEC names without a prefix.
//! - Every key the project adds starts with `PREFIX`, `SIS_IMPORTER:`.

/// Prefix of every key this project adds (SPEC §5).
const PREFIX: &str = "SIS_IMPORTER:";

/// The current attempt's execution hash; also the Redis channel it is
/// PUBLISHed on.
pub(crate) const EXECUTION_HASH: &str = "CURRENT_EXECUTION_HASH";

/// Set of services Sisu answered 403 for in the running process.
pub(crate) const FORBIDDEN: &str = "SIS_IMPORTER:FORBIDDEN";

/// Hash: per service id, the form its consumers answer in (`precise` or
/// `seed`), as last seen.
pub(crate) const FEEDBACK_FORM: &str = "SIS_IMPORTER:FEEDBACK_FORM";

/// Hash: per service id, when it last finished a run (RFC 3339).
pub(crate) const LAST_SUCCESS: &str = "SIS_IMPORTER:LAST_SUCCESS";

/// Hash with the last whole run's summary.
pub(crate) const LAST_RUN: &str = "SIS_IMPORTER:LAST_RUN";

/// `<ordinal key>_SCHEDULED`: entities published and not yet committed.
pub(crate) fn scheduled_key(ordinal_key: &str) -> String {
    format!("{ordinal_key}_SCHEDULED")
}

/// `<ordinal key>_UPDATED`: of those, the ones acknowledged.
pub(crate) fn updated_key(ordinal_key: &str) -> String {
    format!("{ordinal_key}_UPDATED")
}

/// A cached URN code-book answer is kept under its URL (SPEC §5).
pub(crate) fn urn_cache_key(url: &str) -> String {
    url.to_owned()
}

/// The import lease (see [`crate::lease`]).
pub fn lease_key() -> String {
    format!("{PREFIX}LOCK")
}

/// A service's dead-letter list.
pub(crate) fn dead_letter_key(service: &str) -> String {
    format!("{PREFIX}DEAD_LETTERS:{service}")
}

/// The set of entity versions already in a service's dead-letter list.
pub(crate) fn dead_letter_seen_key(service: &str) -> String {
    format!("{}:SEEN", dead_letter_key(service))
}

/// Bytes of entity JSON a service's dead-letter list keeps (its bound is
/// `dead_letter_entity_bytes`).
pub(crate) fn dead_letter_bytes_key(service: &str) -> String {
    format!("{}:BYTES", dead_letter_key(service))
}

/// A service's attempt record (crash recovery).
pub(crate) fn attempt_key(service: &str) -> String {
    format!("{PREFIX}ATTEMPT:{service}")
}

/// A service's last-run record.
pub(crate) fn status_key(service: &str) -> String {
    format!("{PREFIX}STATUS:{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key texts of SPEC §5 and docs/wire-contract.md, spelled out: a change here
    /// breaks the programs that read them.
    #[test]
    fn store_key_names_are_the_wire_contract() {
        assert_eq!(EXECUTION_HASH, "CURRENT_EXECUTION_HASH");
        assert_eq!(FORBIDDEN, format!("{PREFIX}FORBIDDEN"));
        assert_eq!(FORBIDDEN, "SIS_IMPORTER:FORBIDDEN");
        assert_eq!(FEEDBACK_FORM, "SIS_IMPORTER:FEEDBACK_FORM");
        assert_eq!(LAST_SUCCESS, "SIS_IMPORTER:LAST_SUCCESS");
        assert_eq!(LAST_RUN, format!("{PREFIX}LAST_RUN"));
        assert_eq!(LAST_RUN, "SIS_IMPORTER:LAST_RUN");
        assert_eq!(lease_key(), "SIS_IMPORTER:LOCK");
        assert_eq!(
            dead_letter_key("ATTAINMENT"),
            "SIS_IMPORTER:DEAD_LETTERS:ATTAINMENT"
        );
        assert_eq!(
            dead_letter_seen_key("ATTAINMENT"),
            "SIS_IMPORTER:DEAD_LETTERS:ATTAINMENT:SEEN"
        );
        assert_eq!(
            dead_letter_bytes_key("ATTAINMENT"),
            "SIS_IMPORTER:DEAD_LETTERS:ATTAINMENT:BYTES"
        );
        assert_eq!(attempt_key("PERSON"), "SIS_IMPORTER:ATTEMPT:PERSON");
        assert_eq!(status_key("PERSON"), "SIS_IMPORTER:STATUS:PERSON");
        assert_eq!(
            scheduled_key("LATEST_PERSON_ORDINAL"),
            "LATEST_PERSON_ORDINAL_SCHEDULED"
        );
        assert_eq!(
            updated_key("LATEST_PERSON_ORDINAL"),
            "LATEST_PERSON_ORDINAL_UPDATED"
        );
        let url = "https://sisu.example/kori/api/cached/codebooks/urn:code:country";
        assert_eq!(urn_cache_key(url), url);
    }
}
