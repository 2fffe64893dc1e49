//! What a configuration says about when and as whom the importer runs: the
//! cron schedule, its time zone, and this instance's id for the lease.

use std::str::FromStr;

use super::validate::invalid;
use super::{Config, ConfigError};

impl Config {
    /// The parsed cron schedule. A classic five-field expression gets a `0`
    /// seconds field in front. The error is one line: what is wrong, where,
    /// and what `CRON` takes.
    pub fn schedule(&self) -> Result<cron::Schedule, ConfigError> {
        let fields = self.cron.split_whitespace().count();
        let expr = if fields == 5 {
            format!("0 {}", self.cron)
        } else {
            self.cron.clone()
        };
        cron::Schedule::from_str(&expr).map_err(|e| {
            let shift = if fields == 5 { 2 } else { 0 };
            invalid(
                "CRON",
                cron_problem(&self.cron, fields, shift, &e.to_string()),
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

/// What `CRON` takes, said after every cron error.
const CRON_HINT: &str = "CRON has six fields: sec min hour day month weekday, e.g. \
                         `0 0 * * * *` (a classic five-field one gets `0` seconds in front)";

/// One line about why `cron` (of `fields` fields) does not parse: the
/// cron crate's `error` is the expression parsed (`shift` characters
/// longer than `cron`), a line with a caret under the fault, then what is
/// wrong, over several lines.
fn cron_problem(cron: &str, fields: usize, shift: usize, error: &str) -> String {
    if !cron.trim_start().starts_with('@') && !(5..=7).contains(&fields) {
        return format!("{cron:?} has {fields} field(s); {CRON_HINT}");
    }
    let mut lines = error.lines().skip(1);
    let at = lines
        .next()
        .and_then(|caret| caret.find('^'))
        .map(|column| format!(" at column {}", (column + 1).saturating_sub(shift).max(1)))
        .unwrap_or_default();
    let what: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    let what = match what.join(" ") {
        what if what.is_empty() => "unexpected text".to_owned(),
        what => what.trim_end_matches('.').to_owned(),
    };
    format!("{cron:?} does not parse{at}: {what}; {CRON_HINT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(cron: &str) -> String {
        Config {
            cron: cron.into(),
            ..Config::default()
        }
        .schedule()
        .expect_err(cron)
        .to_string()
    }

    #[test]
    fn a_cron_error_is_one_line_with_the_place_and_a_hint() {
        assert_eq!(
            problem("every hour"),
            format!("CRON is invalid: \"every hour\" has 2 field(s); {CRON_HINT}")
        );
        assert_eq!(
            problem("0 61 * * * *"),
            format!(
                "CRON is invalid: \"0 61 * * * *\" does not parse at column 3: Minutes must \
                 be less than 59. ('61' specified.); {CRON_HINT}"
            )
        );
        assert_eq!(
            problem("0 0 * * * *x"),
            format!(
                "CRON is invalid: \"0 0 * * * *x\" does not parse at column 12: unexpected \
                 text; {CRON_HINT}"
            )
        );
        for cron in ["61 * * * *", "@nonsense", "0 0 * * * Mo"] {
            let message = problem(cron);
            assert!(!message.contains('\n'), "{message}");
            assert!(message.ends_with(CRON_HINT), "{message}");
        }
        assert!(
            problem("61 * * * *").contains("at column 1:"),
            "{}",
            problem("61 * * * *")
        );
    }
}
