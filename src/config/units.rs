//! Durations as the TOML file and the environment write them: the keys keep
//! their unit (`panic_timeout_secs = 0.5`, `sis_retry_base_ms = 500`,
//! `lease_ttl_secs = 30`), the fields are [`Duration`]s.

use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error};

/// Seconds, fractions allowed (`panic_timeout_secs = 0.5`; `15` works too),
/// of the TOML key `key`: negative, infinite or not-a-number values are
/// refused here, naming the key, since a [`Duration`] cannot hold them.
fn secs_f64<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    from_secs_f64(secs).ok_or_else(|| {
        D::Error::custom(format!(
            "{key} must be a finite, non-negative number of seconds, not {secs}"
        ))
    })
}

/// A `deserialize_with` function per seconds-as-float key, so that its
/// error names the key (TOML's message does not).
macro_rules! seconds_keys {
    ($($key:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($key), "`: seconds, fractions allowed.")]
        pub(super) fn $key<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            secs_f64(d, stringify!($key))
        }
    )*};
}

seconds_keys!(
    panic_timeout_secs,
    sis_request_timeout_secs,
    publish_timeout_secs,
    shutdown_grace_secs,
);

/// Whole seconds (`lease_ttl_secs = 30`).
pub(super) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// Whole milliseconds (`sis_retry_base_ms = 500`).
pub(super) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// `secs` as a duration; `None` when negative, not a number, infinite or
/// too large for a [`Duration`].
pub(super) fn from_secs_f64(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}
