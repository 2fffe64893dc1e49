//! Process-wide metrics for the admin API's `/metrics`: a
//! [`prometheus_client`] registry, rendered in the Prometheus text format
//! (version 0.0.4). The functions here are its only writers, named for what
//! happened (`fetched`, `committed`, …), so callers never see the crate.
//!
//! Counters and gauges are atomics. Each service's counters are looked up
//! once (a read lock on a small map) and then added to, so an attempt
//! observer's flush, a few times a second, costs one lookup and a few
//! atomic adds per counter it hands over; nothing is counted per message.
//! A service's counter series and its request histogram appear together the
//! first time anything is told about the service; gauges and the series
//! labelled by reason, status or form appear once set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the request-duration buckets, seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// `service="…"`. An `Arc` so that building a label set for a lookup is a
/// reference count, not an allocation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: Arc<str>,
}

/// `service="…",reason="…"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    service: Arc<str>,
    reason: &'static str,
}

/// `service="…",status="…"` (a status class).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    service: Arc<str>,
    status: &'static str,
}

/// `service="…",form="…"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormLabels {
    service: Arc<str>,
    form: &'static str,
}

/// `system="…"` (`redis`, `nats`, `jetstream`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SystemLabel {
    system: &'static str,
}

type CounterFamily<L> = Family<L, Counter>;
type IntGauges = Family<ServiceLabel, Gauge<i64, AtomicI64>>;
type FloatGauges = Family<ServiceLabel, Gauge<f64, AtomicU64>>;
type Histograms = Family<ServiceLabel, Histogram, fn() -> Histogram>;

/// Every family, as handles sharing their series with the registry.
#[derive(Default)]
struct Families {
    fetched: CounterFamily<ServiceLabel>,
    published: CounterFamily<ServiceLabel>,
    acknowledged: CounterFamily<ServiceLabel>,
    chunks_published: CounterFamily<ServiceLabel>,
    chunks_failed: CounterFamily<ServiceLabel>,
    chunks_split: CounterFamily<ServiceLabel>,
    dead_lettered: CounterFamily<ReasonLabels>,
    requests: CounterFamily<StatusLabels>,
    ordinal: IntGauges,
    last_run_seconds: FloatGauges,
    last_run_success: IntGauges,
    last_run_timestamp: FloatGauges,
    last_success_timestamp: FloatGauges,
    forbidden: IntGauges,
    dead_letters: IntGauges,
    feedback_ignored: CounterFamily<ReasonLabels>,
    feedback_form: Family<FormLabels, Gauge<i64, AtomicI64>>,
    outages: CounterFamily<SystemLabel>,
    outage_seconds: Family<SystemLabel, Counter<f64, AtomicU64>>,
    resent_on_reconnect: Counter,
    panic_holds: Counter,
}

/// One service's handles into the counter families: what a flush adds to.
struct ServiceMetrics {
    label: ServiceLabel,
    fetched: Counter,
    published: Counter,
    acknowledged: Counter,
    chunks_published: Counter,
    chunks_failed: Counter,
    chunks_split: Counter,
    request_seconds: Histogram,
    /// The form last set in `feedback_form` (one series per service).
    form: Mutex<Option<&'static str>>,
}

/// The registry, its families and the per-service handles.
struct Metrics {
    registry: Registry,
    families: Families,
    /// Apart from the others: a histogram has no default buckets.
    request_seconds: Histograms,
    services: RwLock<HashMap<Arc<str>, ServiceMetrics>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let f = Families::default();
        let request_seconds: Histograms = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        let mut registry = Registry::default();
        // The crate prefixes every name, appends `_total` to counter names
        // and a full stop to help texts, so none of them is written here;
        // the names served are those of docs/operating.md, pinned by the
        // tests.
        let r = registry.sub_registry_with_prefix("sis_importer");
        r.register(
            "entities_fetched",
            "Entities fetched from Sisu",
            f.fetched.clone(),
        );
        r.register(
            "entities_published",
            "Entities published to JetStream",
            f.published.clone(),
        );
        r.register(
            "entities_acknowledged",
            "Entities acknowledged by consumers",
            f.acknowledged.clone(),
        );
        r.register(
            "chunks_published",
            "Chunks published, split halves included",
            f.chunks_published.clone(),
        );
        r.register(
            "chunks_failed",
            "Chunks consumers reported FAIL",
            f.chunks_failed.clone(),
        );
        r.register(
            "chunks_split",
            "Failed chunks split in two",
            f.chunks_split.clone(),
        );
        r.register(
            "entities_dead_lettered",
            "Entities dead-lettered, by reason",
            f.dead_lettered.clone(),
        );
        r.register(
            "sisu_requests",
            "Sisu requests by status class",
            f.requests.clone(),
        );
        r.register(
            "sisu_request_duration_seconds",
            "Sisu request durations",
            request_seconds.clone(),
        );
        r.register("committed_ordinal", "Committed ordinal", f.ordinal.clone());
        r.register(
            "last_run_duration_seconds",
            "Duration of the service's last run",
            f.last_run_seconds.clone(),
        );
        r.register(
            "last_run_success",
            "1 if the service's last run succeeded",
            f.last_run_success.clone(),
        );
        r.register(
            "last_run_timestamp_seconds",
            "Unix time the service's last run ended, successful or not",
            f.last_run_timestamp.clone(),
        );
        r.register(
            "last_success_timestamp_seconds",
            "Unix time the service last finished a run (ok or skipped); 0 if never",
            f.last_success_timestamp.clone(),
        );
        r.register(
            "service_forbidden",
            "1 while Sisu's 403 keeps the service skipped",
            f.forbidden.clone(),
        );
        r.register(
            "dead_letters",
            "Dead letters kept for the service in Redis",
            f.dead_letters.clone(),
        );
        r.register(
            "feedback_ignored",
            "Feedback messages ignored by the service's attempts, by reason",
            f.feedback_ignored.clone(),
        );
        r.register(
            "feedback_form",
            "1 for the form the service's consumers answer in: precise (OK names the chunk) or seed (OK without chunkId: waves)",
            f.feedback_form.clone(),
        );
        r.register(
            "outages",
            "Outages of Redis, NATS or JetStream publishing seen by the importer (disconnects or failed operations until the next success)",
            f.outages.clone(),
        );
        r.register(
            "outage_seconds",
            "Seconds of ended outages of Redis, NATS or JetStream publishing",
            f.outage_seconds.clone(),
        );
        r.register(
            "publishes_resent_on_reconnect",
            "Publishes sent again at once because NATS connected again, or the stream elected a leader, while their ack was awaited",
            f.resent_on_reconnect.clone(),
        );
        r.register(
            "panic_timeouts_held",
            "Panic timeouts not acted on because JetStream still held delivered, unacknowledged chunks that it will redeliver",
            f.panic_holds.clone(),
        );
        // Redis, NATS and JetStream publishing are there from the start, at
        // zero: an alert on `increase(...)` then sees the first outage too
        // (a series born at 1 has no increase), and the rules' names are
        // always served.
        for system in ["redis", "nats", "jetstream"] {
            let label = SystemLabel { system };
            f.outages.get_or_create_owned(&label);
            f.outage_seconds.get_or_create_owned(&label);
        }
        Metrics {
            registry,
            families: f,
            request_seconds,
            services: RwLock::default(),
        }
    }

    /// Runs `f` on `service`'s handles, creating its counter series on the
    /// first call.
    fn with_service<T>(&self, service: &str, f: impl FnOnce(&ServiceMetrics, &Families) -> T) -> T {
        {
            let services = self.services.read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = services.get(service) {
                return f(s, &self.families);
            }
        }
        let mut services = self.services.write().unwrap_or_else(|e| e.into_inner());
        let s = services
            .entry(Arc::from(service))
            .or_insert_with_key(|id| self.service_metrics(id));
        f(s, &self.families)
    }

    /// Handles to `service`'s counters and histogram, created at zero.
    fn service_metrics(&self, service: &Arc<str>) -> ServiceMetrics {
        let label = ServiceLabel {
            service: service.clone(),
        };
        let f = &self.families;
        ServiceMetrics {
            fetched: f.fetched.get_or_create_owned(&label),
            published: f.published.get_or_create_owned(&label),
            acknowledged: f.acknowledged.get_or_create_owned(&label),
            chunks_published: f.chunks_published.get_or_create_owned(&label),
            chunks_failed: f.chunks_failed.get_or_create_owned(&label),
            chunks_split: f.chunks_split.get_or_create_owned(&label),
            request_seconds: self.request_seconds.get_or_create_owned(&label),
            form: Mutex::new(None),
            label,
        }
    }
}

impl ServiceMetrics {
    fn reason(&self, reason: &'static str) -> ReasonLabels {
        ReasonLabels {
            service: self.label.service.clone(),
            reason,
        }
    }
}

fn with_service<T>(service: &str, f: impl FnOnce(&ServiceMetrics, &Families) -> T) -> T {
    METRICS.with_service(service, f)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A Sisu request finished with `status` (0 = no answer).
pub fn sisu_request(service: &str, status: u16, took: Duration) {
    let status = match status {
        0 => "error",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    with_service(service, |s, f| {
        let labels = StatusLabels {
            service: s.label.service.clone(),
            status,
        };
        f.requests.get_or_create(&labels).inc();
        s.request_seconds.observe(took.as_secs_f64());
    });
}

/// Entities fetched.
pub fn fetched(service: &str, n: u64) {
    with_service(service, |s, _| s.fetched.inc_by(n));
}

/// `chunks` chunks handed to the publisher, carrying `entities` entities
/// on their first publish (split halves are not counted again).
pub fn chunks_published(service: &str, chunks: u64, entities: u64) {
    with_service(service, |s, _| {
        s.chunks_published.inc_by(chunks);
        s.published.inc_by(entities);
    });
}

/// Entities acknowledged by a consumer.
pub fn acknowledged(service: &str, n: u64) {
    with_service(service, |s, _| s.acknowledged.inc_by(n));
}

/// Chunks reported FAIL: `splits` were split in two, `poisons` isolated a
/// poison entity.
pub fn chunks_failed(service: &str, splits: u64, poisons: u64) {
    with_service(service, |s, _| {
        s.chunks_failed.inc_by(splits + poisons);
        s.chunks_split.inc_by(splits);
    });
}

/// An entity dead-lettered.
pub fn dead_lettered(service: &str, reason: &'static str) {
    with_service(service, |s, f| {
        f.dead_lettered.get_or_create(&s.reason(reason)).inc();
    });
}

/// The committed ordinal moved.
pub fn committed(service: &str, ordinal: i64) {
    with_service(service, |s, f| {
        f.ordinal.get_or_create(&s.label).set(ordinal)
    });
}

/// A service's run ended.
pub fn run_finished(service: &str, took: Duration, success: bool) {
    let now = unix_now();
    with_service(service, |s, f| {
        let l = &s.label;
        f.last_run_seconds.get_or_create(l).set(took.as_secs_f64());
        f.last_run_success.get_or_create(l).set(i64::from(success));
        f.last_run_timestamp.get_or_create(l).set(now);
        // A failure leaves an earlier success as it is, and a service that
        // never finished as far as anyone knows at 0: an alert on the age
        // of the last success must fire for it too.
        let last_success = f.last_success_timestamp.get_or_create(l);
        if success {
            last_success.set(now);
        }
    });
}

/// `n` feedback messages ignored for `reason`.
pub fn feedback_ignored(service: &str, reason: &'static str, n: u64) {
    with_service(service, |s, f| {
        f.feedback_ignored
            .get_or_create(&s.reason(reason))
            .inc_by(n);
    });
}

/// The service last finished a run at Unix time `at` (0: never).
pub fn last_success(service: &str, at: f64) {
    with_service(service, |s, f| {
        f.last_success_timestamp.get_or_create(&s.label).set(at)
    });
}

/// The service is (or is no longer) forbidden.
pub fn forbidden(service: &str, forbidden: bool) {
    with_service(service, |s, f| {
        f.forbidden
            .get_or_create(&s.label)
            .set(i64::from(forbidden))
    });
}

/// The service has `n` dead letters in Redis.
pub fn dead_letters(service: &str, n: u64) {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    with_service(service, |s, f| {
        f.dead_letters.get_or_create(&s.label).set(n)
    });
}

/// The service's consumers were seen to answer in `form` (`precise`,
/// `seed`): its one `feedback_form` series, the earlier form's removed.
pub fn feedback_form(service: &str, form: &'static str) {
    with_service(service, |s, f| {
        let mut current = s.form.lock().unwrap_or_else(|e| e.into_inner());
        let labels = |form| FormLabels {
            service: s.label.service.clone(),
            form,
        };
        if let Some(before) = current.replace(form).filter(|b| *b != form) {
            f.feedback_form.remove(&labels(before));
        }
        f.feedback_form.get_or_create(&labels(form)).set(1);
    });
}

/// Both outage series of `system`, created at zero on the first call.
fn outage(system: &'static str) -> (Counter, Counter<f64, AtomicU64>) {
    let f = &METRICS.families;
    let label = SystemLabel { system };
    (
        f.outages.get_or_create_owned(&label),
        f.outage_seconds.get_or_create_owned(&label),
    )
}

/// A publish was sent again because the connection came back.
pub fn publish_resent_on_reconnect() {
    METRICS.families.resent_on_reconnect.inc();
}

/// A panic timeout was held off for JetStream's redelivery.
pub fn panic_timeout_held() {
    METRICS.families.panic_holds.inc();
}

/// An outage of `system` began.
pub fn outage_began(system: &'static str) {
    outage(system).0.inc();
}

/// An outage of `system` ended after `lasted`.
pub fn outage_ended(system: &'static str, lasted: Duration) {
    outage(system).1.inc_by(lasted.as_secs_f64());
}

/// Everything, in the Prometheus text exposition format (version 0.0.4).
/// A family appears once it has a series.
pub fn render() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
