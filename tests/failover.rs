//! Failover without a stall (real nats-server, in-process importer):
//!
//! - publishes whose acks died with a NATS node are sent again as soon as
//!   the client is connected again, not after `PUBLISH_TIMEOUT`;
//! - a consumer that vanished holding chunks does not make the importer
//!   abandon the attempt (and send everything again) while JetStream will
//!   deliver those chunks again after the durable's ack wait;
//! - a stream without quorum is told in two WARN lines (failing, then
//!   succeeding again), not one per chunk.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use sis_testkit::servers::NatsCluster;

/// Reads one counter (without labels, or with `labels` as written) from
/// the process's `/metrics` text.
fn counter(name: &str, labels: &str) -> f64 {
    let text = sis_importer::metrics::render();
    let series = format!("{name}{labels} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// The importer has chunks ready all the time (three batches of 1000 open
/// at once, a wide chunk window, a narrow publish window, publishing paced at 100 chunks a second so that
/// it lasts 3 s), so publishes are still going out when nats-server is
/// frozen (SIGSTOP: what it was sent stays unanswered),
/// then killed and restarted. The acks awaited died with it; each such
/// publish is sent again when the client connects again, so the import
/// finishes long before the 60 s publish timeout would have let it retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_awaiting_acks_when_nats_dies_are_sent_again_at_reconnect() {
    let mut env = Env::start(3000).await;
    let mut config = env.config();
    config.publish_timeout = Duration::from_secs(60);
    config.panic_timeout = Duration::from_secs(120);
    config.max_chunks_in_flight = 400;
    config.max_publishes_in_flight = 4;
    config.publish_chunks_per_second = Some(100);
    // All 300 chunks open at once: none waits for a commit to be published.
    config.fetch_amount = 1000;
    let importer = env.importer(config).await;
    let resent_before = counter("sis_importer_publishes_resent_on_reconnect_total", "");
    let run = spawn_run(&importer, &["PERSON"]);
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(30), |r| entities_of(r, "PERSON") >= 50)
            .await
    );
    let pid = env.nats.pid().expect("nats-server runs") as i32;
    // SAFETY: signals a child process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.nats.kill();
    env.nats.restart().await.expect("nats-server restarts");
    let restarted = Instant::now();
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run ends")
        .unwrap();
    let after_restart = restarted.elapsed();
    assert!(summary.success, "{summary:#?}");
    env.assert_delivered("PERSON", &[]);
    let resent = counter("sis_importer_publishes_resent_on_reconnect_total", "") - resent_before;
    assert!(
        resent >= 1.0,
        "publishes awaiting their ack were sent again at reconnect ({resent})"
    );
    assert!(
        after_restart < Duration::from_secs(30),
        "the import went on at reconnect, not after the 60 s publish timeout: {after_restart:?}"
    );
    assert_eq!(summary.services[0].attempts, 1, "{summary:#?}");
}

/// One consumer instance takes chunks and vanishes (its tasks and
/// connection dropped) without acknowledging them; a new instance of the
/// same durable takes over. The chunks the first one held come again only
/// after the durable's ack wait (8 s), longer than `PANIC_TIMEOUT` (2 s):
/// the importer reads the durable's unacknowledged count and waits instead
/// of abandoning the attempt and sending everything unfinished again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_held_by_a_vanished_consumer_are_waited_for_not_sent_again() {
    let mut env = Env::start(400).await;
    let ack_wait = Duration::from_secs(8);
    env.replace_consumer(|c| {
        c.instances = 1;
        c.ack_wait = ack_wait;
        c.latency = Duration::from_secs(60);
    })
    .await;
    let mut config = env.config();
    config.panic_timeout = Duration::from_secs(2);
    let importer = env.importer(config).await;
    let held_before = counter("sis_importer_panic_timeouts_held_total", "");
    let run = spawn_run(&importer, &["PERSON"]);
    // Let it take chunks into its 60 s latency, then let it vanish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut successor_config = sis_testkit::consumer::ConsumerConfig::new(env.nats.url());
    successor_config.instances = 1;
    successor_config.ack_wait = ack_wait;
    let vanished = std::mem::replace(
        &mut env.consumer,
        sis_testkit::consumer::ReferenceConsumer::start(successor_config),
    );
    drop(vanished);
    let summary = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the run ends")
        .unwrap();
    assert!(summary.success, "{summary:#?}");
    env.assert_delivered("PERSON", &[]);
    assert_eq!(
        summary.services[0].attempts, 1,
        "no panic retry while JetStream redelivers: {summary:#?}"
    );
    let held = counter("sis_importer_panic_timeouts_held_total", "") - held_before;
    assert!(held >= 1.0, "the hold was counted ({held})");
    let received = env.consumer.received();
    let hashes = &received.per_service["PERSON"].execution_hashes;
    assert_eq!(
        hashes.len(),
        1,
        "nothing sent again under a new hash: {hashes:?}"
    );
}

/// A three-node cluster with an R3 stream; the importer and the consumers
/// talk to node 1. Nodes 2 and 3 are killed for 4 s (the stream has no
/// quorum, publishes get no ack within the 1 s publish timeout), then
/// restarted. The stall is two WARN lines, when publishing starts failing
/// and when it succeeds again (with how long it took), not one per chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_quorum_is_told_once_not_per_chunk() {
    let mut cluster = NatsCluster::start(3)
        .await
        .expect("a three-node cluster starts");
    let mut env = Env::start(20000).await;
    let node1 = cluster.nodes[0].url();
    env.replace_consumer(|c| c.nats_url = node1.clone()).await;
    env.consumer.set_latency(Duration::from_millis(5));
    // The publish timeout is a TOML setting only.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("importer.toml");
    std::fs::write(&toml, "publish_timeout_secs = 1\n").unwrap();
    let child = env
        .command(&["once", "--service", "PERSON"])
        .env("SIS_IMPORTER_CONFIG", &toml)
        .env("NATS_URL", &node1)
        .env("NATS_STREAM_REPLICAS", "3")
        // Chunks keep going out while no feedback comes back.
        .env("FETCH_AMOUNT", "1000")
        .env("PIPELINE_DEPTH", "8")
        .env("MAX_CHUNKS_IN_FLIGHT", "1000")
        .env("MAX_PUBLISHES_IN_FLIGHT", "8")
        .env("PANIC_TIMEOUT", "30")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output());
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), |r| entities_of(r, "PERSON") >= 300)
            .await
    );
    cluster.nodes[1].kill();
    cluster.nodes[2].kill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    for node in [1, 2] {
        cluster.nodes[node]
            .restart()
            .await
            .expect("the node restarts");
    }
    let out = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{logs}");
    }
    env.assert_delivered("PERSON", &[]);
    let events: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let warn_with = |text: &str| {
        events
            .iter()
            .filter(|v| v["level"] == "WARN")
            .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(text)))
            .count()
    };
    assert_eq!(warn_with("publish failed"), 0, "no WARN per chunk: {logs}");
    assert_eq!(
        warn_with("JetStream publishes failing"),
        1,
        "one WARN when publishing starts failing: {logs}"
    );
    assert_eq!(
        warn_with("JetStream publishes succeed again"),
        1,
        "one WARN when it recovers: {logs}"
    );
}
