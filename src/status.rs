//! What `sis-importer status` (and the admin API) shows: per service the
//! committed ordinal, the window counters, the last run, forbidden and dead
//! letters — read from Redis, so any process can show it.

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
        });
    }
    Ok(rows)
}

/// A readable table of `rows`.
pub fn render_table(rows: &[ServiceStatus]) -> String {
    let mut table = vec![[
        "SERVICE".to_owned(),
        "ORDINAL".into(),
        "SCHEDULED/UPDATED".into(),
        "LAST RUN".into(),
        "DURATION".into(),
        "RESULT".into(),
        "FORBIDDEN".into(),
        "DEAD".into(),
    ]];
    for r in rows {
        let run = r.last_run.as_ref();
        table.push([
            r.service.clone(),
            r.ordinal.map_or("-".into(), |o| o.to_string()),
            format!("{}/{}", r.scheduled, r.updated),
            run.map_or("-".into(), |r| {
                r.started
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " ")
            }),
            run.map_or("-".into(), |r| {
                format!("{:.1}s", r.duration_ms as f64 / 1000.0)
            }),
            run.map_or("-".into(), |r| r.result.clone()),
            if r.forbidden {
                "yes".into()
            } else {
                "-".into()
            },
            r.dead_letters.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
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
