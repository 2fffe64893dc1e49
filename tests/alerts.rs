//! The per-service alert expressions of deploy/prometheus/alerts.yaml
//! (SisImporterNoSuccess, SisImporterServiceFailing,
//! SisImporterServiceForbidden, SisImporterDeadLettersWaiting), evaluated
//! against `/metrics` after real runs: they fire for a service that fails
//! every run, a forbidden one and one with dead letters, and stay quiet
//! for a healthy one. That the rules name only served metrics is
//! tests/deploy.rs. The registry is one per process, so this binary holds
//! a single test.

mod common;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use sis_importer::shutdown::Shutdown;

/// Per service, the value of the gauge `name{service="…"}`.
fn by_service(metrics: &str, name: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{name}{{service=\"");
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (service, value) = rest.split_once("\"} ")?;
            Some((service.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_alerts_fire_for_a_service_that_fails_every_run() {
    let env = Env::start(30).await;
    env.fake.faults().poison("PERSON", 3);
    env.fake.faults().forbid("DISCLOSURE");
    let importer = env.importer(env.config()).await;
    for _ in 0..2 {
        // PLAN fails in both runs: Sisu answers 404.
        env.fake.faults().fail_next("PLAN", 404, 1);
        importer
            .run(
                &services(&["PERSON", "PLAN", "DISCLOSURE"]),
                Shutdown::never(),
            )
            .await
            .unwrap();
    }
    let metrics = sis_importer::metrics::render();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // time() - max by (service) (sis_importer_last_success_timestamp_seconds) > 3 * 3600
    let stale: Vec<String> = by_service(&metrics, "sis_importer_last_success_timestamp_seconds")
        .into_iter()
        .filter(|(_, at)| now - at > 3.0 * 3600.0)
        .map(|(s, _)| s)
        .collect();
    assert!(stale.contains(&"PLAN".to_owned()), "{metrics}");
    assert!(!stale.contains(&"PERSON".to_owned()), "{metrics}");
    // The last-run timestamp moves on failures too: an alert on it would
    // never fire for PLAN.
    let last_run = by_service(&metrics, "sis_importer_last_run_timestamp_seconds");
    assert!(now - last_run["PLAN"] < 60.0, "{metrics}");
    // sis_importer_last_run_success == 0
    let failed: Vec<String> = by_service(&metrics, "sis_importer_last_run_success")
        .into_iter()
        .filter(|(_, v)| *v == 0.0)
        .map(|(s, _)| s)
        .collect();
    assert!(failed.contains(&"PLAN".to_owned()) && !failed.contains(&"PERSON".to_owned()));
    // sis_importer_service_forbidden == 1
    let forbidden = by_service(&metrics, "sis_importer_service_forbidden");
    assert_eq!(forbidden.get("DISCLOSURE"), Some(&1.0), "{metrics}");
    assert_eq!(forbidden.get("PERSON"), Some(&0.0), "{metrics}");
    // sis_importer_dead_letters > 0
    let dead = by_service(&metrics, "sis_importer_dead_letters");
    assert_eq!(dead.get("PERSON"), Some(&1.0), "{metrics}");
    assert_eq!(dead.get("PLAN"), Some(&0.0), "{metrics}");
    // A restarted importer reads the last success back from Redis.
    let stored = importer.io.store.last_successes().await.unwrap();
    assert!(stored.contains_key("PERSON") && !stored.contains_key("PLAN"));
}
