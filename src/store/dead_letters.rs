//! Dead letters (SPEC §6): a list per service, each entity version once,
//! each with its entity while the service's bound allows.
//!
//! - `SIS_IMPORTER:DEAD_LETTERS:<service>`: the list, one JSON object per
//!   entry, oldest first ([`DeadLetter`]).
//! - `…:SEEN`: the entity versions (`<identity>@<modificationOrdinal>`)
//!   listed, so a retried attempt that meets the same version again does
//!   not list it twice.
//! - `…:BYTES`: the bytes of entity JSON the list keeps. An entity is kept
//!   only while this stays within the bound the caller gives
//!   (`dead_letter_entity_bytes`, 16 MiB by default); past it the letter is
//!   listed without its entity and says why (`entityOmitted`), so memory in
//!   Redis stays bounded however many entities fail.
//!
//! Entries are removed only by [`OrdinalStore::settle_dead_letters`] (a
//! delivered replay, `clear --id`) and [`OrdinalStore::clear_dead_letters`]
//! (`clear`), which keep the three keys consistent.

use std::sync::LazyLock;

use redis::{Cmd, Script};

use super::keys::{dead_letter_bytes_key, dead_letter_key, dead_letter_seen_key};
use super::{DeadLetter, OrdinalStore, StoreError};

static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/dead_letter.lua")));
static SETTLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/settle_dead_letters.lua")));

/// Entries read from Redis at a time when a whole list is scanned.
const PAGE: isize = 100;

/// Entries settled by one script call: a call blocks Redis while it scans
/// the list, so long settlements go in several.
const SETTLE_PER_CALL: usize = 100;

/// What recording a dead letter did (the pipeline's word for it).
pub use crate::pipeline::vocabulary::Recorded;

/// What [`OrdinalStore::settle_dead_letters`] does with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Out, with its `:SEEN` member (its version is no longer listed).
    Remove,
    /// Out, leaving the `:SEEN` member to another entry of its version.
    RemoveDuplicate,
    /// Stays, and its version is marked seen (if the entry is still there).
    Keep,
}

impl Settle {
    fn as_str(self) -> &'static str {
        match self {
            Settle::Remove => "remove",
            Settle::RemoveDuplicate => "duplicate",
            Settle::Keep => "keep",
        }
    }
}

/// One entry of a dead-letter list as stored: its exact JSON (what removes
/// it) and the letter read from it.
#[derive(Clone)]
pub struct StoredLetter {
    /// The entry's JSON, exactly as in the list.
    pub raw: String,
    /// The letter.
    pub letter: DeadLetter,
}

impl std::fmt::Debug for StoredLetter {
    // The raw JSON holds the entity (personal data): show the letter, whose
    // own debug output gives the entity's size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredLetter")
            .field("letter", &self.letter)
            .finish_non_exhaustive()
    }
}

impl StoredLetter {
    /// The bytes of entity JSON this entry keeps (counted in `:BYTES`).
    pub fn entity_bytes(&self) -> u64 {
        self.letter.entity.as_ref().map_or(0, |e| e.len() as u64)
    }
}

impl OrdinalStore {
    /// Records a dead letter once: the same entity version (identity and
    /// ordinal) found again by a retried attempt is not listed twice. Its
    /// entity is kept while the service's list keeps at most
    /// `entity_budget` bytes of entities with it; else the letter is listed
    /// without it, saying why.
    pub(crate) async fn dead_letter(
        &self,
        letter: &DeadLetter,
        entity_budget: u64,
    ) -> Result<Recorded, StoreError> {
        let size = letter.entity.as_ref().map_or(0, |e| e.len() as u64);
        let with_entity = match &letter.entity {
            Some(_) if size <= entity_budget => {
                serde_json::to_string(letter).expect("dead letter serializes")
            }
            _ => String::new(),
        };
        let bare = DeadLetter {
            entity: None,
            entity_omitted: letter.entity_omitted.clone().or_else(|| {
                Some(format!(
                    "entity not kept: {}'s dead letters keep at most {entity_budget} bytes of \
                     entities (dead_letter_entity_bytes), and this one ({size} bytes) did not fit",
                    letter.service
                ))
            }),
            ..letter.clone()
        };
        let bare = serde_json::to_string(&bare).expect("dead letter serializes");
        let mut call = DEAD_LETTER.key(dead_letter_key(&letter.service));
        call.key(dead_letter_seen_key(&letter.service))
            .key(dead_letter_bytes_key(&letter.service))
            .arg(letter.version())
            .arg(with_entity)
            .arg(bare)
            .arg(size)
            .arg(entity_budget);
        let code: i64 = self.query("record dead letter", &call).await?;
        Ok(Recorded {
            new: code != 0,
            entity_kept: code == 1,
        })
    }

    /// Number of dead letters of a service.
    pub async fn dead_letter_count(&self, service: &str) -> Result<u64, StoreError> {
        let count = Cmd::llen(dead_letter_key(service));
        self.query("count dead letters", &count).await
    }

    /// Bytes of entity JSON kept with a service's dead letters.
    pub async fn dead_letter_entity_bytes(&self, service: &str) -> Result<u64, StoreError> {
        let read = Cmd::get(dead_letter_bytes_key(service));
        let bytes: Option<i64> = self.query("read dead-letter bytes", &read).await?;
        Ok(bytes.unwrap_or(0).max(0) as u64)
    }

    /// The newest `limit` dead letters of a service, oldest first (entries
    /// that are not a dead letter's JSON are left out).
    pub async fn dead_letters(
        &self,
        service: &str,
        limit: isize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let read = Cmd::lrange(dead_letter_key(service), -limit, -1);
        let raw: Vec<String> = self.query("read dead letters", &read).await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    /// Every dead letter of `service` that `keep` wants, oldest first, with
    /// its exact JSON. The list is read `PAGE` entries at a time, so only
    /// the kept ones stay in memory.
    pub async fn scan_dead_letters(
        &self,
        service: &str,
        mut keep: impl FnMut(&DeadLetter) -> bool,
    ) -> Result<Vec<StoredLetter>, StoreError> {
        let key = dead_letter_key(service);
        let mut kept = Vec::new();
        let mut start = 0;
        loop {
            let read = Cmd::lrange(&key, start, start + PAGE - 1);
            let page: Vec<String> = self.query("read dead letters", &read).await?;
            let full = page.len() as isize == PAGE;
            for raw in page {
                if let Ok(letter) = serde_json::from_str::<DeadLetter>(&raw) {
                    if keep(&letter) {
                        kept.push(StoredLetter { raw, letter });
                    }
                }
            }
            if !full {
                return Ok(kept);
            }
            start += PAGE;
        }
    }

    /// Some identities `service` has dead letters of, for a message about
    /// one it has not: `; it has: a, b, c` (at most five named), or
    /// `; it has none`.
    pub async fn dead_letter_identities(&self, service: &str) -> Result<String, StoreError> {
        let mut known: Vec<String> = Vec::new();
        let mut more = false;
        self.scan_dead_letters(service, |l| {
            match &l.identity {
                Some(i) if known.contains(i) => {}
                Some(_) if known.len() == 5 => more = true,
                Some(i) => known.push(i.clone()),
                None => {}
            }
            false
        })
        .await?;
        Ok(match (known.is_empty(), more) {
            (true, _) => "; it has none".to_owned(),
            (false, false) => format!("; it has: {}", known.join(", ")),
            (false, true) => format!("; it has: {}, …", known.join(", ")),
        })
    }

    /// Removes or keeps `entries` of `service`'s list as each says (see
    /// [`Settle`]), the `:SEEN` set and the byte counter kept in step.
    /// Returns how many were still there to remove.
    pub async fn settle_dead_letters(
        &self,
        service: &str,
        entries: &[(&StoredLetter, Settle)],
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for part in entries.chunks(SETTLE_PER_CALL) {
            let mut call = SETTLE.key(dead_letter_key(service));
            call.key(dead_letter_seen_key(service))
                .key(dead_letter_bytes_key(service));
            for (entry, settle) in part {
                call.arg(settle.as_str())
                    .arg(&entry.raw)
                    .arg(entry.letter.version())
                    .arg(entry.entity_bytes());
            }
            let n: u64 = self.query("settle dead letters", &call).await?;
            removed += n;
        }
        Ok(removed)
    }

    /// Removes every dead letter of `service` with its `:SEEN` set and
    /// byte counter; returns how many there were.
    pub async fn clear_dead_letters(&self, service: &str) -> Result<u64, StoreError> {
        let list = dead_letter_key(service);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .llen(&list)
            .del(&[
                list.clone(),
                dead_letter_seen_key(service),
                dead_letter_bytes_key(service),
            ])
            .ignore();
        let (count,): (u64,) = self.query("clear dead letters", &pipe).await?;
        Ok(count)
    }
}
