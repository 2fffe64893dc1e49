//! Per-identity order end to end: many versions of the same entities, four
//! consumer instances on one durable with random latency, an upserting
//! store that counts every version stored after a newer one.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use sis_importer::importer::ServiceOutcome;
use sis_importer::shutdown::Shutdown;
use sis_testkit::fake_sisu::FakeSisuConfig;
use sis_testkit::servers::{NatsOptions, RedisOptions};

use common::*;

/// 60 identities, then 400 later changes (most of them new versions of
/// those, some new identities): with batches of 50 and chunks of 10, most
/// identities have versions in consecutive batches and many twice in one
/// batch.
async fn import_with_parallel_consumers(seed: u64, depth: usize, changed_while_running: bool) {
    let fake = FakeSisuConfig {
        seed,
        entities_per_service: 60,
        ..FakeSisuConfig::default()
    };
    let mut env = Env::start_custom(fake, NatsOptions::default(), RedisOptions::default()).await;
    env.fake
        .add_generation(if changed_while_running { 200 } else { 400 });
    env.replace_consumer(|c| {
        c.services = services(&["PERSON"]);
        c.instances = 4;
        c.latency_jitter = Duration::from_millis(30);
        c.jitter_seed = seed;
        // No redelivery during the test: a redelivered old chunk would be
        // an out-of-order store the importer cannot prevent.
        c.ack_wait = Duration::from_secs(120);
    })
    .await;
    let mut config = env.config();
    config.pipeline_depth = depth;
    config.panic_timeout = Duration::from_secs(30);
    let importer = env.importer(config).await;
    let person_only = services(&["PERSON"]);
    let run = importer.run(&person_only, Shutdown::never());
    let summary = if changed_while_running {
        // Sisu changes entities while the import runs.
        let fake = &env.fake;
        let change = async {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(40)).await;
                fake.add_generation(50);
            }
        };
        let (summary, ()) = tokio::join!(run, change);
        summary
    } else {
        run.await
    }
    .unwrap();
    assert_eq!(
        summary.services[0].result,
        ServiceOutcome::Ok,
        "{summary:?}"
    );
    if changed_while_running {
        // Changes that came after the last page are the next run's.
        let again = importer
            .run(&services(&["PERSON"]), Shutdown::never())
            .await
            .unwrap();
        assert!(again.success);
    }

    let received = env.consumer.received();
    let person = &received.per_service["PERSON"];
    assert_eq!(
        person.order_violations, 0,
        "seed {seed}, depth {depth}: versions stored out of order, e.g. (identity, stored, arriving) {:?}",
        person.order_violation_examples
    );
    // The store ends with the newest version of every identity.
    let mut newest: HashMap<String, i64> = HashMap::new();
    for e in env.fake.expected("PERSON") {
        let ordinal = e.ordinal.expect("export entities have ordinals");
        let slot = newest.entry(e.identity).or_insert(ordinal);
        *slot = (*slot).max(ordinal);
    }
    // Generation 0's 60 identities and those the later changes started.
    assert!(newest.len() >= 60);
    assert_eq!(
        person.stored, newest,
        "seed {seed}: the newest version is stored"
    );
    env.assert_delivered("PERSON", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_stored_in_ordinal_order_by_four_parallel_consumers() {
    for seed in 1..=5 {
        import_with_parallel_consumers(seed, 4, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_changed_during_the_import_are_stored_in_order() {
    for seed in 11..=13 {
        import_with_parallel_consumers(seed, 2, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_one_keeps_order_too() {
    import_with_parallel_consumers(21, 1, false).await;
}
