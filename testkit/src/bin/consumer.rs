//! `consumer` (`cargo consumer`): a reference consumer in the foreground
//! until SIGTERM or Ctrl-C, in the precise form or in the seed's form
//! (importer-mankeli's), for trying the importer against either by hand and
//! for tests that kill the consumer's process. With `--store-file` every
//! entity of an OK chunk is appended to a file before the chunk is
//! answered, so what a killed consumer had stored can be checked.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};

use sis_testkit::consumer::{ConsumerConfig, JsonLinesFile, ReferenceConsumer};

/// A reference consumer of sis-importer's stream, for trying the importer
/// by hand (e.g. against `cargo fake-sisu`); runs until SIGTERM or Ctrl-C.
///
/// It waits for the stream (the importer creates it on its first run),
/// then reads every service's subject through a durable pull consumer
/// `<prefix>_<SERVICE>`, answers each chunk on its feedback subject (`OK`,
/// or `FAIL` when an entity has a truthy --fail-field) and acks it. It
/// keeps only counters, or appends the entities to --store-file. Never
/// point it at a production stream: its durables take chunks from there.
#[derive(Parser)]
#[command(
    name = "consumer",
    version,
    after_help = "Example, with the importer's NATS and Redis:\n  \
        NATS_URL=nats://127.0.0.1:14222 REDIS_URL=redis://127.0.0.1:16379/ cargo consumer --form seed\n\n\
        Exit codes: 0 stopped by SIGTERM or Ctrl-C; 2 bad arguments or --store-file unwritable."
)]
struct Args {
    /// NATS server URL (several comma-separated for a cluster).
    // The environment's value is not shown in --help: it may hold a password.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    nats_url: String,
    /// Redis URL the seed's form learns the current execution hash from.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        required_if_eq("form", "seed")
    )]
    redis_url: Option<String>,
    /// Feedback form: `precise` (OK names the chunk) or `seed`
    /// (importer-mankeli's: OK without chunkId, FAIL echoes the chunk,
    /// chunks of any but the current execution hash dropped).
    #[arg(long, value_enum, default_value_t = Form::Precise)]
    form: Form,
    /// Instances sharing each durable consumer [default: 1 with --form
    /// seed, 2 otherwise].
    #[arg(long)]
    instances: Option<usize>,
    /// Processing delay per chunk, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Redelivery delay of an unacked chunk, in seconds [default: 60 with
    /// --form seed, 30 otherwise].
    #[arg(long)]
    ack_wait_secs: Option<u64>,
    /// An entity with this field truthy makes its chunk FAIL.
    #[arg(long, default_value = "testError")]
    fail_field: String,
    /// JetStream stream to consume from.
    #[arg(long, env = "NATS_STREAM", default_value = "SIS_IMPORTER")]
    stream: String,
    /// Durable consumer names are `<prefix>_<service id>`.
    #[arg(long, default_value = "reference")]
    durable_prefix: String,
    /// Append every stored entity (of OK chunks) to this file as a JSON
    /// line, written before the chunk is answered.
    #[arg(long, value_name = "PATH")]
    store_file: Option<PathBuf>,
}

/// The `--form` values.
#[derive(Clone, Copy, ValueEnum)]
enum Form {
    /// The precise form.
    Precise,
    /// The seed's form.
    Seed,
}

fn main() -> ExitCode {
    let args = Args::parse();
    sis_importer::init_logging(None);
    let outcome = sis_importer::runtime(0)
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consumer: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = config(args)?;
    config.validate()?;
    // Listening before the start line, so a signal right after it counts.
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    println!(
        "consumer running: form={}, instances={}, stream={}",
        config.form,
        config.instances.max(1),
        config.stream
    );
    let consumer = ReferenceConsumer::start(config);
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("stopping: chunks in progress finish or go back");
    consumer.stop().await;
    Ok(())
}

fn config(args: Args) -> anyhow::Result<ConsumerConfig> {
    let mut config = match args.form {
        Form::Seed => ConsumerConfig::seed(args.nats_url, args.redis_url.unwrap_or_default()),
        Form::Precise => ConsumerConfig {
            redis_url: args.redis_url,
            ..ConsumerConfig::new(args.nats_url)
        },
    };
    if let Some(instances) = args.instances {
        config.instances = instances;
    }
    if let Some(secs) = args.ack_wait_secs {
        config.ack_wait = Duration::from_secs(secs);
    }
    config.latency = Duration::from_millis(args.latency_ms);
    config.fail_field = args.fail_field;
    config.stream = args.stream;
    config.durable_prefix = args.durable_prefix;
    // Nothing reads what was received here: keep only the counters, so
    // memory does not grow with the import.
    config.record = false;
    if let Some(path) = args.store_file {
        let file = JsonLinesFile::open(&path)
            .with_context(|| format!("opening --store-file {}", path.display()))?;
        config.store_sink = Some(Arc::new(file));
    }
    Ok(config)
}
