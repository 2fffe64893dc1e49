//! The consumer that exists, unchanged: the reference consumer in the
//! seed's form behaves as SPEC §4 describes importer-mankeli (OK without
//! `chunkId`, FAIL echoing the chunk, one current execution hash learned
//! from Redis, chunks of another hash acked without feedback, one chunk at
//! a time per subject). Everything the precise form does must work with
//! it: every service, a poison entity, a second run after Sisu changed,
//! services side by side, a consumer killed mid-import; and when feedback
//! is ignored the importer says how much and why.

mod common;

use std::time::Duration;

use common::*;
use sis_testkit::consumer::ConsumerConfig;

/// An environment whose consumer answers in the seed's form, with
/// `instances` instances on each durable.
async fn seed_env(entities: u64, instances: usize) -> Env {
    let mut env = Env::start(entities).await;
    let redis = env.redis.url();
    env.replace_consumer(|c| {
        *c = ConsumerConfig {
            nats_auth: c.nats_auth.clone(),
            instances,
            ..ConsumerConfig::seed(c.nats_url.clone(), redis)
        };
    })
    .await;
    env
}

/// Every export service's ids, and every whole-set service.
fn all_ids() -> Vec<String> {
    sis_importer::catalogue::builtin()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_imports_with_the_seed_form_consumer_without_a_panic_timeout() {
    let env = seed_env(120, 1).await;
    let importer = env.importer(env.config()).await;
    let ids = all_ids();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let summary = run_ok(&importer, &ids).await;
    for report in &summary.services {
        assert_eq!(report.attempts, 1, "no panic timeout: {report:?}");
    }
    for id in &ids {
        env.assert_delivered(id, &[]);
        if env.fake.greatest_ordinal(id).is_some() {
            assert!(env.wait_until_imported(id, Duration::from_secs(1)).await);
        }
    }
    let received = env.consumer.received();
    assert_eq!(
        received.dropped_other_hash, 0,
        "one hash for the whole run: no chunk dropped"
    );
    let status = env.command(&["status", "--json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["feedback_form"], "seed", "{row}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_entity_is_halved_down_and_dead_lettered_from_echoed_fails() {
    let env = seed_env(60, 1).await;
    env.fake.faults().poison("PERSON", 17);
    let importer = env.importer(env.config()).await;
    let summary = run_ok(&importer, &["PERSON"]).await;
    assert_eq!(summary.services[0].dead_letters, 1, "{summary:#?}");
    env.assert_poison_dead_lettered(&importer, "PERSON", 17)
        .await;
    let received = env.consumer.received();
    assert!(
        received.per_service["PERSON"].chunks_failed >= 3,
        "halving took several echoed FAILs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_after_sisu_changed_delivers_the_changes() {
    let env = seed_env(80, 1).await;
    let importer = env.importer(env.config()).await;
    let ids = ["PERSON", "STUDY_RIGHT", "TERM_REGISTRATION", "ATTAINMENT"];
    run_ok(&importer, &ids).await;
    let before: Vec<u64> = ids
        .iter()
        .map(|id| entities_of(&env.consumer.received(), id))
        .collect();
    // Updates, deletions and new identities with higher ordinals.
    env.fake.add_generation(40);
    let summary = run_ok(&importer, &ids).await;
    for (i, id) in ids.iter().enumerate() {
        env.assert_delivered(id, &[]);
        assert!(env.wait_until_imported(id, Duration::from_secs(1)).await);
        assert_eq!(
            summary.services[i].entities, 40,
            "{id}: the second run fetched only the changes"
        );
        assert!(entities_of(&env.consumer.received(), id) >= before[i] + 40);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_side_by_side_lose_no_chunk_to_a_one_hash_consumer() {
    let env = seed_env(150, 2).await;
    let config = sis_importer::config::Config {
        service_concurrency: 4,
        ..env.config()
    };
    let importer = env.importer(config).await;
    let ids = [
        "PERSON",
        "ORGANISATION",
        "COURSE_UNIT",
        "EDUCATION",
        "STUDY_RIGHT",
        "ATTAINMENT",
    ];
    let summary = run_ok(&importer, &ids).await;
    for report in &summary.services {
        assert_eq!(report.attempts, 1, "no panic timeout: {report:?}");
    }
    for id in ids {
        env.assert_delivered(id, &[]);
    }
    let received = env.consumer.received();
    assert_eq!(received.dropped_other_hash, 0);
    for id in ids {
        let hashes = &received.per_service[id].execution_hashes;
        assert_eq!(hashes.len(), 1, "{id}: {hashes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_form_consumer_killed_mid_import_is_survived_with_the_default_timeouts() {
    let mut env = Env::start(400).await;
    // The consumer under test is a process of its own; the environment's
    // reads nothing.
    env.replace_consumer(|c| c.services.clear()).await;
    let dir = tempfile::tempdir().unwrap();
    let stored = dir.path().join("stored.jsonl");
    let consumer = |latency_ms: &str| {
        env.env_command(&CONSUMER, &["--form", "seed", "--latency-ms", latency_ms])
            .arg("--durable-prefix")
            .arg("mankeli")
            .arg("--store-file")
            .arg(&stored)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = consumer("50");
    let mut once = env
        .command(&["once", "--service", "PERSON"])
        .env("PANIC_TIMEOUT", "15")
        .env("UPDATE_RETRY_LIMIT", "6")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(60), || stored_lines(&stored) >= 100).await,
        "the consumer stores"
    );
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut second = consumer("0");
    let status = tokio::task::spawn_blocking(move || once.wait().unwrap())
        .await
        .unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(status.success(), "once exits 0: {status:?}");
    let text = std::fs::read_to_string(&stored).unwrap();
    let seen: std::collections::HashSet<(String, Option<i64>)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["service"] == "PERSON")
        .map(|v| {
            (
                v["identity"].as_str().unwrap().to_owned(),
                v["ordinal"].as_i64(),
            )
        })
        .collect();
    let missing = env
        .fake
        .expected("PERSON")
        .into_iter()
        .filter(|e| !seen.contains(&(e.identity.clone(), e.ordinal)))
        .count();
    assert_eq!(missing, 0, "everything Sisu served reached the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_is_told_once_and_a_slow_ack_wait_is_warned_about_at_start() {
    let env = seed_env(30, 1).await;
    let run = |extra: &[(&str, &str)]| {
        env.command(&["once", "--service", "PERSON", "--service", "ATTAINMENT"])
            .envs(extra.iter().copied())
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success());
    let logs = String::from_utf8_lossy(&first.stderr);
    let told = logs
        .lines()
        .filter(|l| l.contains("consumers answer in the seed's form"))
        .count();
    assert_eq!(told, 2, "once per service: {logs}");
    // The seed consumer's durables wait 60 s before redelivering; 2 × 3 s
    // is shorter.
    env.fake.add_generation(5);
    let second = run(&[("PANIC_TIMEOUT", "3"), ("UPDATE_RETRY_LIMIT", "2")]);
    assert!(second.status.success());
    let logs = String::from_utf8_lossy(&second.stderr);
    assert!(
        logs.lines().any(|l| l.contains("WARN")
            && l.contains("PERSON: reference_PERSON (ack wait 60 s)")
            && l.contains("PANIC_TIMEOUT × UPDATE_RETRY_LIMIT")),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_feedback_is_all_ignored_says_how_much_and_why() {
    let env = Env::start(20).await;
    env.consumer.set_never_answer(true);
    let config = sis_importer::config::Config {
        panic_timeout: Duration::from_secs(1),
        update_retry_limit: 2,
        ..env.config()
    };
    let importer = env.importer(config).await;
    let run = spawn_run(&importer, &["PERSON"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let stale = br#"{"status":"OK","amount":10,"channel":"ORI_PERSON_CHANNEL","executionHash":"not-this-run"}"#;
        env.consumer
            .publish_raw_feedback(stale.to_vec())
            .await
            .unwrap();
    }
    let summary = run.await.unwrap();
    let error = summary.services[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("5 feedback messages ignored: 5 with another execution hash"),
        "{error}"
    );
    let status = env.command(&["status", "--json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let person = &rows.as_array().unwrap()[0];
    assert!(
        person["last_run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("5 feedback messages ignored")),
        "{person}"
    );
    // The registry is the test binary's: other tests' PERSON runs may add.
    let metrics = sis_importer::metrics::render();
    let counted: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "sis_importer_feedback_ignored_total{service=\"PERSON\",reason=\"old_execution\"} ",
            )
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(counted >= 5, "{metrics}");
}

/// The test kit's consumer binary, beside the importer's (`cargo test
/// --workspace` builds both; a run of this file alone builds it first).
static CONSUMER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let path = std::path::Path::new(BIN).with_file_name("consumer");
    if !path.exists() {
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "sis-testkit", "--bin", "consumer"]);
        if BIN.contains("/release/") {
            cargo.arg("--release");
        }
        let built = cargo.status().expect("cargo runs");
        assert!(built.success(), "building the consumer binary");
    }
    path.to_string_lossy().into_owned()
});

/// Lines in the consumer's store file so far.
fn stored_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}
