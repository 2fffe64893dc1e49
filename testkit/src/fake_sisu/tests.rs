//! Tests of the served export data over real HTTP: paging, determinism,
//! shapes and sizes. Later generations are in `generation_tests.rs`,
//! whole-set sources and the server's life cycle in `lifecycle_tests.rs`,
//! faults in `fault_tests.rs`.

use super::changelog::{Extra, Log};
use super::shapes::Shape;
use super::*;
use serde_json::Value;
use sis_importer::catalogue;
use std::collections::{HashMap, HashSet};

use super::test_util::*;

#[tokio::test]
async fn pages_of_every_export_service_concatenate_to_expected() {
    let fake = start_fake(120).await;
    for id in export_ids() {
        let served = drain(&fake, &id, 0, 37).await;
        let service = service(&id);
        let got: Vec<_> = served.iter().map(|e| as_expected(&service, e)).collect();
        assert_eq!(got, fake.expected(&id), "{id}");
        assert_eq!(got.len(), 120);
        let identities: HashSet<_> = got.iter().map(|e| &e.identity).collect();
        assert_eq!(
            identities.len(),
            120,
            "{id}: generation 0 has distinct identities"
        );
    }
}

#[tokio::test]
async fn fields_last_pages_keep_the_paging_contract() {
    let fake = FakeSisu::start(FakeSisuConfig {
        seed: 7,
        entities_per_service: 50,
        field_order: FieldOrder::FieldsLast,
        ..Default::default()
    })
    .await
    .unwrap();
    let served = drain(&fake, "PERSON", 0, 7).await;
    let service = service("PERSON");
    let got: Vec<_> = served.iter().map(|e| as_expected(&service, e)).collect();
    assert_eq!(got, fake.expected("PERSON"));
    let (_, _, body) = get(export_url(&fake, "PERSON", 0, 2)).await;
    let body = std::str::from_utf8(&body).unwrap();
    assert!(body.starts_with(r#"{"entities":[{"metadata":{"#), "{body}");
    assert!(
        body.contains(r#"],"hasMore":true,"greatestOrdinal":"#),
        "{body}"
    );
}

#[tokio::test]
async fn since_between_ordinals_and_past_the_end() {
    let fake = start_fake(50).await;
    let expected = fake.expected("PERSON");
    let tenth = expected[9].ordinal.unwrap();
    // One below the 10th ordinal: the page starts at the 10th change.
    let page = get_json(&export_url(&fake, "PERSON", tenth - 1, 3)).await;
    assert_eq!(
        page["entities"][0]["metadata"]["modificationOrdinal"],
        tenth
    );
    assert_eq!(page["hasMore"], true);
    let last = fake.greatest_ordinal("PERSON").unwrap();
    assert_eq!(last, expected[49].ordinal.unwrap());
    for since in [last, last + 1_000_000] {
        let page = get_json(&export_url(&fake, "PERSON", since, 10)).await;
        assert_eq!(
            page,
            serde_json::json!({"hasMore": false, "greatestOrdinal": since, "entities": []})
        );
    }
    let tail = get_json(&export_url(
        &fake,
        "PERSON",
        expected[46].ordinal.unwrap(),
        10,
    ))
    .await;
    assert_eq!(
        (tail["entities"].as_array().unwrap().len(), &tail["hasMore"]),
        (3, &Value::Bool(false))
    );
    assert!(matches!(
        get(&export_url(&fake, "PERSON", i64::MIN, 1)).await.0,
        200
    ));
}

#[tokio::test]
async fn bad_requests_and_unknown_paths() {
    let fake = start_fake(10).await;
    let base = format!("{}/ori/api/persons/v1/export", fake.base_url());
    for query in [
        "",
        "?since=0",
        "?limit=5",
        "?since=x&limit=5",
        "?since=0&limit=-1",
        "?since=0&limit=0",
    ] {
        let (status, _, body) = get(&format!("{base}{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .contains("query parameter"));
    }
    assert_eq!(
        get(&format!("{}/ori/api/nothing/v1/export", fake.base_url()))
            .await
            .0,
        404
    );
    assert_eq!(get(&format!("{}/graphql", fake.base_url())).await.0, 404);
    assert_eq!(fake.requests("PERSON"), 6);
}

#[tokio::test]
async fn same_seed_same_bytes_other_seed_other_data() {
    let a = start_fake(300).await;
    let b = start_fake(300).await;
    let c = FakeSisu::start(FakeSisuConfig {
        seed: 8,
        entities_per_service: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    for fake in [&a, &b, &c] {
        fake.add_generation(40);
    }
    for id in ["COURSE_UNIT", "TERM_REGISTRATION", "MODULE"] {
        let page = |f: &FakeSisu| get(export_url(f, id, 250_000_000, 1000));
        let (pa, pb, pc) = (page(&a).await.2, page(&b).await.2, page(&c).await.2);
        assert_eq!(pa, pb, "{id}");
        assert_ne!(pa, pc, "{id}");
    }
    let urn = |f: &FakeSisu| {
        get(format!(
            "{}/cached/codebooks/urn:code:country",
            f.kori_public_url()
        ))
    };
    assert_eq!(urn(&a).await.2, urn(&b).await.2);
}

#[tokio::test]
async fn identities_follow_sisu_shapes() {
    let fake = start_fake(400).await;
    let prefixes: HashMap<&str, &[&str]> = HashMap::from([
        ("PERSON", &["hy-hlo-"][..]),
        ("ORGANISATION", &["hy-org-"]),
        ("COURSE_UNIT", &["hy-CU-"]),
        ("EDUCATION", &["hy-EDU-"]),
        ("ASSESMENT_ITEM", &["hy-AI-"]),
        ("COURSE_UNIT_REALISATION", &["hy-CUR-", "otm-"]),
        ("MODULE", &["hy-DP-", "hy-SM-", "otm-"]),
        ("ENROLMENT", &["otm-"]),
    ]);
    for id in export_ids() {
        let page = get_json(&export_url(&fake, &id, 0, 400)).await;
        let entities = page["entities"].as_array().unwrap();
        let mut states: HashMap<&str, usize> = HashMap::new();
        for entity in entities {
            *states
                .entry(entity["documentState"].as_str().unwrap())
                .or_default() += 1;
            let no_id = matches!(id.as_str(), "TERM_REGISTRATION" | "STUDY_RIGHT_PRIMALITY");
            assert_eq!(entity.get("id").is_none(), no_id, "{id}");
            if no_id {
                assert!(entity["studyRightId"].is_string() && entity["studentId"].is_string());
                assert_eq!(
                    entity["startDate"].is_string(),
                    id == "STUDY_RIGHT_PRIMALITY"
                );
            } else if let Some(prefixes) = prefixes.get(id.as_str()) {
                let eid = entity["id"].as_str().unwrap();
                assert!(prefixes.iter().any(|p| eid.starts_with(p)), "{id}: {eid}");
            }
            if matches!(
                id.as_str(),
                "STUDY_RIGHT" | "ASSESMENT_ITEM" | "ORGANISATION"
            ) {
                assert!(entity["snapshotDateTime"].is_string(), "{id}");
            }
        }
        let deleted = states.get("DELETED").copied().unwrap_or(0);
        assert!(
            (5..=40).contains(&deleted),
            "{id}: ~5% DELETED, got {states:?}"
        );
        assert!(
            states["ACTIVE"] > 320,
            "{id}: mostly ACTIVE, got {states:?}"
        );
        if id == "EDUCATION" {
            assert!(
                states.get("DRAFT").copied().unwrap_or(0) >= 20,
                "EDUCATION has drafts: {states:?}"
            );
        }
    }
    let modules = get_json(&export_url(&fake, "MODULE", 0, 50)).await;
    assert!(modules["entities"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["rule"]["rules"].is_array()));
    let enrolment = get_json(&export_url(&fake, "ENROLMENT", 0, 1)).await;
    assert!(enrolment["entities"][0]["metadata"]["lastModifiedOn"].is_string());
}

#[test]
fn entity_sizes_weigh_like_sisu() {
    let mut all_text = String::new();
    for (position, service) in catalogue::builtin().iter().enumerate() {
        let Some(shape) = Shape::of(&service.id) else {
            continue;
        };
        let log = Log::new(3, shape, position, 2000);
        let mut sizes: Vec<usize> = (0..2000)
            .map(|k| log.entity(k, Extra::default()).len())
            .collect();
        sizes.sort_unstable();
        let (min, median, max) = (sizes[0], sizes[1000], sizes[1999]);
        match shape {
            Shape::StudyRightPrimality | Shape::Disclosure => assert!(max < 320, "{shape:?} {max}"),
            Shape::TermRegistration => {
                assert!((1_000..4_000).contains(&median), "{median}");
                assert!((15_000..=22_000).contains(&max), "{shape:?} max {max}");
            }
            _ => {
                assert!((450..=4_000).contains(&median), "{shape:?} median {median}");
                assert!(min >= 400 && max <= 8_000, "{shape:?} {min}..{max}");
            }
        }
        all_text.push_str(&log.entity(11, Extra::default()));
    }
    for needle in ["ä", "ö", "å", "–"] {
        assert!(all_text.contains(needle), "{needle}");
    }
}
