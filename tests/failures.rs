//! Failure behaviour of SPEC §2 against real NATS and Redis and the fake
//! Sisu's fault injection: one test per failure the spec names, in its
//! order (hence one file of ~440 lines: the spec's failure list, read top
//! to bottom).

mod common;

use std::time::{Duration, Instant};

use sis_importer::importer::ServiceOutcome;
use sis_importer::shutdown::Shutdown;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_entity_is_isolated_and_dead_lettered_while_its_chunk_mates_arrive() {
    let env = Env::start(100).await;
    env.fake.faults().poison("PERSON", 17);
    env.fake.faults().poison("TERM_REGISTRATION", 3);
    let importer = env.importer(env.config()).await;
    let summary = importer
        .run(
            &services(&["PERSON", "TERM_REGISTRATION"]),
            Shutdown::never(),
        )
        .await
        .unwrap();
    assert!(
        summary.success,
        "a dead letter does not fail the service: {summary:#?}"
    );
    for (id, index) in [("PERSON", 17usize), ("TERM_REGISTRATION", 3)] {
        env.assert_poison_dead_lettered(&importer, id, index).await;
        let received = env.consumer.received();
        assert!(
            received.per_service[id].chunks_failed >= 4,
            "{id}: halving takes several failed chunks"
        );
    }
    assert!(env.fake.expected("TERM_REGISTRATION")[3]
        .identity
        .starts_with("studyRightId="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_entity_is_dead_lettered_not_dropped() {
    let env = Env::start(60).await;
    env.fake.faults().oversize("PERSON", 10, 1_200_000);
    let importer = env.importer(env.config()).await;
    let summary = run_ok(&importer, &["PERSON"]).await;
    let big = env.fake.expected("PERSON")[10].clone();
    env.assert_delivered("PERSON", &[&big.identity]);
    let letters = importer.io.store.dead_letters("PERSON", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "too_large");
    assert_eq!(letters[0].identity.as_deref(), Some(big.identity.as_str()));
    assert_eq!(summary.services[0].dead_letters, 1);
    assert_eq!(
        env.ordinal(&importer, "PERSON").await,
        env.fake.greatest_ordinal("PERSON")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_malformed_feedback_never_count() {
    let env = Env::start(200).await;
    env.consumer.set_duplicate_feedback(true);
    let importer = env.importer(env.config()).await;
    // Garbage and forged feedback arrive throughout the run.
    let nats = async_nats::connect(env.nats.url()).await.unwrap();
    let noise = tokio::spawn(async move {
        for i in 0u32.. {
            let bodies: [&[u8]; 4] = [
                b"not json",
                br#"{"channel":"ORI_PERSON_CHANNEL","status":"OK"}"#,
                br#"{"channel":"ORI_PERSON_CHANNEL","status":"OK","amount":10,"executionHash":"forged","chunkId":"PERSON-1-0001"}"#,
                br#"{"channel":"KORI_MODULE_CHANNEL","status":"FAIL","amount":0,"executionHash":"x","chunkId":"PERSON-1-0002"}"#,
            ];
            let _ = nats
                .publish(
                    "SCHEDULER_STATUS_CHANNEL",
                    bodies[i as usize % 4].to_vec().into(),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let summary = importer
        .run(&services(&["PERSON", "ORGANISATION"]), Shutdown::never())
        .await
        .unwrap();
    noise.abort();
    assert!(summary.success, "{summary:#?}");
    for report in &summary.services {
        assert_eq!(
            report.entities, 200,
            "{}: each entity committed once",
            report.service
        );
        env.assert_delivered(&report.service, &[]);
        assert_eq!(
            env.ordinal(&importer, &report.service).await,
            env.fake.greatest_ordinal(&report.service)
        );
        let state = importer
            .io
            .store
            .service_status(&common::service(&report.service))
            .await
            .unwrap();
        assert_eq!(
            (state.scheduled, state.updated),
            (0, 0),
            "duplicates did not inflate _UPDATED"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_rate_limits_are_retried() {
    let env = Env::start(100).await;
    env.fake.faults().fail_next("PERSON", 500, 3);
    env.fake.faults().fail_next("COURSE_UNIT", 502, 2);
    env.fake.faults().rate_limit_next("ORGANISATION", 429, 1, 1);
    env.fake.faults().rate_limit_next("EDUCATION", 503, 1, 1);
    let config = env.config();
    // Side by side, the two waits overlap.
    let waits = if config.service_concurrency > 1 { 1 } else { 2 };
    let importer = env.importer(config).await;
    let started = Instant::now();
    let ids = ["PERSON", "ORGANISATION", "COURSE_UNIT", "EDUCATION"];
    run_ok(&importer, &ids).await;
    assert!(
        started.elapsed() >= Duration::from_secs(waits),
        "Retry-After (1 s) was waited for each time"
    );
    for id in ids {
        env.assert_delivered(id, &[]);
    }
    // 100 entities in pages of 50 = 2 pages, plus the faulted requests.
    assert_eq!(env.fake.requests("PERSON"), 2 + 3);
    assert_eq!(env.fake.requests("ORGANISATION"), 2 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_service_is_skipped_and_others_continue() {
    let env = Env::start(50).await;
    env.fake.faults().forbid("COURSE_UNIT");
    let importer = env.importer(env.config()).await;
    let ids = ["ORGANISATION", "COURSE_UNIT", "EDUCATION"];
    let summary = importer
        .run(&services(&ids), Shutdown::never())
        .await
        .unwrap();
    assert!(!summary.success);
    let results: Vec<_> = summary.services.iter().map(|r| r.result).collect();
    assert_eq!(
        results,
        [
            ServiceOutcome::Ok,
            ServiceOutcome::Forbidden,
            ServiceOutcome::Ok
        ]
    );
    assert!(summary.services[1]
        .error
        .as_deref()
        .unwrap()
        .contains("403"));
    assert_eq!(env.ordinal(&importer, "COURSE_UNIT").await, None);
    assert_eq!(importer.forbidden(), ["COURSE_UNIT"]);
    let rows = sis_importer::status::collect(&importer.io.store, &services(&ids))
        .await
        .unwrap();
    assert!(rows[1].forbidden && !rows[0].forbidden);
    // Until `forbidden_retry_secs` (a day) pass: not even asked again.
    let asked = env.fake.requests("COURSE_UNIT");
    env.fake.faults().allow("COURSE_UNIT");
    let summary = importer
        .run(&services(&ids), Shutdown::never())
        .await
        .unwrap();
    assert_eq!(summary.services[1].result, ServiceOutcome::Forbidden);
    assert_eq!(env.fake.requests("COURSE_UNIT"), asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_answers_fail_only_their_service_with_a_clear_error() {
    let env = Env::start(50).await;
    env.fake.faults().stuck_has_more("EDUCATION", true);
    env.fake.faults().malformed_next("LOCATION", 1);
    env.fake.faults().missing_entities_next("STUDY_EVENT", 1);
    env.fake.faults().fail_next("MODULE", 404, 1);
    let importer = env.importer(env.config()).await;
    let ids = [
        "ORGANISATION",
        "EDUCATION",
        "LOCATION",
        "STUDY_EVENT",
        "MODULE",
    ];
    let started = Instant::now();
    let summary = importer
        .run(&services(&ids), Shutdown::never())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no endless loop"
    );
    assert!(!summary.success);
    let by_id = |id: &str| summary.services.iter().find(|r| r.service == id).unwrap();
    assert_eq!(by_id("ORGANISATION").result, ServiceOutcome::Ok);
    for (id, words) in [
        ("EDUCATION", "no progress"),
        ("LOCATION", "malformed"),
        ("STUDY_EVENT", "entities"),
        ("MODULE", "404"),
    ] {
        let report = by_id(id);
        assert_eq!(report.result, ServiceOutcome::Failed, "{id}");
        let error = report.error.as_deref().unwrap();
        assert!(
            error.contains(id) && error.contains(words) && error.contains("http://127.0.0.1:"),
            "{id}: {error}"
        );
        assert_eq!(
            env.ordinal(&importer, id).await,
            None,
            "{id}: ordinal untouched"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_consumers_cause_panic_timeouts_and_retries_then_failure() {
    let env = Env::start(30).await;
    env.consumer.set_never_answer(true);
    let mut config = env.config();
    config.panic_timeout = Duration::from_millis(500);
    config.update_retry_limit = 3;
    let importer = env.importer(config).await;
    let summary = importer
        .run(&services(&["PERSON"]), Shutdown::never())
        .await
        .unwrap();
    assert!(!summary.success);
    let report = &summary.services[0];
    assert_eq!(report.result, ServiceOutcome::Failed);
    assert_eq!(report.attempts, 3);
    assert!(
        report.error.as_deref().unwrap().contains("PANIC_TIMEOUT"),
        "{report:?}"
    );
    assert_eq!(
        env.ordinal(&importer, "PERSON").await,
        None,
        "ordinal untouched"
    );
    // Each attempt re-sent the data under a new execution hash.
    assert!(
        eventually(Duration::from_secs(5), || env
            .consumer
            .received()
            .per_service
            .get("PERSON")
            .is_some_and(|s| s.execution_hashes.len() == 3))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sent_to_sisu_and_refusals_are_clear() {
    let env = Env::start(20).await;
    env.fake
        .faults()
        .require_basic_auth("importer", "pw-basic-7731");
    env.fake.faults().require_token("tok-proxy-5512");
    let mut config = env.config();
    config.sis_api_user = Some("importer".into());
    config.sis_api_password = Some(sis_importer::config::Secret::new("pw-basic-7731"));
    config.proxy_token = Some(sis_importer::config::Secret::new("tok-proxy-5512"));
    let importer = env.importer(config).await;
    let ids = ["PERSON", "GRAPHQL_GRADE_SCALES", "COUNTRY"];
    run_ok(&importer, &ids).await;

    let mut config = env.config();
    config.sis_api_user = Some("importer".into());
    config.sis_api_password = Some(sis_importer::config::Secret::new("wrong-password-9"));
    let importer = env.importer(config).await;
    let summary = importer
        .run(&services(&["ORGANISATION"]), Shutdown::never())
        .await
        .unwrap();
    let error = summary.services[0].error.clone().unwrap();
    assert!(
        error.contains("401") && error.contains("ORGANISATION"),
        "{error}"
    );
    assert!(!error.contains("wrong-password-9"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_and_redis_restarts_mid_run_are_survived() {
    let mut env = Env::start(1500).await;
    env.consumer.set_latency(Duration::from_millis(5));
    let mut config = env.config();
    config.panic_timeout = Duration::from_secs(3);
    let importer = env.importer(config).await;
    let run = spawn_run(&importer, &["PERSON", "ATTAINMENT"]);
    env.bounce_both_mid_import(None).await;
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap()
        .unwrap();
    assert!(summary.success, "{summary:#?}");
    for id in ["PERSON", "ATTAINMENT"] {
        env.assert_delivered(id, &[]);
        assert_eq!(
            env.ordinal(&importer, id).await,
            env.fake.greatest_ordinal(id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_no_feedback_and_costs_no_panic_timeout() {
    let mut env = Env::start(2500).await;
    // Chunks are in the consumers' hands when the broker dies; their
    // feedback goes out while the importer is still reconnecting.
    env.consumer.set_latency(Duration::from_millis(40));
    let mut config = env.config();
    // Far longer than the outage: only lost feedback could make it fire.
    config.panic_timeout = Duration::from_secs(12);
    let importer = env.importer(config).await;
    let run = spawn_run(&importer, &["PERSON"]);
    // Three outages: feedback lost in a reconnect (as with a core NATS
    // subscription) shows up in about one of three.
    for round in 1..=3 {
        assert!(
            env.consumer
                .wait_until(Duration::from_secs(30), |r| entities_of(r, "PERSON")
                    >= 500 * round)
                .await
        );
        env.nats.kill();
        tokio::time::sleep(Duration::from_millis(800)).await;
        env.nats.restart().await.unwrap();
    }
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap()
        .unwrap();
    let report = &summary.services[0];
    assert_eq!(report.result, ServiceOutcome::Ok, "{report:?}");
    assert_eq!(report.attempts, 1, "no panic timeout: {report:?}");
    env.assert_delivered("PERSON", &[]);
    assert_eq!(
        env.ordinal(&importer, "PERSON").await,
        env.fake.greatest_ordinal("PERSON")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_sent_while_the_importer_is_cut_off_from_nats_is_not_lost() {
    let env = Env::start(800).await;
    // Chunks stay in the consumers' hands long enough to be answered
    // during the cut.
    env.consumer.set_latency(Duration::from_millis(100));
    let nats_addr = env.nats.url().trim_start_matches("nats://").to_owned();
    let proxy = CutProxy::start(nats_addr).await;
    let mut config = env.config();
    config.nats_url = format!("nats://{}", proxy.addr);
    // Far longer than the cut: only lost feedback could make it fire.
    config.panic_timeout = Duration::from_secs(12);
    // Whatever window the suite runs under: chunks must be out at the cut.
    config.pipeline_depth = 2;
    let importer = env.importer(config).await;
    let run = spawn_run(&importer, &["PERSON"]);
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(30), |r| entities_of(r, "PERSON") >= 200)
            .await
    );
    // The consumers go on answering the chunks they hold while the
    // importer cannot hear them.
    proxy.cut();
    let before = entities_of(&env.consumer.received(), "PERSON");
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(10), |r| entities_of(r, "PERSON")
                > before)
            .await,
        "feedback went out during the cut"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap()
        .unwrap();
    let report = &summary.services[0];
    assert_eq!(report.result, ServiceOutcome::Ok, "{report:?}");
    assert_eq!(report.attempts, 1, "no panic timeout: {report:?}");
    env.assert_delivered("PERSON", &[]);
}
