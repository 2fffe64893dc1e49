//! The daemon (`sis-importer run`) and the demo, as processes: start-up run,
//! one-time services re-armed, cron runs that never overlap, SIGTERM.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use sis_importer::config::Secret;
use sis_importer::store::OrdinalStore;

const BIN: &str = env!("CARGO_BIN_EXE_sis-importer");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_runs_at_start_and_on_schedule_rearms_one_time_services_and_stops_on_sigterm() {
    let env = Env::start(400).await;
    let store = OrdinalStore::connect(&Secret::new(env.redis.url()))
        .await
        .unwrap();
    // COUNTRY was fetched by an earlier process: the daemon must re-arm it.
    store.commit(&service("COUNTRY"), 1, 0, None).await.unwrap();
    store.set_forbidden("PERSON", true).await.unwrap();
    env.consumer.set_latency(Duration::from_millis(40));

    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env.env_vars() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .env("SERVICES", "PERSON,COUNTRY")
        .env("CRON", "* * * * * *")
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let all_person = |r: &sis_importer::testkit::consumer::Received| {
        entities_of(r, "PERSON") >= 400 && entities_of(r, "COUNTRY") > 0
    };
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), all_person)
            .await,
        "start-up run imports, COUNTRY re-armed, PERSON no longer forbidden"
    );
    env.consumer.set_latency(Duration::ZERO);
    env.fake.add_generation(25);
    let greatest = env.fake.greatest_ordinal("PERSON");
    let mut moved = false;
    for _ in 0..100 {
        if store.ordinal(&service("PERSON")).await.unwrap() == greatest {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "a scheduled run imported the new generation");

    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut logs = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status, logs)
    })
    .await
    .unwrap();
    let (status, logs) = status;
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(logs.contains("one-time services re-armed"), "{logs}");
    assert!(
        logs.contains("run skipped"),
        "the slow first run overlapped cron ticks, which were skipped: {logs}"
    );
    env.assert_delivered("PERSON", &[]);
}

#[test]
fn demo_runs_on_its_own_servers_and_prints_a_summary() {
    let out = Command::new(BIN)
        .args(["demo", "--entities", "150"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("started nats-server"), "{stdout}");
    assert!(stdout.contains("started redis-server"), "{stdout}");
    for id in [
        "PERSON",
        "TERM_REGISTRATION",
        "GRAPHQL_GRADE_SCALES",
        "CURRICULUM_PERIOD",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(id) && l.contains(" ok ")),
            "{id}: {stdout}"
        );
    }
    let attainment = stdout
        .lines()
        .find(|l| l.starts_with("ATTAINMENT "))
        .unwrap();
    assert!(
        attainment.split_whitespace().nth(4) == Some("1"),
        "one planted dead letter: {attainment}"
    );
    assert!(stdout.contains("success: true"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_sisu_command_serves_pages_with_the_latency_asked() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(BIN)
        .args([
            "fake-sisu",
            "--port",
            &port.to_string(),
            "--entities",
            "20",
            "--latency-ms",
            "400",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/ori/api/persons/v1/export?since=0&limit=5");
    let http = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..100 {
        let started = std::time::Instant::now();
        if let Ok(r) = http.get(&url).send().await {
            answer = Some((started.elapsed(), r.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let (took, body) = answer.expect("the fake Sisu answers");
    assert!(
        took >= std::time::Duration::from_millis(400),
        "answered in {took:?}"
    );
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["entities"].as_array().unwrap().len(), 5);
}
