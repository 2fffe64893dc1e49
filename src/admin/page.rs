//! `GET /`: the status page, one self-contained HTML document for a
//! browser. It shows what `GET /status` and `sis-importer status` show —
//! the rows of [`crate::status`], the header with the lease holder and the
//! next tick, and this process's live progress — with the last run, dead
//! letters and forbidden services summed up above the table. Inline CSS,
//! no script: a `<meta http-equiv="refresh">` reloads it every
//! [`REFRESH_SECS`] seconds.
//!
//! # Guard
//!
//! The page is behind `ADMIN_TOKEN`, like `/status`: it shows the same
//! data, and that is more than `/metrics` does (error messages name URLs
//! and entity ids, the lease holder names a host). A browser sends the
//! token as `?token=…` (the refresh reloads the same address, so it stays);
//! a proxy or `curl` may send the `token` or `Authorization: Bearer`
//! header instead. The query form puts the token in the browser's history,
//! so the page is meant for a port-forward or an operator's own machine.
//! It never writes the token into the document, loads nothing from
//! elsewhere and sends `Referrer-Policy: no-referrer`, so the address
//! does not travel further; `Cache-Control: no-store` keeps it out of
//! caches.
//!
//! # Escaping
//!
//! Every text that comes from Redis or Sisu (ids, error messages, the lease
//! holder) goes through [`escape`]. The `Content-Security-Policy` allows
//! inline styles and nothing else, so even a missed escape runs no script.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AdminState;
use crate::pipeline::LiveProgress;
use crate::status::{self, Header, ServiceStatus};

/// Seconds between the page's reloads.
pub const REFRESH_SECS: u32 = 5;

/// What the page shows, read at one moment.
pub struct View<'a> {
    /// The lease holder and the next tick.
    pub header: &'a Header,
    /// One row per service, as `status` reads them from Redis.
    pub rows: &'a [ServiceStatus],
    /// This process's progress per service (current or last run).
    pub live: &'a BTreeMap<String, LiveProgress>,
    /// Whether this process is importing now.
    pub running_here: bool,
    /// When the view was read, for the live figures.
    pub now: Instant,
    /// When the view was read, as shown (UTC).
    pub generated: String,
}

/// The handler: reads the view and renders it; 503 with a page saying why
/// (and still refreshing) when Redis does not answer.
pub(super) async fn page(State(state): State<AdminState>) -> Response {
    let importer = state.daemon.importer();
    let services = state.daemon.services();
    let read = async {
        let rows = status::collect(&importer.io.store, services).await?;
        let header = status::header(&importer.io.store, &importer.config).await?;
        Ok::<_, crate::store::StoreError>((rows, header))
    };
    let generated = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let (code, body) = match read.await {
        Ok((rows, header)) => {
            let live = importer.live();
            let view = View {
                header: &header,
                rows: &rows,
                live: &live,
                running_here: importer.is_running(),
                now: Instant::now(),
                generated,
            };
            (StatusCode::OK, render(&view))
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            document(&format!(
                "<p class=\"bad\">Redis does not answer: {}</p><p class=\"note\">{generated}</p>",
                escape(&e.to_string())
            )),
        ),
    };
    (
        code,
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            ("referrer-policy", "no-referrer"),
            (
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// `text` with `&`, `<`, `>`, `"` and `'` as entities: safe in element
/// content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page for `view`.
pub fn render(view: &View<'_>) -> String {
    let mut body = String::new();
    let run = match &view.header.lease_holder {
        Some(holder) => format!(
            "<span class=\"busy\">under way</span> (import lease held by {})",
            escape(holder)
        ),
        None => "none under way (import lease free)".to_owned(),
    };
    let here = if view.running_here {
        "importing"
    } else {
        "idle"
    };
    let next = view.header.next_run.as_deref().unwrap_or("-");
    let _ = write!(
        body,
        "<p class=\"head\">Run: {run} · this process: {here} · next tick: {}</p>",
        escape(next)
    );
    summary(&mut body, view.rows);
    progress(&mut body, view);
    table(&mut body, view.rows);
    let _ = write!(
        body,
        "<p class=\"note\">Read {} · reloads every {REFRESH_SECS} s</p>",
        escape(&view.generated)
    );
    document(&body)
}

/// `body` in the page's frame: head, style, refresh.
fn document(body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>sis-importer status</title><style>{STYLE}</style></head>\
         <body><h1>sis-importer</h1>{body}</body></html>\n"
    )
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.2em 0 .4em}\
table{border-collapse:collapse}#services{width:100%}\
th,td{padding:.25em .5em;text-align:left;white-space:nowrap;vertical-align:top}\
th{background:#eee;font-weight:600}td{border-bottom:1px solid #e4e4e4}\
tr:has(+ .err-row) td{border-bottom:none}.err-row td{padding-top:0}\
td.num{text-align:right;font-variant-numeric:tabular-nums}td.err{white-space:normal;overflow-wrap:anywhere;color:#b00020}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ccc;border-radius:6px;padding:.5em .9em;min-width:14em}\
.card h2{margin:0 0 .2em}.ok{color:#17692c}.bad{color:#b00020;font-weight:600}\
.busy{color:#8a5a00;font-weight:600}.note,.head{color:#555}";

/// The cards above the table: the last run, dead letters, forbidden.
fn summary(out: &mut String, rows: &[ServiceStatus]) {
    out.push_str("<div class=\"cards\">");
    let latest = rows
        .iter()
        .filter_map(|r| r.last_run.as_ref())
        .map(|r| r.started.as_str())
        .max();
    let mut results: BTreeMap<&str, usize> = BTreeMap::new();
    for run in rows.iter().filter_map(|r| r.last_run.as_ref()) {
        *results.entry(run.result.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = results
        .iter()
        .map(|(result, n)| {
            format!(
                "<span class=\"{}\">{n} {}</span>",
                result_class(result),
                escape(result)
            )
        })
        .collect();
    let _ = write!(
        out,
        "<div class=\"card\" id=\"last-run\"><h2>Last run</h2>{}<br>{}</div>",
        latest.map_or("never".to_owned(), |t| format!(
            "started {}",
            escape(&status::short_time(t))
        )),
        if counts.is_empty() {
            "no service has run".to_owned()
        } else {
            counts.join(", ")
        }
    );
    let dead: Vec<&ServiceStatus> = rows.iter().filter(|r| r.dead_letters > 0).collect();
    let total: u64 = dead.iter().map(|r| r.dead_letters).sum();
    let listed: Vec<String> = dead
        .iter()
        .map(|r| format!("{} {}", escape(&r.service), r.dead_letters))
        .collect();
    let _ = write!(
        out,
        "<div class=\"card\" id=\"dead-letters\"><h2>Dead letters</h2><span class=\"{}\">{total}</span>{}</div>",
        if total > 0 { "bad" } else { "ok" },
        if listed.is_empty() {
            String::new()
        } else {
            format!(": {}", listed.join(", "))
        }
    );
    let forbidden: Vec<String> = rows
        .iter()
        .filter(|r| r.forbidden)
        .map(|r| escape(&r.service))
        .collect();
    let _ = write!(
        out,
        "<div class=\"card\" id=\"forbidden\"><h2>Forbidden</h2>{}</div></div>",
        if forbidden.is_empty() {
            "<span class=\"ok\">none</span>".to_owned()
        } else {
            format!("<span class=\"bad\">{}</span>", forbidden.join(", "))
        }
    );
}

/// This process's progress, in the table's order. A service of the
/// current run not reached yet still shows its last run's figures: STARTED
/// tells them apart.
fn progress(out: &mut String, view: &View<'_>) {
    if view.live.is_empty() {
        return;
    }
    let title = if view.running_here {
        "Progress of this process's run"
    } else {
        "This process's last run"
    };
    let _ = write!(
        out,
        "<h2>{title}</h2><table id=\"progress\"><tr><th>SERVICE</th><th>STATE</th>\
         <th>STARTED</th><th>ENTITIES</th><th>PER SECOND</th><th>ORDINAL</th><th>DEAD</th>\
         <th>TIME</th><th>ATTEMPT</th></tr>"
    );
    let known = view.rows.iter().map(|r| &r.service);
    let others = view
        .live
        .keys()
        .filter(|id| !view.rows.iter().any(|r| &r.service == *id));
    for service in known.chain(others) {
        let Some(p) = view.live.get(service) else {
            continue;
        };
        let f = crate::progress::figures(p, view.now);
        let ago = p.started.map_or("-".to_owned(), |at| {
            ago(view.now.saturating_duration_since(at))
        });
        let _ = write!(
            out,
            "<tr data-service=\"{id}\"><td>{id}</td><td class=\"{}\">{}</td><td>{ago}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.0}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.1} s</td><td class=\"num\">{}</td></tr>",
            result_class(&f.state),
            escape(&f.state),
            f.entities,
            f.rate,
            p.ordinal.map_or("-".to_owned(), |o| o.to_string()),
            p.dead_letters,
            f.secs,
            p.attempt.max(1),
            id = escape(service),
        );
    }
    out.push_str("</table>");
}

/// `elapsed` as `12 s ago`, `3 min ago` or `2 h ago`.
fn ago(elapsed: std::time::Duration) -> String {
    match elapsed.as_secs() {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}

/// The status table: the columns and cells of `sis-importer status`. The
/// error, the last column there, gets a line of its own under the
/// service's row (it is the longest cell), with the whole text on hover.
fn table(out: &mut String, rows: &[ServiceStatus]) {
    let (columns, _) = status::COLUMNS.split_at(ERROR);
    out.push_str("<h2>Services</h2><table id=\"services\"><tr>");
    for column in columns {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr>");
    for row in rows {
        let id = escape(&row.service);
        let _ = write!(out, "<tr data-service=\"{id}\">");
        let cells = status::cells(row);
        for (i, cell) in cells[..ERROR].iter().enumerate() {
            let class = match i {
                9 if row.dead_letters > 0 => "num bad",
                1 | 2 | 9 => "num",
                5 => result_class(cell),
                7 if row.forbidden => "bad",
                _ => "",
            };
            let _ = write!(out, "<td class=\"{class}\">{}</td>", escape(cell));
        }
        out.push_str("</tr>");
        if let Some(error) = row.last_run.as_ref().and_then(|r| r.error.as_deref()) {
            let _ = write!(
                out,
                "<tr class=\"err-row\" data-error=\"{id}\"><td></td>\
                 <td colspan=\"{}\" class=\"err\" title=\"{}\">{}</td></tr>",
                ERROR - 1,
                escape(error),
                escape(&cells[ERROR])
            );
        }
    }
    out.push_str("</table>");
}

/// The index of the ERROR column in [`status::COLUMNS`].
const ERROR: usize = status::COLUMNS.len() - 1;

/// The CSS class of a result or state (a fixed word, never the input).
fn result_class(result: &str) -> &'static str {
    match result {
        "ok" | "skipped" => "ok",
        "importing" => "busy",
        "failed" | "forbidden" | "interrupted" => "bad",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunRecord;

    fn row(service: &str, error: Option<&str>) -> ServiceStatus {
        ServiceStatus {
            service: service.to_owned(),
            ordinal: Some(42),
            scheduled: 3,
            updated: 3,
            last_run: Some(RunRecord {
                started: "2026-11-28T02:00:00+00:00".to_owned(),
                duration_ms: 1500,
                result: if error.is_some() { "failed" } else { "ok" }.to_owned(),
                error: error.map(str::to_owned),
                entities: 10,
            }),
            forbidden: false,
            dead_letters: 0,
            feedback_form: None,
            last_success: None,
        }
    }

    fn page(rows: &[ServiceStatus]) -> String {
        let header = Header {
            lease_holder: None,
            next_run: Some("2026-11-28 03:00:00 UTC".to_owned()),
        };
        render(&View {
            header: &header,
            rows,
            live: &BTreeMap::new(),
            running_here: false,
            now: Instant::now(),
            generated: "now".to_owned(),
        })
    }

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn an_error_with_markup_is_text_in_the_cell_and_in_its_title() {
        let html = page(&[row(
            "PERSON",
            Some("<script>alert('x')</script>\" onmouseover=\""),
        )]);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("\" onmouseover"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn each_row_holds_the_cells_of_the_status_table() {
        let rows = [row("PERSON", None), row("COUNTRY", Some("boom"))];
        let html = page(&rows);
        for r in &rows {
            let at = html
                .find(&format!("<tr data-service=\"{}\">", r.service))
                .expect("a row per service");
            let end = at + html[at..].find("</tr>").unwrap();
            let cells = status::cells(r);
            for cell in &cells[..ERROR] {
                assert!(html[at..end].contains(&format!(">{cell}</td>")), "{cell}");
            }
        }
        assert!(
            html.contains("<tr class=\"err-row\" data-error=\"COUNTRY\"><td></td><td colspan=\"9\" class=\"err\" title=\"boom\">boom</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"bad\">1 failed</span>"),
            "{html}"
        );
    }
}
