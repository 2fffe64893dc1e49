//! One typed configuration (SPEC §7): read from a TOML file, then overridden
//! by the fixed environment names operators already set. Everything is
//! validated before anything is fetched, so bad configuration ends the
//! program with one clear message.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalogue::{self, Service};
pub use crate::redact::Secret;

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
/// names; environment variables (SPEC §7) override them.
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
    /// `NATS_URL`, default `nats://127.0.0.1:4222`.
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
    /// the tuning sweep chose 250, README "Performance").
    pub max_chunk_size: usize,
    /// `MAX_CHUNK_BYTES`: payload bytes per chunk, default 900000.
    pub max_chunk_bytes: usize,
    /// `PANIC_TIMEOUT`: seconds without feedback progress, default 15.
    pub panic_timeout_secs: f64,
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
    /// Per-request timeout towards Sisu, default 60 s.
    pub sis_request_timeout_secs: f64,
    /// First retry delay towards Sisu (doubles, with jitter), default 500 ms.
    pub sis_retry_base_ms: u64,
    /// Longest backoff between Sisu retries, default 60 s (`Retry-After` is honoured up to 10 min).
    pub sis_retry_max_ms: u64,
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
    /// README's "Performance"); more help only when several services are
    /// imported side by side and one core is the bound.
    pub worker_threads: usize,
    /// Timeout of one JetStream publish ack, default 10 s.
    pub publish_timeout_secs: f64,
    /// Rate limit on chunk publishes, default unlimited.
    pub publish_chunks_per_second: Option<u32>,
    /// On SIGTERM, how long to wait for outstanding acks, default 30 s.
    pub shutdown_grace_secs: f64,
    /// Maximum age of messages in a stream the importer creates, default 7 days (0 = unlimited).
    pub stream_max_age_secs: u64,
    /// Time to live of the replicas' lease in Redis, default 30 s.
    pub lease_ttl_secs: u64,
    /// Service ids never imported.
    pub disabled_services: Vec<String>,
    /// Services added to the built-in catalogue (export kinds only).
    pub extra_services: Vec<Service>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sis_api_url: None,
            kori_public_api_url: "https://sisu.helsinki.fi/kori/api".into(),
            root_org_id: "hy-university-root-id".into(),
            sis_api_user: None,
            sis_api_password: None,
            proxy_token: None,
            key_path: None,
            cert_path: None,
            api_key: None,
            ca_path: None,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_token: None,
            nats_user: None,
            nats_password: None,
            nats_tls: false,
            nats_ca_path: None,
            nats_cert_path: None,
            nats_key_path: None,
            nats_stream: "SIS_IMPORTER".into(),
            nats_stream_replicas: 1,
            redis_url: Secret::new("redis://127.0.0.1:6379/"),
            fetch_amount: 1000,
            max_chunk_size: 250,
            max_chunk_bytes: 900_000,
            panic_timeout_secs: 15.0,
            update_retry_limit: 6,
            sis_retry_limit: 6,
            sis_requests_per_second: None,
            cron: "0 0 * * * *".into(),
            tz_name: "Europe/Helsinki".into(),
            services: None,
            port: 3002,
            admin_token: None,
            instance_id: None,
            log_format: None,
            sis_request_timeout_secs: 60.0,
            sis_retry_base_ms: 500,
            sis_retry_max_ms: 60_000,
            max_chunks_in_flight: 64,
            max_publishes_in_flight: 32,
            pipeline_depth: 3,
            service_concurrency: 1,
            worker_threads: 1,
            publish_timeout_secs: 10.0,
            publish_chunks_per_second: None,
            shutdown_grace_secs: 30.0,
            stream_max_age_secs: 7 * 24 * 3600,
            lease_ttl_secs: 30,
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
    /// The TOML file is not valid.
    #[error("configuration file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
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

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// Names of the environment variables read, for `--help` and the README.
pub const ENV_NAMES: &[&str] = &[
    "SIS_API_URL",
    "KORI_PUBLIC_API_URL",
    "ROOT_ORG_ID",
    "SIS_API_USER",
    "SIS_API_PASSWORD",
    "PROXY_TOKEN",
    "KEY_PATH",
    "CERT_PATH",
    "API_KEY",
    "CA_PATH",
    "NATS_URL",
    "NATS_TOKEN",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_TLS",
    "NATS_CA_PATH",
    "NATS_CERT_PATH",
    "NATS_KEY_PATH",
    "NATS_STREAM",
    "NATS_STREAM_REPLICAS",
    "REDIS_URL",
    "FETCH_AMOUNT",
    "MAX_CHUNK_SIZE",
    "MAX_CHUNK_BYTES",
    "PANIC_TIMEOUT",
    "UPDATE_RETRY_LIMIT",
    "SIS_RETRY_LIMIT",
    "SIS_REQUESTS_PER_SECOND",
    "SERVICE_CONCURRENCY",
    "WORKER_THREADS",
    "PIPELINE_DEPTH",
    "MAX_CHUNKS_IN_FLIGHT",
    "MAX_PUBLISHES_IN_FLIGHT",
    "CRON",
    "TZ_NAME",
    "SERVICES",
    "PORT",
    "ADMIN_TOKEN",
    "INSTANCE_ID",
    "LOG_FORMAT",
];

impl Config {
    /// This instance's id for the lease: `INSTANCE_ID`, else the host name
    /// (its spaces and `(` replaced), else `localhost`.
    pub fn instance_id(&self) -> String {
        if let Some(id) = &self.instance_id {
            return id.clone();
        }
        let mut name = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at
        // most that many bytes and the result is cut at the first NUL.
        let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        let host = String::from_utf8_lossy(&name[..end])
            .replace(|c: char| c.is_whitespace() || c == '(', "-");
        if ok && !host.is_empty() {
            host
        } else {
            "localhost".into()
        }
    }

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
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// Overrides fields from environment variables given by `get`. Empty
    /// values count as unset, as they did for the Node importer.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = var("SIS_API_URL") {
            self.sis_api_url = Some(v);
        }
        if let Some(v) = var("KORI_PUBLIC_API_URL") {
            self.kori_public_api_url = v;
        }
        if let Some(v) = var("ROOT_ORG_ID") {
            self.root_org_id = v;
        }
        if let Some(v) = var("SIS_API_USER") {
            self.sis_api_user = Some(v);
        }
        if let Some(v) = var("SIS_API_PASSWORD") {
            self.sis_api_password = Some(Secret::new(v));
        }
        if let Some(v) = var("PROXY_TOKEN") {
            self.proxy_token = Some(Secret::new(v));
        }
        if let Some(v) = var("KEY_PATH") {
            self.key_path = Some(v.into());
        }
        if let Some(v) = var("CERT_PATH") {
            self.cert_path = Some(v.into());
        }
        if let Some(v) = var("API_KEY") {
            self.api_key = Some(Secret::new(v));
        }
        if let Some(v) = var("CA_PATH") {
            self.ca_path = Some(v.into());
        }
        if let Some(v) = var("NATS_URL") {
            self.nats_url = v;
        }
        if let Some(v) = var("NATS_TOKEN") {
            self.nats_token = Some(Secret::new(v));
        }
        if let Some(v) = var("NATS_USER") {
            self.nats_user = Some(v);
        }
        if let Some(v) = var("NATS_PASSWORD") {
            self.nats_password = Some(Secret::new(v));
        }
        if let Some(v) = var("NATS_TLS") {
            self.nats_tls = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => return Err(invalid("NATS_TLS", format!("{v:?} is not true or false"))),
            };
        }
        if let Some(v) = var("NATS_CA_PATH") {
            self.nats_ca_path = Some(v.into());
        }
        if let Some(v) = var("NATS_CERT_PATH") {
            self.nats_cert_path = Some(v.into());
        }
        if let Some(v) = var("NATS_KEY_PATH") {
            self.nats_key_path = Some(v.into());
        }
        if let Some(v) = var("NATS_STREAM") {
            self.nats_stream = v;
        }
        if let Some(v) = var("NATS_STREAM_REPLICAS") {
            self.nats_stream_replicas = parse_env("NATS_STREAM_REPLICAS", &v)?;
        }
        if let Some(v) = var("REDIS_URL") {
            self.redis_url = Secret::new(v);
        }
        if let Some(v) = var("FETCH_AMOUNT") {
            self.fetch_amount = parse_env("FETCH_AMOUNT", &v)?;
        }
        if let Some(v) = var("MAX_CHUNK_SIZE") {
            self.max_chunk_size = parse_env("MAX_CHUNK_SIZE", &v)?;
        }
        if let Some(v) = var("MAX_CHUNK_BYTES") {
            self.max_chunk_bytes = parse_env("MAX_CHUNK_BYTES", &v)?;
        }
        if let Some(v) = var("PANIC_TIMEOUT") {
            self.panic_timeout_secs = parse_env("PANIC_TIMEOUT", &v)?;
        }
        if let Some(v) = var("UPDATE_RETRY_LIMIT") {
            self.update_retry_limit = parse_env("UPDATE_RETRY_LIMIT", &v)?;
        }
        if let Some(v) = var("SIS_RETRY_LIMIT") {
            self.sis_retry_limit = parse_env("SIS_RETRY_LIMIT", &v)?;
        }
        if let Some(v) = var("SIS_REQUESTS_PER_SECOND") {
            self.sis_requests_per_second = Some(parse_env("SIS_REQUESTS_PER_SECOND", &v)?);
        }
        if let Some(v) = var("SERVICE_CONCURRENCY") {
            self.service_concurrency = parse_env("SERVICE_CONCURRENCY", &v)?;
        }
        if let Some(v) = var("WORKER_THREADS") {
            self.worker_threads = parse_env("WORKER_THREADS", &v)?;
        }
        if let Some(v) = var("PIPELINE_DEPTH") {
            self.pipeline_depth = parse_env("PIPELINE_DEPTH", &v)?;
        }
        if let Some(v) = var("MAX_CHUNKS_IN_FLIGHT") {
            self.max_chunks_in_flight = parse_env("MAX_CHUNKS_IN_FLIGHT", &v)?;
        }
        if let Some(v) = var("MAX_PUBLISHES_IN_FLIGHT") {
            self.max_publishes_in_flight = parse_env("MAX_PUBLISHES_IN_FLIGHT", &v)?;
        }
        if let Some(v) = var("CRON") {
            self.cron = v;
        }
        if let Some(v) = var("TZ_NAME") {
            self.tz_name = v;
        }
        if let Some(v) = var("SERVICES") {
            self.services = Some(
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            );
        }
        if let Some(v) = var("PORT") {
            self.port = parse_env("PORT", &v)?;
        }
        if let Some(v) = var("ADMIN_TOKEN") {
            self.admin_token = Some(Secret::new(v));
        }
        if let Some(v) = var("INSTANCE_ID") {
            self.instance_id = Some(v);
        }
        if let Some(v) = var("LOG_FORMAT") {
            self.log_format = Some(match v.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(invalid(
                        "LOG_FORMAT",
                        format!("{v:?}: use `text` or `json`"),
                    ))
                }
            });
        }
        Ok(())
    }

    /// Checks every setting; the first problem found is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Empty environment values count as unset; empty TOML values are
        // mistakes worth naming (an empty admin token would open the API).
        for (name, secret) in [
            ("ADMIN_TOKEN", &self.admin_token),
            ("NATS_TOKEN", &self.nats_token),
            ("NATS_PASSWORD", &self.nats_password),
            ("API_KEY", &self.api_key),
            ("PROXY_TOKEN", &self.proxy_token),
        ] {
            if secret
                .as_ref()
                .is_some_and(|s| s.expose().trim().is_empty())
            {
                return Err(invalid(
                    name,
                    "is empty in the configuration file: remove the key or give it a value",
                ));
            }
        }
        let sis = self.sis_api_url.as_deref().ok_or_else(|| {
            invalid(
                "SIS_API_URL",
                "missing: set it to the Sisu API base, e.g. https://sis-helsinki.funidata.fi",
            )
        })?;
        check_url("SIS_API_URL", sis)?;
        check_url("KORI_PUBLIC_API_URL", &self.kori_public_api_url)?;
        if self.fetch_amount == 0 {
            return Err(invalid("FETCH_AMOUNT", "must be at least 1"));
        }
        if self.max_chunk_size == 0 {
            return Err(invalid("MAX_CHUNK_SIZE", "must be at least 1"));
        }
        if self.max_chunk_bytes < 1024 {
            return Err(invalid("MAX_CHUNK_BYTES", "must be at least 1024 bytes"));
        }
        if !(self.panic_timeout_secs.is_finite() && self.panic_timeout_secs > 0.0) {
            return Err(invalid(
                "PANIC_TIMEOUT",
                "must be a positive number of seconds",
            ));
        }
        if self.update_retry_limit == 0 {
            return Err(invalid("UPDATE_RETRY_LIMIT", "must be at least 1"));
        }
        if self.sis_retry_limit == 0 {
            return Err(invalid("SIS_RETRY_LIMIT", "must be at least 1"));
        }
        if self.sis_requests_per_second == Some(0) {
            return Err(invalid(
                "SIS_REQUESTS_PER_SECOND",
                "must be at least 1 (leave unset for unlimited)",
            ));
        }
        for (name, v) in [
            ("sis_request_timeout_secs", self.sis_request_timeout_secs),
            ("publish_timeout_secs", self.publish_timeout_secs),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(name, "must be a positive number of seconds"));
            }
        }
        if !(self.shutdown_grace_secs.is_finite() && self.shutdown_grace_secs >= 0.0) {
            return Err(invalid(
                "shutdown_grace_secs",
                "must be zero or more seconds",
            ));
        }
        for (name, v) in [
            ("MAX_CHUNKS_IN_FLIGHT", self.max_chunks_in_flight),
            ("MAX_PUBLISHES_IN_FLIGHT", self.max_publishes_in_flight),
        ] {
            if v == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        if let Err(e) = crate::sinks::connection::server_addrs(&self.nats_url) {
            return Err(invalid("NATS_URL", e));
        }
        if let Some(id) = &self.instance_id {
            if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c == '(') {
                return Err(invalid(
                    "INSTANCE_ID",
                    "must be non-empty, without spaces or `(`; leave it unset for the host name",
                ));
            }
        }
        if self.lease_ttl_secs < 3 {
            return Err(invalid("lease_ttl_secs", "must be at least 3 seconds"));
        }
        for (name, v) in [
            ("PIPELINE_DEPTH", self.pipeline_depth),
            ("SERVICE_CONCURRENCY", self.service_concurrency),
            ("WORKER_THREADS", self.worker_threads),
            ("NATS_STREAM_REPLICAS", self.nats_stream_replicas),
        ] {
            if v == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        self.schedule()?;
        self.time_zone()?;
        for (first, second, both_set) in [
            (
                "KEY_PATH",
                "CERT_PATH",
                [self.key_path.is_some(), self.cert_path.is_some()],
            ),
            (
                "NATS_KEY_PATH",
                "NATS_CERT_PATH",
                [self.nats_key_path.is_some(), self.nats_cert_path.is_some()],
            ),
            (
                "NATS_USER",
                "NATS_PASSWORD",
                [self.nats_user.is_some(), self.nats_password.is_some()],
            ),
        ] {
            if both_set[0] != both_set[1] {
                return Err(invalid(
                    first,
                    format!("{first} and {second} must be set together"),
                ));
            }
        }
        for (name, path) in [
            ("CA_PATH", &self.ca_path),
            ("KEY_PATH", &self.key_path),
            ("CERT_PATH", &self.cert_path),
            ("NATS_CA_PATH", &self.nats_ca_path),
            ("NATS_CERT_PATH", &self.nats_cert_path),
            ("NATS_KEY_PATH", &self.nats_key_path),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return Err(invalid(
                        name,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        if self.sis_api_password.is_some() && self.sis_api_user.is_none() {
            return Err(invalid(
                "SIS_API_USER",
                "SIS_API_PASSWORD is set but SIS_API_USER is not",
            ));
        }
        for extra in &self.extra_services {
            if !extra.source.is_export() {
                return Err(invalid(
                    "extra_services",
                    format!(
                        "{}: only export kinds (ori, kori, ilmo, osuva) can be added",
                        extra.id
                    ),
                ));
            }
        }
        self.selected_services()?;
        Ok(())
    }

    /// The parsed cron schedule. A classic five-field expression gets a `0`
    /// seconds field in front.
    pub fn schedule(&self) -> Result<cron::Schedule, ConfigError> {
        let fields = self.cron.split_whitespace().count();
        let expr = if fields == 5 {
            format!("0 {}", self.cron)
        } else {
            self.cron.clone()
        };
        cron::Schedule::from_str(&expr).map_err(|e| {
            invalid(
                "CRON",
                format!("{:?} does not parse ({e}); use `sec min hour day month weekday`, e.g. `0 0 * * * *`", self.cron),
            )
        })
    }

    /// The schedule's time zone.
    pub fn time_zone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.tz_name.parse().map_err(|_| {
            invalid(
                "TZ_NAME",
                format!(
                    "{:?} is not an IANA time zone name such as Europe/Helsinki",
                    self.tz_name
                ),
            )
        })
    }

    /// The full catalogue: built-in services plus `extra_services`, without
    /// the disabled ones, in import order.
    pub fn catalogue(&self) -> Result<Vec<Service>, ConfigError> {
        let mut services = catalogue::builtin();
        for extra in &self.extra_services {
            if services.iter().any(|s| s.id == extra.id) {
                return Err(invalid(
                    "extra_services",
                    format!("{} is already a service", extra.id),
                ));
            }
            services.push(extra.clone());
        }
        for id in &self.disabled_services {
            if !services.iter().any(|s| &s.id == id) {
                return Err(unknown_service("disabled_services", id, &services));
            }
        }
        services.retain(|s| !self.disabled_services.contains(&s.id));
        Ok(services)
    }

    /// The services a run imports: `SERVICES` (in catalogue order) or all.
    pub fn selected_services(&self) -> Result<Vec<Service>, ConfigError> {
        let services = self.catalogue()?;
        self.pick(services, self.services.as_deref(), "SERVICES")
    }

    /// Picks `ids` out of `services`, in catalogue order; unknown ids fail.
    pub fn pick(
        &self,
        services: Vec<Service>,
        ids: Option<&[String]>,
        name: &'static str,
    ) -> Result<Vec<Service>, ConfigError> {
        let Some(ids) = ids else {
            return Ok(services);
        };
        for id in ids {
            if !services.iter().any(|s| &s.id == id) {
                return Err(unknown_service(name, id, &services));
            }
        }
        Ok(services
            .into_iter()
            .filter(|s| ids.contains(&s.id))
            .collect())
    }

    /// `PANIC_TIMEOUT` as a duration.
    pub fn panic_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.panic_timeout_secs)
    }
}

fn unknown_service(name: &'static str, id: &str, services: &[Service]) -> ConfigError {
    let known: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    invalid(
        name,
        format!("unknown service id {id:?}; known ids: {}", known.join(", ")),
    )
}

fn parse_env<T: FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(name, format!("{value:?} is not a valid number for {name}")))
}

fn check_url(name: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(_) => Err(invalid(name, "must be an http:// or https:// URL")),
        Err(e) => Err(invalid(name, format!("not a URL ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_need_only_the_sisu_url() {
        let mut c = Config::default();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                name: "SIS_API_URL",
                ..
            })
        ));
        c.apply_env(env(&[("SIS_API_URL", "http://localhost:1")]))
            .unwrap();
        c.validate().unwrap();
        assert_eq!(c.selected_services().unwrap().len(), 26);
        assert_eq!(c.fetch_amount, 1000);
        assert_eq!(c.panic_timeout(), Duration::from_secs(15));
    }

    #[test]
    fn environment_overrides_toml() {
        let mut c: Config = toml::from_str("fetch_amount = 10\nmax_chunk_size = 5\n").unwrap();
        c.apply_env(env(&[
            ("SIS_API_URL", "http://x"),
            ("FETCH_AMOUNT", "20"),
            ("SERVICES", "COUNTRY, PERSON"),
            ("PANIC_TIMEOUT", "0.5"),
        ]))
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.fetch_amount, 20);
        assert_eq!(c.max_chunk_size, 5);
        let ids: Vec<_> = c
            .selected_services()
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(
            ids,
            ["PERSON", "COUNTRY"],
            "catalogue order, not the order given"
        );
        assert_eq!(c.panic_timeout(), Duration::from_millis(500));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let base = [("SIS_API_URL", "http://x")];
        for (name, value) in [
            ("SERVICES", "PERSON,NOPE"),
            ("CRON", "every hour"),
            ("TZ_NAME", "Mars/Olympus"),
            ("FETCH_AMOUNT", "lots"),
            ("LOG_FORMAT", "xml"),
            ("WORKER_THREADS", "0"),
            ("NATS_URL", "nats://127.0.0.1:4222,::nonsense"),
            ("NATS_STREAM_REPLICAS", "0"),
            ("WORKER_THREADS", "two"),
        ] {
            let mut c = Config::default();
            let result = c
                .apply_env(env(&[base[0], (name, value)]))
                .and_then(|_| c.validate());
            let err = result.expect_err(name).to_string();
            assert!(err.starts_with(name), "{err}");
        }
        assert!(toml::from_str::<Config>("no_such_key = 1").is_err());
    }

    #[test]
    fn an_empty_secret_in_the_file_is_an_error_not_an_open_door() {
        let mut c: Config =
            toml::from_str("sis_api_url = \"http://x\"\nadmin_token = \"\"").unwrap();
        c.apply_env(env(&[])).unwrap();
        let err = c.validate().expect_err("empty admin token").to_string();
        assert!(err.starts_with("ADMIN_TOKEN"), "{err}");
        // From the environment an empty value just means unset.
        let mut c = Config::default();
        c.apply_env(env(&[("SIS_API_URL", "http://x"), ("ADMIN_TOKEN", "")]))
            .unwrap();
        assert!(c.admin_token.is_none());
        c.validate().unwrap();
    }

    #[test]
    fn nats_settings_come_in_pairs_and_files_must_exist() {
        for pairs in [
            &[("NATS_USER", "u")][..],
            &[("NATS_CERT_PATH", "/etc/hostname")][..],
            &[("NATS_CA_PATH", "/no/such/ca.pem")][..],
            &[("NATS_TLS", "maybe")][..],
        ] {
            let mut vars = vec![("SIS_API_URL", "http://x")];
            vars.extend_from_slice(pairs);
            let mut c = Config::default();
            let result = c.apply_env(env(&vars)).and_then(|_| c.validate());
            let err = result.expect_err(pairs[0].0).to_string();
            assert!(err.starts_with("NATS_"), "{err}");
        }
    }

    #[test]
    fn five_field_cron_gets_seconds() {
        let c = Config {
            cron: "*/5 * * * *".into(),
            ..Config::default()
        };
        assert!(c.schedule().is_ok());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut c = Config::default();
        c.apply_env(env(&[
            ("SIS_API_URL", "http://x"),
            ("SIS_API_USER", "u"),
            ("SIS_API_PASSWORD", "hunter2-password"),
            ("REDIS_URL", "redis://:redis-secret@localhost/"),
        ]))
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-password"));
        assert!(!shown.contains("redis-secret"));
    }
}
