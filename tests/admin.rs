//! The admin HTTP API over a real importer: open health and metrics routes,
//! token-guarded operator routes, force update and reset.

mod common;

use std::time::Duration;

use common::*;
use sis_importer::config::Secret;
use sis_importer::pipeline::daemon::Daemon;
use sis_importer::pipeline::Importer;
use sis_importer::shutdown;

/// The admin API over a daemon for `ids` on a free port; the trigger stops it.
async fn serve(
    importer: std::sync::Arc<Importer>,
    ids: &[&str],
    lease: Option<sis_importer::lease::Lease>,
) -> (
    std::net::SocketAddr,
    shutdown::ShutdownTrigger,
    tokio::task::JoinHandle<()>,
) {
    let (trigger, shutdown) = shutdown::channel();
    let daemon = Daemon::new(importer, services(ids), shutdown.clone(), lease);
    let (addr, server) =
        sis_importer::admin::serve(daemon, "127.0.0.1:0".parse().unwrap(), shutdown)
            .await
            .unwrap();
    (addr, trigger, server)
}

/// PERSON's committed ordinal once it reaches `greatest` (or after 30 s).
async fn committed_at(env: &Env, importer: &Importer, greatest: Option<i64>) -> Option<i64> {
    let mut committed = None;
    for _ in 0..300 {
        committed = env.ordinal(importer, "PERSON").await;
        if committed == greatest {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_answer_and_guard_with_the_token() {
    let env = Env::start(300).await;
    let mut config = env.config();
    config.admin_token = Some(Secret::new("admin-tok-4242"));
    let importer = env.importer(config).await;
    let lease =
        sis_importer::lease::Lease::new(importer.store.clone(), Duration::from_secs(10), "test");
    let owner = lease.owner().to_owned();
    let (addr, trigger, server) =
        serve(importer.clone(), &["PERSON", "COUNTRY"], Some(lease)).await;
    let url = |path: &str| format!("http://{addr}{path}");
    let http = reqwest::Client::new();

    assert_eq!(
        http.get(url("/healthz")).send().await.unwrap().status(),
        200
    );
    let ready = http.get(url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready = ready.text().await.unwrap();
    assert!(ready.contains("ok    nats   "), "{ready}");
    assert!(ready.contains("ok    redis  "), "{ready}");
    assert!(
        ready.contains(&format!("ok    lease  this instance {owner}; lease not held")),
        "no run yet: {ready}"
    );

    for (path, method) in [
        ("/status", "GET"),
        ("/force_update", "POST"),
        ("/reset/PERSON", "POST"),
    ] {
        let req = http.request(method.parse().unwrap(), url(path));
        assert_eq!(
            req.send().await.unwrap().status(),
            401,
            "{path} without a token"
        );
        let req = http
            .request(method.parse().unwrap(), url(path))
            .header("token", "wrong");
        assert_eq!(
            req.send().await.unwrap().status(),
            401,
            "{path} with a wrong token"
        );
    }

    env.consumer.set_latency(Duration::from_millis(30));
    let started = http
        .post(url("/force_update"))
        .header("token", "admin-tok-4242")
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let again = http
        .post(url("/force_update"))
        .bearer_auth("admin-tok-4242")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "runs never overlap");
    let reset = http
        .post(url("/reset/PERSON"))
        .header("token", "admin-tok-4242")
        .send()
        .await
        .unwrap();
    assert_eq!(
        reset.status(),
        409,
        "a running import would commit over a reset"
    );
    env.consumer.set_latency(Duration::ZERO);
    // The run may still be waiting for the lease: wait for its commits.
    let greatest = env.fake.greatest_ordinal("PERSON");
    let committed = committed_at(&env, &importer, greatest).await;
    assert_eq!(committed, greatest);
    assert!(eventually(Duration::from_secs(30), || !importer.is_running()).await);

    let status: serde_json::Value = http
        .get(url("/status?token=admin-tok-4242"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["services"][0]["service"], "PERSON");
    assert_eq!(
        status["services"][0]["ordinal"].as_i64(),
        env.fake.greatest_ordinal("PERSON")
    );
    assert!(!status.to_string().contains("admin-tok-4242"));

    let metrics = http
        .get(url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The route serves the exposition format; what the numbers count is
    // tests/metrics.rs's (the registry here is shared by both tests).
    assert!(
        metrics.contains("# TYPE sis_importer_entities_acknowledged_total counter"),
        "{metrics}"
    );

    // The old importer's GET forms with ?token= (discouraged, accepted).
    let wrong = http
        .get(url("/reset/PERSON?token=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(env.ordinal(&importer, "PERSON").await.is_some());
    let reset = http
        .get(url("/reset/PERSON?token=admin-tok-4242"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    assert_eq!(env.ordinal(&importer, "PERSON").await, None);
    let unknown = http
        .post(url("/reset/NOPE"))
        .header("token", "admin-tok-4242")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let forced = http
        .get(url("/force_update?token=admin-tok-4242"))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 202);
    let committed = committed_at(&env, &importer, greatest).await;
    assert_eq!(committed, greatest, "the GET form started a run");

    trigger.trigger();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_admin_token_the_guarded_routes_are_closed() {
    let mut env = Env::start(5).await;
    // An empty token (which validation refuses from a file) must not open
    // anything either, whatever reaches the server.
    for token in [None, Some("")] {
        let mut config = env.config();
        config.admin_token = token.map(Secret::new);
        let importer = Importer::connect(config).await.unwrap();
        let (addr, _trigger, _server) = serve(importer, &["PERSON"], None).await;
        let http = reqwest::Client::new();
        for (path, method) in [
            ("/status", "GET"),
            ("/force_update", "POST"),
            ("/force_update?token=", "GET"),
            ("/reset/PERSON", "POST"),
            ("/reset/PERSON?token=", "GET"),
        ] {
            let answer = http
                .request(method.parse().unwrap(), format!("http://{addr}{path}"))
                .header("token", "")
                .bearer_auth("")
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 401, "{path} with token {token:?}");
        }
    }
    let importer = env.importer(env.config()).await;
    let (addr, _trigger, _server) = serve(importer, &["PERSON"], None).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(
        http.get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Redis gone: /readyz says so with a 503 (and promptly: probes give up
    // after a second or two, so a hanging answer would read as a timeout).
    env.redis.kill();
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .expect("readyz answers while Redis is down");
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.unwrap();
    assert!(body.contains("FAIL  redis  "), "{body}");
    assert!(body.contains("ok    nats   "), "NATS is still there: {body}");
}
