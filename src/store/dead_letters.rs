//! Dead letters (SPEC §6): a list per service, each entity version once.

use std::sync::LazyLock;

use redis::{Cmd, Script};

use super::keys::{dead_letter_key, dead_letter_seen_key};
use super::{DeadLetter, OrdinalStore, StoreError};

static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/dead_letter.lua")));

impl OrdinalStore {
    /// Records a dead letter once: the same entity version (identity and
    /// ordinal) found again by a retried attempt is not listed twice.
    /// Returns whether it was new.
    pub(crate) async fn dead_letter(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let body = serde_json::to_string(letter).expect("dead letter serializes");
        let mut call = DEAD_LETTER.key(dead_letter_key(&letter.service));
        call.key(dead_letter_seen_key(&letter.service))
            .arg(letter.version())
            .arg(body);
        let added: i64 = self.query("record dead letter", &call).await?;
        Ok(added == 1)
    }

    /// Number of dead letters of a service.
    pub async fn dead_letter_count(&self, service: &str) -> Result<u64, StoreError> {
        let count = Cmd::llen(dead_letter_key(service));
        self.query("count dead letters", &count).await
    }

    /// The newest `limit` dead letters of a service, oldest first (entries
    /// that are not a dead letter's JSON are left out).
    pub async fn dead_letters(
        &self,
        service: &str,
        limit: isize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let read = Cmd::lrange(dead_letter_key(service), -limit, -1);
        let raw: Vec<String> = self.query("read dead letters", &read).await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }
}
