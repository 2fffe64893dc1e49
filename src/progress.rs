//! The live progress line of `sis-importer once` on a terminal: one line
//! per service, redrawn in place while it imports and left behind as a
//! summary when it finishes.
//!
//! The line is an `indicatif` bar whose whole text is [`render`]'s: the
//! crate redraws it (at most [`REDRAWS_PER_SEC`] times a second), cuts it
//! to the terminal's width and prints the summaries above it. Logs go to
//! the same terminal, so log output goes through `LogWriter`, which
//! suspends the bar around each event: the line is wiped, the event
//! printed, the line drawn again under it. Nothing is drawn unless
//! [`Progress::spawn`] was called; until then, and after
//! [`Progress::finish`], logs go to stderr as they are.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use crate::importer::Importer;
use crate::pipeline::LiveProgress;

/// The line on screen while a [`Progress`] runs; `None` before and after,
/// when `LogWriter` is plain stderr.
static LINE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Most redraws a second the line asks of the terminal (indicatif's rate
/// limit, after a burst of 20). The drawing task updates it every 200 ms;
/// the limit bounds the line whatever calls it, apart from the redraw
/// after each log event, which is forced.
pub const REDRAWS_PER_SEC: u8 = 10;

/// A `tracing` writer for stderr that keeps the progress line below the
/// logs. Without a progress line it is plain stderr.
#[derive(Clone, Copy, Default)]
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = LINE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // stderr is locked inside the suspension only: a redraw holds the
        // bar's lock while it writes to stderr, so the other order could
        // deadlock.
        above(line.as_ref(), || {
            let mut err = std::io::stderr().lock();
            err.write_all(buf)?;
            err.flush()
        })?;
        Ok(buf.len())
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

/// Runs `print` (one log event) with `line`, if any, wiped from the screen
/// first and drawn again after it, so the event lands above the line.
fn above<R>(line: Option<&ProgressBar>, print: impl FnOnce() -> R) -> R {
    match line {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// The bar that shows the line on `target`: its text is the message, cut
/// to the terminal's width (a wrapped line would take two rows), and a bar
/// dropped unfinished takes its line with it.
fn new_line(target: ProgressDrawTarget) -> ProgressBar {
    let style = ProgressStyle::with_template("{wide_msg}").expect("a valid template");
    ProgressBar::with_draw_target(None, target)
        .with_style(style)
        .with_finish(ProgressFinish::AndClear)
}

/// The drawing task; [`Progress::finish`] draws the final state and stops it.
pub struct Progress {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts redrawing the progress of `importer` every `every` on stderr,
    /// terminal or not (the caller decides; `--progress always` draws into
    /// a file too).
    pub fn spawn(importer: Arc<Importer>, every: Duration) -> Progress {
        let stderr = console::Term::buffered_stderr();
        let line = new_line(ProgressDrawTarget::term_like_with_hz(
            Box::new(stderr),
            REDRAWS_PER_SEC,
        ));
        *LINE.lock().unwrap_or_else(|e| e.into_inner()) = Some(line.clone());
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut settled = HashSet::new();
            let mut tick = tokio::time::interval(every);
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                update(&line, &importer.live(), &mut settled);
                if last {
                    break;
                }
            }
            LINE.lock().unwrap_or_else(|e| e.into_inner()).take();
            line.finish_and_clear();
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
/// and ended between two ticks get theirs too), then shows the running one.
fn update(
    line: &ProgressBar,
    live: &BTreeMap<String, LiveProgress>,
    settled: &mut HashSet<String>,
) {
    let now = Instant::now();
    let mut started: Vec<(&String, &LiveProgress)> =
        live.iter().filter(|(_, p)| p.started.is_some()).collect();
    started.sort_by_key(|(_, p)| p.seq);
    for (id, p) in &started {
        if p.result.is_some() && settled.insert((*id).clone()) {
            line.println(render(id, p, now));
        }
    }
    match started.iter().find(|(_, p)| p.result.is_none()) {
        Some((id, p)) => line.set_message(render(id, p, now)),
        None => line.set_message(""),
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
    use indicatif::{InMemoryTerm, TermLike};

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

    /// A line on a terminal of `cols` columns kept in memory, redrawn at
    /// every update (no rate limit), as the tests read it.
    fn on_screen(cols: u16) -> (ProgressBar, InMemoryTerm) {
        let term = InMemoryTerm::new(20, cols);
        let line = new_line(ProgressDrawTarget::term_like(Box::new(term.clone())));
        (line, term)
    }

    /// A log event as the writer prints it to `term`, where a real
    /// terminal's driver turns each `\n` into `\r\n`.
    fn log(term: &InMemoryTerm, event: &str) -> std::io::Result<()> {
        term.write_str(&event.replace('\n', "\r\n"))?;
        term.flush()
    }

    fn service(seq: u64, result: Option<&str>) -> LiveProgress {
        let now = Instant::now();
        LiveProgress {
            started: Some(now),
            finished: result.map(|_| now),
            result: result.map(str::to_owned),
            seq,
            attempt: 1,
            ..LiveProgress::default()
        }
    }

    #[test]
    fn a_line_never_wraps_the_terminal() {
        let (line, term) = on_screen(40);
        line.set_message("x".repeat(120));
        assert_eq!(term.contents(), "x".repeat(40), "cut to the width");
        line.set_message("y".repeat(120));
        assert_eq!(term.contents(), "y".repeat(40), "redrawn in place");
    }

    #[test]
    fn finished_services_each_leave_one_line_in_start_order() {
        let (line, term) = on_screen(200);
        let mut live = BTreeMap::new();
        live.insert("Z_FIRST".to_owned(), service(0, Some("ok")));
        live.insert("A_SECOND".to_owned(), service(1, Some("failed")));
        live.insert("M_THIRD".to_owned(), service(2, None));
        let mut settled = HashSet::new();
        update(&line, &live, &mut settled);
        update(&line, &live, &mut settled);
        let screen = term.contents();
        let rows: Vec<&str> = screen.lines().collect();
        assert_eq!(rows.len(), 3, "settled once: {screen}");
        assert!(
            rows[0].starts_with("Z_FIRST ") && rows[0].contains(" ok "),
            "{screen}"
        );
        assert!(
            rows[1].starts_with("A_SECOND ") && rows[1].contains(" failed "),
            "{screen}"
        );
        assert!(
            rows[2].starts_with("M_THIRD ") && rows[2].contains(" importing "),
            "{screen}"
        );

        line.finish_and_clear();
        assert_eq!(term.contents().lines().count(), 2, "the summaries stay");
    }

    #[test]
    fn logs_written_while_the_line_is_drawn_land_above_it() {
        let (line, term) = on_screen(200);
        let mut live = BTreeMap::new();
        live.insert("PERSON".to_owned(), service(0, None));
        update(&line, &live, &mut HashSet::new());
        above(Some(&line), || log(&term, "INFO batch committed\n")).unwrap();
        above(Some(&line), || log(&term, "WARN retrying\n")).unwrap();
        let screen = term.contents();
        let rows: Vec<&str> = screen.lines().collect();
        assert_eq!(rows.len(), 3, "{screen}");
        assert_eq!(rows[0], "INFO batch committed", "{screen}");
        assert_eq!(rows[1], "WARN retrying", "{screen}");
        assert!(
            rows[2].starts_with("PERSON ") && rows[2].contains("importing"),
            "{screen}"
        );
    }

    #[test]
    fn without_a_line_logs_are_printed_as_they_are() {
        let term = InMemoryTerm::new(20, 80);
        above(None, || log(&term, "INFO one\nINFO two\n")).unwrap();
        assert_eq!(term.contents(), "INFO one\nINFO two");
        assert!(
            !term.moves_since_last_check().contains("Clear"),
            "nothing wiped"
        );
    }

    /// A terminal that only counts the redraws (each ends in a flush).
    #[derive(Debug, Default, Clone)]
    struct Redraws(Arc<std::sync::atomic::AtomicUsize>);

    impl indicatif::TermLike for Redraws {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, _: &str) -> std::io::Result<()> {
            Ok(())
        }
        fn write_str(&self, _: &str) -> std::io::Result<()> {
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }

    /// The line costs the importer nothing it does not ask for: however
    /// often it is updated, the terminal sees at most a burst of 20 redraws
    /// and then `REDRAWS_PER_SEC` a second.
    #[test]
    fn redraws_are_bounded_by_the_rate_limit() {
        let redraws = Redraws::default();
        let line = new_line(ProgressDrawTarget::term_like_with_hz(
            Box::new(redraws.clone()),
            REDRAWS_PER_SEC,
        ));
        let mut live = BTreeMap::new();
        live.insert("PERSON".to_owned(), service(0, None));
        let start = Instant::now();
        let mut updates = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            update(&line, &live, &mut HashSet::new());
            updates += 1;
        }
        let elapsed = start.elapsed();
        let drawn = redraws.0.load(std::sync::atomic::Ordering::Relaxed);
        let bound = 20 + (elapsed.as_secs_f64() * f64::from(REDRAWS_PER_SEC)).ceil() as usize + 1;
        eprintln!(
            "{updates} updates in {elapsed:?} ({:.0} ns each), {drawn} redraws (bound {bound})",
            elapsed.as_nanos() as f64 / updates as f64
        );
        assert!(updates > 1000, "a busy loop: {updates}");
        assert!(drawn <= bound, "{drawn} redraws for {updates} updates");
        assert!(drawn > 0);
    }
}
