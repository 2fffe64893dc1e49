//! The identity of an entity as the order barrier sees it: a 64-bit key
//! hashed from the identity fields' JSON text, found by a scan of the
//! entity's top-level fields (no parse: two map operations per entity are
//! the barrier's whole cost).

use std::hash::{BuildHasher, Hash, Hasher};

use super::order::IdentityKey;
use crate::catalogue::IdentityKind;

/// The order key of an entity of a service whose identity is `kind`, or
/// `None` when it has no identity (not an object, or a field missing):
/// such an entity is ordered with nothing, since nothing can tell which
/// entity it is a version of (consumers cannot upsert it either).
pub(crate) fn identity_key(kind: IdentityKind, entity: &[u8]) -> Option<IdentityKey> {
    let names = identity_names(kind);
    let mut found = [None; 3];
    top_level_fields(entity, names, &mut found[..names.len()])?;
    key_of(kind, &found[..names.len()])
}

/// The top-level fields whose JSON text makes the identity of `kind`, in
/// the order they are hashed.
pub(crate) fn identity_names(kind: IdentityKind) -> &'static [&'static str] {
    const ID: &[&str] = &["id"];
    const STUDY_RIGHT_STUDENT: &[&str] = &["studyRightId", "studentId"];
    const WITH_START: &[&str] = &["studyRightId", "studentId", "startDate"];
    match kind {
        IdentityKind::Id => ID,
        IdentityKind::StudyRightStudent => STUDY_RIGHT_STUDENT,
        // As in dead letters, a missing start date is part of the key.
        IdentityKind::StudyRightStudentStart => WITH_START,
    }
}

/// The order key of an entity of `kind` whose fields
/// [`identity_names`]`(kind)` have the JSON texts `found` (`None`: absent),
/// or `None` when a required one is absent or `null`. A source that
/// scans the entity anyway (the page scan) hands its finding over with
/// [`crate::entity::Entity::with_order_key`], so the barrier does not scan
/// it again.
pub(crate) fn key_of(kind: IdentityKind, found: &[Option<&[u8]>]) -> Option<IdentityKey> {
    let required = match kind {
        IdentityKind::Id => 1,
        IdentityKind::StudyRightStudent | IdentityKind::StudyRightStudentStart => 2,
    };
    // Fixed seed: the same identity has the same key in every attempt.
    let mut hasher = foldhash::fast::FixedState::with_seed(0).build_hasher();
    for (i, value) in found.iter().enumerate() {
        match value {
            Some(v) if *v != b"null" => v.hash(&mut hasher),
            _ if i < required => return None,
            _ => 0u8.hash(&mut hasher),
        }
    }
    Some(hasher.finish())
}

/// The order key of `entity`: the one its source found, or scanned for now.
pub(crate) fn order_key(kind: IdentityKind, entity: &crate::entity::Entity) -> Option<IdentityKey> {
    match entity.order_key() {
        Some(found) => found,
        None => identity_key(kind, entity.as_bytes()),
    }
}

/// The raw JSON text of the top-level fields `names` of the object `json`
/// (`out[i]` for `names[i]`), read without parsing the rest: the scan
/// stops as soon as every name is found, and nested values are skipped by
/// counting brackets. Identity fields come first in Sisu's entities, so
/// this usually reads a few dozen bytes. `None` when `json` is not an
/// object (it is valid JSON: Sisu's answer was parsed already).
fn top_level_fields<'a>(
    bytes: &'a [u8],
    names: &[&str],
    out: &mut [Option<&'a [u8]>],
) -> Option<()> {
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut missing = names.len();
    loop {
        i = skip_ws(bytes, i);
        match bytes.get(i)? {
            b'}' => return Some(()),
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(bytes, i)?;
        let key = &bytes[i + 1..key_end - 1];
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(bytes, i + 1);
        let end = value_end(bytes, start)?;
        if let Some(slot) = names.iter().position(|n| n.as_bytes() == key) {
            if out[slot].is_none() {
                out[slot] = Some(&bytes[start..end]);
                missing -= 1;
                if missing == 0 {
                    return Some(());
                }
            }
        }
        i = end;
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The index just past the string starting at `i` (a `"`): the next quote
/// or backslash is found with memchr (SIMD), not byte by byte.
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        i = at + 2;
    }
}

/// The index just past the value starting at `i`. An object's end is
/// found by counting its braces alone and an array's by its brackets
/// alone (whatever is nested of the other kind is balanced), skipping
/// strings: three bytes to look for, so memchr3 does the walking.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    let (open, close) = match bytes.get(i)? {
        b'"' => return string_end(bytes, i),
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        _ => {
            let mut j = i;
            while !matches!(
                bytes.get(j),
                None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            ) {
                j += 1;
            }
            return Some(j);
        }
    };
    let mut depth = 0usize;
    let mut j = i;
    loop {
        j += memchr::memchr3(b'"', open, close, bytes.get(j..)?)?;
        match bytes[j] {
            b'"' => {
                j = string_end(bytes, j)?;
                continue;
            }
            b if b == open => depth += 1,
            _ => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
        }
        j += 1;
    }
}

/// The distinct keys of `entities`, sorted (a set: the barrier's queues
/// do not depend on the order). Sorting costs n log n where looking each
/// key up in the keys before it cost n² for a chunk of hundreds.
pub(crate) fn distinct_keys(
    keys: impl IntoIterator<Item = Option<IdentityKey>>,
) -> Vec<IdentityKey> {
    let mut out: Vec<IdentityKey> = keys.into_iter().flatten().collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &[u8] {
        s.as_bytes()
    }

    #[test]
    fn keys_follow_the_identity_rules() {
        let id = |s| identity_key(IdentityKind::Id, raw(s));
        assert_eq!(id(r#"{"id":"a","x":1}"#), id(r#"{"x":2,"id":"a"}"#));
        assert_ne!(id(r#"{"id":"a"}"#), id(r#"{"id":"b"}"#));
        assert_eq!(id(r#"{"x":1}"#), None);
        assert_eq!(id(r#"{"id":null}"#), None);
        assert_eq!(id("[1]"), None);
        let tr = |s| identity_key(IdentityKind::StudyRightStudent, raw(s));
        assert_eq!(
            tr(r#"{"studyRightId":"r","studentId":"s","t":1}"#),
            tr(r#"{"studentId":"s","studyRightId":"r"}"#)
        );
        assert_ne!(
            tr(r#"{"studyRightId":"r","studentId":"s"}"#),
            tr(r#"{"studyRightId":"r","studentId":"t"}"#)
        );
        assert_eq!(tr(r#"{"studyRightId":"r"}"#), None);
        let pr = |s| identity_key(IdentityKind::StudyRightStudentStart, raw(s));
        assert_ne!(
            pr(r#"{"studyRightId":"r","studentId":"s","startDate":"2020-01-01"}"#),
            pr(r#"{"studyRightId":"r","studentId":"s","startDate":"2021-01-01"}"#)
        );
        assert!(distinct_keys([Some(2), None, Some(1), Some(2)]) == [1, 2]);
    }

    #[test]
    fn the_scanner_finds_what_a_parser_finds() {
        let texts = [
            r#"{"a":{"id":"nested"},"b":[1,{"id":2}],"s":"x\"id\":3","id":"top"}"#,
            r#" { "x" : [ ] , "id" : 12 , "y" : {"z":"}"} } "#,
            r#"{"studentId":"s","n":-1.5e3,"t":true,"studyRightId":{"k":[1,2]}}"#,
            r#"{"startDate":null,"studyRightId":"r","studentId":"s"}"#,
            r#"{"esc\u0041":"a","id":"\u00e4\\"}"#,
            r#"{"m":{"a":[{"b":"]}"},"}"],"c":{}},"l":[[],{"x":"[\""}],"id":"after"}"#,
            r#"{"m":[1,[2,{"n":[3]}],"]"],"studentId":"s","studyRightId":"r"}"#,
            r#"{}"#,
            r#"[{"id":1}]"#,
            r#""id""#,
        ];
        for text in texts {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let names = ["id", "studyRightId", "studentId", "startDate"];
            let mut found = [None; 4];
            let scanned = top_level_fields(text.as_bytes(), &names, &mut found);
            assert_eq!(scanned.is_some(), value.is_object(), "{text}");
            for (name, raw) in names.iter().zip(found) {
                let parsed = raw.map(|r| serde_json::from_slice::<serde_json::Value>(r).unwrap());
                assert_eq!(parsed.as_ref(), value.get(name), "{text}: {name}");
            }
        }
    }
}
