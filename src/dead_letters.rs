//! What `sis-importer dead-letters` and the admin API's `/dead-letters`
//! routes show and do, apart from the replay itself
//! ([`crate::importer::replay`]): the rows of `list` read from Redis, their
//! table, `clear`, and the text of a replay's report. Reads and writes
//! only Redis, so any process can list and clear.

use serde::Serialize;

use crate::catalogue::Service;
use crate::importer::replay::{LetterNote, ReplayReport, ReplayResult};
use crate::store::{DeadLetter, OrdinalStore, Settle, StoreError};

/// `list` shows the newest this many letters per service unless told.
pub const DEFAULT_LIMIT: usize = 1000;

/// One dead letter as `list` shows it: the stored fields without the
/// entity itself, and whether it can be replayed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterRow {
    /// Identity.
    pub identity: Option<String>,
    /// `metadata.modificationOrdinal`.
    pub modification_ordinal: Option<i64>,
    /// `poison` or `too_large`.
    pub reason: String,
    /// What the consumer said, or the sizes.
    pub detail: String,
    /// When, RFC 3339.
    pub time: String,
    /// The attempt that dead-lettered it.
    pub execution_hash: String,
    /// The chunk it was in.
    pub chunk_id: Option<String>,
    /// The entity's size in bytes (`None` in letters of earlier versions).
    pub entity_bytes: Option<u64>,
    /// Whether its entity is kept, so `replay` can send it again.
    pub replayable: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_replayable: Option<String>,
}

impl From<DeadLetter> for DeadLetterRow {
    fn from(letter: DeadLetter) -> Self {
        let not_replayable = letter.not_replayable();
        DeadLetterRow {
            identity: letter.identity,
            modification_ordinal: letter.modification_ordinal,
            reason: letter.reason,
            detail: letter.detail,
            time: letter.time,
            execution_hash: letter.execution_hash,
            chunk_id: letter.chunk_id,
            entity_bytes: letter.entity_bytes,
            replayable: not_replayable.is_none(),
            not_replayable,
        }
    }
}

/// One service's dead letters as `list` shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLetters {
    /// Service id.
    pub service: String,
    /// How many it has.
    pub total: u64,
    /// Bytes of entities kept with them (bounded by
    /// `dead_letter_entity_bytes`).
    pub entity_bytes: u64,
    /// The newest of them (at most the limit asked for), oldest first.
    pub letters: Vec<DeadLetterRow>,
}

/// The dead letters of `services`, the newest `limit` of each; a service
/// without any is left out unless `keep_empty`.
pub async fn collect(
    store: &OrdinalStore,
    services: &[Service],
    limit: usize,
    keep_empty: bool,
) -> Result<Vec<ServiceLetters>, StoreError> {
    let mut out = Vec::new();
    for service in services {
        let total = store.dead_letter_count(&service.id).await?;
        if total == 0 && !keep_empty {
            continue;
        }
        let limit = isize::try_from(limit).unwrap_or(isize::MAX);
        let letters = store.dead_letters(&service.id, limit).await?;
        out.push(ServiceLetters {
            service: service.id.clone(),
            total,
            entity_bytes: store.dead_letter_entity_bytes(&service.id).await?,
            letters: letters.into_iter().map(DeadLetterRow::from).collect(),
        });
    }
    Ok(out)
}

/// A readable table of `services`' letters, with a line for each service
/// whose older letters are not shown.
pub fn render_table(services: &[ServiceLetters]) -> String {
    let mut table = vec![[
        "SERVICE",
        "IDENTITY",
        "ORDINAL",
        "REASON",
        "TIME",
        "REPLAYABLE",
        "DETAIL",
    ]
    .map(String::from)];
    for s in services {
        for r in &s.letters {
            table.push([
                s.service.clone(),
                r.identity.clone().unwrap_or_else(|| "-".into()),
                r.modification_ordinal.map_or("-".into(), |o| o.to_string()),
                r.reason.clone(),
                r.time
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                replayable_label(r).into(),
                shorten(&r.detail, 60),
            ]);
        }
    }
    let mut out = String::new();
    if table.len() == 1 {
        out.push_str("no dead letters\n");
    } else {
        out.push_str(&align(&table));
    }
    for s in services {
        let hidden = s.total.saturating_sub(s.letters.len() as u64);
        if hidden > 0 {
            out.push_str(&format!(
                "{}: {hidden} older dead letters not shown (--limit)\n",
                s.service
            ));
        }
    }
    out
}

/// `yes`, or why not in a few words (the whole reason is in `--json`).
fn replayable_label(row: &DeadLetterRow) -> &'static str {
    match (&row.not_replayable, row.entity_bytes) {
        (None, _) => "yes",
        (Some(_), Some(_)) => "no (not kept)",
        (Some(_), None) => "no (old letter)",
    }
}

/// Columns padded to their widest cell, two spaces apart.
fn align<const N: usize>(table: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            let cells = table.iter().map(|row| row[i].chars().count());
            cells.max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in table {
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

/// The first `keep` characters of one line of `text`, `…` when cut.
fn shorten(text: &str, keep: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(keep) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if line.len() < text.trim_end().len() => format!("{line}…"),
        None => line.to_owned(),
    }
}

/// Why `clear --id` removed nothing, or Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum ClearError {
    /// No dead letter of the service has that identity.
    #[error("no dead letter of {service} has identity {identity:?}{known}")]
    NoSuchIdentity {
        /// Service id.
        service: String,
        /// The identity asked for.
        identity: String,
        /// Some identities it has, e.g. `; it has: a, b`.
        known: String,
    },
    /// Redis failed (after retries).
    #[error("clearing dead letters: {0}")]
    Store(#[from] StoreError),
}

/// Removes `service`'s dead letters (with their `:SEEN` members and kept
/// entities): all of them, or every version of `identity`. Returns how
/// many were removed.
pub async fn clear(
    store: &OrdinalStore,
    service: &str,
    identity: Option<&str>,
) -> Result<u64, ClearError> {
    let Some(identity) = identity else {
        return Ok(store.clear_dead_letters(service).await?);
    };
    let matching = store
        .scan_dead_letters(service, |l| l.identity.as_deref() == Some(identity))
        .await?;
    if matching.is_empty() {
        return Err(ClearError::NoSuchIdentity {
            service: service.to_owned(),
            identity: identity.to_owned(),
            known: store.dead_letter_identities(service).await?,
        });
    }
    let entries: Vec<_> = matching.iter().map(|e| (e, Settle::Remove)).collect();
    Ok(store.settle_dead_letters(service, &entries).await?)
}

/// A replay's report as lines for the terminal: one summary line, then a
/// line per letter that failed again or was not sent.
pub fn render_replay(report: &ReplayReport) -> String {
    let service = &report.service;
    let mut out = match report.result {
        ReplayResult::NothingToReplay => {
            format!("{service}: nothing replayed: no chosen dead letter keeps its entity\n")
        }
        ReplayResult::Completed => format!(
            "{service}: replayed {} entity versions in {} attempt(s): {} delivered and removed, {} failed again and kept\n",
            report.delivered.len() + report.failed_again.len(),
            report.attempts,
            report.delivered.len(),
            report.failed_again.len(),
        ),
        ReplayResult::Interrupted => {
            format!("{service}: replay interrupted; the dead letters are kept as they were\n")
        }
        ReplayResult::Failed => format!(
            "{service}: replay did not complete; the dead letters are kept as they were: {}\n",
            report.error.as_deref().unwrap_or("unknown error")
        ),
    };
    let note = |label: &str, n: &LetterNote| {
        format!(
            "{label}  {}@{}  {}\n",
            n.identity.as_deref().unwrap_or("?"),
            n.modification_ordinal.map_or("?".into(), |o| o.to_string()),
            shorten(n.detail.as_deref().unwrap_or(""), 100)
        )
    };
    for n in &report.failed_again {
        out.push_str(&note("failed again  ", n));
    }
    for n in &report.not_replayable {
        out.push_str(&note("not replayable", n));
    }
    let unnamed = report.not_replayable_total - report.not_replayable.len();
    if unnamed > 0 {
        out.push_str(&format!("not replayable  … and {unnamed} more\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(identity: &str, entity: Option<u64>, omitted: Option<&str>) -> DeadLetterRow {
        DeadLetterRow {
            identity: Some(identity.into()),
            modification_ordinal: Some(42),
            reason: "poison".into(),
            detail: "Error: testError in entity\n    at handler (index.js:1)".into(),
            time: "2026-11-28T04:30:44.368+00:00".into(),
            execution_hash: "abc".into(),
            chunk_id: None,
            entity_bytes: entity,
            replayable: omitted.is_none() && entity.is_some(),
            not_replayable: omitted.map(String::from),
        }
    }

    #[test]
    fn the_table_has_a_row_per_letter_and_says_what_is_not_shown() {
        let services = [ServiceLetters {
            service: "ATTAINMENT".into(),
            total: 5,
            entity_bytes: 300,
            letters: vec![
                row("hy-att-1", Some(300), None),
                row("hy-att-2", Some(9000), Some("entity not kept: …")),
                row("hy-att-3", None, Some("no entity kept: …")),
            ],
        }];
        let table = render_table(&services);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "SERVICE     IDENTITY  ORDINAL  REASON  TIME                 REPLAYABLE       DETAIL"
        );
        assert_eq!(
            lines[1],
            "ATTAINMENT  hy-att-1  42       poison  2026-11-28 04:30:44  yes              Error: testError in entity…"
        );
        assert!(lines[2].contains("no (not kept)"), "{table}");
        assert!(lines[3].contains("no (old letter)"), "{table}");
        assert_eq!(
            lines[4],
            "ATTAINMENT: 2 older dead letters not shown (--limit)"
        );
        assert_eq!(render_table(&[]), "no dead letters\n");
    }

    #[test]
    fn shorten_cuts_at_characters_and_keeps_one_line() {
        assert_eq!(shorten("äöå", 2), "äö…");
        assert_eq!(shorten("short", 60), "short");
        assert_eq!(shorten("one\ntwo", 60), "one…");
    }
}
