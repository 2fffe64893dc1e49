//! End-to-end import throughput and memory: real `nats-server -js` and
//! `redis-server`, the fake Sisu with a backlog of N entities per export
//! service, and the reference consumer (2 instances, recording nothing)
//! answering every chunk. The importer runs with production chunking
//! (`FETCH_AMOUNT` 1000, `MAX_CHUNK_SIZE` 100, `MAX_CHUNK_BYTES` 900000)
//! over PERSON, ATTAINMENT and TERM_REGISTRATION (the largest entities).
//!
//! It prints, per service, entities/s and MB/s (entity JSON as Sisu served
//! it) from first fetch to last committed ordinal, so every consumer ack is
//! included; and the process's peak RSS (`VmHWM`). Each size runs in a
//! fresh child process (this binary), so each peak is its own. The process
//! also hosts the fake Sisu and the consumer, both constant in N, so the
//! peak still exposes any buffering that grows with the backlog.
//!
//! Children get `MALLOC_ARENA_MAX=2` unless it is set: with glibc's default
//! (up to 8 arenas per core) allocations spread over more arenas the longer
//! a run lasts and the peak creeps up a few MiB per 4x backlog; that is
//! allocator slack, not buffering (it vanishes with the cap).
//!
//! `BENCH_ENTITIES` (default 20000) is N; the bench runs N and 4N and
//! prints a met/MISSED verdict per target. It exits non-zero only when an
//! import fails (`summary.success` false or fewer than N entities
//! committed) or a child crashes. Run: `cargo bench --bench end_to_end`.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use sis_importer::catalogue::{builtin, Service};
use sis_importer::config::{Config, Secret};
use sis_importer::importer::Importer;
use sis_importer::shutdown::Shutdown;
use sis_testkit::consumer::{ConsumerConfig, ReferenceConsumer};
use sis_testkit::fake_sisu::{FakeSisu, FakeSisuConfig};
use sis_testkit::servers::{NatsServer, RedisServer};

const SERVICES: &[&str] = &["PERSON", "ATTAINMENT", "TERM_REGISTRATION"];
const CHILD_ENV: &str = "BENCH_E2E_CHILD";
const TARGET_RATE: f64 = 20_000.0;
/// Peak RSS at 4N may exceed the one at N by at most this factor.
const TARGET_RSS_GROWTH: f64 = 1.25;
const TARGET: &str = "target: >= 20000 entities/s per service on a 2-core machine in release; \
                      peak RSS independent of backlog size (4x backlog: < 1.25x peak RSS)";

fn verdict(met: bool) -> &'static str {
    ["MISSED", "met"][usize::from(met)]
}

fn main() -> ExitCode {
    if let Ok(n) = std::env::var(CHILD_ENV) {
        return child(n.parse().expect("entity count"));
    }
    let base: u64 =
        std::env::var("BENCH_ENTITIES").map_or(20_000, |v| v.parse().expect("a number"));
    println!("{TARGET}");
    let runs: Vec<_> = [base, 4 * base]
        .into_iter()
        .map(|n| (n, spawn_child(n)))
        .collect();
    for (n, result) in &runs {
        if let Some((_, slowest)) = result {
            println!(
                "{n}: slowest service {slowest:.0} entities/s: rate target {}",
                verdict(*slowest >= TARGET_RATE)
            );
        }
    }
    if let [(n1, Some((p1, _))), (n2, Some((p2, _)))] = runs[..] {
        let growth = p2 as f64 / p1 as f64;
        println!(
            "peak RSS: {:.1} MiB at {n1}, {:.1} MiB at {n2} entities/service (x{growth:.2} for x4 backlog): memory target {}",
            p1 as f64 / 1024.0,
            p2 as f64 / 1024.0,
            verdict(growth < TARGET_RSS_GROWTH)
        );
    }
    println!("{TARGET}");
    if runs.iter().all(|(_, r)| r.is_some()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one size in a fresh process; echoes its output and returns its
/// peak RSS (KiB) and slowest service rate, or `None` if it failed.
fn spawn_child(n: u64) -> Option<(u64, f64)> {
    println!("\n== {n} entities per service ==");
    let mut cmd = Command::new(std::env::current_exe().expect("own executable"));
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        cmd.env("MALLOC_ARENA_MAX", "2");
    }
    let mut proc = cmd
        .env(CHILD_ENV, n.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("child starts");
    let (mut peak, mut slowest) = (None, None);
    for line in BufReader::new(proc.stdout.take().expect("piped")).lines() {
        let line = line.expect("child output");
        println!("{line}");
        peak = peak.or_else(|| line.strip_prefix("peak_rss_kib=")?.parse().ok());
        slowest = slowest.or_else(|| line.strip_prefix("slowest_entities_per_s=")?.parse().ok());
    }
    let status = proc.wait().expect("child exits");
    if !status.success() {
        eprintln!("run with {n} entities per service failed: {status}");
        return None;
    }
    Some((peak?, slowest?))
}

/// One size, in this (child) process.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn child(n: u64) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .init();
    }
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
        sis_retry_base: Duration::from_millis(10),
        sis_retry_max: Duration::from_millis(200),
        sis_request_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    // Window settings (PIPELINE_DEPTH, MAX_CHUNKS_IN_FLIGHT, ...) may be
    // tried from the environment.
    let mut config = config;
    config
        .apply_env(|k| std::env::var(k).ok())
        .expect("bench environment is valid");
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
    let (mut slowest, mut total_bytes) = (f64::INFINITY, 0u64);
    for (r, service) in summary.services.iter().zip(&services) {
        let bytes = served_bytes(&http, &fake, service).await;
        let secs = r.duration_ms.max(1) as f64 / 1000.0;
        slowest = slowest.min(r.entities as f64 / secs);
        total_bytes += bytes;
        let (id, result, per) = (&r.service, r.result.as_str(), bytes / r.entities.max(1));
        println!(
            "{id:<18} {:>7} entities {:>5} chunks {:>6.1} MB in {secs:>6.2} s: {:>6.0} entities/s {:>5.1} MB/s ({per} B/entity, {result}, attempts {})",
            r.entities, r.chunks, bytes as f64 / 1e6, r.entities as f64 / secs, bytes as f64 / 1e6 / secs, r.attempts,
        );
    }
    let (total, secs) = (
        summary.services.iter().map(|r| r.entities).sum::<u64>(),
        wall.as_secs_f64(),
    );
    let (mb, arenas) = (total_bytes as f64 / 1e6, std::env::var("MALLOC_ARENA_MAX"));
    println!(
        "all services       {total:>7} entities, {mb:.0} MB in {secs:.2} s: {:.0} entities/s {:.1} MB/s; consumer acked {} entities",
        total as f64 / secs, mb / secs, received.entities_ok,
    );
    println!(
        "RSS before run {:.1} MiB, peak {:.1} MiB (MALLOC_ARENA_MAX={})",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        arenas.as_deref().unwrap_or("unset"),
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
    let url = fake.base_url() + service.source.api_prefix() + &service.path;
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
        let sizes = page.entities.iter().map(|e| e.get().len() as u64);
        bytes += sizes.sum::<u64>();
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
    let js = &importer.io.nats.jetstream;
    let stream = js
        .get_stream(&importer.io.nats.stream)
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
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:")));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}
