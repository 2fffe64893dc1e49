//! Tests of what the generated entities carry and in which order: the
//! order real Sisu writes, and the fields the real consumer reads.

use super::changelog::{Extra, FieldOrder, Log};
use super::shapes::Shape;
use super::wholeset;
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

/// What the real consumer (importer-mankeli) reads beyond the fields every
/// fake entity always had, by service (SISU-SHAPES.md, "Fields by
/// service"); its columns stay empty unless some entity fills them.
const CONSUMER_FIELDS: &[(&str, &[&str])] = &[
    (
        "PERSON",
        &[
            "employeeNumber",
            "secondaryEmail",
            "personalDataSafetyNonDisclosure",
        ],
    ),
    (
        "STUDY_RIGHT",
        &[
            "transferOutDate",
            "termRegistrations",
            "studyRightCancellation",
            "studyRightGraduation",
            "studyRightTransfer",
            "transferOutUniversityUrn",
            "requestedSelectionPath",
            "phase1MinorSelections",
            "phase2MinorSelections",
            "phase1EducationClassificationUrn",
            "phase2EducationClassificationUrn",
            "phase1EducationClassificationLocked",
            "phase2EducationClassificationLocked",
        ],
    ),
    (
        "MODULE",
        &[
            "universityOrgIds",
            "moduleContentApprovalRequired",
            "approvalState",
            "responsibilityInfos",
            "organisations",
            "studyLevel",
            "possibleAttainmentLanguages",
            "studyFields",
            "graded",
            "gradeScaleId",
            "studyRightSelectionType",
            "minorStudyRightAcceptanceType",
            "degreeProgramTypeUrn",
        ],
    ),
    (
        "ATTAINMENT",
        &[
            "personStudentNumber",
            "expiryDate",
            "attainmentLanguageUrn",
            "studyWeeks",
            "gradeAverage",
            "additionalInfo",
            "studyFieldUrn",
            "studyLevelUrn",
            "courseUnitTypeUrn",
            "courseUnitRealisationId",
        ],
    ),
    ("COURSE_UNIT", &["studyFields"]),
    ("ENROLMENT", &["verifierPersonId"]),
    ("STUDY_EVENT", &["universityOrgIds"]),
];

/// The URN items' `shortName`, `type` and `parentUrn`, by the code books
/// whose consumer tables keep them.
const URN_FIELDS: &[(&str, &[&str])] = &[
    ("EDUCATION_TYPE", &["parentUrn"]),
    ("DEGREE_TITLE", &["shortName"]),
    ("EDUCATION_CLASSIFICATION", &["shortName", "parentUrn"]),
    (
        "STUDY_RIGHT_EXPIRATION_RULE",
        &["shortName", "type", "parentUrn"],
    ),
    ("ADMISSION_TYPE", &["type"]),
];

fn filled(entity: &Value, field: &str) -> bool {
    entity.get(field).is_some_and(|v| !v.is_null())
}

#[test]
fn every_field_the_consumer_reads_is_filled_in_some_entity() {
    let all = entities(200);
    for (service, fields) in CONSUMER_FIELDS {
        let (_, entities) = all.iter().find(|(id, _)| id == service).unwrap();
        for field in *fields {
            assert!(
                entities.iter().all(|e| e.get(field).is_some()),
                "{service}: every entity has the key {field}"
            );
            assert!(
                entities.iter().any(|e| filled(e, field)),
                "{service}: none of 200 entities fills {field}"
            );
        }
    }
    for (service, fields) in URN_FIELDS {
        let service = catalogue::builtin()
            .into_iter()
            .find(|s| s.id == *service)
            .unwrap();
        let book = service.path.rsplit('/').next().unwrap();
        let items: Value = serde_json::from_str(&wholeset::urn_book(5, book).unwrap()).unwrap();
        let items = items.as_object().unwrap();
        for field in *fields {
            assert!(
                items.values().any(|item| filled(item, field)),
                "{}: no item fills {field}",
                service.id
            );
        }
    }
}

#[test]
fn consumer_fields_have_sisus_types() {
    let all = entities(200);
    let of = |service: &str| &all.iter().find(|(id, _)| id == service).unwrap().1;
    let present = |service: &str, field: &str| -> Vec<Value> {
        of(service)
            .iter()
            .filter(|e| filled(e, field))
            .map(|e| e[field].clone())
            .collect()
    };
    assert!(present("ATTAINMENT", "studyWeeks")
        .iter()
        .all(Value::is_f64));
    assert!(present("ATTAINMENT", "gradeAverage")
        .iter()
        .all(|g| g["value"].is_f64() && g["totalIncludedCredits"].is_i64()));
    assert!(present("ATTAINMENT", "additionalInfo")
        .iter()
        .all(|t| t["fi"].is_string()));
    for (service, field) in [
        ("MODULE", "graded"),
        ("MODULE", "moduleContentApprovalRequired"),
        ("PERSON", "personalDataSafetyNonDisclosure"),
        ("STUDY_RIGHT", "phase1EducationClassificationLocked"),
    ] {
        assert!(
            present(service, field).iter().all(Value::is_boolean),
            "{service}.{field}"
        );
    }
    assert!(present("STUDY_RIGHT", "termRegistrations").iter().all(|t| t
        .as_array()
        .is_some_and(|t| t.iter().all(|t| t["studyTerm"]["termIndex"].is_i64()))));
    // Older documents send a string, newer an array.
    let rules = present("STUDY_RIGHT", "studyRightExpirationRulesUrn");
    assert!(rules.iter().any(Value::is_string) && rules.iter().any(Value::is_array));
    // An attainment's student number is its person's.
    for attainment in of("ATTAINMENT") {
        let person: u64 = attainment["personId"].as_str().unwrap()["hy-hlo-".len()..]
            .parse()
            .unwrap();
        let number: u64 = attainment["personStudentNumber"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(person - 10_000_000, number - 12_000_000);
    }
}
