//! Each fault of [`super::Faults`], seen over real HTTP.

use super::test_util::*;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test]
async fn failures_and_rate_limits_count_down() {
    let fake = start_fake(20).await;
    let url = export_url(&fake, "PERSON", 0, 5);
    fake.faults().fail_next("PERSON", 502, 2);
    fake.faults().rate_limit_next("PERSON", 429, 7, 1);
    fake.faults().rate_limit_next("PERSON", 503, 1, 1);
    assert_eq!(get(&url).await.0, 502);
    let (status, headers, _) = get(&url).await;
    assert_eq!(status, 502);
    assert!(headers.get("retry-after").is_none());
    let (status, headers, _) = get(&url).await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (429, "7")
    );
    let (status, headers, _) = get(&url).await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (503, "1")
    );
    assert_eq!(get(&url).await.0, 200);
    // Faults are per service.
    fake.faults().fail_next("ORGANISATION", 500, 1);
    assert_eq!(get(&url).await.0, 200);
    assert_eq!(get(&export_url(&fake, "ORGANISATION", 0, 5)).await.0, 500);
    assert_eq!(fake.requests("PERSON"), 6);
    assert_eq!(fake.requests("ORGANISATION"), 1);
}

#[tokio::test]
async fn forbid_until_allowed() {
    let fake = start_fake(20).await;
    let url = export_url(&fake, "DISCLOSURE", 0, 5);
    fake.faults().forbid("DISCLOSURE");
    for _ in 0..3 {
        assert_eq!(get(&url).await.0, 403);
    }
    fake.faults().allow("DISCLOSURE");
    assert_eq!(get(&url).await.0, 200);
    fake.faults().forbid("COUNTRY");
    assert_eq!(
        get(&format!(
            "{}/cached/codebooks/urn:code:country",
            fake.kori_public_url()
        ))
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn malformed_truncated_and_missing_entities() {
    let fake = start_fake(300).await;
    let url = export_url(&fake, "COURSE_UNIT", 0, 100);
    let (_, _, full) = get(&url).await;

    fake.faults().malformed_next("COURSE_UNIT", 1);
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    fake.faults().truncated_next("COURSE_UNIT", 1);
    let (status, headers, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), full.len() / 2);
    assert_eq!(
        headers["content-length"].to_str().unwrap(),
        body.len().to_string()
    );
    assert_eq!(&body[..], &full[..full.len() / 2]);
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    fake.faults().missing_entities_next("COURSE_UNIT", 1);
    let missing = get_json(&url).await;
    assert_eq!(
        missing,
        serde_json::json!({"hasMore": false, "greatestOrdinal": 1})
    );
    assert_eq!(get(&url).await.2, full);
}

#[tokio::test]
async fn stuck_has_more_while_set() {
    let fake = start_fake(20).await;
    fake.faults().stuck_has_more("ENROLMENT", true);
    for since in [0, 250_012_345] {
        let page = get_json(&export_url(&fake, "ENROLMENT", since, 5)).await;
        assert_eq!(
            page,
            serde_json::json!({"hasMore": true, "greatestOrdinal": since, "entities": []})
        );
    }
    fake.faults().stuck_has_more("ENROLMENT", false);
    let page = get_json(&export_url(&fake, "ENROLMENT", 0, 5)).await;
    assert_eq!(page["entities"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn latency_per_service_and_global() {
    let fake = start_fake(5).await;
    let slow = Duration::from_millis(300);
    fake.faults().latency(Some("PLAN"), slow);
    let started = Instant::now();
    assert_eq!(get(&export_url(&fake, "PLAN", 0, 1)).await.0, 200);
    assert!(started.elapsed() >= slow);
    let started = Instant::now();
    assert_eq!(get(&export_url(&fake, "PERSON", 0, 1)).await.0, 200);
    assert!(started.elapsed() < slow);
    fake.faults().latency(None, slow);
    let started = Instant::now();
    assert_eq!(get(&export_url(&fake, "PERSON", 0, 1)).await.0, 200);
    assert!(started.elapsed() >= slow);
    fake.faults().clear();
    let started = Instant::now();
    get(&export_url(&fake, "PLAN", 0, 1)).await;
    assert!(started.elapsed() < slow);
}

#[tokio::test]
async fn poison_and_oversize_mark_one_change() {
    let fake = start_fake(50).await;
    let before = fake.expected("ATTAINMENT");
    fake.faults().poison("ATTAINMENT", 3);
    fake.faults().oversize("ATTAINMENT", 4, 1_200_000);
    fake.faults().oversize("ATTAINMENT", 3, 5_000);
    let page = get_json(&export_url(&fake, "ATTAINMENT", 0, 10)).await;
    let entities = page["entities"].as_array().unwrap();
    assert_eq!(entities[3]["testError"], true);
    assert_eq!(entities[3].to_string().len(), 5_000);
    assert!(entities[4].get("testError").is_none());
    assert_eq!(entities[4].to_string().len(), 1_200_000);
    assert!(entities
        .iter()
        .enumerate()
        .all(|(k, e)| (k == 3 || k == 4) == (e.to_string().len() > 4_000)));
    // Same identities and ordinals as without the faults.
    assert_eq!(fake.expected("ATTAINMENT"), before);
    // A page starting after the poisoned change does not carry it.
    let after = get_json(&export_url(
        &fake,
        "ATTAINMENT",
        before[3].ordinal.unwrap(),
        2,
    ))
    .await;
    assert!(after["entities"][0].get("testError").is_none());
}

#[tokio::test]
async fn credentials_guard_export_and_graphql_only() {
    let fake = start_fake(5).await;
    let url = export_url(&fake, "PERSON", 0, 1);
    let urn = format!(
        "{}/cached/codebooks/urn:code:country",
        fake.kori_public_url()
    );
    let periods = format!(
        "{}/curriculum-periods?universityOrgId=x",
        fake.kori_public_url()
    );
    let graphql = format!("{}/graphql", fake.base_url());
    let query = serde_json::json!({"query": "{ grade_scales { id } }"});
    let client = reqwest::Client::new();

    fake.faults().require_basic_auth("sisu", "pässwörd");
    let (status, headers, _) = get(&url).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong = client
        .get(&url)
        .basic_auth("sisu", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(&url)
        .basic_auth("sisu", Some("pässwörd"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(
        client
            .post(&graphql)
            .json(&query)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(get(&urn).await.0, 200);
    assert_eq!(get(&periods).await.0, 200);

    fake.faults().clear();
    fake.faults().require_token("t0ken");
    assert_eq!(get(&url).await.0, 401);
    assert_eq!(
        client
            .get(&url)
            .header("token", "t0ken")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let graphql_ok = client
        .post(&graphql)
        .header("token", "t0ken")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(graphql_ok.status(), 200);
    assert_eq!(get(&urn).await.0, 200);

    fake.faults().clear();
    fake.faults().require_api_key("k3y");
    assert_eq!(get(&url).await.0, 401);
    assert_eq!(
        client
            .get(&url)
            .header("x-api-key", "k3y")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    fake.faults().clear();
    assert_eq!(get(&url).await.0, 200);
    // Unauthorised requests are counted too.
    assert_eq!(fake.requests("PERSON"), 8);
}

#[tokio::test]
async fn whole_set_services_take_one_shot_faults() {
    let fake = start_fake(5).await;
    let url = format!(
        "{}/cached/codebooks/urn:code:admission-type",
        fake.kori_public_url()
    );
    fake.faults().fail_next("ADMISSION_TYPE", 500, 1);
    fake.faults().truncated_next("ADMISSION_TYPE", 1);
    assert_eq!(get(&url).await.0, 500);
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert_eq!(
        get_json(&url).await["urn:code:admission-type:1"]["name"]["fi"],
        "Yhteishaku"
    );
    assert_eq!(fake.requests("ADMISSION_TYPE"), 3);
}
