//! The environment variables (SPEC §7 and a few more): one row each, the
//! name and the field its value sets, applied in the table's order over
//! what the TOML file said.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::validate::invalid;
use super::{units, Config, ConfigError, LogFormat, Secret};

/// One environment variable: its name and how its (non-empty) value sets
/// the configuration.
pub(super) struct Variable {
    /// The fixed name, e.g. `FETCH_AMOUNT`.
    pub(super) name: &'static str,
    /// Parses the value into its field; the error names the variable.
    pub(super) set: fn(&mut Config, &str) -> Result<(), ConfigError>,
}

/// `variables! { "NAME" => field: parse, ... }` makes [`VARIABLES`], a row
/// per line whose setter is `config.field = parse("NAME", value)?`, and
/// [`ENV_NAMES`] from the same names, so the two cannot disagree.
macro_rules! variables {
    ($($name:literal => $field:ident: $parse:ident,)*) => {
        /// Names of the environment variables read, in the order they are
        /// applied.
        pub const ENV_NAMES: &[&str] = &[$($name),*];

        /// The environment variables, in the order they are applied.
        pub(super) const VARIABLES: &[Variable] = &[$(Variable {
            name: $name,
            set: |config, value| {
                config.$field = $parse($name, value)?;
                Ok(())
            },
        }),*];
    };
}

variables! {
    "SIS_API_URL" => sis_api_url: some_text,
    "KORI_PUBLIC_API_URL" => kori_public_api_url: text,
    "ROOT_ORG_ID" => root_org_id: text,
    "SIS_API_USER" => sis_api_user: some_text,
    "SIS_API_PASSWORD" => sis_api_password: some_secret,
    "PROXY_TOKEN" => proxy_token: some_secret,
    "KEY_PATH" => key_path: some_path,
    "CERT_PATH" => cert_path: some_path,
    "API_KEY" => api_key: some_secret,
    "CA_PATH" => ca_path: some_path,
    "NATS_URL" => nats_url: text,
    "NATS_TOKEN" => nats_token: some_secret,
    "NATS_USER" => nats_user: some_text,
    "NATS_PASSWORD" => nats_password: some_secret,
    "NATS_TLS" => nats_tls: boolean,
    "NATS_CA_PATH" => nats_ca_path: some_path,
    "NATS_CERT_PATH" => nats_cert_path: some_path,
    "NATS_KEY_PATH" => nats_key_path: some_path,
    "NATS_STREAM" => nats_stream: text,
    "NATS_STREAM_REPLICAS" => nats_stream_replicas: number,
    "REDIS_URL" => redis_url: secret,
    "FETCH_AMOUNT" => fetch_amount: number,
    "MAX_CHUNK_SIZE" => max_chunk_size: number,
    "MAX_CHUNK_BYTES" => max_chunk_bytes: number,
    "PANIC_TIMEOUT" => panic_timeout: seconds,
    "UPDATE_RETRY_LIMIT" => update_retry_limit: number,
    "SIS_RETRY_LIMIT" => sis_retry_limit: number,
    "SIS_REQUESTS_PER_SECOND" => sis_requests_per_second: some_number,
    "SERVICE_CONCURRENCY" => service_concurrency: number,
    "WORKER_THREADS" => worker_threads: number,
    "PIPELINE_DEPTH" => pipeline_depth: number,
    "MAX_CHUNKS_IN_FLIGHT" => max_chunks_in_flight: number,
    "MAX_PUBLISHES_IN_FLIGHT" => max_publishes_in_flight: number,
    "CRON" => cron: text,
    "TZ_NAME" => tz_name: text,
    "SERVICES" => services: id_list,
    "PORT" => port: number,
    "ADMIN_TOKEN" => admin_token: some_secret,
    "INSTANCE_ID" => instance_id: some_text,
    "LOG_FORMAT" => log_format: log_format,
}

impl Config {
    /// Overrides fields from environment variables given by `get`. Empty
    /// values count as unset, as they did for the Node importer.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for variable in VARIABLES {
            if let Some(value) = get(variable.name).filter(|v| !v.trim().is_empty()) {
                (variable.set)(self, &value)?;
            }
        }
        Ok(())
    }
}

// The parsers of the table: each turns a value of the variable `name` into
// the field's type; an error names the variable.

fn text(_: &'static str, value: &str) -> Result<String, ConfigError> {
    Ok(value.to_owned())
}

fn some_text(name: &'static str, value: &str) -> Result<Option<String>, ConfigError> {
    text(name, value).map(Some)
}

fn secret(_: &'static str, value: &str) -> Result<Secret, ConfigError> {
    Ok(Secret::new(value))
}

fn some_secret(name: &'static str, value: &str) -> Result<Option<Secret>, ConfigError> {
    secret(name, value).map(Some)
}

fn some_path(_: &'static str, value: &str) -> Result<Option<PathBuf>, ConfigError> {
    Ok(Some(value.into()))
}

fn number<T: FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(name, format!("{value:?} is not a valid number for {name}")))
}

fn some_number<T: FromStr>(name: &'static str, value: &str) -> Result<Option<T>, ConfigError> {
    number(name, value).map(Some)
}

/// Seconds, fractions allowed. Zero passes here and is refused by
/// `validate` where a setting needs more.
fn seconds(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    units::from_secs_f64(number(name, value)?)
        .ok_or_else(|| invalid(name, "must be a positive number of seconds"))
}

fn boolean(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(name, format!("{value:?} is not true or false"))),
    }
}

/// Comma-separated service ids; blanks around and between are dropped.
fn id_list(_: &'static str, value: &str) -> Result<Option<Vec<String>>, ConfigError> {
    Ok(Some(
        value
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    ))
}

fn log_format(name: &'static str, value: &str) -> Result<Option<LogFormat>, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(Some(LogFormat::Text)),
        "json" => Ok(Some(LogFormat::Json)),
        _ => Err(invalid(name, format!("{value:?}: use `text` or `json`"))),
    }
}
