//! [`Config::validate`]: every setting checked before anything is fetched;
//! the first problem found is the error, naming the setting.

use std::time::Duration;

use super::{Config, ConfigError};

impl Config {
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
        if self.panic_timeout.is_zero() {
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
        // Negative, infinite and not-a-number durations were refused when
        // parsed (units.rs, env.rs): a `Duration` cannot hold them, so
        // `shutdown_grace` (zero allowed) needs no check here.
        for (name, v) in [
            ("sis_request_timeout_secs", self.sis_request_timeout),
            ("publish_timeout_secs", self.publish_timeout),
        ] {
            if v.is_zero() {
                return Err(invalid(name, "must be a positive number of seconds"));
            }
        }
        for (name, v) in [
            ("MAX_CHUNKS_IN_FLIGHT", self.max_chunks_in_flight),
            ("MAX_PUBLISHES_IN_FLIGHT", self.max_publishes_in_flight),
        ] {
            if v == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        if let Err(e) = super::nats_url::server_addrs(&self.nats_url) {
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
        if self.lease_ttl < Duration::from_secs(3) {
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
}

/// The error of a setting `name` (its environment name, or its TOML key
/// when it has none) with a value that cannot be used.
pub(super) fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

fn check_url(name: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(_) => Err(invalid(name, "must be an http:// or https:// URL")),
        Err(e) => Err(invalid(name, format!("not a URL ({e})"))),
    }
}
