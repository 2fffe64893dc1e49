//! The admin API's dead-letter routes over a real daemon (list, replay,
//! clear, behind the token), and a replay never beside a run: the command
//! waits for another instance's lease, the admin API answers 409, the
//! library refuses during this process's run.

mod common;
#[path = "dead_letters/support.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sis_importer::importer::replay::{Pick, ReplayError};
use sis_importer::shutdown::Shutdown;
use support::*;

const TOKEN: &str = "admin-tok-dead";

/// A daemon over PERSON with a lease of its own and its admin API.
struct Admin {
    env: Env,
    base: String,
    http: reqwest::Client,
    _stop: sis_importer::shutdown::ShutdownTrigger,
}

impl Admin {
    async fn start(env: Env) -> Admin {
        use sis_importer::{importer::daemon::Daemon, lease::Lease};
        let mut config = env.config();
        config.admin_token = Some(sis_importer::config::Secret::new(TOKEN));
        let importer = env.importer(config).await;
        let lease = Lease::new(importer.io.store.clone(), Duration::from_secs(10), "test");
        let (stop, shutdown) = sis_importer::shutdown::channel();
        let ids = services(&["PERSON"]);
        let daemon = Daemon::new(importer, ids, shutdown.clone(), Some(lease));
        let addr = "127.0.0.1:0".parse().unwrap();
        let (addr, _) = sis_importer::admin::serve(daemon, addr, shutdown)
            .await
            .unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = format!("http://{addr}");
        Admin {
            env,
            base,
            http,
            _stop: stop,
        }
    }

    /// `method path` with the token (or without): status and body.
    async fn call(&self, method: Method, path: &str, token: bool) -> (StatusCode, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if token {
            req = req.header("token", TOKEN);
        }
        let answer = req.send().await.expect("the admin API answers");
        (answer.status(), answer.text().await.unwrap())
    }

    async fn json(&self, method: Method, path: &str) -> Value {
        let (status, body) = self.call(method, path, true).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_lists_replays_and_clears_behind_the_token() {
    let mut admin = Admin::start(poisoned(&[3, 11, 19]).await).await;
    let ids: Vec<String> = [3, 11, 19].map(|i| change(&admin.env, i).0).into();
    for (method, path) in [
        (Method::GET, "/dead-letters"),
        (Method::GET, "/dead-letters/PERSON"),
        (Method::POST, "/dead-letters/PERSON/replay?all=true"),
        (Method::DELETE, "/dead-letters/PERSON"),
    ] {
        let (status, _) = admin.call(method.clone(), path, false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let all = admin.json(Method::GET, "/dead-letters").await;
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "only services with letters: {all}"
    );
    assert_eq!(all[0]["service"], "PERSON");
    assert_eq!(all[0]["total"], 3);
    let one = admin
        .json(Method::GET, "/dead-letters/PERSON?limit=1")
        .await;
    assert_eq!(one[0]["letters"].as_array().unwrap().len(), 1);
    let (status, body) = admin.call(Method::GET, "/dead-letters/NOPE", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("known ids: PERSON,"), "{body}");
    let replay = "/dead-letters/PERSON/replay";
    let (status, body) = admin.call(Method::POST, replay, true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = admin
        .call(Method::POST, &format!("{replay}?id=hy-nope"), true)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    fix_consumer(&mut admin.env).await;
    let report = admin
        .json(Method::POST, &format!("{replay}?id={}", ids[0]))
        .await;
    assert_eq!(report["result"], "completed", "{report}");
    assert_eq!(report["delivered"][0]["identity"], ids[0].as_str());
    assert!(seen_by_consumer(&admin.env, &change(&admin.env, 3)));
    let cleared = admin
        .json(
            Method::DELETE,
            &format!("/dead-letters/PERSON?id={}", ids[1]),
        )
        .await;
    assert_eq!(cleared["removed"], 1);
    let left = admin.json(Method::GET, "/dead-letters/PERSON").await;
    assert_eq!(left[0]["total"], 1);
    assert_eq!(left[0]["letters"][0]["identity"], ids[2].as_str());
    let cleared = admin.json(Method::DELETE, "/dead-letters/PERSON").await;
    assert_eq!(cleared["removed"], 1);
    assert_eq!(
        admin.json(Method::GET, "/dead-letters").await,
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_never_overlaps_a_run() {
    let admin = Admin::start(poisoned(&[7]).await).await;
    let mut conn = redis(&admin.env).await;
    let replay = "/dead-letters/PERSON/replay?all=true";
    // Another instance's run: the admin API says who, the command waits.
    let other = "pod-b (pid 7, 0badf00d)";
    cmd::<()>(&mut conn, &["SET", "SIS_IMPORTER:LOCK", other]).await;
    let (status, body) = admin.call(Method::POST, replay, true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains(other), "{body}");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "lease_ttl_secs = 3\n").unwrap();
    let mut waiting = admin
        .env
        .command(&["dead-letters", "replay", "PERSON", "--all", "--config"]);
    let waiting = waiting
        .arg(config.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let waiting = waiting.spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        letter_keys(&mut conn).await.0,
        1,
        "nothing replayed while waiting"
    );
    cmd::<()>(&mut conn, &["DEL", "SIS_IMPORTER:LOCK"]).await;
    let out = tokio::task::spawn_blocking(|| waiting.wait_with_output()).await;
    let (code, out, err) = output(&out.unwrap().unwrap());
    assert!(
        err.contains("another instance holds the import lease; waiting"),
        "{err}"
    );
    assert!(err.contains(other), "names the holder: {err}");
    assert_eq!(code, Some(1), "still poisonous: {out}");
    assert!(out.contains("1 failed again and kept"), "{out}");

    // This process's own run: 409 from the admin API, refused in the library.
    let slow = admin.env.fake.faults();
    slow.latency(Some("PERSON"), Duration::from_secs(2));
    let (status, _) = admin.call(Method::POST, "/force_update", true).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = admin.call(Method::POST, replay, true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let importer = admin.env.importer(admin.env.config()).await;
    let running = spawn_run(&importer, &["PERSON"]);
    assert!(eventually(Duration::from_secs(5), || importer.is_running()).await);
    let refused = importer
        .replay_dead_letters(&service("PERSON"), &Pick::All, None, Shutdown::never())
        .await;
    assert!(
        matches!(refused, Err(ReplayError::RunInProgress)),
        "{refused:?}"
    );
    running.await.unwrap();
    assert_eq!(letter_keys(&mut conn).await.0, 1);
}
