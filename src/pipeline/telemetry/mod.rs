//! What an attempt tells the operator: its `AttemptObserver` (logs,
//! Prometheus counters, in batches off the hot path) and the process-wide
//! [`Reporter`] it reports into (live progress, ignored feedback across
//! attempts, feedback forms, a lost lease), which the run reads back.
//!
//! - `observer`: the attempt's observer.
//! - `reporter`: the reporter, [`LiveProgress`] and [`AttemptStats`].
//! - `ignored`: ignored feedback summarised, at most a line per 10 s.

mod ignored;
mod observer;
mod reporter;

pub(crate) use observer::AttemptObserver;
pub use reporter::{AttemptStats, LiveProgress, Reporter};
