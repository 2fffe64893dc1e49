//! Tests of the whole-set sources and of starting and stopping the fake.

use super::test_util::*;
use serde_json::Value;
use sis_importer::catalogue;

#[tokio::test]
async fn whole_set_sources() {
    let fake = start_fake(5).await;
    for service in catalogue::builtin()
        .into_iter()
        .filter(|s| s.source == catalogue::SourceKind::Urn)
    {
        let book = get_json(&format!("{}{}", fake.kori_public_url(), service.path)).await;
        let book = book.as_object().unwrap();
        assert!(
            (5..=250).contains(&book.len()),
            "{}: {}",
            service.id,
            book.len()
        );
        for (urn, item) in book {
            assert_eq!(item["urn"], urn.as_str());
            assert!(urn.starts_with(service.path.rsplit('/').next().unwrap()));
            assert!(
                item["name"]["fi"].is_string()
                    && item.get("id").is_none()
                    && item.get("documentState").is_none()
            );
        }
        let expected = fake.expected(&service.id);
        assert_eq!(
            expected
                .iter()
                .map(|e| e.identity.as_str())
                .collect::<Vec<_>>(),
            book.keys().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(expected
            .iter()
            .all(|e| e.ordinal.is_none() && e.document_state == "ACTIVE"));
    }
    // Clients may escape the colons.
    let escaped = get_json(&format!(
        "{}/cached/codebooks/urn%3Acode%3Acountry",
        fake.kori_public_url()
    ))
    .await;
    assert_eq!(escaped["urn:code:country:246"]["name"]["en"], "Finland");

    let periods = get_json(&format!(
        "{}/curriculum-periods?universityOrgId=hy-university-root-id",
        fake.kori_public_url()
    ))
    .await;
    let periods = periods.as_array().unwrap();
    assert!((10..=60).contains(&periods.len()));
    assert!(periods
        .iter()
        .all(|p| p["universityOrgId"] == "hy-university-root-id"
            && p["activePeriod"]["startDate"].is_string()));
    assert_eq!(fake.expected("CURRICULUM_PERIOD").len(), periods.len());
    assert_eq!(
        get(&format!("{}/curriculum-periods", fake.kori_public_url()))
            .await
            .0,
        400
    );

    let client = reqwest::Client::new();
    let graphql = format!("{}/graphql", fake.base_url());
    let answer = client
        .post(&graphql)
        .json(&serde_json::json!({"query": "{ grade_scales { id name { fi } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let scales = answer["data"]["grade_scales"].as_array().unwrap();
    assert!((5..=12).contains(&scales.len()));
    assert!(scales
        .iter()
        .any(|s| s["id"] == "sis-0-5" && s["grades"][5]["numericCorrespondence"] == 5));
    assert_eq!(
        fake.expected("GRAPHQL_GRADE_SCALES")
            .iter()
            .map(|e| e.identity.clone())
            .collect::<Vec<_>>()[0],
        "sis-0-5"
    );
    let other = client
        .post(&graphql)
        .json(&serde_json::json!({"query": "{ persons { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    assert!(other.json::<Value>().await.unwrap()["errors"].is_array());
    assert_eq!(fake.requests("GRAPHQL_GRADE_SCALES"), 2);
}

#[tokio::test]
async fn millions_of_entities_start_instantly_and_serve_fast() {
    let started = std::time::Instant::now();
    let fake = start_fake(5_000_000).await;
    fake.add_generation(1_000_000);
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    let last = fake.greatest_ordinal("ATTAINMENT").unwrap();
    let tail = get_json(&export_url(&fake, "ATTAINMENT", last - 50, 1000)).await;
    assert!(!tail["entities"].as_array().unwrap().is_empty());
    assert_eq!(tail["hasMore"], false);
    let middle = get_json(&export_url(&fake, "TERM_REGISTRATION", 260_000_000, 1000)).await;
    assert_eq!(middle["entities"].as_array().unwrap().len(), 1000);
    assert_eq!(middle["hasMore"], true);
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let fake = start_fake(5).await;
    let url = export_url(&fake, "PERSON", 0, 1);
    assert_eq!(get(&url).await.0, 200);
    fake.shutdown().await;
    assert!(reqwest::get(&url).await.is_err());

    let fake = start_fake(5).await;
    let url = export_url(&fake, "PERSON", 0, 1);
    drop(fake);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}
