//! End-to-end imports against real NATS and Redis: every service, an
//! incremental second run, chunk bounds, POST_UPDATE and status.

mod common;

use std::time::Duration;

use futures::StreamExt;
use sis_importer::catalogue::{builtin, POST_UPDATE_SUBJECT};
use sis_importer::importer::ServiceOutcome;
use sis_importer::shutdown::Shutdown;
use sis_testkit::servers::NatsOptions;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_import_of_every_service_then_exactly_the_new_generation() {
    let env = Env::start(120).await;
    let importer = env.importer(env.config()).await;
    let client = async_nats::connect(env.nats.url()).await.unwrap();
    let mut post_update = client.subscribe(POST_UPDATE_SUBJECT).await.unwrap();
    client.flush().await.unwrap();

    let summary = importer.run(&builtin(), Shutdown::never()).await.unwrap();
    assert!(summary.success, "{summary:#?}");
    assert_eq!(summary.services.len(), 26);
    for (report, service) in summary.services.iter().zip(builtin()) {
        assert_eq!(report.service, service.id, "catalogue order");
        assert_eq!(report.result, ServiceOutcome::Ok, "{report:?}");
        env.assert_delivered(&service.id, &[]);
        let committed = env.ordinal(&importer, &service.id).await;
        if service.one_time {
            assert_eq!(committed, Some(1), "{}", service.id);
        } else {
            assert_eq!(
                committed,
                env.fake.greatest_ordinal(&service.id),
                "{}",
                service.id
            );
        }
        let state = importer.io.store.service_status(&service).await.unwrap();
        assert_eq!(
            state.scheduled, state.updated,
            "{}: window counters agree when all is acknowledged",
            service.id
        );
    }
    let announced = tokio::time::timeout(Duration::from_secs(5), post_update.next())
        .await
        .unwrap()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&announced.payload).unwrap();
    assert_eq!(body["success"], true);

    // Second generation: only the new changes are delivered, and one-time
    // services are not fetched again.
    let before = env.consumer.received();
    let urn_requests = env.fake.requests("COUNTRY");
    env.fake.add_generation(30);
    let summary = importer.run(&builtin(), Shutdown::never()).await.unwrap();
    assert!(summary.success, "{summary:#?}");
    let after = env.consumer.received();
    for service in builtin() {
        let delta = entities_of(&after, &service.id) - entities_of(&before, &service.id);
        if service.one_time {
            assert_eq!(
                delta, 0,
                "{}: one-time service not fetched again",
                service.id
            );
        } else {
            assert_eq!(delta, 30, "{}: exactly the new generation", service.id);
            env.assert_delivered(&service.id, &[]);
            assert_eq!(
                env.ordinal(&importer, &service.id).await,
                env.fake.greatest_ordinal(&service.id)
            );
        }
    }
    assert_eq!(env.fake.requests("COUNTRY"), urn_requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_respect_count_bytes_and_max_payload() {
    // A small max_payload: term registrations (several KB each) must be
    // cut by bytes long before the count bound.
    let env = Env::start_with(
        150,
        NatsOptions {
            max_payload: Some(32 * 1024),
            ..Default::default()
        },
    )
    .await;
    let mut config = env.config();
    config.max_chunk_size = 25;
    config.fetch_amount = 100;
    let importer = env.importer(config).await;
    assert_eq!(importer.io.limits.max_entity_bytes, 32 * 1024 - 512);
    let ids = ["PERSON", "TERM_REGISTRATION", "MODULE", "COUNTRY"];
    run_ok(&importer, &ids).await;
    let received = env.consumer.received();
    for id in ids {
        let s = &received.per_service[id];
        assert!(
            s.max_chunk_entities <= 25,
            "{id}: {} entities in a chunk",
            s.max_chunk_entities
        );
        assert!(
            s.max_chunk_bytes <= 32 * 1024,
            "{id}: {} bytes in a chunk",
            s.max_chunk_bytes
        );
        env.assert_delivered(id, &[]);
    }
    let term = &received.per_service["TERM_REGISTRATION"];
    assert!(
        term.max_chunk_entities < 25,
        "byte bound cut term registrations ({} per chunk)",
        term.max_chunk_entities
    );
    assert_eq!(
        received.per_service["PERSON"].max_chunk_entities, 25,
        "count bound reached for small entities"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_redis_holds() {
    let env = Env::start(40).await;
    let importer = env.importer(env.config()).await;
    let picked = services(&["PERSON", "COUNTRY"]);
    importer.run(&picked, Shutdown::never()).await.unwrap();
    let rows = sis_importer::status::collect(&importer.io.store, &picked)
        .await
        .unwrap();
    assert_eq!(rows[0].service, "PERSON");
    assert_eq!(rows[0].ordinal, env.fake.greatest_ordinal("PERSON"));
    assert_eq!(rows[0].last_run.as_ref().unwrap().result, "ok");
    assert_eq!(rows[0].last_run.as_ref().unwrap().entities, 40);
    assert_eq!(rows[1].ordinal, Some(1));
    let table = sis_importer::status::render_table(&rows);
    assert!(
        table.contains("PERSON") && table.contains("COUNTRY") && table.contains("ok"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_concurrency_runs_services_side_by_side_and_announces_once() {
    let env = Env::start(400).await;
    env.consumer.set_latency(Duration::from_millis(5));
    let client = async_nats::connect(env.nats.url()).await.unwrap();
    let mut post_update = client.subscribe(POST_UPDATE_SUBJECT).await.unwrap();
    client.flush().await.unwrap();
    let ids = ["PERSON", "STUDY_RIGHT", "ATTAINMENT", "ENROLMENT"];
    for concurrency in [1, 4] {
        let mut config = env.config();
        config.service_concurrency = concurrency;
        let importer = env.importer(config).await;
        for id in ids {
            importer.io.store.reset(&service(id)).await.unwrap();
        }
        let summary = run_ok(&importer, &ids).await;
        let reported: Vec<&str> = summary
            .services
            .iter()
            .map(|r| r.service.as_str())
            .collect();
        assert_eq!(reported, ids, "reports in catalogue order");
        for id in ids {
            env.assert_delivered(id, &[]);
            assert_eq!(
                env.ordinal(&importer, id).await,
                env.fake.greatest_ordinal(id)
            );
        }
        let live = importer.live();
        let spans: Vec<_> = ids
            .iter()
            .map(|id| (live[*id].started.unwrap(), live[*id].finished.unwrap()))
            .collect();
        // Started in catalogue order, side by side or not.
        for pair in spans.windows(2) {
            assert!(pair[0].0 <= pair[1].0, "started in catalogue order");
        }
        let last_start = spans.iter().map(|s| s.0).max().unwrap();
        let first_end = spans.iter().map(|s| s.1).min().unwrap();
        if concurrency == 1 {
            for pair in spans.windows(2) {
                assert!(pair[0].1 <= pair[1].0, "one at a time, in catalogue order");
            }
        } else {
            assert!(last_start < first_end, "all four were under way at once");
        }
        let announced = tokio::time::timeout(Duration::from_secs(5), post_update.next())
            .await
            .unwrap()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&announced.payload).unwrap();
        assert_eq!(body["success"], true);
        assert_eq!(body["services"].as_array().unwrap().len(), 4);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), post_update.next())
                .await
                .is_err(),
            "POST_UPDATE comes once per run"
        );
    }
}
