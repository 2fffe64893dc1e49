//! `demo` (`cargo demo`): the whole job on an embedded default. The
//! fake Sisu and reference consumers run in-process;
//! NATS and Redis come from `NATS_URL`/`REDIS_URL` when those are set and
//! answer, otherwise the demo starts its own `nats-server -js` and
//! `redis-server` on free ports in a temp dir and stops them on exit.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use sis_importer::config::{Config, Secret};
use sis_importer::pipeline::{Importer, RunSummary};
use sis_importer::shutdown;
use sis_testkit::consumer::{ConsumerConfig, ReferenceConsumer};
use sis_testkit::fake_sisu::{FakeSisu, FakeSisuConfig};
use sis_testkit::servers::{NatsServer, RedisServer};

/// Runs the whole job on an embedded default: the fake Sisu and reference
/// consumers in-process, NATS and Redis started if none answer at
/// NATS_URL/REDIS_URL.
#[derive(clap::Parser, Debug)]
#[command(name = "demo", version)]
struct DemoArgs {
    /// TOML configuration file of the importer; environment variables
    /// override it.
    #[arg(long, env = "SIS_IMPORTER_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Entities per export service in the fake Sisu.
    #[arg(long, default_value_t = 2_000)]
    entities: u64,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Don't plant a poison entity (in ATTAINMENT) to show dead-lettering.
    #[arg(long)]
    no_poison: bool,
    /// How the reference consumers answer: `precise` (OK names the chunk)
    /// or `seed` (as importer-mankeli: OK without chunkId, one current
    /// execution hash learned from Redis, one chunk at a time).
    #[arg(long, value_enum, default_value_t = Form::Precise)]
    consumer_form: Form,
}

/// `--consumer-form`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Form {
    Precise,
    Seed,
}

fn main() -> ExitCode {
    use clap::Parser;
    let args = DemoArgs::parse();
    // The demo hosts a whole rig in one process: a thread per core.
    let outcome = Config::read(args.config.as_deref())
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            sis_importer::init_logging(config.log_format);
            Ok(sis_importer::runtime(0)?.block_on(run(config, args)))
        })
        .and_then(|code| code);
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the demo and prints a per-service summary.
async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (nats_url, _nats) = nats(&config).await?;
    let (redis_url, _redis) = redis(&config).await?;
    let fake = FakeSisu::start(FakeSisuConfig {
        seed: args.seed,
        entities_per_service: args.entities,
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ..FakeSisuConfig::default()
    })
    .await
    .context("starting the fake Sisu")?;
    if !args.no_poison {
        fake.faults().poison("ATTAINMENT", args.entities / 2);
    }
    config.sis_api_url = Some(fake.base_url());
    config.kori_public_api_url = fake.kori_public_url();
    config.nats_url = nats_url.clone();
    config.redis_url = Secret::new(redis_url);
    config.validate()?;
    let services = config.selected_services()?;
    println!(
        "fake Sisu: {} ({} entities per export service)",
        fake.base_url(),
        args.entities
    );

    let importer = Importer::connect(config.clone()).await?;
    // A demo imports from the start, so it is comparable run to run.
    for service in &services {
        importer.store.reset(service).await?;
    }
    let mut consumer_config = match args.consumer_form {
        Form::Precise => ConsumerConfig::new(nats_url),
        Form::Seed => ConsumerConfig::seed(nats_url, config.redis_url.expose()),
    };
    println!("consumers: the {:?} feedback form", args.consumer_form);
    consumer_config.nats_auth = sis_importer::sinks::NatsAuth::from_config(&config);
    consumer_config.stream = config.nats_stream.clone();
    consumer_config.record = false;
    let consumer = ReferenceConsumer::start(consumer_config);

    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        trigger.trigger();
    });
    let started = Instant::now();
    let summary = importer.run(&services, shutdown).await?;
    print_summary(&summary, started.elapsed());
    let received = consumer.received();
    // Committed entities count dead letters, which no consumer stored.
    let committed: u64 = summary
        .services
        .iter()
        .map(|r| r.entities - r.dead_letters)
        .sum();
    let retries: u32 = summary
        .services
        .iter()
        .map(|r| r.attempts.saturating_sub(1))
        .sum();
    println!(
        "consumers stored {} entities in {} chunks ({} duplicates); {retries} panic-timeout retries",
        received.entities_ok,
        received.chunks_ok,
        received.entities_ok.saturating_sub(committed),
    );
    consumer.stop().await;
    fake.shutdown().await;
    Ok(if summary.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(summary: &RunSummary, took: Duration) {
    println!();
    println!(
        "{:<28} {:>11} {:>9} {:>7} {:>6} {:>12} {:>8}",
        "SERVICE", "RESULT", "ENTITIES", "CHUNKS", "DEAD", "ORDINAL", "TIME"
    );
    let mut total = 0;
    for r in &summary.services {
        total += r.entities;
        println!(
            "{:<28} {:>11} {:>9} {:>7} {:>6} {:>12} {:>7.2}s",
            r.service,
            r.result.as_str(),
            r.entities,
            r.chunks,
            r.dead_letters,
            r.ordinal.map_or("-".into(), |o| o.to_string()),
            r.duration_ms as f64 / 1000.0
        );
        if let Some(e) = &r.error {
            println!("    error: {e}");
        }
    }
    let secs = took.as_secs_f64();
    println!(
        "\n{} entities in {secs:.1} s ({:.0} entities/s); success: {}",
        total,
        total as f64 / secs.max(0.001),
        summary.success
    );
}

async fn nats(config: &Config) -> anyhow::Result<(String, Option<NatsServer>)> {
    if std::env::var_os("NATS_URL").is_some() {
        let answers = tokio::time::timeout(
            Duration::from_secs(3),
            async_nats::connect(&config.nats_url),
        )
        .await;
        if matches!(answers, Ok(Ok(_))) {
            println!(
                "NATS: using {} (the demo publishes fake data into its stream)",
                sis_importer::redact::url(&config.nats_url)
            );
            return Ok((config.nats_url.clone(), None));
        }
        println!(
            "NATS: {} does not answer; starting nats-server",
            config.nats_url
        );
    }
    let server = NatsServer::start()
        .await
        .context("starting nats-server -js")?;
    println!("NATS: started nats-server -js on {}", server.url());
    Ok((server.url(), Some(server)))
}

async fn redis(config: &Config) -> anyhow::Result<(String, Option<RedisServer>)> {
    if std::env::var_os("REDIS_URL").is_some() {
        let answers = tokio::time::timeout(
            Duration::from_secs(3),
            sis_importer::store::OrdinalStore::connect(&config.redis_url),
        )
        .await;
        if matches!(answers, Ok(Ok(_))) {
            println!(
                "Redis: using {} (the demo resets the ordinals it imports)",
                sis_importer::redact::url(config.redis_url.expose())
            );
            return Ok((config.redis_url.expose().to_owned(), None));
        }
        println!(
            "Redis: {} does not answer; starting redis-server",
            sis_importer::redact::url(config.redis_url.expose())
        );
    }
    let server = RedisServer::start()
        .await
        .context("starting redis-server")?;
    println!("Redis: started redis-server on {}", server.url());
    Ok((server.url(), Some(server)))
}
