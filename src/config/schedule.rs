//! What a configuration says about when and as whom the importer runs: the
//! cron schedule, its time zone, and this instance's id for the lease.

use std::str::FromStr;

use super::validate::invalid;
use super::{Config, ConfigError};

impl Config {
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

    /// This instance's id for the lease: `INSTANCE_ID`, else the host name
    /// (see [`host_name`]).
    pub fn instance_id(&self) -> String {
        match &self.instance_id {
            Some(id) => id.clone(),
            None => host_name(),
        }
    }
}

/// The host name (whitespace, `(` and `,` replaced by `-`: it goes into the
/// lease's owner string), else `localhost`.
pub fn host_name() -> String {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes and the result is cut at the first NUL.
    let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    let host = String::from_utf8_lossy(&name[..end])
        .replace(|c: char| c.is_whitespace() || c == '(' || c == ',', "-");
    if ok && !host.is_empty() {
        host
    } else {
        "localhost".into()
    }
}
