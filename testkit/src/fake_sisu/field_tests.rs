//! Tests of what the generated entities carry and in which order: the
//! order real Sisu writes, and the fields the real consumer reads.

use super::changelog::{Extra, FieldOrder, Log};
use super::shapes::Shape;
use serde_json::Value;
use sis_importer::catalogue;

/// The first `n` generation-0 entities of every export service, parsed
/// (key order kept), with the service id.
fn entities(n: u64) -> Vec<(String, Vec<Value>)> {
    catalogue::builtin()
        .iter()
        .enumerate()
        .filter_map(|(position, service)| {
            let shape = Shape::of(&service.id)?;
            let log = Log::new(5, shape, position, n);
            let parsed = (0..n)
                .map(|k| serde_json::from_str(&log.entity(k, Extra::default())).unwrap())
                .collect();
            Some((service.id.clone(), parsed))
        })
        .collect()
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn entities_start_with_metadata_state_and_identity() {
    const AUDIT: &[&str] = &[
        "revision",
        "createdBy",
        "createdOn",
        "lastModifiedBy",
        "lastModifiedOn",
        "modificationOrdinal",
    ];
    for (id, entities) in entities(60) {
        let identity = match id.as_str() {
            "TERM_REGISTRATION" | "STUDY_RIGHT_PRIMALITY" => "studyRightId",
            _ => "id",
        };
        for entity in &entities {
            assert_eq!(
                keys(entity)[..3],
                ["metadata", "documentState", identity],
                "{id}"
            );
            let metadata = keys(&entity["metadata"]);
            match id.as_str() {
                // The small documents carry only their ordinal.
                "STUDY_RIGHT_PRIMALITY" | "DISCLOSURE" => {
                    assert_eq!(metadata, ["modificationOrdinal"], "{id}")
                }
                _ => assert_eq!(metadata, AUDIT, "{id}"),
            }
        }
    }
}

#[test]
fn pages_put_the_paging_fields_first_as_sisu_does_or_last() {
    let log = Log::new(5, Shape::Person, 0, 30);
    let page = |since, limit, order| -> Value {
        serde_json::from_str(&log.page(30, since, limit, &[], order)).unwrap()
    };
    for (since, limit) in [(0, 10), (0, 100), (i64::MAX, 10)] {
        let sisu = page(since, limit, FieldOrder::Sisu);
        let last = page(since, limit, FieldOrder::FieldsLast);
        assert_eq!(keys(&sisu), ["greatestOrdinal", "hasMore", "entities"]);
        assert_eq!(keys(&last), ["entities", "hasMore", "greatestOrdinal"]);
        assert_eq!(sisu, last, "the same fields either way");
    }
    assert_eq!(FieldOrder::default(), FieldOrder::Sisu);
    assert_eq!(
        FieldOrder::Sisu.empty_page(7, true),
        r#"{"greatestOrdinal":7,"hasMore":true,"entities":[]}"#
    );
    assert_eq!(
        FieldOrder::FieldsLast.empty_page(7, false),
        r#"{"entities":[],"hasMore":false,"greatestOrdinal":7}"#
    );
}
