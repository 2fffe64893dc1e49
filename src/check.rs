//! `sis-importer check` and `/readyz`: can the importer work with what it
//! is given? Each check is one line, `ok` or `FAIL`, with what it found
//! or what is wrong and what to do. The command runs them in order and
//! stops at the first failure (a later check would only repeat it);
//! `/readyz` runs the NATS and Redis checks on the importer's own
//! connections.

use std::fmt;
use std::time::Duration;

use crate::catalogue::{Service, SourceKind};
use crate::config::Config;
use crate::sinks::connection::StreamState;
use crate::sinks::Nats;
use crate::sources::SisuClient;
use crate::store::OrdinalStore;

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `config`, `nats`, `redis`, `consumers`, `sisu`.
    pub name: &'static str,
    /// What was found, or why it failed.
    pub outcome: Result<String, String>,
    /// Passed, but with something the operator should know (`warn` line;
    /// the exit code stays 0).
    pub warning: bool,
}

impl Check {
    fn new(name: &'static str, outcome: Result<String, String>) -> Check {
        Check {
            name,
            outcome,
            warning: false,
        }
    }

    /// A failed check named `name`, for `reason`.
    pub fn failed(name: &'static str, reason: impl fmt::Display) -> Check {
        Check::new(name, Err(reason.to_string()))
    }

    /// True when the check passed.
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(found) if self.warning => write!(f, "warn  {:<10}{found}", self.name),
            Ok(found) => write!(f, "ok    {:<10}{found}", self.name),
            Err(wrong) => write!(f, "FAIL  {:<10}{wrong}", self.name),
        }
    }
}

/// The whole `check` command: configuration, NATS, Redis, then Sisu once
/// per source kind among the selected services. Each line goes to `out`
/// as soon as it is known; stops at the first failure. True when every
/// check passed.
pub async fn all(config: &Config, mut out: impl FnMut(&Check)) -> bool {
    let mut report = |check: Check| {
        out(&check);
        check.ok()
    };
    let services = match configuration(config) {
        Ok((services, found)) => {
            report(Check::new("config", Ok(found)));
            services
        }
        Err(wrong) => return report(Check::new("config", Err(wrong))),
    };
    let nats = match within(CONNECT, Nats::connect(config)).await {
        Ok(nats) => nats,
        Err(wrong) => return report(Check::new("nats", Err(wrong))),
    };
    if !report(stream(&nats, config, &services, false).await) {
        return false;
    }
    let store = match within(CONNECT, OrdinalStore::connect(&config.redis_url)).await {
        Ok(store) => store,
        Err(wrong) => return report(Check::new("redis", Err(wrong))),
    };
    if !report(redis(&store, &services).await) {
        return false;
    }
    if !report(consumers(&nats, config, &services).await) {
        return false;
    }
    // One attempt per request: a check says what is wrong now, it does not
    // wait out an outage.
    let mut once = config.clone();
    once.sis_retry_limit = 1;
    let client = match SisuClient::new(&once) {
        Ok(client) => client,
        Err(e) => return report(Check::new("sisu", Err(e.to_string()))),
    };
    for service in one_per_kind(&services) {
        if !report(sisu(&client, service).await) {
            return false;
        }
    }
    true
}

/// How long connecting to NATS or Redis may take in a check.
const CONNECT: Duration = Duration::from_secs(10);

/// Validation (which covers the schedule, the time zone and the service
/// selection too) and the services selected.
fn configuration(config: &Config) -> Result<(Vec<Service>, String), String> {
    let wrong = |e: crate::config::ConfigError| e.to_string();
    config.validate().map_err(wrong)?;
    let services = config.selected_services().map_err(wrong)?;
    let found = format!(
        "{} services, cron \"{}\" in {}",
        services.len(),
        config.cron,
        config.tz_name
    );
    Ok((services, found))
}

/// The stream the importer publishes into: it captures every subject the
/// selected services need, or, before the importer starts, is absent (the
/// importer creates it at start). For a `running` importer an absent
/// stream fails: it was deleted after the start, and publishes fail until
/// it exists again.
pub async fn stream(nats: &Nats, config: &Config, services: &[Service], running: bool) -> Check {
    let stream = &config.nats_stream;
    let outcome = match within(CONNECT, nats.stream_state(services)).await {
        Ok(StreamState::Absent) if running => Err(format!(
            "stream {stream} is gone (deleted after the start?): publishes fail until it \
             exists; restarting the importer creates it"
        )),
        Ok(StreamState::Absent) => Ok(format!(
            "{} reached; stream {stream} absent: the importer creates it ({} replica(s))",
            crate::redact::url(&config.nats_url),
            config.nats_stream_replicas
        )),
        Ok(StreamState::Exists { missing, .. }) if !missing.is_empty() => Err(format!(
            "stream {stream} does not capture {}: messages on them would not be stored; \
             add them to the stream's subjects (nats stream edit {stream} --subjects ...)",
            missing.join(", ")
        )),
        Ok(StreamState::Exists { replicas, .. }) => {
            let asked = config.nats_stream_replicas;
            let fewer = if replicas < asked {
                format!(" (NATS_STREAM_REPLICAS asks {asked}; the importer does not change it)")
            } else {
                String::new()
            };
            Ok(format!(
                "stream {stream} captures all subjects, {replicas} replica(s){fewer}"
            ))
        }
        Err(wrong) => Err(wrong),
    };
    Check::new("nats", outcome)
}

/// Redis answers `PING` (the probe's check: one round trip).
pub async fn redis_ping(store: &OrdinalStore) -> Check {
    let outcome = within(CONNECT, store.ping())
        .await
        .map(|()| "ping answered".to_owned());
    Check::new("redis", outcome)
}

/// Redis answers and the services' ordinals can be read.
pub async fn redis(store: &OrdinalStore, services: &[Service]) -> Check {
    let read = async {
        store.ping().await?;
        let mut committed = 0;
        for service in services {
            committed += usize::from(store.ordinal(service).await?.is_some());
        }
        Ok::<_, crate::store::StoreError>(committed)
    };
    let outcome = within(CONNECT, read).await.map(|committed| {
        format!(
            "ping answered; {committed} of {} services have a committed ordinal",
            services.len()
        )
    });
    Check::new("redis", outcome)
}

/// The durable consumers reading the selected services' subjects: how
/// many services have one, and a warning when one redelivers later than
/// the importer waits for feedback (`PANIC_TIMEOUT × UPDATE_RETRY_LIMIT`).
/// A stream that does not exist yet has none, which is fine.
pub async fn consumers(nats: &Nats, config: &Config, services: &[Service]) -> Check {
    let durables = match within(CONNECT, nats.durable_consumers()).await {
        Ok(durables) => durables,
        Err(_) if matches!(nats.stream_state(services).await, Ok(StreamState::Absent)) => {
            Vec::new()
        }
        Err(wrong) => return Check::new("consumers", Err(wrong)),
    };
    let budget = config.panic_timeout * config.update_retry_limit;
    let read = crate::sinks::consumers::readers(services, &durables);
    let unread: Vec<&str> = read
        .iter()
        .filter(|(_, r)| r.is_empty())
        .map(|(s, _)| s.id.as_str())
        .collect();
    let longest = read
        .iter()
        .flat_map(|(_, r)| r.iter().map(|d| d.ack_wait))
        .max();
    let mut found = format!(
        "{} of {} services have a durable consumer",
        services.len() - unread.len(),
        services.len()
    );
    if let Some(longest) = longest {
        found += &format!("; longest ack wait {} s", longest.as_secs_f64());
    }
    if !unread.is_empty() && unread.len() < services.len() {
        found += &format!(" (none reads {})", unread.join(", "));
    }
    let slow = crate::sinks::consumers::ack_waits_beyond(services, &durables, budget);
    if slow.is_empty() {
        return Check::new("consumers", Ok(found));
    }
    Check {
        warning: true,
        ..Check::new(
            "consumers",
            Ok(format!(
                "{found}; these redeliver later than PANIC_TIMEOUT × UPDATE_RETRY_LIMIT ({} s), so a chunk of a consumer killed mid-chunk comes back after the importer gave up: {}; raise PANIC_TIMEOUT or UPDATE_RETRY_LIMIT, or lower the ack wait",
                budget.as_secs_f64(),
                slow.join(", ")
            )),
        )
    }
}

/// How long one Sisu request may take in a check.
const SISU_REQUEST: Duration = Duration::from_secs(30);

/// One cheap request for `service`'s source kind.
async fn sisu(client: &SisuClient, service: &Service) -> Check {
    let outcome = within(SISU_REQUEST, crate::sources::probe(client, service))
        .await
        .map(|n| {
            let entities = if n == 1 { "entity" } else { "entities" };
            format!(
                "{:?} answers ({}: {n} {entities})",
                service.source, service.id
            )
        });
    Check::new("sisu", outcome)
}

/// The first selected service of each source kind, in catalogue order.
fn one_per_kind(services: &[Service]) -> Vec<&Service> {
    let mut seen: Vec<SourceKind> = Vec::new();
    services
        .iter()
        .filter(|s| {
            let new = !seen.contains(&s.source);
            seen.push(s.source);
            new
        })
        .collect()
}

/// `work` within `limit`, its error as text.
async fn within<T, E: fmt::Display>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_line_up() {
        let ok = Check::new("nats", Ok("found".into()));
        let fail = Check::new("redis", Err("gone".into()));
        let warn = Check {
            warning: true,
            ..Check::new("consumers", Ok("slow".into()))
        };
        assert_eq!(ok.to_string(), "ok    nats      found");
        assert_eq!(fail.to_string(), "FAIL  redis     gone");
        assert_eq!(warn.to_string(), "warn  consumers slow");
        assert!(warn.ok());
    }

    #[test]
    fn one_request_per_source_kind() {
        let services = crate::catalogue::builtin();
        let kinds: Vec<SourceKind> = one_per_kind(&services).iter().map(|s| s.source).collect();
        let mut distinct: Vec<SourceKind> = services.iter().map(|s| s.source).collect();
        distinct.dedup();
        let mut unique = Vec::new();
        for k in distinct {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        assert_eq!(kinds, unique);
        assert!(kinds.len() >= 5, "{kinds:?}");
    }

    #[test]
    fn a_bad_configuration_is_the_first_and_only_line() {
        let config = Config {
            fetch_amount: 0,
            ..Config::default()
        };
        let mut lines = Vec::new();
        let ok = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(all(&config, |c| lines.push(c.to_string())));
        assert!(!ok);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("FAIL  config "), "{lines:?}");
    }
}
