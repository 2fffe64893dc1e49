//! The live progress line of `sis-importer once` on a terminal: one line
//! per service, redrawn in place while it imports and left behind as a
//! summary when it finishes.
//!
//! Logs go to the same terminal, so log output goes through `LogWriter`:
//! it wipes the progress line, writes the log event, and redraws the line
//! under it. Nothing is drawn unless [`Progress::spawn`] was called.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::importer::Importer;
use crate::pipeline::LiveProgress;

/// The line currently on screen (empty: none).
static LINE: Mutex<String> = Mutex::new(String::new());

const CLEAR: &[u8] = b"\r\x1b[2K";

fn with_line<R>(f: impl FnOnce(&mut String, &mut std::io::StderrLock<'_>) -> R) -> R {
    let mut line = LINE.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    f(&mut line, &mut err)
}

/// A `tracing` writer for stderr that keeps the progress line below the
/// logs. Without a progress line it is plain stderr.
#[derive(Clone, Copy, Default)]
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        with_line(|line, err| {
            if !line.is_empty() {
                err.write_all(CLEAR)?;
            }
            err.write_all(buf)?;
            if !line.is_empty() {
                err.write_all(line.as_bytes())?;
            }
            err.flush()?;
            Ok(buf.len())
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// Columns of the terminal on stderr; `None` when unknown (not a terminal,
/// or a pseudo-terminal without a size).
fn terminal_width() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// `line` cut to fit `width` columns: a line that wraps cannot be wiped
/// by `\r\x1b[2K`, and each redraw would leave a row behind.
fn fit(mut line: String, width: Option<usize>) -> String {
    if let Some(width) = width {
        if line.chars().count() >= width {
            line = line.chars().take(width.saturating_sub(1)).collect();
        }
    }
    line
}

/// Replaces the line on screen with `new` (no newline).
fn draw(new: String) {
    let new = fit(new, terminal_width());
    with_line(|line, err| {
        let _ = err.write_all(CLEAR);
        let _ = err.write_all(new.as_bytes());
        let _ = err.flush();
        *line = new;
    });
}

/// Ends the line on screen with `last` and a newline; nothing is redrawn
/// under later logs.
fn settle(last: String) {
    with_line(|line, err| {
        let _ = err.write_all(CLEAR);
        let _ = writeln!(err, "{last}");
        let _ = err.flush();
        line.clear();
    });
}

/// The drawing task; [`Progress::finish`] draws the final state and stops it.
pub struct Progress {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts redrawing the progress of `importer` every `every`.
    pub fn spawn(importer: Arc<Importer>, every: Duration) -> Progress {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut settled = HashSet::new();
            let mut tick = tokio::time::interval(every);
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                update(&importer.live(), &mut settled);
                if last {
                    break;
                }
            }
            with_line(|line, err| {
                if !line.is_empty() {
                    let _ = err.write_all(CLEAR);
                    line.clear();
                }
            });
        });
        Progress { stop, task }
    }

    /// Draws the last state and leaves the terminal clean.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// One redraw: leaves a line behind for every service that finished since
/// the last one (in the order they started, so fast services that began
/// and ended between two ticks get theirs too), then draws the running one.
fn update(live: &BTreeMap<String, LiveProgress>, settled: &mut HashSet<String>) {
    let now = Instant::now();
    let mut started: Vec<(&String, &LiveProgress)> =
        live.iter().filter(|(_, p)| p.started.is_some()).collect();
    started.sort_by_key(|(_, p)| p.seq);
    for (id, p) in &started {
        if p.result.is_some() && settled.insert((*id).clone()) {
            settle(render(id, p, now));
        }
    }
    match started.iter().find(|(_, p)| p.result.is_none()) {
        Some((id, p)) => draw(render(id, p, now)),
        None => draw(String::new()),
    }
}

/// What one service's progress amounts to at `now`: the figures the
/// progress line and the admin API's status page show.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// `importing` while it runs, then its result (`ok`, `failed`, ...).
    pub state: String,
    /// Entities acknowledged or committed, whichever is more.
    pub entities: u64,
    /// Entities per second since the service started.
    pub rate: f64,
    /// Seconds since it started (until it finished).
    pub secs: f64,
}

/// The figures of `p` at `now`.
pub fn figures(p: &LiveProgress, now: Instant) -> Figures {
    let elapsed = p
        .finished
        .unwrap_or(now)
        .saturating_duration_since(p.started.unwrap_or(now));
    let secs = elapsed.as_secs_f64();
    let entities = p.entities.max(p.acknowledged);
    let rate = if secs > 0.0 {
        entities as f64 / secs
    } else {
        0.0
    };
    Figures {
        state: p.result.clone().unwrap_or_else(|| "importing".to_owned()),
        entities,
        rate,
        secs,
    }
}

/// The text of one service's line.
pub fn render(service: &str, p: &LiveProgress, now: Instant) -> String {
    let Figures {
        state,
        entities,
        rate,
        secs,
    } = figures(p, now);
    let ordinal = p.ordinal.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let mut text = format!(
        "{service:<24} {state:<9} {entities:>9} entities {rate:>7.0}/s  ordinal {ordinal}  dead letters {}  {secs:.1} s",
        p.dead_letters
    );
    if p.attempt > 1 {
        text.push_str(&format!("  attempt {}", p.attempt));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_entities_rate_ordinal_dead_letters_and_retries() {
        let start = Instant::now();
        let mut p = LiveProgress {
            entities: 1000,
            acknowledged: 1500,
            ordinal: Some(42),
            dead_letters: 2,
            attempt: 1,
            started: Some(start),
            ..LiveProgress::default()
        };
        let line = render("PERSON", &p, start + Duration::from_secs(2));
        assert!(line.starts_with("PERSON "), "{line}");
        assert!(line.contains("importing"), "{line}");
        assert!(
            line.contains(" 1500 entities"),
            "acknowledged counts: {line}"
        );
        assert!(line.contains("750/s"), "{line}");
        assert!(line.contains("ordinal 42"), "{line}");
        assert!(line.contains("dead letters 2"), "{line}");
        assert!(!line.contains("attempt"), "{line}");

        p.attempt = 2;
        p.result = Some("ok".into());
        p.finished = Some(start + Duration::from_secs(3));
        let line = render("PERSON", &p, start + Duration::from_secs(60));
        assert!(line.contains(" ok "), "{line}");
        assert!(
            line.contains("500/s"),
            "the rate stops at the finish: {line}"
        );
        assert!(line.contains("attempt 2"), "{line}");
    }

    #[test]
    fn a_line_never_wraps_a_known_terminal() {
        let line = "x".repeat(120);
        assert_eq!(fit(line.clone(), Some(80)).len(), 79);
        assert_eq!(fit(line.clone(), None), line, "unknown width: as is");
        assert_eq!(fit("short".into(), Some(80)), "short");
    }

    #[test]
    fn finished_services_each_leave_one_line_in_start_order() {
        let mut live = BTreeMap::new();
        let now = Instant::now();
        for (seq, id) in ["Z_FIRST", "A_SECOND"].into_iter().enumerate() {
            live.insert(
                id.to_owned(),
                LiveProgress {
                    started: Some(now),
                    finished: Some(now),
                    result: Some("ok".into()),
                    seq: seq as u64,
                    ..LiveProgress::default()
                },
            );
        }
        let mut settled = HashSet::new();
        update(&live, &mut settled);
        assert_eq!(settled.len(), 2);
        update(&live, &mut settled);
        assert_eq!(settled.len(), 2, "settled once");
    }
}
