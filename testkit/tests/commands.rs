//! The test kit's commands as processes: `demo` on servers of its own,
//! and `fake-sisu` serving pages with the latency, field order and
//! generation asked.

use sis_importer::catalogue::{self, Service};
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// A `fake-sisu` process on a free port; killed when dropped.
struct FakeSisuProcess {
    child: std::process::Child,
    port: u16,
}

impl FakeSisuProcess {
    fn start(args: &[&str]) -> FakeSisuProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(FAKE_SISU)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        FakeSisuProcess { child, port }
    }

    /// How long GET `path` took and its body, retrying while the process
    /// starts.
    async fn get(&self, path: &str) -> (Duration, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let http = reqwest::Client::new();
        for _ in 0..100 {
            let started = Instant::now();
            if let Ok(r) = http.get(&url).send().await {
                assert!(r.status().is_success(), "{url}: {}", r.status());
                return (started.elapsed(), r.text().await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the fake Sisu does not answer {url}");
    }

    /// The entities of one export page of `service` from the start.
    async fn entities(&self, service: &Service, limit: u32) -> Vec<serde_json::Value> {
        let path = format!("{}{}", service.source.api_prefix(), service.path);
        let (_, body) = self.get(&format!("{path}?since=0&limit={limit}")).await;
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        page["entities"].as_array().unwrap().clone()
    }
}

impl Drop for FakeSisuProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PERSONS: &str = "/ori/api/persons/v1/export";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_sisu_command_serves_pages_with_the_latency_asked() {
    let fake = FakeSisuProcess::start(&["--entities", "20", "--latency-ms", "400"]);
    let (took, body) = fake.get(&format!("{PERSONS}?since=0&limit=5")).await;
    assert!(took >= Duration::from_millis(400), "answered in {took:?}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["entities"].as_array().unwrap().len(), 5);
    assert!(
        body.starts_with(r#"{"greatestOrdinal":"#),
        "Sisu's order: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_sisu_command_puts_paging_fields_last_when_asked() {
    let fake = FakeSisuProcess::start(&["--entities", "20", "--fields-last"]);
    let (_, body) = fake.get(&format!("{PERSONS}?since=0&limit=20")).await;
    assert!(body.starts_with(r#"{"entities":[{"#), "{body}");
    let tail = r#"],"hasMore":false,"greatestOrdinal":"#;
    assert!(body.contains(tail), "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["entities"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_sisu_command_serves_later_generations_on_top_of_the_first() {
    let fakes = ["1", "2", "3"].map(|generation| {
        FakeSisuProcess::start(&["--entities", "100", "--generation", generation])
    });
    let mut new = 0;
    for service in catalogue::builtin()
        .into_iter()
        .filter(|s| s.source.is_export())
    {
        let id = &service.id;
        let [one, two, three] = [0, 1, 2].map(|g| fakes[g].entities(&service, 1000));
        let (one, two, three) = (one.await, two.await, three.await);
        // Each later generation: 10% of --entities more changes per service.
        assert_eq!([one.len(), two.len(), three.len()], [100, 110, 120], "{id}");
        assert_eq!(two[..100], one[..], "{id}: generation 1 unchanged below 2");
        assert_eq!(
            three[..110],
            two[..],
            "{id}: generation 2 unchanged below 3"
        );
        let identity = |e: &serde_json::Value| service.identity_of(&e.to_string()).unwrap();
        let before: HashSet<String> = one.iter().map(identity).collect();
        new += two[100..]
            .iter()
            .filter(|e| !before.contains(&identity(e)))
            .count();
    }
    // 17 services × 10 changes, ~15% of them new identities.
    assert!(
        (5..=60).contains(&new),
        "new identities in generation 2: {new}"
    );
}
