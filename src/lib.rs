//! sis-importer copies every change from the Sisu student-information
//! system's export APIs into NATS JetStream, where downstream consumers
//! store it. For each service in a fixed order it fetches batches after the
//! committed ordinal, publishes them in bounded chunks, and commits the
//! ordinal in Redis only when consumers have acknowledged every chunk; a
//! crash at any instant loses nothing.
//!
//! # Layout
//! Dependencies point inward, to the pipeline:
//! - [`pipeline`]: one service's import as the design card draws it. It
//!   owns its words (`vocabulary`) and the traits it reaches the world
//!   through (`ports`); `core/` is the pure attempt core (every rule:
//!   windows, order, halving, dead letters, commits, deadlines, the seed
//!   form, resuming), `attempt/` its driver (merged streams of events,
//!   sinks for chunks and store writes), `chunker`, `order` and `identity`
//!   the cutting and the per-identity order, `telemetry/` what the
//!   operator is told. It knows no HTTP, NATS or Redis.
//! - The adapters, each implementing ports in the pipeline's words:
//!   [`sources`] knows Sisu (`client`: auth, TLS, retries, rate limit;
//!   `export` with `page_scan`; `whole_set`) and implements `BatchSource`;
//!   [`sinks`] knows NATS (`connection`, `wire`, `publisher` the
//!   `ChunkSink`, `feedback`, `consumers`); [`store`] knows Redis (`keys`
//!   names every key, `lua/` holds the scripts) and implements
//!   `CursorStore`.
//! - [`importer`]: composes attempts into runs: the services in order,
//!   retries, the execution hash, forbidden services, replays of dead
//!   letters, `POST_UPDATE`, and the daemon's cron schedule.
//!
//! Around them:
//! - [`config`]: the typed configuration (`env` the environment table,
//!   `validate`), [`catalogue`]: the 26 services.
//! - [`check`]: `sis-importer check` and `/readyz`; [`admin`]: the admin
//!   HTTP API; [`status`]: the `status` rows; [`dead_letters`]: the
//!   `dead-letters` rows, table and `clear`; [`progress`]: the live line of
//!   `once`; [`metrics`]: the Prometheus registry.
//! - [`lease`]: one importer at a time; [`shutdown`]: the stop signal;
//!   `retry`: the one retry policy; [`redact`]: secrets and URLs; `outage`:
//!   two log lines per outage; [`entity`]: one entity's JSON.
//!
//! The test kit (fake Sisu, reference consumer, NATS/Redis process
//! harness, the `demo` and `fake-sisu` commands) is its own crate,
//! `testkit/` (`sis-testkit`), used only by tests, benchmarks and the demo.

pub mod admin;
pub mod catalogue;
pub mod check;
pub mod config;
pub mod dead_letters;
pub mod entity;
pub mod importer;
pub mod lease;
pub mod metrics;
pub(crate) mod outage;
pub mod pipeline;
pub mod progress;
pub mod redact;
pub(crate) mod retry;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod status;
pub mod store;

/// The async runtime the importer runs on: `threads` 1 is a current-thread
/// runtime (the default, `WORKER_THREADS`: the cheapest in CPU per GB),
/// 0 a multi-thread one with a thread per core, n a multi-thread one with
/// n threads.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tune_allocator();
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    builder.enable_all().build()
}

/// Page bodies are a megabyte or more each, allocated per page and freed
/// when their batch is committed. Above glibc's mmap threshold each one is
/// a fresh mapping: hundreds of page faults and zeroed pages per page, and
/// handed back to the kernel when freed. Kept in the heap instead (up to
/// 16 MiB a block, and up to 256 MiB of free heap kept rather than trimmed),
/// the importer's CPU per GB fell by about a tenth in the tuning benchmark
/// (`GLIBC_TUNABLES` with the same values as a variant, interleaved); peak
/// memory is unchanged, since the heap never holds more than the peak.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two of glibc's malloc parameters; it is
    // called before the runtime starts its threads, and again harmlessly.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Logs to stderr (through the progress line's writer) as text on a
/// terminal and JSON otherwise, unless `LOG_FORMAT` says; `RUST_LOG`
/// filters (default `info,async_nats=warn`). Every line passes through
/// [`redact::log_line`] first: no level shows a URL's credentials, from
/// the importer or from a library. Text is coloured only on a terminal
/// and never when `NO_COLOR` is set (to anything but the empty string).
pub fn init_logging(format: Option<config::LogFormat>) {
    use config::LogFormat;
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let format = format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(terminal, std::env::var_os("NO_COLOR")))
        .with_writer(redact::Redacting(progress::LogWriter));
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

/// Whether text logs are coloured: on a terminal only (a file or a pipe
/// gets no escape codes), unless `NO_COLOR` is set to a non-empty value
/// (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use super::colour;
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())), "empty NO_COLOR: unset");
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None), "a file or a pipe");
    }
}
