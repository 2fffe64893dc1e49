//! Process-wide counters for the admin API's `/metrics` and the progress
//! line: one registry behind one lock, written in batches by each attempt's
//! observer (a few times a second, not per message); rendered in Prometheus
//! text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Per-service counters.
#[derive(Debug, Clone, Default)]
pub struct ServiceCounters {
    /// Entities fetched from Sisu.
    pub fetched: u64,
    /// Entities published (first publish of each entity).
    pub published: u64,
    /// Entities acknowledged by consumers.
    pub acknowledged: u64,
    /// Entities dead-lettered, by reason.
    pub dead_lettered: BTreeMap<&'static str, u64>,
    /// Chunks published (including split halves and re-publishes).
    pub chunks_published: u64,
    /// Chunks reported FAIL.
    pub chunks_failed: u64,
    /// Chunks split in two.
    pub chunks_split: u64,
    /// Committed ordinal.
    pub ordinal: Option<i64>,
    /// Sisu requests by status class (`2xx`, `5xx`, `error`, …).
    pub requests: BTreeMap<&'static str, u64>,
    /// Sum and count of Sisu request seconds, and histogram buckets.
    pub request_seconds: Histogram,
    /// Last run's duration in seconds.
    pub last_run_seconds: f64,
    /// Last run's result: 1 success, 0 failure.
    pub last_run_success: Option<bool>,
    /// Unix time of the last run's end.
    pub last_run_timestamp: f64,
    /// Feedback messages ignored, by reason.
    pub feedback_ignored: BTreeMap<&'static str, u64>,
    /// How its consumers answer: `precise` or `seed` (`None`: not seen).
    pub feedback_form: Option<&'static str>,
    /// Unix time the service last finished a run (ok or skipped); 0 when
    /// it never did as far as Redis remembers; `None` before it was read.
    pub last_success_timestamp: Option<f64>,
    /// Whether Sisu answered 403 for it (skipped for a while).
    pub forbidden: Option<bool>,
    /// Dead letters kept for it in Redis.
    pub dead_letters: Option<u64>,
}

/// A fixed-bucket histogram.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Counts per bucket of `BUCKETS` (cumulative when rendered).
    pub buckets: [u64; 10],
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// Upper bounds of the request-duration buckets, seconds.
pub(crate) const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Registry {
    services: BTreeMap<String, ServiceCounters>,
    /// Per system (`redis`, `nats`): outages begun, seconds of ended ones.
    outages: BTreeMap<&'static str, (u64, f64)>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn with_service(service: &str, f: impl FnOnce(&mut ServiceCounters)) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    f(reg.services.entry(service.to_owned()).or_default());
}

/// A Sisu request finished with `status` (0 = no answer).
pub fn sisu_request(service: &str, status: u16, took: Duration) {
    let class = match status {
        0 => "error",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let secs = took.as_secs_f64();
    with_service(service, |s| {
        *s.requests.entry(class).or_default() += 1;
        let h = &mut s.request_seconds;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.buckets[i] += 1;
        }
        h.sum += secs;
        h.count += 1;
    });
}

/// Entities fetched.
pub fn fetched(service: &str, n: u64) {
    with_service(service, |s| s.fetched += n);
}

/// `chunks` chunks handed to the publisher, carrying `entities` entities
/// on their first publish (split halves are not counted again).
pub fn chunks_published(service: &str, chunks: u64, entities: u64) {
    with_service(service, |s| {
        s.chunks_published += chunks;
        s.published += entities;
    });
}

/// Entities acknowledged by a consumer.
pub fn acknowledged(service: &str, n: u64) {
    with_service(service, |s| s.acknowledged += n);
}

/// Chunks reported FAIL: `splits` were split in two, `poisons` isolated a
/// poison entity.
pub fn chunks_failed(service: &str, splits: u64, poisons: u64) {
    with_service(service, |s| {
        s.chunks_failed += splits + poisons;
        s.chunks_split += splits;
    });
}

/// An entity dead-lettered.
pub fn dead_lettered(service: &str, reason: &'static str) {
    with_service(service, |s| {
        *s.dead_lettered.entry(reason).or_default() += 1
    });
}

/// The committed ordinal moved.
pub fn committed(service: &str, ordinal: i64) {
    with_service(service, |s| s.ordinal = Some(ordinal));
}

/// A service's run ended.
pub fn run_finished(service: &str, took: Duration, success: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    with_service(service, |s| {
        s.last_run_seconds = took.as_secs_f64();
        s.last_run_success = Some(success);
        s.last_run_timestamp = now;
        if success {
            s.last_success_timestamp = Some(now);
        } else if s.last_success_timestamp.is_none() {
            // Never finished as far as anyone knows: an alert on the age
            // of the last success must fire for it too.
            s.last_success_timestamp = Some(0.0);
        }
    });
}

/// `n` feedback messages ignored for `reason`.
pub fn feedback_ignored(service: &str, reason: &'static str, n: u64) {
    with_service(service, |s| {
        *s.feedback_ignored.entry(reason).or_default() += n
    });
}

/// The service last finished a run at Unix time `at` (0: never).
pub fn last_success(service: &str, at: f64) {
    with_service(service, |s| s.last_success_timestamp = Some(at));
}

/// The service is (or is no longer) forbidden.
pub fn forbidden(service: &str, forbidden: bool) {
    with_service(service, |s| s.forbidden = Some(forbidden));
}

/// The service has `n` dead letters in Redis.
pub fn dead_letters(service: &str, n: u64) {
    with_service(service, |s| s.dead_letters = Some(n));
}

/// The service's consumers were seen to answer in `form` (`precise`,
/// `seed`).
pub fn feedback_form(service: &str, form: &'static str) {
    with_service(service, |s| s.feedback_form = Some(form));
}

/// An outage of `system` began.
pub fn outage_began(system: &'static str) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.outages.entry(system).or_default().0 += 1;
}

/// An outage of `system` ended after `lasted`.
pub fn outage_ended(system: &'static str, lasted: Duration) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.outages.entry(system).or_default().1 += lasted.as_secs_f64();
}

/// A copy of one service's counters.
pub fn snapshot(service: &str) -> ServiceCounters {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.services.get(service).cloned().unwrap_or_default()
}

/// A metric family: its name, its help text and how to read one service's
/// value.
type Family<T> = (&'static str, &'static str, fn(&ServiceCounters) -> T);

/// Everything, in Prometheus text exposition format.
pub fn render() -> String {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    let counters: [Family<u64>; 6] = [
        (
            "sis_importer_entities_fetched_total",
            "Entities fetched from Sisu.",
            |s| s.fetched,
        ),
        (
            "sis_importer_entities_published_total",
            "Entities published to JetStream.",
            |s| s.published,
        ),
        (
            "sis_importer_entities_acknowledged_total",
            "Entities acknowledged by consumers.",
            |s| s.acknowledged,
        ),
        (
            "sis_importer_chunks_published_total",
            "Chunks published, split halves included.",
            |s| s.chunks_published,
        ),
        (
            "sis_importer_chunks_failed_total",
            "Chunks consumers reported FAIL.",
            |s| s.chunks_failed,
        ),
        (
            "sis_importer_chunks_split_total",
            "Failed chunks split in two.",
            |s| s.chunks_split,
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (svc, s) in &reg.services {
            let _ = writeln!(out, "{name}{{service=\"{svc}\"}} {}", get(s));
        }
    }
    let name = "sis_importer_entities_dead_lettered_total";
    let _ = writeln!(
        out,
        "# HELP {name} Entities dead-lettered, by reason.\n# TYPE {name} counter"
    );
    for (svc, s) in &reg.services {
        for (reason, n) in &s.dead_lettered {
            let _ = writeln!(out, "{name}{{service=\"{svc}\",reason=\"{reason}\"}} {n}");
        }
    }
    let name = "sis_importer_sisu_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Sisu requests by status class.\n# TYPE {name} counter"
    );
    for (svc, s) in &reg.services {
        for (class, n) in &s.requests {
            let _ = writeln!(out, "{name}{{service=\"{svc}\",status=\"{class}\"}} {n}");
        }
    }
    let name = "sis_importer_sisu_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Sisu request durations.\n# TYPE {name} histogram"
    );
    for (svc, s) in &reg.services {
        let h = &s.request_seconds;
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{service=\"{svc}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{service=\"{svc}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{service=\"{svc}\"}} {}\n{name}_count{{service=\"{svc}\"}} {}",
            h.sum, h.count
        );
    }
    let gauges: [Family<Option<f64>>; 7] = [
        (
            "sis_importer_committed_ordinal",
            "Committed ordinal.",
            |s| s.ordinal.map(|o| o as f64),
        ),
        (
            "sis_importer_last_run_duration_seconds",
            "Duration of the service's last run.",
            |s| s.last_run_success.map(|_| s.last_run_seconds),
        ),
        (
            "sis_importer_last_run_success",
            "1 if the service's last run succeeded.",
            |s| s.last_run_success.map(|b| f64::from(u8::from(b))),
        ),
        (
            "sis_importer_last_run_timestamp_seconds",
            "Unix time the service's last run ended, successful or not.",
            |s| s.last_run_success.map(|_| s.last_run_timestamp),
        ),
        (
            "sis_importer_last_success_timestamp_seconds",
            "Unix time the service last finished a run (ok or skipped); 0 if never.",
            |s| s.last_success_timestamp,
        ),
        (
            "sis_importer_service_forbidden",
            "1 while Sisu's 403 keeps the service skipped.",
            |s| s.forbidden.map(|b| f64::from(u8::from(b))),
        ),
        (
            "sis_importer_dead_letters",
            "Dead letters kept for the service in Redis.",
            |s| s.dead_letters.map(|n| n as f64),
        ),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (svc, s) in &reg.services {
            if let Some(v) = get(s) {
                let _ = writeln!(out, "{name}{{service=\"{svc}\"}} {v}");
            }
        }
    }
    let name = "sis_importer_feedback_ignored_total";
    let _ = writeln!(
        out,
        "# HELP {name} Feedback messages ignored by the service's attempts, by reason.\n# TYPE {name} counter"
    );
    for (svc, s) in &reg.services {
        for (reason, n) in &s.feedback_ignored {
            let _ = writeln!(out, "{name}{{service=\"{svc}\",reason=\"{reason}\"}} {n}");
        }
    }
    let name = "sis_importer_feedback_form";
    let _ = writeln!(
        out,
        "# HELP {name} 1 for the form the service's consumers answer in: precise (OK names the chunk) or seed (OK without chunkId: waves).\n# TYPE {name} gauge"
    );
    for (svc, s) in &reg.services {
        if let Some(form) = s.feedback_form {
            let _ = writeln!(out, "{name}{{service=\"{svc}\",form=\"{form}\"}} 1");
        }
    }
    let (count, secs) = (
        "sis_importer_outages_total",
        "sis_importer_outage_seconds_total",
    );
    let _ = writeln!(
        out,
        "# HELP {count} Outages of Redis or NATS seen by the importer (disconnects or failed operations until the next success).\n# TYPE {count} counter"
    );
    for (system, (n, _)) in &reg.outages {
        let _ = writeln!(out, "{count}{{system=\"{system}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP {secs} Seconds of ended outages of Redis or NATS.\n# TYPE {secs} counter"
    );
    for (system, (_, s)) in &reg.outages {
        let _ = writeln!(out, "{secs}{{system=\"{system}\"}} {s}");
    }
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
