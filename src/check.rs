//! `sis-importer check` and `/readyz`: can the importer work with what it
//! is given? Each check is one line, `ok`, `warn` or `FAIL`, with what it
//! found or what is wrong and what to do. The command runs them in order
//! and stops at the first failure of configuration, NATS or Redis (a later
//! check would only repeat it); Sisu gets a line per service, all of them
//! reported. `/readyz` runs the NATS and Redis checks on the importer's
//! own connections.
//!
//! - this file: the lines up to the durable consumers;
//! - `check/sisu.rs`: a line per service: Sisu's answer, the subject's
//!   capture and its readers.

use std::fmt;
use std::time::Duration;

use crate::catalogue::Service;
use crate::config::Config;
use crate::sinks::connection::{SinkError, StreamState};
use crate::sinks::consumers::DurableConsumer;
use crate::sinks::Nats;
use crate::sources::SisuClient;
use crate::store::OrdinalStore;

mod sisu;

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

/// The whole `check` command: configuration and the schedule, NATS and
/// its payload limit, Redis, the durable consumers, then Sisu once per
/// selected service. Each line goes to `out` as soon as it is known;
/// stops at the first failure before Sisu. True when every check passed.
/// Writes nothing anywhere.
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
    if !report(cron(config, chrono::Utc::now())) {
        return false;
    }
    let nats = match within(CONNECT, Nats::connect(config)).await {
        Ok(nats) => nats,
        Err(wrong) => return report(Check::new("nats", Err(wrong))),
    };
    let state = match within(CONNECT, nats.stream_state(&services)).await {
        Ok(state) => state,
        Err(wrong) => return report(Check::new("nats", Err(wrong))),
    };
    if !report(stream_line(config, &state, false)) {
        return false;
    }
    report(payload(&nats, config));
    let store = match within(CONNECT, OrdinalStore::connect(&config.redis_url)).await {
        Ok(store) => store,
        Err(wrong) => return report(Check::new("redis", Err(wrong))),
    };
    if !report(redis(&store, &services).await) {
        return false;
    }
    let durables = match durables(&nats, &state).await {
        Ok(durables) => durables,
        Err(wrong) => return report(Check::new("consumers", Err(wrong))),
    };
    report(consumers(config, &services, &durables));
    // One attempt per request: a check says what is wrong now, it does not
    // wait out an outage.
    let mut once = config.clone();
    once.sis_retry_limit = 1;
    let client = match SisuClient::new(&once) {
        Ok(client) => client,
        Err(e) => return report(Check::new("sisu", Err(e.to_string()))),
    };
    let readers = sisu::Readers {
        stream: &config.nats_stream,
        state: &state,
        durables: &durables,
    };
    sisu::lines(&client, &services, &readers, &mut report).await
}

/// How long connecting to NATS or Redis may take in a check.
const CONNECT: Duration = Duration::from_secs(10);

/// Validation (which covers the schedule, the time zone and the service
/// selection too) and the services selected.
fn configuration(config: &Config) -> Result<(Vec<Service>, String), String> {
    let wrong = |e: crate::config::ConfigError| e.to_string();
    config.validate().map_err(wrong)?;
    let services = config.selected_services().map_err(wrong)?;
    let found = format!("{} services selected", services.len());
    Ok((services, found))
}

/// The schedule and its next three runs after `now`, in its time zone.
fn cron(config: &Config, now: chrono::DateTime<chrono::Utc>) -> Check {
    let outcome = config
        .schedule()
        .and_then(|schedule| Ok((schedule, config.time_zone()?)))
        .map_err(|e| e.to_string())
        .map(|(schedule, tz)| {
            let next: Vec<String> = schedule
                .after(&now.with_timezone(&tz))
                .take(3)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S %Z").to_string())
                .collect();
            let next = if next.is_empty() {
                "never runs (no time matches)".to_owned()
            } else {
                format!("next runs {}", next.join(", "))
            };
            format!("\"{}\" in {}: {next}", config.cron, config.tz_name)
        });
    Check::new("cron", outcome)
}

/// `MAX_CHUNK_BYTES` against the server's `max_payload`: `warn` when the
/// server caps it.
fn payload(nats: &Nats, config: &Config) -> Check {
    match nats.payload_cap(config.max_chunk_bytes) {
        Some(capped) => Check {
            warning: true,
            ..Check::new("payload", Ok(capped))
        },
        None => Check::new(
            "payload",
            Ok(format!(
                "chunks of at most {} bytes (MAX_CHUNK_BYTES) fit the server's max_payload ({})",
                config.max_chunk_bytes,
                nats.max_payload()
            )),
        ),
    }
}

/// The stream the importer publishes into: it captures every subject the
/// selected services need, or, before the importer starts, is absent (the
/// importer creates it at start). For a `running` importer an absent
/// stream fails: it was deleted after the start, and publishes fail until
/// it exists again.
pub async fn stream(nats: &Nats, config: &Config, services: &[Service], running: bool) -> Check {
    match within(CONNECT, nats.stream_state(services)).await {
        Ok(state) => stream_line(config, &state, running),
        Err(wrong) => Check::new("nats", Err(wrong)),
    }
}

/// The `nats` line for the stream found.
fn stream_line(config: &Config, state: &StreamState, running: bool) -> Check {
    let stream = &config.nats_stream;
    let outcome = match state {
        StreamState::Absent if running => Err(format!(
            "stream {stream} is gone (deleted after the start?): publishes fail until it \
             exists; restarting the importer creates it"
        )),
        StreamState::Absent => Ok(format!(
            "{} reached; stream {stream} absent: the importer creates it ({} replica(s))",
            crate::redact::url(&config.nats_url),
            config.nats_stream_replicas
        )),
        StreamState::Exists { missing, .. } if !missing.is_empty() => {
            Err(SinkError::MissingSubjects {
                stream: stream.clone(),
                missing: missing.clone(),
            }
            .to_string())
        }
        StreamState::Exists { replicas, .. } => {
            let asked = config.nats_stream_replicas;
            let fewer = if *replicas < asked {
                format!(" (NATS_STREAM_REPLICAS asks {asked}; the importer does not change it)")
            } else {
                String::new()
            };
            Ok(format!(
                "stream {stream} captures all subjects, {replicas} replica(s){fewer}"
            ))
        }
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

/// The stream's durable consumers; none while the stream does not exist.
async fn durables(nats: &Nats, state: &StreamState) -> Result<Vec<DurableConsumer>, String> {
    if *state == StreamState::Absent {
        return Ok(Vec::new());
    }
    within(CONNECT, nats.durable_consumers()).await
}

/// The durable consumers reading the selected services' subjects: how
/// many services have one, and a warning when one redelivers later than
/// the importer waits for feedback (`PANIC_TIMEOUT × UPDATE_RETRY_LIMIT`).
fn consumers(config: &Config, services: &[Service], durables: &[DurableConsumer]) -> Check {
    let budget = config.panic_timeout * config.update_retry_limit;
    let read = crate::sinks::consumers::readers(services, durables);
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
    let slow = crate::sinks::consumers::ack_waits_beyond(services, durables, budget);
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
    fn the_cron_line_shows_the_next_three_runs_in_the_time_zone() {
        let config = Config {
            cron: "0 30 2 * * *".into(),
            ..Config::default()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-28T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        // Summer time starts in Helsinki on 29 March 2026.
        assert_eq!(
            cron(&config, now).to_string(),
            "ok    cron      \"0 30 2 * * *\" in Europe/Helsinki: next runs \
             2026-03-29 02:30:00 EET, 2026-03-30 02:30:00 EEST, 2026-03-31 02:30:00 EEST"
        );
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
