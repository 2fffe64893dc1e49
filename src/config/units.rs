//! Durations as the TOML file and the environment write them: the keys keep
//! their unit (`panic_timeout_secs = 0.5`, `sis_retry_base_ms = 500`,
//! `lease_ttl_secs = 30`), the fields are [`Duration`]s. An error says what
//! the key takes; the file's error adds the key, line and column
//! (`toml_error.rs`).

use std::fmt;
use std::time::Duration;

use serde::de::{Deserializer, Error, Unexpected, Visitor};

/// Seconds, fractions allowed (`panic_timeout_secs = 0.5`; `15` works too):
/// negative, infinite or not-a-number values are refused here, since a
/// [`Duration`] cannot hold them.
pub(super) fn secs_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = d.deserialize_any(Number("a number of seconds (fractions allowed)"))?;
    from_secs_f64(secs).ok_or_else(|| {
        D::Error::custom(format!(
            "must be a finite, non-negative number of seconds, not {secs}"
        ))
    })
}

/// Whole seconds (`lease_ttl_secs = 30`).
pub(super) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(Whole("a whole, non-negative number of seconds"))
        .map(Duration::from_secs)
}

/// Whole milliseconds (`sis_retry_base_ms = 500`).
pub(super) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(Whole("a whole, non-negative number of milliseconds"))
        .map(Duration::from_millis)
}

/// `secs` as a duration; `None` when negative, not a number, infinite or
/// too large for a [`Duration`].
pub(super) fn from_secs_f64(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}

/// Reads a non-negative integer; the text says in what unit.
struct Whole(&'static str);

impl Visitor<'_> for Whole {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }
}

/// Reads any number as `f64`; the text says in what unit.
struct Number(&'static str);

impl Visitor<'_> for Number {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
}
