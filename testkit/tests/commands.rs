//! The test kit's commands as processes: `demo` on servers of its own,
//! and `fake-sisu` serving pages with the latency asked.

use std::process::{Command, Stdio};

const DEMO: &str = env!("CARGO_BIN_EXE_demo");
const FAKE_SISU: &str = env!("CARGO_BIN_EXE_fake-sisu");

#[test]
fn demo_runs_on_its_own_servers_and_prints_a_summary() {
    let out = Command::new(DEMO)
        .args(["--entities", "150"])
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
    let mut child = std::process::Command::new(FAKE_SISU)
        .args([
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
