//! What a replay sends and how it settles the list afterwards, as pure
//! functions of the stored entries: the entries grouped by entity version
//! (a `reset` can leave a version listed twice), one entity per version in
//! ordinal order; then which entries leave and which stay.

use std::collections::{HashMap, HashSet};

use super::{LetterNote, NAMED_SKIPPED};
use crate::entity::Entity;
use crate::store::{DeadLetter, Settle, StoredLetter};

/// The entries of one entity version, oldest first, and its entity.
#[derive(Debug)]
pub(super) struct Version {
    /// `<identity>@<modificationOrdinal>`.
    pub version: String,
    /// Its entries; the first keeps the entity.
    pub entries: Vec<StoredLetter>,
    /// The entity to send.
    pub entity: Entity,
}

/// What a replay sends and what it leaves out.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// In ordinal order (versions without an ordinal first, in list order).
    pub versions: Vec<Version>,
    /// Letters not sent, the first [`NAMED_SKIPPED`] of them.
    pub not_replayable: Vec<LetterNote>,
    /// How many letters are not sent.
    pub not_replayable_total: usize,
}

impl Plan {
    /// Groups `entries` (oldest first) by entity version; a version is
    /// sent when one of its entries keeps the entity.
    pub(super) fn of(entries: Vec<StoredLetter>) -> Plan {
        let mut plan = Plan::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut without: Vec<(String, StoredLetter)> = Vec::new();
        for entry in entries {
            let version = entry.letter.version();
            if let Some(&i) = index.get(&version) {
                plan.versions[i].entries.push(entry);
                continue;
            }
            match entry.letter.entity.as_ref().map(|e| e.to_entity()) {
                Some(entity) => {
                    index.insert(version.clone(), plan.versions.len());
                    plan.versions.push(Version {
                        version,
                        entries: vec![entry],
                        entity,
                    });
                }
                None => without.push((version, entry)),
            }
        }
        // An entry without its entity is sent after all when another entry
        // of its version keeps it (and leaves with it).
        for (version, entry) in without {
            match index.get(&version) {
                Some(&i) => plan.versions[i].entries.push(entry),
                None => {
                    plan.not_replayable_total += 1;
                    if plan.not_replayable.len() < NAMED_SKIPPED {
                        let why = entry.letter.not_replayable();
                        plan.not_replayable.push(LetterNote::of(&entry.letter, why));
                    }
                }
            }
        }
        plan.versions
            .sort_by_key(|v| v.entries[0].letter.modification_ordinal);
        plan
    }

    /// What becomes of each entry once the replay completed, and the
    /// report's two lists: a version met again keeps its first entry (the
    /// one with the entity; a duplicate left by a `reset` goes), every
    /// other version leaves.
    pub(super) fn settle<'a>(
        &'a self,
        again: &[DeadLetter],
    ) -> (
        Vec<(&'a StoredLetter, Settle)>,
        Vec<LetterNote>,
        Vec<LetterNote>,
    ) {
        let mut remove = Vec::new();
        let (mut delivered, mut failed_again) = (Vec::new(), Vec::new());
        let met: HashSet<String> = again.iter().map(DeadLetter::version).collect();
        for v in &self.versions {
            if met.contains(&v.version) {
                let fresh = again.iter().find(|l| l.version() == v.version);
                let detail = fresh.map(|l| format!("{}: {}", l.reason, l.detail));
                failed_again.push(LetterNote::of(&v.entries[0].letter, detail));
                remove.push((&v.entries[0], Settle::Keep));
                let duplicates = v.entries[1..].iter();
                remove.extend(duplicates.map(|e| (e, Settle::RemoveDuplicate)));
            } else {
                delivered.push(LetterNote::of(&v.entries[0].letter, None));
                remove.extend(v.entries.iter().map(|e| (e, Settle::Remove)));
            }
        }
        (remove, delivered, failed_again)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EntityJson;

    /// A stored entry of `identity` at `ordinal`, keeping its entity or not.
    fn entry(identity: &str, ordinal: i64, kept: bool, time: &str) -> StoredLetter {
        let json =
            format!(r#"{{"id":"{identity}","metadata":{{"modificationOrdinal":{ordinal}}}}}"#);
        let letter = DeadLetter {
            service: "PERSON".into(),
            identity: Some(identity.into()),
            modification_ordinal: Some(ordinal),
            reason: "poison".into(),
            detail: "old failure".into(),
            time: time.into(),
            execution_hash: "h".into(),
            chunk_id: None,
            entity_bytes: Some(json.len() as u64),
            entity_omitted: None,
            entity: kept.then(|| EntityJson::new(&Entity::from_json(json)).unwrap()),
        };
        let raw = serde_json::to_string(&letter).unwrap();
        StoredLetter { raw, letter }
    }

    fn versions(plan: &Plan) -> Vec<&str> {
        plan.versions.iter().map(|v| v.version.as_str()).collect()
    }

    #[test]
    fn one_entity_per_version_in_ordinal_order_and_what_cannot_be_sent_is_named() {
        let plan = Plan::of(vec![
            entry("b", 30, true, "t1"),
            entry("a", 10, false, "t2"), // its version is kept below
            entry("c", 20, false, "t3"), // nothing to send it from
            entry("a", 10, true, "t4"),  // listed again after a reset
            entry("b", 30, true, "t5"),
            entry("a", 5, true, "t6"),
        ]);
        assert_eq!(versions(&plan), ["a@5", "a@10", "b@30"]);
        let a10 = &plan.versions[1];
        let times: Vec<&str> = a10.entries.iter().map(|e| e.letter.time.as_str()).collect();
        assert_eq!(times, ["t4", "t2"], "the entry keeping the entity first");
        assert_eq!(
            a10.entity.get(),
            a10.entries[0].letter.entity.as_ref().unwrap().get()
        );
        assert_eq!(plan.versions[2].entries.len(), 2);
        assert_eq!(plan.not_replayable_total, 1);
        assert_eq!(plan.not_replayable[0].identity.as_deref(), Some("c"));
        assert!(plan.not_replayable[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("no entity kept"));
    }

    #[test]
    fn delivered_versions_leave_and_those_met_again_stay_once() {
        let plan = Plan::of(vec![
            entry("a", 10, true, "t1"),
            entry("b", 20, true, "t2"),
            entry("b", 20, true, "t3"),
        ]);
        let mut again = plan.versions[1].entries[0].letter.clone();
        again.detail = "still failing".into();
        again.entity = None;
        let (remove, delivered, failed_again) = plan.settle(&[again]);
        let settled: Vec<(&str, Settle)> = remove
            .iter()
            .map(|(e, settle)| (e.letter.time.as_str(), *settle))
            .collect();
        assert_eq!(
            settled,
            [
                ("t1", Settle::Remove),
                ("t2", Settle::Keep),
                ("t3", Settle::RemoveDuplicate)
            ],
            "a leaves with its :SEEN member; b keeps its first entry and its member"
        );
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].identity.as_deref(), Some("a"));
        assert_eq!(failed_again.len(), 1);
        assert_eq!(
            failed_again[0].detail.as_deref(),
            Some("poison: still failing")
        );
        let (remove, delivered, failed_again) = plan.settle(&[]);
        assert_eq!(
            (remove.len(), delivered.len(), failed_again.len()),
            (3, 2, 0)
        );
        assert!(remove.iter().all(|(_, s)| *s == Settle::Remove));
    }

    #[test]
    fn at_most_a_hundred_letters_not_sent_are_named() {
        let plan = Plan::of((0..150).map(|i| entry("x", i, false, "t")).collect());
        assert_eq!(plan.not_replayable_total, 150);
        assert_eq!(plan.not_replayable.len(), NAMED_SKIPPED);
        assert!(plan.versions.is_empty());
    }
}
