//! A three-node JetStream cluster (routes between the nodes, each its own
//! store) with an R3 stream: killing the stream's leader, or one node and
//! restarting it, in the middle of a multi-service import. The run
//! finishes without help, nothing is lost, and a watcher polling Redis
//! throughout finds no ordinal that passed an entity the consumers had not
//! acknowledged, nor one that moved backwards.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use sis_importer::importer::Importer;
use sis_testkit::servers::NatsCluster;

const SERVICES: [&str; 3] = ["PERSON", "ATTAINMENT", "STUDY_RIGHT"];

enum Fault {
    /// Kill the stream's leader for good.
    KillLeader,
    /// Kill one node (not the leader's choice: the second), restart it
    /// while the import goes on.
    RestartNode,
}

/// Checks every service's committed ordinal against what the consumers
/// have seen (read after the ordinal, so a commit is never newer than the
/// snapshot) and against the ordinal seen before.
async fn check(
    env: &Env,
    importer: &Importer,
    last: &mut HashMap<&'static str, i64>,
    violations: &mut Vec<String>,
) {
    for id in SERVICES {
        let Ok(Some(committed)) = importer.io.store.ordinal(&service(id)).await else {
            continue;
        };
        if last.get(id).is_some_and(|l| committed < *l) {
            violations.push(format!(
                "{id}: ordinal went back from {:?} to {committed}",
                last[id]
            ));
        }
        last.insert(id, committed);
        let received = env.consumer.received();
        let seen = received.per_service.get(id).map(|s| &s.seen);
        for e in env.fake.expected(id) {
            let acked = seen.is_some_and(|s| s.contains(&(e.identity.clone(), e.ordinal)));
            if e.ordinal.is_some_and(|o| o <= committed) && !acked {
                violations.push(format!(
                    "{id}: ordinal {committed} passes unacknowledged {:?}",
                    e.ordinal
                ));
                break;
            }
        }
    }
}

async fn leader(importer: &Importer) -> Option<String> {
    let mut stream = importer
        .io
        .nats
        .jetstream
        .get_stream(&importer.io.nats.stream)
        .await
        .ok()?;
    stream.info().await.ok()?.cluster.as_ref()?.leader.clone()
}

async fn import_through(fault: Fault) {
    let mut cluster = NatsCluster::start(3)
        .await
        .expect("a three-node cluster starts");
    let mut env = Env::start(1500).await;
    let urls = cluster.urls();
    env.replace_consumer(|c| c.nats_url = urls.clone()).await;
    env.consumer.set_latency(Duration::from_millis(5));
    let mut config = env.config();
    config.nats_url = cluster.urls();
    config.nats_stream_replicas = 3;
    config.panic_timeout = Duration::from_secs(10);
    let importer = env.importer(config).await;
    let info = importer
        .io
        .nats
        .jetstream
        .get_stream(&importer.io.nats.stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.config.num_replicas, 3,
        "the importer made an R3 stream"
    );
    let mut run = spawn_run(&importer, &SERVICES);
    let (mut last, mut violations) = (HashMap::new(), Vec::new());
    let (mut struck, mut killed_node) = (false, None);
    let summary = loop {
        tokio::select! {
            done = &mut run => break done.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        check(&env, &importer, &mut last, &mut violations).await;
        let received = env.consumer.received();
        if !struck && entities_of(&received, "PERSON") >= 300 {
            struck = true;
            let victim = match fault {
                Fault::KillLeader => {
                    let name = leader(&importer).await.expect("the stream has a leader");
                    name.trim_start_matches('n').parse::<usize>().unwrap() - 1
                }
                Fault::RestartNode => 1,
            };
            cluster.nodes[victim].kill();
            killed_node = Some(victim);
        }
        if let (Fault::RestartNode, Some(victim)) = (&fault, killed_node) {
            if entities_of(&received, "ATTAINMENT") >= 300 {
                cluster.nodes[victim]
                    .restart()
                    .await
                    .expect("the node restarts");
                killed_node = None;
            }
        }
    };
    assert!(struck, "the fault struck mid-run");
    assert!(summary.success, "{summary:#?}");
    check(&env, &importer, &mut last, &mut violations).await;
    assert!(violations.is_empty(), "{violations:#?}");
    for id in SERVICES {
        env.assert_delivered(id, &[]);
        assert_eq!(
            env.ordinal(&importer, id).await,
            env.fake.greatest_ordinal(id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_mid_import() {
    import_through(Fault::KillLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_and_restarted_mid_import() {
    import_through(Fault::RestartNode).await;
}
