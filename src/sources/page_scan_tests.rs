//! The scan is held to serde_json's verdict (with UTF-8 checked first: a
//! body that is not UTF-8 is not JSON) on generated pages and on thousands
//! of one-byte mutations of them, and to serde_json's entity boundaries.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::*;

/// The page as serde_json reads it: the reference.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    has_more: bool,
    greatest_ordinal: Option<i64>,
    #[serde(borrow)]
    entities: Option<Vec<&'a RawValue>>,
}

type Verdict = Option<(bool, Option<i64>, Option<Vec<Range<usize>>>)>;

fn reference(body: &[u8]) -> Verdict {
    std::str::from_utf8(body).ok()?;
    let page: Page = serde_json::from_slice(body).ok()?;
    let base = body.as_ptr() as usize;
    let ranges = page.entities.map(|es| {
        es.iter()
            .map(|raw| {
                let start = raw.get().as_ptr() as usize - base;
                start..start + raw.get().len()
            })
            .collect()
    });
    Some((page.has_more, page.greatest_ordinal, ranges))
}

/// The scan's verdict, finding the fields `names` on the way (none, or a
/// service's identity fields as in production), and checking that what it finds gives each entity the order key
/// the barrier's own scan gives it.
fn scanned_finding(body: &[u8], names: &[&str]) -> Verdict {
    let page = scan_page(body, names).ok()?;
    if !names.is_empty() {
        use crate::catalogue::IdentityKind;
        use crate::pipeline::identity::{identity_key, key_of};
        let kind = if names.len() == 1 {
            IdentityKind::Id
        } else {
            IdentityKind::StudyRightStudentStart
        };
        let ranges = page.entities.clone().flatten().unwrap_or_default();
        assert_eq!(page.fields.len(), ranges.len(), "one finding per entity");
        for (range, found) in ranges.iter().zip(&page.fields) {
            let values = found.clone().map(|f| f.map(|r| &body[r]));
            assert_eq!(
                key_of(kind, &values[..names.len()]),
                identity_key(kind, &body[range.clone()]),
                "order key of {:?}",
                String::from_utf8_lossy(&body[range.clone()])
            );
        }
    }
    // serde_json wants `hasMore`; absent optional fields are `None` there.
    Some((
        page.has_more?,
        page.greatest_ordinal.flatten(),
        page.entities.flatten(),
    ))
}

fn same(body: &[u8]) {
    // serde_json decodes keys and refuses a lone UTF-16 surrogate escape in
    // them; RFC 8259's grammar allows it, and so does the scan (the module
    // doc names this difference).
    let surrogate = body.windows(4).any(|w| {
        w[..3].eq_ignore_ascii_case(b"\\ud")
            && matches!(w[3].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
    });
    if surrogate && serde_json::from_slice::<Page>(body).is_err() {
        return;
    }
    let want = reference(body);
    for names in [
        &[][..],
        &["id"],
        &["studyRightId", "studentId", "startDate"],
    ] {
        assert_eq!(
            scanned_finding(body, names),
            want,
            "on {:?} finding {names:?} (scan says {:?})",
            String::from_utf8_lossy(body),
            scan_page(body, names).err()
        );
    }
}

/// Random JSON: every kind of value, strings with escapes, non-ASCII and
/// lengths around the 16-byte step, numbers in every form, odd whitespace.
fn value(rng: &mut StdRng, depth: u32, out: &mut String) {
    let kinds = if depth >= 4 { 5 } else { 7 };
    match rng.random_range(0..kinds) {
        0 => string(rng, out),
        1 => number(rng, out),
        2 => out.push_str(["true", "false", "null"][rng.random_range(0..3)]),
        3 | 4 => string(rng, out),
        5 => {
            out.push('{');
            for i in 0..rng.random_range(0..5) {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                key(rng, out);
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                value(rng, depth + 1, out);
            }
            out.push('}');
        }
        _ => {
            out.push('[');
            for i in 0..rng.random_range(0..5) {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push(']');
        }
    }
}

/// An object's key: often one of the identity fields the scan looks for
/// (so their finding is exercised, duplicates and nesting included).
fn key(rng: &mut StdRng, out: &mut String) {
    if rng.random_bool(0.4) {
        let name = ["id", "studyRightId", "studentId", "startDate"][rng.random_range(0..4)];
        out.push_str(&format!("\"{name}\""));
    } else {
        string(rng, out);
    }
}

fn string(rng: &mut StdRng, out: &mut String) {
    out.push('"');
    for _ in 0..rng.random_range(0..40) {
        match rng.random_range(0..20) {
            0 => out.push_str(
                ["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"][rng.random_range(0..8)],
            ),
            1 => out.push_str(&format!("\\u{:04x}", rng.random_range(0..0xd800u32))),
            2 => out.push(['ä', 'ö', 'Å', '€', '𝄞'][rng.random_range(0..5)]),
            _ => match rng.random_range(b' '..=b'~') as char {
                c @ ('"' | '\\') => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            },
        }
    }
    out.push('"');
}

fn number(rng: &mut StdRng, out: &mut String) {
    if rng.random_bool(0.3) {
        out.push('-');
    }
    if rng.random_bool(0.2) {
        out.push('0');
    } else {
        let shift = rng.random_range(0..60);
        out.push_str(&rng.random_range(1..u64::MAX >> shift).to_string());
    }
    if rng.random_bool(0.3) {
        out.push_str(&format!(".{}", rng.random_range(0..1000)));
    }
    if rng.random_bool(0.2) {
        out.push_str(["e", "E", "e+", "E-"][rng.random_range(0..4)]);
        out.push_str(&rng.random_range(0..300).to_string());
    }
}

fn ws(rng: &mut StdRng, out: &mut String) {
    for _ in 0..rng.random_range(0..3) {
        out.push([' ', '\n', '\r', '\t'][rng.random_range(0..4)]);
    }
}

/// A page: the three fields in any order, sometimes null or missing,
/// sometimes with other fields beside them.
fn page(rng: &mut StdRng) -> String {
    let mut fields: Vec<String> = Vec::new();
    if rng.random_bool(0.95) {
        fields.push(format!("\"hasMore\":{}", rng.random_bool(0.5)));
    }
    if rng.random_bool(0.9) {
        let g = match rng.random_range(0..8) {
            0 => "null".to_owned(),
            1 => "1.5".to_owned(),
            2 => "9223372036854775808".to_owned(),
            3 => "-0".to_owned(),
            4 => "1e3".to_owned(),
            _ => rng.random_range(-5..i64::MAX).to_string(),
        };
        fields.push(format!("\"greatestOrdinal\":{g}"));
    }
    if rng.random_bool(0.95) {
        let mut e = String::from("[");
        for i in 0..rng.random_range(0..6) {
            if i > 0 {
                e.push(',');
            }
            ws(rng, &mut e);
            value(rng, 1, &mut e);
            ws(rng, &mut e);
        }
        e.push(']');
        fields.push(format!(
            "\"entities\":{}",
            if rng.random_bool(0.05) {
                "null".into()
            } else {
                e
            }
        ));
    }
    for _ in 0..rng.random_range(0..3) {
        let mut other = String::new();
        string(rng, &mut other);
        other.push(':');
        value(rng, 1, &mut other);
        fields.push(other);
    }
    if rng.random_bool(0.03) && !fields.is_empty() {
        let twice = fields[0].clone();
        fields.push(twice);
    }
    let n = fields.len();
    for i in 0..n {
        fields.swap(i, rng.random_range(i..n));
    }
    let mut out = String::new();
    ws(rng, &mut out);
    out.push('{');
    out.push_str(&fields.join(","));
    out.push('}');
    ws(rng, &mut out);
    out
}

#[test]
fn generated_pages_read_as_serde_json_reads_them() {
    let mut rng = StdRng::seed_from_u64(20261202);
    let mut accepted = 0;
    for _ in 0..3000 {
        let body = page(&mut rng);
        same(body.as_bytes());
        accepted += reference(body.as_bytes()).is_some() as u32;
    }
    // About half are valid by design (fields missing, of the wrong type,
    // twice); both verdicts must be common.
    assert!(
        (1200..2400).contains(&accepted),
        "the generator makes valid and invalid pages alike: {accepted} valid of 3000"
    );
}

#[test]
fn one_byte_mutations_get_serde_json_verdicts() {
    const BYTES: &[u8] = b"\\\"{}[],:. 0123456789-+eEtrufalsn\x01\x1f\x7fA";
    let mut rng = StdRng::seed_from_u64(7);
    let mut refused = 0;
    for _ in 0..600 {
        let good = page(&mut rng).into_bytes();
        for _ in 0..20 {
            let mut body = good.clone();
            let at = rng.random_range(0..body.len());
            let byte = BYTES[rng.random_range(0..BYTES.len())];
            match rng.random_range(0..4) {
                0 => {
                    body.remove(at);
                }
                1 => body.insert(at, byte),
                2 => body[at] = byte,
                _ => body.truncate(at),
            }
            same(&body);
            refused += reference(&body).is_none() as u32;
        }
    }
    assert!(refused > 3000, "most mutations break the page: {refused}");
}

#[test]
fn special_bytes_at_every_offset_of_the_string_step() {
    for len in 0..40 {
        for at in 0..len {
            for special in ["\\\"", "\\n", "\\u00e4", "\"", "\u{1}", "ä"] {
                let mut text: String = "x".repeat(len);
                text.replace_range(at..at + 1, special);
                let body = format!(r#"{{"hasMore":false,"entities":["{text}",{{"k{text}":1}}]}}"#);
                same(body.as_bytes());
            }
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let body = br#"{"hasMore":true,"greatestOrdinal":42,"entities":[{"id":"a","n":[1,2.5e3,{"x":null}],"s":"\u00e4\"q"},{"id":"b"}]}"#;
    assert!(scan_page(body, &[]).is_ok());
    for len in 0..body.len() {
        assert!(
            scan_page(&body[..len], &[]).is_err(),
            "accepted {len} bytes"
        );
    }
}

#[test]
fn hostile_bodies_are_refused_without_harm() {
    let deep = format!(
        r#"{{"hasMore":false,"entities":[{}]}}"#,
        "[".repeat(100_000)
    );
    assert_eq!(
        scan_page(deep.as_bytes(), &[]).unwrap_err().what,
        "nested too deeply"
    );
    let mut latin1 = br#"{"hasMore":false,"entities":[{"name":"J"#.to_vec();
    latin1.extend_from_slice(b"\xf6ns\"}]}");
    assert_eq!(scan_page(&latin1, &[]).unwrap_err().what, "not UTF-8");
    let e = scan_page(b"<html>", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected `{` (an export page is a JSON object) at byte 0"
    );
    assert_eq!(scan_page(b"", &[]).unwrap_err().at, 0);
}

#[test]
fn entities_are_the_exact_element_text() {
    let body = br#" { "entities" : [ {"id":"a"} ,"x", 1 ] , "hasMore":true } "#;
    let page = scan_page(body, &[]).unwrap();
    let texts: Vec<&[u8]> = page
        .entities
        .flatten()
        .unwrap()
        .into_iter()
        .map(|r| &body[r])
        .collect();
    assert_eq!(texts, [&br#"{"id":"a"}"#[..], b"\"x\"", b"1"]);
}

#[test]
fn a_body_cut_short_says_where_it_ends() {
    let mut rng = StdRng::seed_from_u64(18);
    let mut cut = 0;
    for _ in 0..300 {
        let body = page(&mut rng).into_bytes();
        if reference(&body).is_none() {
            continue;
        }
        let end = body.iter().rposition(|b| *b == b'}').unwrap();
        for len in 0..=end {
            let prefix = &body[..len];
            if prefix.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let e = scan_page(prefix, &[]).unwrap_err();
            assert_eq!(
                e.truncated,
                Some(len),
                "{:?}: {e}",
                String::from_utf8_lossy(prefix)
            );
            assert!(
                e.to_string().starts_with(&format!(
                    "truncated: the page ends at byte {len} in the middle of "
                )),
                "{e}"
            );
            cut += 1;
        }
    }
    assert!(cut > 10_000, "{cut}");
}

#[test]
fn a_cut_names_the_entity_it_falls_in() {
    let message = |body: &str| scan_page(body.as_bytes(), &[]).unwrap_err().to_string();
    let page = r#"{"hasMore":true,"greatestOrdinal":7,"entities":[{"id":"a"},{"id":"bee"}]}"#;
    let at = |text: &str| page.find(text).unwrap();
    assert_eq!(
        message(&page[..at("ee")]),
        format!(
            "truncated: the page ends at byte {} in the middle of a string in entity 2 of `entities`",
            at("ee")
        )
    );
    assert_eq!(
        message(&page[..at(",{\"id\":\"bee")]),
        format!(
            "truncated: the page ends at byte {} in the middle of `entities`, after entity 1",
            at(",{\"id\":\"bee")
        )
    );
    assert!(message(&page[..at("[") + 1])
        .ends_with("in the middle of a value in entity 1 of `entities`"));
    assert!(message(&page[..at("7")]).ends_with("in the middle of the page object"));
    assert!(message(&page[..at("7,") + 1]).ends_with("in the middle of the page object"));
    assert!(message("{\"greatestOrdinal\":1.")
        .ends_with("in the middle of a number in the page object"));
    assert!(message(&page[..at("rue")]).ends_with("in the middle of the page object"));
    assert!(message("{\"hasMore\":tr").starts_with("truncated: the page ends at byte 13 "));
    assert!(message("{\"entities\":[\"\u{e4}").contains("in the middle of a string"));
    let cut_character = &"{\"entities\":[\"\u{e4}".as_bytes()[..15];
    assert!(scan_page(cut_character, &[])
        .unwrap_err()
        .to_string()
        .ends_with("in the middle of a UTF-8 character"));
    assert_eq!(
        message(" \n "),
        "the answer is empty (an export page is a JSON object) at byte 0"
    );
}

#[test]
fn a_field_of_the_wrong_type_is_named_with_what_it_holds() {
    let message = |body: &str| scan_page(body.as_bytes(), &[]).unwrap_err().to_string();
    assert_eq!(
        message(r#"{"hasMore":false,"greatestOrdinal":"12","entities":[]}"#),
        "`greatestOrdinal` must be an integer, found a string at byte 35"
    );
    assert_eq!(
        message(r#"{"hasMore":"yes","greatestOrdinal":"many","entities":{}}"#),
        "`hasMore` must be true or false, found a string at byte 11"
    );
    assert_eq!(
        message(r#"{"hasMore":false,"entities":{}}"#),
        "`entities` must be an array, found an object at byte 28"
    );
    assert_eq!(
        message(r#"{"greatestOrdinal":1.5}"#),
        "`greatestOrdinal` must be an integer, found a number that is not an integer at byte 19"
    );
    assert_eq!(
        message(r#"{"greatestOrdinal":9223372036854775808}"#),
        "`greatestOrdinal` must be an integer, found a number beyond 64 bits at byte 19"
    );
    assert_eq!(
        message(r#"{"hasMore":null}"#),
        "`hasMore` must be true or false, found null at byte 11"
    );
    assert_eq!(
        message("{\"entities\":[{\"id\":\"a\"},{\"id\":\"b\u{1}\"}]}"),
        "control character in a string at byte 32, in entity 2 of `entities`"
    );
}

/// Not a test: what finding the identity fields in the page scan saves
/// against scanning each entity again afterwards, on a Sisu-shaped page
/// (1000 entities opening with a `metadata` object, as Sisu's do).
/// `cargo test --release --lib -- --ignored --nocapture identity_finding_cost`.
#[test]
#[ignore]
fn identity_finding_cost() {
    use crate::catalogue::IdentityKind;
    use crate::pipeline::identity::{identity_key, key_of};
    let entity = |i: usize| {
        format!(
            r#"{{"metadata":{{"revision":{i},"createdBy":"hy-hlo-{i}","createdOn":"2020-01-01T00:00:00.000","lastModifiedBy":"hy-hlo-1","lastModifiedOn":"2024-05-05T12:00:00.000","modificationOrdinal":{i},"otherParticipantIds":[]}},"id":"hy-hlo-{i}","studentNumber":"0{i}","firstNames":"Maija Liisa","lastName":"Meikäläinen","callName":"Maija","primaryEmail":"maija.{i}@example.fi","dateOfBirth":"1990-01-01","citizenships":["urn:code:country:246"],"addresses":[{{"type":"FinnishAddress","streetAddress":"Katu {i}","postalCode":"00100","city":"Helsinki"}}]}}"#
        )
    };
    let entities: Vec<String> = (0..1000).map(entity).collect();
    let body = format!(
        r#"{{"greatestOrdinal":1000,"hasMore":true,"entities":[{}]}}"#,
        entities.join(",")
    );
    let body = body.as_bytes();
    let (mut apart, mut fused) = (std::time::Duration::MAX, std::time::Duration::MAX);
    let mut check = 0u64;
    for _ in 0..200 {
        let t = std::time::Instant::now();
        let page = scan_page(body, &[]).unwrap();
        for r in page.entities.flatten().unwrap() {
            check ^= identity_key(IdentityKind::Id, &body[r]).unwrap();
        }
        apart = apart.min(t.elapsed());
        let t = std::time::Instant::now();
        let page = scan_page(body, &["id"]).unwrap();
        for found in page.fields {
            let values = found.map(|f| f.map(|r| &body[r]));
            check ^= key_of(IdentityKind::Id, &values[..1]).unwrap();
        }
        fused = fused.min(t.elapsed());
    }
    let mb = body.len() as f64 / 1e6;
    eprintln!(
        "{mb:.2} MB page: scan then identity {apart:?} ({:.0} MB/s); identity found in the scan {fused:?} ({:.0} MB/s) [{check}]",
        mb / apart.as_secs_f64(),
        mb / fused.as_secs_f64()
    );
}
