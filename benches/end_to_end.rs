//! End-to-end import throughput and memory: a real `nats-server -js` and
//! `redis-server`, the fake Sisu with a backlog of N entities per export
//! service, and the reference consumer (2 instances, nothing recorded)
//! answering every chunk. The importer runs with production chunking
//! (`FETCH_AMOUNT` 1000, `MAX_CHUNK_SIZE` 100, `MAX_CHUNK_BYTES` 900000)
//! over PERSON, ATTAINMENT and TERM_REGISTRATION (the largest entities).
//!
//! What it shows:
//! - entities/s and MB/s (entity JSON bytes as Sisu served them) per
//!   service, from fetch to committed ordinal, i.e. including the wait for
//!   every consumer acknowledgement;
//! - peak RSS (`VmHWM`) of the process. Each size runs in a fresh child
//!   process (this same binary), so each peak is its own. The process also
//!   hosts the fake Sisu and the consumer; both are constant in N, so the
//!   peak still exposes any buffering that grows with the backlog.
//!
//! `BENCH_ENTITIES` (default 20000) is N; the bench runs N and 4N. The
//! target line is printed with each result; the exit code is non-zero only
//! when an import fails (`summary.success` false) or a child crashes.
//!
//! Run: `cargo bench --bench end_to_end` (release).

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use sis_importer::catalogue::{builtin, Service};
use sis_importer::config::{Config, Secret};
use sis_importer::pipeline::Importer;
use sis_importer::shutdown::Shutdown;
use sis_importer::testkit::consumer::{ConsumerConfig, ReferenceConsumer};
use sis_importer::testkit::fake_sisu::{FakeSisu, FakeSisuConfig};
use sis_importer::testkit::servers::{NatsServer, RedisServer};

const SERVICES: &[&str] = &["PERSON", "ATTAINMENT", "TERM_REGISTRATION"];
const CHILD_ENV: &str = "BENCH_E2E_CHILD";
const TARGET_RATE: f64 = 20_000.0;
/// Peak RSS at 4N may exceed the one at N by at most this factor.
const TARGET_RSS_GROWTH: f64 = 1.25;
const TARGET: &str = "target: >= 20000 entities/s per service on a 2-core machine in release; \
                      peak RSS independent of backlog size (4x backlog: < 1.25x peak RSS)";

fn main() -> ExitCode {
    if let Ok(n) = std::env::var(CHILD_ENV) {
        let n: u64 = n.parse().expect("entity count");
        return child(n);
    }
    let base: u64 = std::env::var("BENCH_ENTITIES")
        .ok()
        .map(|v| v.parse().expect("BENCH_ENTITIES is a number"))
        .unwrap_or(20_000);
    println!("{TARGET}");
    let mut peaks = Vec::new();
    let mut failed = false;
    for n in [base, 4 * base] {
        println!("\n== {n} entities per service ==");
        match spawn_child(n) {
            Some((peak, slowest)) => {
                peaks.push((n, peak));
                let verdict = if slowest >= TARGET_RATE {
                    "met"
                } else {
                    "MISSED"
                };
                println!("slowest service {slowest:.0} entities/s: rate target {verdict}");
            }
            None => failed = true,
        }
    }
    if let [(n1, p1), (n2, p2)] = peaks[..] {
        let growth = p2 as f64 / p1 as f64;
        let verdict = if growth < TARGET_RSS_GROWTH {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "\npeak RSS: {:.1} MiB at {n1}, {:.1} MiB at {n2} entities/service (x{growth:.2} for x{} backlog): memory target {verdict}",
            p1 as f64 / 1024.0,
            p2 as f64 / 1024.0,
            n2 / n1
        );
    }
    println!("{TARGET}");
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one size in a fresh process; echoes its output and returns its
/// peak RSS (KiB) and slowest service rate, or `None` if it failed.
fn spawn_child(n: u64) -> Option<(u64, f64)> {
    let exe = std::env::current_exe().expect("own executable");
    let mut proc = Command::new(exe)
        .env(CHILD_ENV, n.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bench child starts");
    let (mut peak, mut slowest) = (None, None);
    for line in BufReader::new(proc.stdout.take().expect("piped")).lines() {
        let line = line.expect("child output");
        println!("{line}");
        if let Some(v) = line.strip_prefix("peak_rss_kib=") {
            peak = v.trim().parse().ok();
        }
        if let Some(v) = line.strip_prefix("slowest_entities_per_s=") {
            slowest = v.trim().parse().ok();
        }
    }
    let status = proc.wait().expect("bench child exits");
    if !status.success() {
        eprintln!("run with {n} entities failed: {status}");
        return None;
    }
    Some((peak?, slowest?))
}

fn child(n: u64) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(n))
}

async fn run(n: u64) -> ExitCode {
    let services: Vec<Service> = builtin()
        .into_iter()
        .filter(|s| SERVICES.contains(&s.id.as_str()))
        .collect();
    let nats = NatsServer::start().await.expect("nats-server starts");
    let redis = RedisServer::start().await.expect("redis-server starts");
    let fake = FakeSisu::start(FakeSisuConfig {
        seed: 7,
        entities_per_service: n,
        ..FakeSisuConfig::default()
    })
    .await
    .expect("fake Sisu starts");
    let consumer = ReferenceConsumer::start(ConsumerConfig {
        services: services.clone(),
        instances: 2,
        record: false,
        ..ConsumerConfig::new(nats.url())
    });
    let config = Config {
        sis_api_url: Some(fake.base_url()),
        kori_public_api_url: fake.kori_public_url(),
        nats_url: nats.url(),
        redis_url: Secret::new(redis.url()),
        fetch_amount: 1000,
        max_chunk_size: 100,
        max_chunk_bytes: 900_000,
        sis_retry_base_ms: 10,
        sis_retry_max_ms: 200,
        sis_request_timeout_secs: 5.0,
        shutdown_grace_secs: 5.0,
        ..Config::default()
    };
    config.validate().expect("bench config is valid");
    let importer = Importer::connect(config).await.expect("importer connects");
    wait_for_consumers(&importer, &services).await;
    let rss_before = proc_status_kib("VmRSS");

    let started = Instant::now();
    let summary = importer
        .run(&services, Shutdown::never())
        .await
        .expect("no other run in progress");
    let wall = started.elapsed();
    // Read before counting bytes below, which allocates on its own.
    let peak = proc_status_kib("VmHWM");
    let received = consumer.received();

    let http = reqwest::Client::new();
    let mut slowest = f64::INFINITY;
    let (mut total_entities, mut total_bytes) = (0u64, 0u64);
    for (report, service) in summary.services.iter().zip(&services) {
        let bytes = served_bytes(&http, &fake, service).await;
        let secs = (report.duration_ms.max(1)) as f64 / 1000.0;
        let rate = report.entities as f64 / secs;
        slowest = slowest.min(rate);
        total_entities += report.entities;
        total_bytes += bytes;
        println!(
            "{:<18} {:>8} entities {:>6} chunks {:>8.1} MB in {:>7.2} s: {:>8.0} entities/s {:>7.1} MB/s ({} B/entity, {}, {} attempt(s))",
            report.service,
            report.entities,
            report.chunks,
            bytes as f64 / 1e6,
            secs,
            rate,
            bytes as f64 / 1e6 / secs,
            bytes / report.entities.max(1),
            report.result.as_str(),
            report.attempts,
        );
    }
    println!(
        "all services       {total_entities:>8} entities in {:.2} s: {:.0} entities/s {:.1} MB/s; consumer acknowledged {} entities in {} chunks",
        wall.as_secs_f64(),
        total_entities as f64 / wall.as_secs_f64(),
        total_bytes as f64 / 1e6 / wall.as_secs_f64(),
        received.entities_ok,
        received.chunks_ok,
    );
    println!(
        "RSS before run {:.1} MiB, peak {:.1} MiB",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!("peak_rss_kib={peak}");
    println!("slowest_entities_per_s={slowest:.0}");
    let complete = summary.services.iter().all(|r| r.entities == n);
    consumer.stop().await;
    fake.shutdown().await;
    drop((nats, redis));
    if summary.success && complete {
        ExitCode::SUCCESS
    } else {
        eprintln!("import failed or incomplete: {summary:#?}");
        ExitCode::FAILURE
    }
}

/// Bytes of entity JSON the fake serves for `service`, read page by page
/// (1000 at a time, as the importer fetches) so it adds no memory of note.
async fn served_bytes(http: &reqwest::Client, fake: &FakeSisu, service: &Service) -> u64 {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        has_more: bool,
        greatest_ordinal: i64,
        entities: Vec<Box<RawValue>>,
    }
    let url = format!(
        "{}{}{}",
        fake.base_url(),
        service.source.api_prefix(),
        service.path
    );
    let (mut since, mut bytes) = (0i64, 0u64);
    loop {
        let page: Page = http
            .get(&url)
            .query(&[("since", since.to_string()), ("limit", "1000".into())])
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("fake Sisu answers")
            .json()
            .await
            .expect("a page");
        bytes += page
            .entities
            .iter()
            .map(|e| e.get().len() as u64)
            .sum::<u64>();
        if !page.has_more || page.entities.is_empty() {
            return bytes;
        }
        since = page.greatest_ordinal;
    }
}

/// Waits until the consumer has found the stream (made by `connect`) and
/// opened its durable consumers, so its start-up is not timed.
async fn wait_for_consumers(importer: &Importer, services: &[Service]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = importer
        .nats
        .jetstream
        .get_stream(&importer.nats.stream)
        .await
        .expect("the stream exists");
    for service in services {
        let name = format!("reference_{}", service.id);
        while stream.consumer_info(&name).await.is_err() {
            assert!(Instant::now() < deadline, "consumer {name} never appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A `kB` field of `/proc/self/status` (KiB), 0 if unreadable.
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
