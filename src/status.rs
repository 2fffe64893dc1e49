//! What `sis-importer status` (and the admin API) shows: a header with the
//! lease holder (a run is under way while someone holds it) and the next
//! cron tick, then per service the committed ordinal, the window counters,
//! the last run and last success, forbidden, the feedback form, dead
//! letters and the last error — read from Redis, so any process can show it.

use serde::Serialize;

use crate::catalogue::Service;
use crate::store::{OrdinalStore, RunRecord, StoreError};

/// One service's status row.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// Service id.
    pub service: String,
    /// Committed ordinal (`None`: never imported).
    pub ordinal: Option<i64>,
    /// `_SCHEDULED`.
    pub scheduled: i64,
    /// `_UPDATED`.
    pub updated: i64,
    /// Last run.
    pub last_run: Option<RunRecord>,
    /// Sisu answered 403 in the running process.
    pub forbidden: bool,
    /// Dead letters kept.
    pub dead_letters: u64,
    /// How its consumers answer: `precise` (OK names the chunk) or `seed`
    /// (OK without chunkId: the service goes in waves); `None` before any
    /// OK was seen.
    pub feedback_form: Option<String>,
    /// When it last finished a run (`ok` or `skipped`), RFC 3339.
    pub last_success: Option<String>,
}

/// The status table's header.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// The import lease's holder: a run is under way while there is one.
    pub lease_holder: Option<String>,
    /// The next cron tick, in the schedule's time zone.
    pub next_run: Option<String>,
}

/// Reads the lease and works out the next tick of `config`'s schedule.
pub async fn header(
    store: &OrdinalStore,
    config: &crate::config::Config,
) -> Result<Header, StoreError> {
    let lease_holder = crate::lease::holder(store).await?;
    let next_run = match (config.schedule(), config.time_zone()) {
        (Ok(schedule), Ok(tz)) => schedule
            .upcoming(tz)
            .next()
            .map(|at| format!("{} {}", at.format("%Y-%m-%d %H:%M:%S"), tz)),
        _ => None,
    };
    Ok(Header {
        lease_holder,
        next_run,
    })
}

/// The header's lines.
pub fn render_header(header: &Header, config: &crate::config::Config) -> String {
    let lease = match &header.lease_holder {
        Some(holder) => format!("run:       under way (import lease held by {holder})"),
        None => "run:       none under way (import lease free)".to_owned(),
    };
    let next = match &header.next_run {
        Some(at) => format!(
            "next tick: {at} (CRON \"{}\", for `run` daemons)",
            config.cron
        ),
        None => format!("next tick: - (CRON \"{}\" does not parse)", config.cron),
    };
    format!("{lease}\n{next}\n\n")
}

/// Reads the status of `services` from Redis.
pub async fn collect(
    store: &OrdinalStore,
    services: &[Service],
) -> Result<Vec<ServiceStatus>, StoreError> {
    let forbidden = store.forbidden().await?;
    let mut rows = Vec::with_capacity(services.len());
    for service in services {
        let state = store.service_status(service).await?;
        rows.push(ServiceStatus {
            service: service.id.clone(),
            ordinal: state.ordinal,
            scheduled: state.scheduled,
            updated: state.updated,
            last_run: state.last_run,
            forbidden: forbidden.contains(&service.id),
            dead_letters: state.dead_letters,
            feedback_form: state.feedback_form,
            last_success: state.last_success,
        });
    }
    Ok(rows)
}

/// The status table's column names, as `status` prints them.
pub const COLUMNS: [&str; 11] = [
    "SERVICE",
    "ORDINAL",
    "SCHEDULED/UPDATED",
    "LAST RUN",
    "DURATION",
    "RESULT",
    "LAST SUCCESS",
    "FORBIDDEN",
    "FEEDBACK",
    "DEAD",
    "ERROR",
];

/// The cells of one row under [`COLUMNS`], as `status` prints them (`-`
/// for nothing, the error cut to 80 characters): the text table and the
/// admin API's status page show the same words.
pub fn cells(r: &ServiceStatus) -> [String; COLUMNS.len()] {
    let run = r.last_run.as_ref();
    [
        r.service.clone(),
        r.ordinal.map_or("-".into(), |o| o.to_string()),
        format!("{}/{}", r.scheduled, r.updated),
        run.map_or("-".into(), |r| short_time(&r.started)),
        run.map_or("-".into(), |r| {
            format!("{:.1}s", r.duration_ms as f64 / 1000.0)
        }),
        run.map_or("-".into(), |r| r.result.clone()),
        r.last_success.as_deref().map_or("-".into(), short_time),
        if r.forbidden {
            "yes".into()
        } else {
            "-".into()
        },
        r.feedback_form.clone().unwrap_or_else(|| "-".into()),
        r.dead_letters.to_string(),
        run.and_then(|r| r.error.as_deref())
            .map(shorten)
            .unwrap_or_default(),
    ]
}

/// A readable table of `rows`.
pub fn render_table(rows: &[ServiceStatus]) -> String {
    let mut table = vec![COLUMNS.map(String::from)];
    table.extend(rows.iter().map(cells));
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// An error for the table: its first 80 characters (the whole text is in
/// `status --json` and the log).
fn shorten(error: &str) -> String {
    const KEEP: usize = 80;
    match error.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &error[..cut]),
        None => error.to_owned(),
    }
}

/// An RFC 3339 time as `2026-11-28 02:00:00` (UTC, as stored).
pub fn short_time(rfc3339: &str) -> String {
    rfc3339
        .chars()
        .take(19)
        .collect::<String>()
        .replace('T', " ")
}
