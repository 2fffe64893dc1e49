//! The exposition `/metrics` serves, pinned: family headers (HELP and
//! TYPE), series (names and labels) and their values after a fixed set of
//! calls. Dashboards and alerts name these series; an implementation change
//! must not rename or drop one. Services and the outage system here are
//! this test's own, so other tests of the process only add lines it skips.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

/// Every family header `render` writes.
const HEADERS: &str = "\
# HELP sis_importer_chunks_failed_total Chunks consumers reported FAIL.
# HELP sis_importer_chunks_published_total Chunks published, split halves included.
# HELP sis_importer_chunks_split_total Failed chunks split in two.
# HELP sis_importer_committed_ordinal Committed ordinal.
# HELP sis_importer_dead_letters Dead letters kept for the service in Redis.
# HELP sis_importer_entities_acknowledged_total Entities acknowledged by consumers.
# HELP sis_importer_entities_dead_lettered_total Entities dead-lettered, by reason.
# HELP sis_importer_entities_fetched_total Entities fetched from Sisu.
# HELP sis_importer_entities_published_total Entities published to JetStream.
# HELP sis_importer_feedback_form 1 for the form the service's consumers answer in: precise (OK names the chunk) or seed (OK without chunkId: waves).
# HELP sis_importer_feedback_ignored_total Feedback messages ignored by the service's attempts, by reason.
# HELP sis_importer_last_run_duration_seconds Duration of the service's last run.
# HELP sis_importer_last_run_success 1 if the service's last run succeeded.
# HELP sis_importer_last_run_timestamp_seconds Unix time the service's last run ended, successful or not.
# HELP sis_importer_last_success_timestamp_seconds Unix time the service last finished a run (ok or skipped); 0 if never.
# HELP sis_importer_outage_seconds_total Seconds of ended outages of Redis, NATS or JetStream publishing.
# HELP sis_importer_outages_total Outages of Redis, NATS or JetStream publishing seen by the importer (disconnects or failed operations until the next success).
# HELP sis_importer_panic_timeouts_held_total Panic timeouts not acted on because JetStream still held delivered, unacknowledged chunks that it will redeliver.
# HELP sis_importer_publishes_resent_on_reconnect_total Publishes sent again at once because NATS connected again, or the stream elected a leader, while their ack was awaited.
# HELP sis_importer_service_forbidden 1 while Sisu's 403 keeps the service skipped.
# HELP sis_importer_sisu_request_duration_seconds Sisu request durations.
# HELP sis_importer_sisu_requests_total Sisu requests by status class.
# TYPE sis_importer_chunks_failed_total counter
# TYPE sis_importer_chunks_published_total counter
# TYPE sis_importer_chunks_split_total counter
# TYPE sis_importer_committed_ordinal gauge
# TYPE sis_importer_dead_letters gauge
# TYPE sis_importer_entities_acknowledged_total counter
# TYPE sis_importer_entities_dead_lettered_total counter
# TYPE sis_importer_entities_fetched_total counter
# TYPE sis_importer_entities_published_total counter
# TYPE sis_importer_feedback_form gauge
# TYPE sis_importer_feedback_ignored_total counter
# TYPE sis_importer_last_run_duration_seconds gauge
# TYPE sis_importer_last_run_success gauge
# TYPE sis_importer_last_run_timestamp_seconds gauge
# TYPE sis_importer_last_success_timestamp_seconds gauge
# TYPE sis_importer_outage_seconds_total counter
# TYPE sis_importer_outages_total counter
# TYPE sis_importer_panic_timeouts_held_total counter
# TYPE sis_importer_publishes_resent_on_reconnect_total counter
# TYPE sis_importer_service_forbidden gauge
# TYPE sis_importer_sisu_request_duration_seconds histogram
# TYPE sis_importer_sisu_requests_total counter";

/// This test's series and values; `now` stands for the current Unix time.
const SERIES: &str = r#"sis_importer_chunks_failed_total{service="GOLDEN_A"} 3
sis_importer_chunks_failed_total{service="GOLDEN_B"} 0
sis_importer_chunks_failed_total{service="GOLDEN_C"} 0
sis_importer_chunks_published_total{service="GOLDEN_A"} 16
sis_importer_chunks_published_total{service="GOLDEN_B"} 0
sis_importer_chunks_published_total{service="GOLDEN_C"} 0
sis_importer_chunks_split_total{service="GOLDEN_A"} 2
sis_importer_chunks_split_total{service="GOLDEN_B"} 0
sis_importer_chunks_split_total{service="GOLDEN_C"} 0
sis_importer_committed_ordinal{service="GOLDEN_A"} 4242
sis_importer_committed_ordinal{service="GOLDEN_C"} 7
sis_importer_dead_letters{service="GOLDEN_A"} 3
sis_importer_dead_letters{service="GOLDEN_B"} 0
sis_importer_entities_acknowledged_total{service="GOLDEN_A"} 900
sis_importer_entities_acknowledged_total{service="GOLDEN_B"} 0
sis_importer_entities_acknowledged_total{service="GOLDEN_C"} 0
sis_importer_entities_dead_lettered_total{service="GOLDEN_A",reason="poison"} 1
sis_importer_entities_dead_lettered_total{service="GOLDEN_A",reason="too_large"} 2
sis_importer_entities_fetched_total{service="GOLDEN_A"} 1500
sis_importer_entities_fetched_total{service="GOLDEN_B"} 0
sis_importer_entities_fetched_total{service="GOLDEN_C"} 0
sis_importer_entities_published_total{service="GOLDEN_A"} 1000
sis_importer_entities_published_total{service="GOLDEN_B"} 0
sis_importer_entities_published_total{service="GOLDEN_C"} 0
sis_importer_feedback_form{service="GOLDEN_A",form="seed"} 1
sis_importer_feedback_form{service="GOLDEN_B",form="precise"} 1
sis_importer_feedback_ignored_total{service="GOLDEN_A",reason="surplus"} 5
sis_importer_feedback_ignored_total{service="GOLDEN_B",reason="malformed"} 1
sis_importer_last_run_duration_seconds{service="GOLDEN_A"} 1.5
sis_importer_last_run_duration_seconds{service="GOLDEN_B"} 2
sis_importer_last_run_success{service="GOLDEN_A"} 1
sis_importer_last_run_success{service="GOLDEN_B"} 0
sis_importer_last_run_timestamp_seconds{service="GOLDEN_A"} now
sis_importer_last_run_timestamp_seconds{service="GOLDEN_B"} now
sis_importer_last_success_timestamp_seconds{service="GOLDEN_A"} now
sis_importer_last_success_timestamp_seconds{service="GOLDEN_B"} 0
sis_importer_last_success_timestamp_seconds{service="GOLDEN_C"} 12345.5
sis_importer_outage_seconds_total{system="golden"} 1.5
sis_importer_outages_total{system="golden"} 2
sis_importer_service_forbidden{service="GOLDEN_A"} 0
sis_importer_service_forbidden{service="GOLDEN_B"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="+Inf"} 4
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="0.005"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="0.01"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="0.025"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="0.05"} 2
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="0.1"} 3
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="0.25"} 3
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="0.5"} 3
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="1"} 3
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="10"} 3
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_A",le="2.5"} 3
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="+Inf"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="0.005"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="0.01"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="0.025"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="0.05"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="0.1"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="0.25"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="0.5"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="1"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="10"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_B",le="2.5"} 1
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="+Inf"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="0.005"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="0.01"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="0.025"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="0.05"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="0.1"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="0.25"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="0.5"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="1"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="10"} 0
sis_importer_sisu_request_duration_seconds_bucket{service="GOLDEN_C",le="2.5"} 0
sis_importer_sisu_request_duration_seconds_count{service="GOLDEN_A"} 4
sis_importer_sisu_request_duration_seconds_count{service="GOLDEN_B"} 1
sis_importer_sisu_request_duration_seconds_count{service="GOLDEN_C"} 0
sis_importer_sisu_request_duration_seconds_sum{service="GOLDEN_A"} 20.123
sis_importer_sisu_request_duration_seconds_sum{service="GOLDEN_B"} 1
sis_importer_sisu_request_duration_seconds_sum{service="GOLDEN_C"} 0
sis_importer_sisu_requests_total{service="GOLDEN_A",status="2xx"} 2
sis_importer_sisu_requests_total{service="GOLDEN_A",status="5xx"} 1
sis_importer_sisu_requests_total{service="GOLDEN_A",status="error"} 1
sis_importer_sisu_requests_total{service="GOLDEN_B",status="4xx"} 1"#;

/// Drives every facade function with fixed arguments.
fn record() {
    let (a, b, c) = ("GOLDEN_A", "GOLDEN_B", "GOLDEN_C");
    sisu_request(a, 200, Duration::from_millis(3));
    sisu_request(a, 204, Duration::from_millis(40));
    sisu_request(a, 503, Duration::from_millis(80));
    sisu_request(a, 0, Duration::from_secs(20));
    sisu_request(b, 404, Duration::from_secs(1));
    fetched(a, 1000);
    fetched(a, 500);
    chunks_published(a, 12, 1000);
    chunks_published(a, 4, 0);
    acknowledged(a, 900);
    chunks_failed(a, 2, 1);
    dead_lettered(a, "poison");
    dead_lettered(a, "too_large");
    dead_lettered(a, "too_large");
    committed(a, 4242);
    committed(c, 7);
    run_finished(a, Duration::from_millis(1500), true);
    run_finished(b, Duration::from_secs(2), false);
    feedback_ignored(a, "surplus", 3);
    feedback_ignored(a, "surplus", 2);
    feedback_ignored(b, "malformed", 1);
    last_success(c, 12345.5);
    forbidden(a, false);
    forbidden(b, true);
    dead_letters(a, 3);
    dead_letters(b, 0);
    feedback_form(a, "precise");
    feedback_form(a, "seed");
    feedback_form(b, "precise");
    outage_began("golden");
    outage_began("golden");
    outage_ended("golden", Duration::from_millis(1500));
}

/// `(headers, series)` of `text`: the header lines, and `series value` for
/// this test's series, values normalised (`1.0` and `1` are one number)
/// and times within a minute of now written `now`.
fn read(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut headers = BTreeSet::new();
    let mut series = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            headers.insert(line.to_owned());
            continue;
        }
        if !(line.contains("service=\"GOLDEN_") || line.contains("system=\"golden\"")) {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value.parse().expect(line);
        let value = if (value - now).abs() < 60.0 {
            "now".to_owned()
        } else {
            value.to_string()
        };
        series.insert(format!("{name} {value}"));
    }
    (headers, series)
}

#[test]
fn the_exposition_keeps_its_families_series_and_values() {
    record();
    let text = render();
    let (headers, series) = read(&text);
    let want = |s: &str| s.lines().map(str::to_owned).collect::<BTreeSet<_>>();
    assert_eq!(headers, want(HEADERS), "{text}");
    let got = series.iter().cloned().collect::<Vec<_>>().join("\n");
    assert_eq!(series, want(SERIES), "got:\n{got}");
}
