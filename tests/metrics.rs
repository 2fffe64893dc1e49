//! The metrics count what a run did. The registry is one per process, so
//! this binary holds a single test: no other test's run can make its
//! numbers come true.

mod common;

use std::time::Duration;

use common::*;
use sis_importer::shutdown::Shutdown;

/// The value of the metric line that starts with `series` (name and
/// labels), if any.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn ignored_total(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("sis_importer_feedback_ignored_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_entities_of_a_run_its_commit_and_the_feedback_it_ignored() {
    let env = Env::start(120).await;
    let importer = env.importer(env.config()).await;
    let before = sis_importer::metrics::render();
    assert_eq!(ignored_total(&before), 0.0, "{before}");
    // Garbage and forged feedback throughout the run.
    let nats = async_nats::connect(env.nats.url()).await.unwrap();
    let noise = tokio::spawn(async move {
        for i in 0usize.. {
            let bodies: [&[u8]; 2] = [
                b"not json",
                br#"{"channel":"ORI_PERSON_CHANNEL","status":"OK","amount":10,"executionHash":"forged","chunkId":"PERSON-1-0001"}"#,
            ];
            let _ = nats
                .publish("SCHEDULER_STATUS_CHANNEL", bodies[i % 2].to_vec().into())
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let summary = importer
        .run(&services(&["PERSON"]), Shutdown::never())
        .await
        .unwrap();
    noise.abort();
    assert!(summary.success, "{summary:#?}");

    let metrics = sis_importer::metrics::render();
    let person = |name: &str| value(&metrics, &format!("{name}{{service=\"PERSON\"}}"));
    for counted in [
        "sis_importer_entities_fetched_total",
        "sis_importer_entities_published_total",
        "sis_importer_entities_acknowledged_total",
    ] {
        assert_eq!(person(counted), Some(120.0), "{counted}: {metrics}");
    }
    // 120 entities fit one batch of whole chunks: none failed or was split.
    let chunks = person("sis_importer_chunks_published_total").unwrap_or_default();
    assert!((1.0..=120.0).contains(&chunks), "{metrics}");
    assert_eq!(
        person("sis_importer_chunks_failed_total"),
        Some(0.0),
        "{metrics}"
    );
    // Every Sisu request is in the 2xx class and in the histogram.
    let ok = value(
        &metrics,
        "sis_importer_sisu_requests_total{service=\"PERSON\",status=\"2xx\"}",
    )
    .unwrap_or_default();
    assert!(ok >= 1.0, "{metrics}");
    assert_eq!(
        person("sis_importer_sisu_request_duration_seconds_count"),
        Some(ok),
        "{metrics}"
    );
    assert_eq!(
        value(
            &metrics,
            "sis_importer_sisu_request_duration_seconds_bucket{service=\"PERSON\",le=\"+Inf\"}"
        ),
        Some(ok),
        "{metrics}"
    );
    assert_eq!(
        person("sis_importer_last_run_success"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        person("sis_importer_committed_ordinal"),
        env.fake.greatest_ordinal("PERSON").map(|o| o as f64),
        "{metrics}"
    );
    assert!(ignored_total(&metrics) > 10.0, "{metrics}");
}
