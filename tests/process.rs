//! The `sis-importer` binary as operators run it: exit codes, bad
//! configuration, SIGKILL and SIGTERM mid-run. (`status` and `reset` are
//! in operator_commands.rs, what it logs in logs.rs, `check` in check.rs.)

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_zero_when_every_chosen_service_finished_and_imports_only_those() {
    let env = Env::start(40).await;
    let out = env
        .command(&["once", "--service", "PERSON", "--service", "COUNTRY"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = env.store().await;
    assert_eq!(
        store.ordinal(&service("PERSON")).await.unwrap(),
        env.fake.greatest_ordinal("PERSON")
    );
    assert_eq!(
        store.ordinal(&service("ORGANISATION")).await.unwrap(),
        None,
        "only the chosen services"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_one_when_panic_timeouts_use_up_the_retries_and_commits_nothing() {
    let env = Env::start(40).await;
    let store = env.store().await;
    env.consumer.set_never_answer(true);
    let out = env
        .command(&["once", "--service", "ORGANISATION"])
        .env("PANIC_TIMEOUT", "0.5")
        .env("UPDATE_RETRY_LIMIT", "2")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        store.ordinal(&service("ORGANISATION")).await.unwrap(),
        None,
        "ordinal untouched"
    );
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("panic timeout") || logs.contains("no feedback progress"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_fails_fast_with_one_clear_message() {
    let env = Env::start(5).await;
    let cases: [(&str, &str, &str); 4] = [
        ("SERVICES", "PERSON,NO_SUCH", "NO_SUCH"),
        ("CRON", "whenever", "CRON"),
        ("NATS_URL", "nats://127.0.0.1:1", "NATS"),
        ("REDIS_URL", "redis://127.0.0.1:1/", "Redis"),
    ];
    for (name, value, expect) in cases {
        let out = env.command(&["once"]).env(name, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expect), "{name}: {stderr}");
    }
    let out = env
        .command(&["once"])
        .env_remove("SIS_API_URL")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIS_API_URL"));
    assert_eq!(env.fake.requests("PERSON"), 0, "nothing fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_and_never_commits_past_unacknowledged() {
    let env = Env::start(3000).await;
    env.consumer.set_latency(Duration::from_millis(15));
    let store = env.store().await;
    let person = service("PERSON");
    let mut child = env
        .command(&["once", "--service", "PERSON"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it get well into the import, with batches committed and more in flight.
    let started = env
        .consumer
        .wait_until(Duration::from_secs(60), |r| entities_of(r, "PERSON") >= 800)
        .await;
    assert!(started, "import progresses");
    child.kill().unwrap();
    child.wait().unwrap();
    let committed = store
        .ordinal(&person)
        .await
        .unwrap()
        .expect("some batches were committed");
    let seen = env.consumer.received().per_service["PERSON"].seen.clone();
    for e in env.fake.expected("PERSON") {
        if e.ordinal.unwrap() <= committed {
            assert!(
                seen.contains(&(e.identity.clone(), e.ordinal)),
                "committed ordinal {committed} passes unacknowledged {:?}",
                e.ordinal
            );
        }
    }
    assert!(
        committed < env.fake.greatest_ordinal("PERSON").unwrap(),
        "killed before the end"
    );
    env.consumer.set_latency(Duration::ZERO);
    let out = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_delivered("PERSON", &[]);
    assert_eq!(
        store.ordinal(&person).await.unwrap(),
        env.fake.greatest_ordinal("PERSON")
    );
    // The restart resumed the killed attempt: what consumers had
    // acknowledged, and what JetStream still held for them, was not sent
    // again (before resumption: every uncommitted batch, up to
    // PIPELINE_DEPTH × FETCH_AMOUNT entities).
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("resuming an interrupted attempt"), "{logs}");
    let r = &env.consumer.received().per_service["PERSON"];
    let duplicates = r.entities - r.seen.len() as u64;
    let chunk = env.config().max_chunk_size as u64;
    assert!(
        duplicates < chunk,
        "{duplicates} entities delivered twice after one SIGKILL (a chunk is {chunk})"
    );
    eprintln!("duplicates after one SIGKILL: {duplicates}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_fetching_commits_what_is_acknowledged_and_exits_zero() {
    let env = Env::start(3000).await;
    env.consumer.set_latency(Duration::from_millis(10));
    let store = env.store().await;
    let child = env
        .command(&["once", "--service", "PERSON"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), |r| entities_of(r, "PERSON") >= 300)
            .await
    );
    let pid = child.id() as i32;
    unsafe_kill(pid, "TERM");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "SIGTERM is a clean stop: {logs}"
    );
    assert!(logs.contains("shutdown"), "{logs}");
    let committed = store
        .ordinal(&service("PERSON"))
        .await
        .unwrap()
        .expect("acknowledged batches committed");
    assert!(
        committed < env.fake.greatest_ordinal("PERSON").unwrap(),
        "fetching stopped"
    );
    let seen = env.consumer.received().per_service["PERSON"].seen.clone();
    for e in env
        .fake
        .expected("PERSON")
        .iter()
        .filter(|e| e.ordinal.unwrap() <= committed)
    {
        assert!(seen.contains(&(e.identity.clone(), e.ordinal)));
    }
}

fn unsafe_kill(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
