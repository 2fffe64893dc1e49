//! The chaos suite: the `sis-importer` binary imports four services
//! (50,000 entities by default) while the suite SIGKILLs and SIGTERMs it at
//! random points, restarts nats-server and redis-server (append-only) under
//! it, makes the fake Sisu answer in every hostile way it knows, and floods
//! and forges the consumers' feedback. The importer is started again after
//! each stop until a run finishes. Throughout, a watcher polls Redis and
//! fails the suite if an ordinal ever passes an entity no consumer
//! acknowledged, or moves backwards.
//!
//! At the end: every entity delivered (0 lost), the dead-lettered ones in
//! the dead-letter lists, and duplicate deliveries within one chunk window
//! (`MAX_CHUNKS_IN_FLIGHT` × `MAX_CHUNK_SIZE`) per kill. The table of faults
//! and outcomes is printed (and written to
//! `target/tmp/chaos-report.md`); the README's "Reliability" table is it.
//!
//! `SOAK=1` runs more of everything (200,000 entities, 60 kills); `CHAOS_SEED`
//! picks another schedule (the seed is printed).
//!
//! Longer than 400 lines on purpose: one scenario, whose fault injector,
//! importer supervisor, Redis watcher and report only make sense together;
//! split across files they would read as separate tools.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::time::{Duration, Instant};

use common::*;
use sis_importer::config::Secret;
use sis_importer::store::OrdinalStore;
use sis_testkit::fake_sisu::{FakeSisuConfig, Hostile};
use sis_testkit::servers::{NatsOptions, RedisOptions};

const SERVICES: [&str; 4] = ["PERSON", "STUDY_RIGHT", "TERM_REGISTRATION", "ATTAINMENT"];
const FETCH_AMOUNT: u64 = 200;
const MAX_CHUNK_SIZE: u64 = 20;
const MAX_CHUNKS_IN_FLIGHT: u64 = 16;

/// How much of everything.
struct Scale {
    entities_per_service: u64,
    kills: usize,
    terms: usize,
    nats_restarts: usize,
    redis_restarts: usize,
    storm: usize,
}

impl Scale {
    fn from_env() -> Scale {
        if std::env::var_os("SOAK").is_some_and(|v| v != "0") {
            Scale {
                entities_per_service: 50_000,
                kills: 60,
                terms: 15,
                nats_restarts: 10,
                redis_restarts: 10,
                storm: 10_000,
            }
        } else {
            Scale {
                entities_per_service: 12_500,
                kills: 20,
                terms: 5,
                nats_restarts: 5,
                redis_restarts: 5,
                storm: 2_000,
            }
        }
    }
}

/// One thing done to the importer or its surroundings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    SigKill,
    SigTerm,
    NatsRestart,
    RedisRestart,
    Sisu(SisuFault),
    FailAfterOk,
    OkForSplitParent,
    FeedbackStorm,
}

/// A hostile answer of the fake Sisu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SisuFault {
    HtmlWith200,
    Truncated,
    Empty,
    InvalidUtf8,
    NoEntities,
    WrongTypes,
    NoGreatestOrdinal,
    GreatestNotAboveSince,
    HasMoreWithoutEntities,
    StuckHasMore,
    ServerErrorStorm,
    TooManyRequestsWithoutRetryAfter,
    RetryAfter,
    ResetMidBody,
    Trickle,
    Forbidden,
}

const SISU_FAULTS: [SisuFault; 16] = [
    SisuFault::HtmlWith200,
    SisuFault::Truncated,
    SisuFault::Empty,
    SisuFault::InvalidUtf8,
    SisuFault::NoEntities,
    SisuFault::WrongTypes,
    SisuFault::NoGreatestOrdinal,
    SisuFault::GreatestNotAboveSince,
    SisuFault::HasMoreWithoutEntities,
    SisuFault::StuckHasMore,
    SisuFault::ServerErrorStorm,
    SisuFault::TooManyRequestsWithoutRetryAfter,
    SisuFault::RetryAfter,
    SisuFault::ResetMidBody,
    SisuFault::Trickle,
    SisuFault::Forbidden,
];

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::SigKill => "SIGKILL of the importer (restarted at once)",
            Fault::SigTerm => "SIGTERM of the importer (restarted after it exits)",
            Fault::NatsRestart => "nats-server killed and restarted",
            Fault::RedisRestart => "redis-server (appendonly) killed and restarted",
            Fault::FailAfterOk => "FAIL feedback for chunks already OK",
            Fault::OkForSplitParent => "OK feedback for chunks that failed and were split",
            Fault::FeedbackStorm => "feedback storm (garbage and forged messages)",
            Fault::Sisu(s) => match s {
                SisuFault::HtmlWith200 => "Sisu: HTML error page with 200",
                SisuFault::Truncated => "Sisu: body cut in half",
                SisuFault::Empty => "Sisu: empty body with 200",
                SisuFault::InvalidUtf8 => "Sisu: invalid UTF-8 in an entity",
                SisuFault::NoEntities => "Sisu: no `entities`",
                SisuFault::WrongTypes => "Sisu: fields of the wrong types",
                SisuFault::NoGreatestOrdinal => "Sisu: `greatestOrdinal` missing",
                SisuFault::GreatestNotAboveSince => "Sisu: `greatestOrdinal` not above `since`",
                SisuFault::HasMoreWithoutEntities => "Sisu: `hasMore` without entities",
                SisuFault::StuckHasMore => "Sisu: `hasMore` forever at `since` (for 2 s)",
                SisuFault::ServerErrorStorm => "Sisu: 5xx storm past SIS_RETRY_LIMIT",
                SisuFault::TooManyRequestsWithoutRetryAfter => "Sisu: 429 without Retry-After",
                SisuFault::RetryAfter => "Sisu: 503 with Retry-After: 1",
                SisuFault::ResetMidBody => "Sisu: connection reset mid-body",
                SisuFault::Trickle => "Sisu: body trickling past the request timeout",
                SisuFault::Forbidden => "Sisu: 403 for one service (allowed again after 2 s)",
            },
        }
    }
}

/// A small seeded generator (the schedule must be reproducible).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

struct Importer {
    config: std::path::PathBuf,
    /// Each process's JSON log goes to `importer-<n>.log` here.
    logs: std::path::PathBuf,
    env_vars: Vec<(&'static str, String)>,
    child: Option<Child>,
    started: u32,
    exits: BTreeMap<String, u32>,
}

impl Importer {
    fn spawn(&mut self) {
        let mut cmd = bare_command(BIN, &["--config"]);
        cmd.arg(&self.config).arg("once").stdout(Stdio::null());
        let log = self.logs.join(format!("importer-{}.log", self.started));
        cmd.stderr(std::fs::File::create(log).expect("log file"));
        for id in SERVICES {
            cmd.args(["--service", id]);
        }
        for (k, v) in &self.env_vars {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("the importer starts"));
        self.started += 1;
    }

    /// Starts the importer again if its last process has exited; returns
    /// whether that process had exited 0.
    fn respawn_if_exited(&mut self) -> Option<bool> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().expect("wait")?;
        self.child = None;
        self.note_exit(status);
        self.spawn();
        Some(status.success())
    }

    fn note_exit(&mut self, status: std::process::ExitStatus) {
        let what = match status.code() {
            Some(code) => format!("exit {code}"),
            None => "killed".into(),
        };
        *self.exits.entry(what).or_default() += 1;
    }

    fn signal(&mut self, signal: &str) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        let status = child.wait().expect("wait");
        self.note_exit(status);
        Some(status)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_loses_nothing_and_resends_little() {
    let scale = Scale::from_env();
    let seed: u64 = test_setting("CHAOS_SEED").unwrap_or(20261202);
    let mut rng = Rng(seed);
    let fake = FakeSisuConfig {
        seed: 11,
        entities_per_service: scale.entities_per_service,
        ..FakeSisuConfig::default()
    };
    let mut env = Env::start_custom(fake, NatsOptions::default(), RedisOptions::default()).await;
    let faults = env.fake.faults().clone();

    // Poison and oversize entities, dead-lettered rather than delivered.
    let total = scale.entities_per_service;
    let mut exempt = Vec::new();
    for (id, index, oversize) in [
        ("STUDY_RIGHT", total / 3, false),
        ("TERM_REGISTRATION", total / 2, false),
        ("ATTAINMENT", total * 2 / 3, false),
        ("PERSON", total / 4, true),
    ] {
        if oversize {
            faults.oversize(id, index, 1_100_000);
        } else {
            faults.poison(id, index);
        }
        let e = &env.fake.expected(id)[index as usize];
        exempt.push((e.identity.clone(), e.ordinal));
    }
    let expected = served_versions(&env.fake, &SERVICES);
    let (expected, exempt) = (Arc::new(expected), Arc::new(exempt));
    let all_entities: usize = expected.values().map(Vec::len).sum();

    // `CHAOS_KEEP_LOGS=1` keeps the importer's logs for reading.
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _removed_at_end) = match std::env::var_os("CHAOS_KEEP_LOGS") {
        Some(_) => {
            let kept = tmp.keep();
            eprintln!("importer logs kept in {}", kept.display());
            (kept, None)
        }
        None => (tmp.path().to_owned(), Some(tmp)),
    };
    let config = dir.join("chaos.toml");
    std::fs::write(
        &config,
        "sis_request_timeout_secs = 1.0\nsis_retry_base_ms = 20\nsis_retry_max_ms = 200\nshutdown_grace_secs = 5.0\n",
    )
    .unwrap();
    let mut env_vars = env.env_vars();
    env_vars.retain(|(k, _)| !matches!(*k, "FETCH_AMOUNT" | "MAX_CHUNK_SIZE"));
    env_vars.extend([
        ("FETCH_AMOUNT", FETCH_AMOUNT.to_string()),
        ("MAX_CHUNK_SIZE", MAX_CHUNK_SIZE.to_string()),
        ("MAX_CHUNKS_IN_FLIGHT", MAX_CHUNKS_IN_FLIGHT.to_string()),
        ("PANIC_TIMEOUT", "5".into()),
        ("INSTANCE_ID", "chaos".into()),
    ]);
    let mut importer = Importer {
        config,
        logs: dir.clone(),
        env_vars,
        child: None,
        started: 0,
        exits: BTreeMap::new(),
    };

    let mut schedule: Vec<Fault> = Vec::new();
    schedule.extend(std::iter::repeat_n(Fault::SigKill, scale.kills));
    schedule.extend(std::iter::repeat_n(Fault::SigTerm, scale.terms));
    schedule.extend(std::iter::repeat_n(Fault::NatsRestart, scale.nats_restarts));
    schedule.extend(std::iter::repeat_n(
        Fault::RedisRestart,
        scale.redis_restarts,
    ));
    schedule.extend(SISU_FAULTS.map(Fault::Sisu));
    schedule.extend([
        Fault::FailAfterOk,
        Fault::OkForSplitParent,
        Fault::FeedbackStorm,
    ]);
    schedule.extend([Fault::FailAfterOk, Fault::OkForSplitParent]);
    rng.shuffle(&mut schedule);

    let stop = Arc::new(AtomicBool::new(false));
    let watch = Arc::new(Watch::default());
    let watcher = spawn_watcher(
        Watched {
            services: &SERVICES,
            expected: expected.clone(),
            exempt: exempt.clone(),
            probes: vec![env.consumer.probe()],
        },
        env.redis.url(),
        stop.clone(),
        watch.clone(),
    );
    let started = Instant::now();
    importer.spawn();
    let mut done: BTreeMap<Fault, u32> = BTreeMap::new();
    let probe = env.consumer.probe();
    let delivered = move || -> u64 { SERVICES.iter().map(|id| probe.seen(id) as u64).sum() };
    // Spread the faults over the import: the next one comes when the
    // consumers have taken another share of it (or after 3 s). Consumers
    // take 20 ms a chunk: the import lasts long enough for every fault, and
    // is bound by the consumers, so batches wait for feedback (what a kill
    // could make the importer send again).
    env.consumer.set_latency(Duration::from_millis(20));
    let share = all_entities as u64 / (schedule.len() as u64 + 2);
    for (n, fault) in schedule.iter().copied().enumerate() {
        let target = share * (n as u64 + 1);
        let wait_until = Instant::now() + Duration::from_millis(3000);
        while delivered() < target && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
            importer.respawn_if_exited();
        }
        // A random point inside the share.
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        importer.respawn_if_exited();
        inject(fault, &mut env, &mut importer, &mut rng, scale.storm).await;
        *done.entry(fault).or_default() += 1;
    }

    // No more faults: start the importer until a run finishes.
    faults.clear();
    let deadline = Instant::now() + Duration::from_secs(300);
    let finished = loop {
        assert!(Instant::now() < deadline, "the import finishes");
        match importer.respawn_if_exited() {
            Some(true) if all_committed(&env, &expected).await => break true,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(finished);
    if let Some(child) = importer.child.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    // Nothing lost; the dead-lettered ones recorded.
    let received = env.consumer.received();
    let mut lost = 0;
    let mut duplicates = 0;
    for id in SERVICES {
        let r = &received.per_service[id];
        let missing = expected[id]
            .iter()
            .filter(|v| !exempt.contains(v) && !r.seen.contains(*v))
            .count();
        lost += missing;
        duplicates += r.entities - r.seen.len() as u64;
    }
    let store = OrdinalStore::connect(&Secret::new(env.redis.url()))
        .await
        .unwrap();
    let mut dead = 0;
    for id in SERVICES {
        dead += store.dead_letter_count(id).await.unwrap();
    }
    let violations = watch.violations.lock().unwrap().clone();
    let told = told(&dir);
    let kills = done.get(&Fault::SigKill).copied().unwrap_or(0) as u64;
    let window = MAX_CHUNKS_IN_FLIGHT * MAX_CHUNK_SIZE;
    let report = report(&ReportInput {
        seed,
        took: started.elapsed(),
        done: &done,
        entities: all_entities,
        lost,
        duplicates,
        dead_letters: dead,
        exempt: exempt.len(),
        importer: &importer,
        polls: watch.polls.load(Ordering::Relaxed),
        violations: violations.len(),
        window,
        told: &told,
    });
    eprintln!("{report}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-report.md");
    std::fs::write(&path, &report).unwrap();

    assert!(
        violations.is_empty(),
        "watcher: {:?}",
        &violations[..violations.len().min(5)]
    );
    assert_eq!(lost, 0, "entities lost");
    assert_eq!(
        dead,
        exempt.len() as u64,
        "poison and oversize entities dead-lettered once"
    );
    assert!(
        duplicates <= kills * window,
        "{duplicates} duplicate deliveries over {kills} kills (a chunk window is {window} entities)"
    );
}

async fn all_committed(
    env: &Env,
    expected: &BTreeMap<&'static str, Vec<(String, Option<i64>)>>,
) -> bool {
    let Ok(store) = OrdinalStore::connect(&Secret::new(env.redis.url())).await else {
        return false;
    };
    for id in SERVICES {
        let greatest = expected[id].iter().filter_map(|v| v.1).max();
        if store.ordinal(&service(id)).await.ok().flatten() != greatest {
            return false;
        }
    }
    true
}

async fn inject(fault: Fault, env: &mut Env, importer: &mut Importer, rng: &mut Rng, storm: usize) {
    let faults = env.fake.faults().clone();
    let pick = |rng: &mut Rng| SERVICES[rng.below(SERVICES.len() as u64) as usize];
    match fault {
        Fault::SigKill => {
            importer.signal("KILL");
            importer.spawn();
        }
        Fault::SigTerm => {
            let status = importer.signal("TERM");
            assert!(
                status.is_none_or(|s| s.code().is_some()),
                "SIGTERM ends the importer by itself"
            );
            importer.spawn();
        }
        Fault::NatsRestart => {
            env.nats.kill();
            tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
            env.nats.restart().await.expect("nats-server restarts");
        }
        Fault::RedisRestart => {
            env.redis.kill();
            tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
            env.redis.restart().await.expect("redis-server restarts");
        }
        Fault::Sisu(s) => {
            let id = pick(rng);
            match s {
                SisuFault::HtmlWith200 => faults.malformed_next(id, 1),
                SisuFault::Truncated => faults.truncated_next(id, 1),
                SisuFault::Empty => faults.hostile_next(id, Hostile::Empty, 1),
                SisuFault::InvalidUtf8 => faults.hostile_next(id, Hostile::InvalidUtf8, 1),
                SisuFault::NoEntities => faults.missing_entities_next(id, 1),
                SisuFault::WrongTypes => faults.hostile_next(id, Hostile::WrongTypes, 1),
                SisuFault::NoGreatestOrdinal => {
                    faults.hostile_next(id, Hostile::NoGreatestOrdinal, 1)
                }
                SisuFault::GreatestNotAboveSince => {
                    faults.hostile_next(id, Hostile::GreatestNotAboveSince, 1)
                }
                SisuFault::HasMoreWithoutEntities => {
                    faults.hostile_next(id, Hostile::HasMoreWithoutEntities, 1)
                }
                SisuFault::StuckHasMore => {
                    faults.stuck_has_more(id, true);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    faults.stuck_has_more(id, false);
                }
                SisuFault::ServerErrorStorm => faults.fail_next(id, 502, 12),
                SisuFault::TooManyRequestsWithoutRetryAfter => faults.fail_next(id, 429, 3),
                SisuFault::RetryAfter => faults.rate_limit_next(id, 503, 1, 1),
                SisuFault::ResetMidBody => faults.hostile_next(id, Hostile::ResetMidBody, 2),
                SisuFault::Trickle => faults.hostile_next(id, Hostile::Trickle(3000), 1),
                SisuFault::Forbidden => {
                    faults.forbid(id);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    faults.allow(id);
                }
            }
        }
        Fault::FailAfterOk => {
            let r = env.consumer.received();
            for id in SERVICES {
                let Some(s) = r.per_service.get(id) else {
                    continue;
                };
                let subject = service(id).subject;
                for chunk in s.chunk_ids.iter().rev().take(5) {
                    for hash in &s.execution_hashes {
                        let body = format!(
                            r#"{{"channel":"{subject}","status":"FAIL","amount":0,"executionHash":"{hash}","chunkId":"{chunk}","stack":"chaos: FAIL after OK"}}"#
                        );
                        let _ = env.consumer.publish_raw_feedback(body.into_bytes()).await;
                    }
                }
            }
        }
        Fault::OkForSplitParent => {
            let r = env.consumer.received();
            for id in SERVICES {
                let Some(s) = r.per_service.get(id) else {
                    continue;
                };
                let subject = service(id).subject;
                for (hash, chunk) in s.failed_chunks.iter().rev().take(10) {
                    let body = format!(
                        r#"{{"channel":"{subject}","status":"OK","amount":{MAX_CHUNK_SIZE},"executionHash":"{hash}","chunkId":"{chunk}"}}"#
                    );
                    let _ = env.consumer.publish_raw_feedback(body.into_bytes()).await;
                }
            }
        }
        Fault::FeedbackStorm => {
            for n in 0..storm {
                let body = match n % 4 {
                    0 => b"not json at all".to_vec(),
                    1 => br#"{"channel":"ORI_PERSON_CHANNEL","status":"OK"}"#.to_vec(),
                    2 => format!(r#"{{"channel":"ORI_PERSON_CHANNEL","status":"OK","amount":1,"executionHash":"forged{n}","chunkId":"PERSON-1-0-200-0+20"}}"#).into_bytes(),
                    _ => vec![0xFF; 64],
                };
                let _ = env.consumer.publish_raw_feedback(body).await;
            }
        }
    }
}

struct ReportInput<'a> {
    seed: u64,
    took: Duration,
    done: &'a BTreeMap<Fault, u32>,
    entities: usize,
    lost: usize,
    duplicates: u64,
    dead_letters: u64,
    exempt: usize,
    importer: &'a Importer,
    polls: u64,
    violations: usize,
    window: u64,
    told: &'a BTreeMap<String, u64>,
}

/// What the importer's logs told, over all its processes: a count per
/// kind of event (and the chunks resumptions did not send again).
fn told(dir: &std::path::Path) -> BTreeMap<String, u64> {
    let mut told = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for event in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            let message = event["message"].as_str().unwrap_or("");
            let error = event["error"].as_str().unwrap_or("");
            let result = event["result"].as_str().unwrap_or("");
            let kind = match message {
                "service did not finish" if result == "interrupted" => {
                    "service interrupted by SIGTERM (what was acknowledged committed)"
                }
                "service did not finish"
                    if error.contains("forbidden") || error.contains("403") =>
                {
                    "service forbidden (skipped for the process)"
                }
                "service did not finish" if error.contains("Sisu") || error.contains("http") => {
                    "service failed on a Sisu answer (ordinal kept, next run retries)"
                }
                "service did not finish" => {
                    let cause: String = error.chars().take(70).collect();
                    *told
                        .entry(format!("service did not finish: {cause}…"))
                        .or_default() += 1;
                    continue;
                }
                m if m.starts_with("resuming an interrupted attempt") => {
                    *told
                        .entry("feedback messages of interrupted attempts read back".to_owned())
                        .or_default() += event["feedback_read"].as_u64().unwrap_or(0);
                    "attempt resumed after a kill or stop"
                }

                m if m.starts_with("Redis unreachable") => "Redis outage told",
                m if m.starts_with("NATS") && m.contains("unreachable") => "NATS outage told",
                m if m.starts_with("panic timeout") || m.starts_with("no feedback progress") => {
                    "panic timeout (attempt retried under a new hash)"
                }
                m if m.contains("retrying")
                    && event["target"]
                        .as_str()
                        .is_some_and(|t| t.contains("sources")) =>
                {
                    "Sisu request retried"
                }
                m if m.starts_with("ignored feedback") || m.contains("feedback ignored") => {
                    "ignored-feedback summary line"
                }
                _ => continue,
            };
            *told.entry(kind.to_owned()).or_default() += 1;
        }
    }
    told
}

fn report(r: &ReportInput) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Chaos run (seed {}, {:.0} s): {} entities over {} services, FETCH_AMOUNT {FETCH_AMOUNT}, MAX_CHUNK_SIZE {MAX_CHUNK_SIZE}, MAX_CHUNKS_IN_FLIGHT {MAX_CHUNKS_IN_FLIGHT}\n",
        r.seed,
        r.took.as_secs_f64(),
        r.entities,
        SERVICES.len()
    );
    let _ = writeln!(out, "| fault | times |\n|---|---:|");
    for (fault, n) in r.done {
        let _ = writeln!(out, "| {} | {n} |", fault.describe());
    }
    let kills = r.done.get(&Fault::SigKill).copied().unwrap_or(0).max(1) as f64;
    let exits: Vec<String> = r
        .importer
        .exits
        .iter()
        .map(|(what, n)| format!("{what} × {n}"))
        .collect();
    let _ = writeln!(
        out,
        "\n| outcome | value |\n|---|---:|\n\
         | importer processes started | {} |\n\
         | their ends | {} |\n\
         | entities lost | {} |\n\
         | duplicate deliveries | {} ({:.1} per kill; a chunk window is {}) |\n\
         | dead letters (poison and oversize, {} planted) | {} |\n\
         | watcher polls of every ordinal | {} |\n\
         | watcher violations (ordinal past an unacknowledged entity, or backwards) | {} |",
        r.importer.started,
        exits.join(", "),
        r.lost,
        r.duplicates,
        r.duplicates as f64 / kills,
        r.window,
        r.exempt,
        r.dead_letters,
        r.polls,
        r.violations,
    );
    let _ = writeln!(out, "\n| the importer's logs told | times |\n|---|---:|");
    for (kind, n) in r.told {
        let _ = writeln!(out, "| {kind} | {n} |");
    }
    out
}
