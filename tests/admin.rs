//! The admin HTTP API over a real importer: open health and readiness
//! routes, token-guarded operator routes, force update and reset. One
//! behaviour per test, each on its own servers.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};

const TOKEN: &str = "admin-tok-4242";

/// The admin API of a daemon over a real importer, on a free port.
type Admin = AdminApi;

impl Admin {
    /// `method path` with the `token` header when `token` is given: the
    /// status and the body.
    async fn call(&self, method: Method, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = self
            .http
            .request(method, format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            req = req.header("token", token);
        }
        let answer = req.send().await.expect("the admin API answers");
        let status = answer.status();
        (status, answer.text().await.unwrap_or_default())
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str) -> (StatusCode, String) {
        self.call(Method::POST, path, Some(TOKEN)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, String) {
        self.call(Method::DELETE, path, Some(TOKEN)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_forbidden_clears_the_mark_and_the_next_run_imports() {
    let admin = Admin::start(20, &["PERSON", "COURSE_UNIT"], Some(TOKEN)).await;
    admin.env.fake.faults().forbid("COURSE_UNIT");
    let summary = admin
        .importer
        .run(
            &services(&["COURSE_UNIT"]),
            sis_importer::shutdown::Shutdown::never(),
        )
        .await
        .unwrap();
    assert!(!summary.success);
    assert_eq!(admin.importer.forbidden(), ["COURSE_UNIT"]);
    admin.env.fake.faults().allow("COURSE_UNIT");
    assert_eq!(
        admin.delete("/forbidden/NOPE").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = admin.delete("/forbidden/COURSE_UNIT").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"cleared":["COURSE_UNIT"]}"#);
    assert!(admin.importer.forbidden().is_empty());
    let summary = admin
        .importer
        .run(
            &services(&["COURSE_UNIT"]),
            sis_importer::shutdown::Shutdown::never(),
        )
        .await
        .unwrap();
    assert!(summary.success, "{summary:#?}");
    let (status, _) = admin.call(Method::DELETE, "/forbidden", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "guarded like the others");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_without_a_token() {
    let admin = Admin::start(5, &["PERSON"], Some(TOKEN)).await;
    assert_eq!(admin.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_lists_nats_redis_and_the_lease_in_check_lines() {
    let admin = Admin::start(5, &["PERSON"], Some(TOKEN)).await;
    let (status, body) = admin.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body.lines().map(|l| &l[..12]).collect();
    assert_eq!(
        names,
        ["ok    nats      ", "ok    redis     ", "ok    lease     "].map(|n| &n[..12])
    );
    assert!(
        body.contains("this instance test (host "),
        "the lease line names this instance: {body}"
    );
    assert!(body.contains("lease not held"), "no run yet: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_at_once_when_redis_is_gone() {
    let mut admin = Admin::start(5, &["PERSON"], Some(TOKEN)).await;
    admin.env.redis.kill();
    let asked = std::time::Instant::now();
    let (status, body) = admin.get("/readyz").await;
    // Probes give up after a second or two: a hanging answer would read as
    // a timeout, not as "Redis is down".
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("FAIL  redis     "), "{body}");
    assert!(
        body.contains("ok    nats      "),
        "NATS is still there: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_routes_refuse_a_missing_or_wrong_token() {
    let admin = Admin::start(5, &["PERSON"], Some(TOKEN)).await;
    for (method, path) in [
        (Method::GET, "/status"),
        (Method::POST, "/force_update"),
        (Method::POST, "/reset/PERSON"),
        (Method::GET, "/reset/PERSON?token=nope"),
    ] {
        for token in [None, Some("wrong")] {
            let (status, _) = admin.call(method.clone(), path, token).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
        }
    }
    assert_eq!(
        admin
            .importer
            .io
            .store
            .ordinal(&service("PERSON"))
            .await
            .unwrap(),
        None
    );
    assert!(!admin.importer.is_running(), "nothing was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_admin_token_the_guarded_routes_are_closed() {
    // An empty token (which validation refuses from a file) must not open
    // anything either, whatever reaches the server.
    for configured in [None, Some("")] {
        let admin = Admin::start(5, &["PERSON"], configured).await;
        for (method, path) in [
            (Method::GET, "/status"),
            (Method::POST, "/force_update"),
            (Method::GET, "/force_update?token="),
            (Method::POST, "/reset/PERSON"),
            (Method::GET, "/reset/PERSON?token="),
        ] {
            let (status, _) = admin.call(method.clone(), path, Some("")).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{path} with {configured:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_update_starts_one_run_and_refuses_another_or_a_reset_meanwhile() {
    let admin = Admin::start(300, &["PERSON", "COUNTRY"], Some(TOKEN)).await;
    admin.env.consumer.set_latency(Duration::from_millis(30));
    assert_eq!(admin.post("/force_update").await.0, StatusCode::ACCEPTED);
    assert_eq!(
        admin.post("/force_update").await.0,
        StatusCode::CONFLICT,
        "runs never overlap"
    );
    assert_eq!(
        admin.post("/reset/PERSON").await.0,
        StatusCode::CONFLICT,
        "a running import would commit over a reset"
    );
    admin.env.consumer.set_latency(Duration::ZERO);
    assert!(
        admin
            .env
            .wait_until_imported("PERSON", Duration::from_secs(30))
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_service_and_never_the_token() {
    let admin = Admin::start(50, &["PERSON", "COUNTRY"], Some(TOKEN)).await;
    run_ok(&admin.importer, &["PERSON"]).await;
    let (code, body) = admin.call(Method::GET, "/status", Some(TOKEN)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["services"][0]["service"], "PERSON");
    assert_eq!(
        status["services"][0]["ordinal"].as_i64(),
        admin.env.fake.greatest_ordinal("PERSON")
    );
    assert_eq!(status["services"][1]["service"], "COUNTRY");
    assert!(!body.contains(TOKEN), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_the_exposition_format_without_a_token() {
    // The registry is shared by every test of this binary: STUDY_RIGHT is
    // imported by this test alone, so its series count this run only.
    let admin = Admin::start(9, &["STUDY_RIGHT"], Some(TOKEN)).await;
    run_ok(&admin.importer, &["STUDY_RIGHT"]).await;
    let answer = admin
        .http
        .get(format!("http://{}/metrics", admin.addr))
        .send()
        .await
        .expect("the admin API answers");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let body = answer.text().await.unwrap();
    for series in [
        "sis_importer_entities_fetched_total{service=\"STUDY_RIGHT\"} 9",
        "sis_importer_entities_acknowledged_total{service=\"STUDY_RIGHT\"} 9",
        "sis_importer_last_run_success{service=\"STUDY_RIGHT\"} 1",
    ] {
        assert!(body.lines().any(|l| l == series), "{series} in:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_deletes_the_ordinal_and_an_unknown_service_is_404() {
    let admin = Admin::start(20, &["PERSON"], Some(TOKEN)).await;
    run_ok(&admin.importer, &["PERSON"]).await;
    let person = service("PERSON");
    assert!(admin
        .importer
        .io
        .store
        .ordinal(&person)
        .await
        .unwrap()
        .is_some());
    assert_eq!(admin.post("/reset/PERSON").await.0, StatusCode::OK);
    assert_eq!(
        admin.importer.io.store.ordinal(&person).await.unwrap(),
        None
    );
    assert_eq!(admin.post("/reset/NOPE").await.0, StatusCode::NOT_FOUND);
    let (status, body) = admin.post("/reset/person").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("did you mean PERSON?"), "{body}");
}

/// The old importer's GET forms with `?token=` (discouraged, accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_get_forms_with_a_token_query_still_work() {
    let admin = Admin::start(20, &["PERSON"], Some(TOKEN)).await;
    run_ok(&admin.importer, &["PERSON"]).await;
    let (code, _) = admin.get(&format!("/reset/PERSON?token={TOKEN}")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        admin
            .importer
            .io
            .store
            .ordinal(&service("PERSON"))
            .await
            .unwrap(),
        None
    );
    let (code, _) = admin.get(&format!("/force_update?token={TOKEN}")).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert!(
        admin
            .env
            .wait_until_imported("PERSON", Duration::from_secs(30))
            .await,
        "the GET form started a run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_when_the_stream_is_deleted_under_a_running_importer() {
    let admin = Admin::start(5, &["PERSON"], Some(TOKEN)).await;
    let client = async_nats::connect(admin.env.nats.url()).await.unwrap();
    let stream = admin.importer.config.nats_stream.clone();
    async_nats::jetstream::new(client)
        .delete_stream(&stream)
        .await
        .unwrap();
    let (status, body) = admin.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains(&format!("FAIL  nats      stream {stream} is gone")),
        "{body}"
    );
    assert!(body.contains("ok    redis     "), "{body}");
}
