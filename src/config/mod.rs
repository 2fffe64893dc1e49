//! One typed configuration (SPEC §7): read from a TOML file, then overridden
//! by the fixed environment names operators already set. Everything is
//! validated before anything is fetched, so bad configuration ends the
//! program with one clear message.
//!
//! - this file: the [`Config`] struct, its defaults, loading, [`ConfigError`];
//! - `env.rs`: the environment variables, one table row each;
//! - `units.rs`: durations written in TOML as seconds or milliseconds;
//! - `toml_error.rs`: a TOML error located (file, line, column, key);
//! - `validate.rs`: [`Config::validate`] and its checks;
//! - `schedule.rs`: the cron schedule, its time zone and the instance id;
//! - `services.rs`: the catalogue and the services a run imports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalogue::Service;
pub use crate::redact::Secret;

mod env;
pub mod nats_url;
mod schedule;
pub use schedule::host_name;
mod services;
mod toml_error;
mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use env::ENV_NAMES;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The importer's whole configuration. TOML keys are the snake_case field
/// names, except that the durations keep their unit in the key
/// (`panic_timeout` is `panic_timeout_secs`, `sis_retry_base` is
/// `sis_retry_base_ms`, ...); environment variables (SPEC §7) override them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `SIS_API_URL`: base of ORI, KORI, ILMO, OSUVA and GraphQL. Required.
    pub sis_api_url: Option<String>,
    /// `KORI_PUBLIC_API_URL`: base of URN code books and curriculum periods.
    pub kori_public_api_url: String,
    /// `ROOT_ORG_ID`: university organisation id for curriculum periods.
    pub root_org_id: String,
    /// `SIS_API_USER`: basic-auth user.
    pub sis_api_user: Option<String>,
    /// `SIS_API_PASSWORD`: basic-auth password.
    pub sis_api_password: Option<Secret>,
    /// `PROXY_TOKEN`: sent as header `token`.
    pub proxy_token: Option<Secret>,
    /// `KEY_PATH`: client TLS private key (PEM).
    pub key_path: Option<PathBuf>,
    /// `CERT_PATH`: client TLS certificate (PEM).
    pub cert_path: Option<PathBuf>,
    /// `API_KEY`: sent as `X-Api-Key` with the client certificate.
    pub api_key: Option<Secret>,
    /// `CA_PATH`: extra trusted CAs for Sisu (PEM bundle).
    pub ca_path: Option<PathBuf>,
    /// `NATS_URL`, default `nats://127.0.0.1:4222`; several servers
    /// comma-separated.
    pub nats_url: String,
    /// `NATS_TOKEN`: NATS auth token.
    pub nats_token: Option<Secret>,
    /// `NATS_USER`: NATS user (with `NATS_PASSWORD`); `nats://user:pass@host`
    /// in `NATS_URL` works too.
    pub nats_user: Option<String>,
    /// `NATS_PASSWORD`: NATS password.
    pub nats_password: Option<Secret>,
    /// `NATS_TLS`: require TLS to NATS (also implied by a `tls://` URL or
    /// any NATS certificate setting).
    pub nats_tls: bool,
    /// `NATS_CA_PATH`: extra trusted CAs for NATS (PEM).
    pub nats_ca_path: Option<PathBuf>,
    /// `NATS_CERT_PATH`: client certificate for NATS (PEM), with `NATS_KEY_PATH`.
    pub nats_cert_path: Option<PathBuf>,
    /// `NATS_KEY_PATH`: the key of `NATS_CERT_PATH` (PEM).
    pub nats_key_path: Option<PathBuf>,
    /// `NATS_STREAM`, default `SIS_IMPORTER`.
    pub nats_stream: String,
    /// `NATS_STREAM_REPLICAS`: replicas of a stream the importer creates,
    /// default 1 (3 on a three-node JetStream cluster).
    pub nats_stream_replicas: usize,
    /// `REDIS_URL`, default `redis://127.0.0.1:6379/` (may hold a password).
    pub redis_url: Secret,
    /// `FETCH_AMOUNT`: entities per Sisu request, default 1000.
    pub fetch_amount: u32,
    /// `MAX_CHUNK_SIZE`: entities per chunk, default 250 (SPEC §7 says 100;
    /// the tuning sweep chose 250, docs/performance.md).
    pub max_chunk_size: usize,
    /// `MAX_CHUNK_BYTES`: payload bytes per chunk, default 900000.
    pub max_chunk_bytes: usize,
    /// `PANIC_TIMEOUT` (TOML `panic_timeout_secs`, seconds, fractions
    /// allowed): longest wait for feedback progress, default 15 s.
    #[serde(rename = "panic_timeout_secs", deserialize_with = "units::secs_f64")]
    pub panic_timeout: Duration,
    /// `UPDATE_RETRY_LIMIT`: attempts per service after panics, default 6.
    pub update_retry_limit: u32,
    /// `SIS_RETRY_LIMIT`: attempts per Sisu request, default 6.
    pub sis_retry_limit: u32,
    /// `SIS_REQUESTS_PER_SECOND`: rate limit on Sisu, default unlimited.
    pub sis_requests_per_second: Option<u32>,
    /// `CRON`: schedule with a seconds field, default `0 0 * * * *`.
    pub cron: String,
    /// `TZ_NAME`: time zone of the schedule, default `Europe/Helsinki`.
    pub tz_name: String,
    /// `SERVICES`: subset of service ids to import (default: all enabled).
    pub services: Option<Vec<String>>,
    /// `PORT`: admin HTTP port, default 3002.
    pub port: u16,
    /// `ADMIN_TOKEN`: token for the admin routes.
    pub admin_token: Option<Secret>,
    /// `INSTANCE_ID`: who this instance is to the replicas' lease, default
    /// the host name. A restart with the same id takes its own unexpired
    /// lease back at once; live instances need ids of their own.
    pub instance_id: Option<String>,
    /// `LOG_FORMAT`: `text` or `json`; default text on a terminal, else json.
    pub log_format: Option<LogFormat>,
    /// TOML `sis_request_timeout_secs` (seconds, fractions allowed):
    /// per-request timeout towards Sisu, default 60 s.
    #[serde(
        rename = "sis_request_timeout_secs",
        deserialize_with = "units::secs_f64"
    )]
    pub sis_request_timeout: Duration,
    /// TOML `sis_retry_base_ms` (milliseconds): first retry delay towards
    /// Sisu (doubles, with jitter), default 500 ms.
    #[serde(rename = "sis_retry_base_ms", deserialize_with = "units::millis")]
    pub sis_retry_base: Duration,
    /// TOML `sis_retry_max_ms` (milliseconds): longest backoff between Sisu
    /// retries, default 60 s (`Retry-After` is honoured up to 10 min).
    #[serde(rename = "sis_retry_max_ms", deserialize_with = "units::millis")]
    pub sis_retry_max: Duration,
    /// `MAX_CHUNKS_IN_FLIGHT`: chunks published and awaiting consumers'
    /// feedback, per service, default 64.
    pub max_chunks_in_flight: usize,
    /// `MAX_PUBLISHES_IN_FLIGHT`: JetStream publish acks awaited at once,
    /// per service, default 32.
    pub max_publishes_in_flight: usize,
    /// `PIPELINE_DEPTH`: batches open at once per service (fetched and not
    /// yet committed), default 3; 1 fetches the next batch only after the
    /// previous one is committed.
    pub pipeline_depth: usize,
    /// `SERVICE_CONCURRENCY`: services imported side by side, default 1
    /// (catalogue order, one at a time).
    pub service_concurrency: usize,
    /// `WORKER_THREADS`: threads of the importer's async runtime, default 1
    /// (one thread does it all, which costs the least CPU per GB; see the
    /// docs/performance.md); more help only when several services are
    /// imported side by side and one core is the bound.
    pub worker_threads: usize,
    /// TOML `publish_timeout_secs` (seconds, fractions allowed): timeout of
    /// one JetStream publish ack, default 10 s.
    #[serde(rename = "publish_timeout_secs", deserialize_with = "units::secs_f64")]
    pub publish_timeout: Duration,
    /// Rate limit on chunk publishes, default unlimited.
    pub publish_chunks_per_second: Option<u32>,
    /// TOML `shutdown_grace_secs` (seconds, fractions allowed): on SIGTERM,
    /// how long to wait for outstanding acks, default 30 s.
    #[serde(rename = "shutdown_grace_secs", deserialize_with = "units::secs_f64")]
    pub shutdown_grace: Duration,
    /// TOML `stream_max_age_secs` (whole seconds): maximum age of messages
    /// in a stream the importer creates, default 7 days (zero = unlimited).
    #[serde(rename = "stream_max_age_secs", deserialize_with = "units::secs")]
    pub stream_max_age: Duration,
    /// TOML `lease_ttl_secs` (whole seconds): time to live of the replicas'
    /// lease in Redis, default 30 s.
    #[serde(rename = "lease_ttl_secs", deserialize_with = "units::secs")]
    pub lease_ttl: Duration,
    /// TOML `forbidden_retry_secs` (whole seconds): a service Sisu answered
    /// 403 for is skipped this long, then tried again; default one day.
    #[serde(rename = "forbidden_retry_secs", deserialize_with = "units::secs")]
    pub forbidden_retry: Duration,
    /// TOML `dead_letter_entity_bytes`: bytes of entity JSON kept with one
    /// service's dead letters (for `dead-letters replay`), default 16 MiB;
    /// letters past it are kept without their entity, 0 keeps none.
    pub dead_letter_entity_bytes: u64,
    /// Service ids never imported.
    pub disabled_services: Vec<String>,
    /// Services added to the built-in catalogue (export kinds only).
    pub extra_services: Vec<Service>,
}

/// The defaults of the settings that have one (docs/configuration.md).
pub mod defaults {
    use std::time::Duration;

    /// `KORI_PUBLIC_API_URL`.
    pub const KORI_PUBLIC_API_URL: &str = "https://sisu.helsinki.fi/kori/api";
    /// `ROOT_ORG_ID`.
    pub const ROOT_ORG_ID: &str = "hy-university-root-id";
    /// `NATS_URL`.
    pub const NATS_URL: &str = "nats://127.0.0.1:4222";
    /// `NATS_STREAM`.
    pub const NATS_STREAM: &str = "SIS_IMPORTER";
    /// `NATS_STREAM_REPLICAS`.
    pub const NATS_STREAM_REPLICAS: usize = 1;
    /// `REDIS_URL`.
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";
    /// `FETCH_AMOUNT`.
    pub const FETCH_AMOUNT: u32 = 1000;
    /// `MAX_CHUNK_SIZE` (SPEC §7 says 100; the tuning sweep chose 250).
    pub const MAX_CHUNK_SIZE: usize = 250;
    /// `MAX_CHUNK_BYTES`.
    pub const MAX_CHUNK_BYTES: usize = 900_000;
    /// `PANIC_TIMEOUT`.
    pub const PANIC_TIMEOUT: Duration = Duration::from_secs(15);
    /// `UPDATE_RETRY_LIMIT`.
    pub const UPDATE_RETRY_LIMIT: u32 = 6;
    /// `SIS_RETRY_LIMIT`.
    pub const SIS_RETRY_LIMIT: u32 = 6;
    /// `CRON`: at the top of every hour.
    pub const CRON: &str = "0 0 * * * *";
    /// `TZ_NAME`.
    pub const TZ_NAME: &str = "Europe/Helsinki";
    /// `PORT`.
    pub const PORT: u16 = 3002;
    /// `sis_request_timeout_secs`.
    pub const SIS_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    /// `sis_retry_base_ms`.
    pub const SIS_RETRY_BASE: Duration = Duration::from_millis(500);
    /// `sis_retry_max_ms`.
    pub const SIS_RETRY_MAX: Duration = Duration::from_secs(60);
    /// `MAX_CHUNKS_IN_FLIGHT`.
    pub const MAX_CHUNKS_IN_FLIGHT: usize = 64;
    /// `MAX_PUBLISHES_IN_FLIGHT`.
    pub const MAX_PUBLISHES_IN_FLIGHT: usize = 32;
    /// `PIPELINE_DEPTH`.
    pub const PIPELINE_DEPTH: usize = 3;
    /// `SERVICE_CONCURRENCY`: one service at a time, in catalogue order.
    pub const SERVICE_CONCURRENCY: usize = 1;
    /// `WORKER_THREADS`: a current-thread runtime.
    pub const WORKER_THREADS: usize = 1;
    /// `publish_timeout_secs`.
    pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
    /// `shutdown_grace_secs`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// `stream_max_age_secs`: 7 days.
    pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
    /// `lease_ttl_secs`.
    pub const LEASE_TTL: Duration = Duration::from_secs(30);
    /// `forbidden_retry_secs`: one day.
    pub const FORBIDDEN_RETRY: Duration = Duration::from_secs(24 * 3600);
    /// `dead_letter_entity_bytes`: 16 MiB per service.
    pub const DEAD_LETTER_ENTITY_BYTES: u64 = 16 * 1024 * 1024;
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sis_api_url: None,
            kori_public_api_url: defaults::KORI_PUBLIC_API_URL.into(),
            root_org_id: defaults::ROOT_ORG_ID.into(),
            sis_api_user: None,
            sis_api_password: None,
            proxy_token: None,
            key_path: None,
            cert_path: None,
            api_key: None,
            ca_path: None,
            nats_url: defaults::NATS_URL.into(),
            nats_token: None,
            nats_user: None,
            nats_password: None,
            nats_tls: false,
            nats_ca_path: None,
            nats_cert_path: None,
            nats_key_path: None,
            nats_stream: defaults::NATS_STREAM.into(),
            nats_stream_replicas: defaults::NATS_STREAM_REPLICAS,
            redis_url: Secret::new(defaults::REDIS_URL),
            fetch_amount: defaults::FETCH_AMOUNT,
            max_chunk_size: defaults::MAX_CHUNK_SIZE,
            max_chunk_bytes: defaults::MAX_CHUNK_BYTES,
            panic_timeout: defaults::PANIC_TIMEOUT,
            update_retry_limit: defaults::UPDATE_RETRY_LIMIT,
            sis_retry_limit: defaults::SIS_RETRY_LIMIT,
            sis_requests_per_second: None,
            cron: defaults::CRON.into(),
            tz_name: defaults::TZ_NAME.into(),
            services: None,
            port: defaults::PORT,
            admin_token: None,
            instance_id: None,
            log_format: None,
            sis_request_timeout: defaults::SIS_REQUEST_TIMEOUT,
            sis_retry_base: defaults::SIS_RETRY_BASE,
            sis_retry_max: defaults::SIS_RETRY_MAX,
            max_chunks_in_flight: defaults::MAX_CHUNKS_IN_FLIGHT,
            max_publishes_in_flight: defaults::MAX_PUBLISHES_IN_FLIGHT,
            pipeline_depth: defaults::PIPELINE_DEPTH,
            service_concurrency: defaults::SERVICE_CONCURRENCY,
            worker_threads: defaults::WORKER_THREADS,
            publish_timeout: defaults::PUBLISH_TIMEOUT,
            publish_chunks_per_second: None,
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            stream_max_age: defaults::STREAM_MAX_AGE,
            lease_ttl: defaults::LEASE_TTL,
            forbidden_retry: defaults::FORBIDDEN_RETRY,
            dead_letter_entity_bytes: defaults::DEAD_LETTER_ENTITY_BYTES,
            disabled_services: Vec::new(),
            extra_services: Vec::new(),
        }
    }
}

/// Why the configuration was refused. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML file is not valid: where, for which key, and what is wrong
    /// (`importer.toml:3:16: key fetch_amount: invalid type: …`).
    #[error(
        "{}:{line}:{column}: {}{message}",
        path.display(),
        key.as_ref().map_or(String::new(), |key| format!("key {key}: "))
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// The dotted key it concerns, when there is one.
        key: Option<String>,
        /// What the TOML parser said, on one line.
        message: String,
    },
    /// A setting has a value that cannot be used.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The setting's environment name (or TOML key).
        name: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl Config {
    /// Reads the TOML file (if given), applies the environment, validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = Self::read(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the TOML file (if given) and applies the environment, without
    /// validating (commands that only need Redis check less).
    pub fn read(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_toml_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Parses a TOML file without applying the environment.
    pub fn from_toml_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_text(path, &text)
    }

    /// Parses `text`, the contents of the TOML file `path`, without
    /// applying the environment; an error names `path`, line, column and key.
    pub fn from_toml_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| toml_error::located(path, text, &e))
    }
}
