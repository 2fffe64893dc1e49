//! `demo` (`cargo demo`): the whole job on an embedded default. The
//! fake Sisu and reference consumers run in-process; the demo starts its
//! own `nats-server -js` and `redis-server` on free ports in a temp dir
//! and stops them on exit. Only `--use-env-servers` makes it use
//! `NATS_URL`/`REDIS_URL` instead (it resets ordinals there), and every
//! URL it prints has its credentials masked.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use sis_importer::config::{Config, Secret};
use sis_importer::importer::{Importer, RunSummary};
use sis_importer::redact;
use sis_importer::shutdown;
use sis_importer::sinks::connection::server_addrs;
use sis_importer::sinks::NatsAuth;
use sis_importer::store::OrdinalStore;
use sis_testkit::consumer::{ConsumerConfig, ReferenceConsumer};
use sis_testkit::fake_sisu::{FakeSisu, FakeSisuConfig};
use sis_testkit::servers::{NatsServer, RedisServer};

/// Runs the whole job on an embedded default: the fake Sisu and reference
/// consumers in-process, NATS and Redis servers of its own.
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
    /// Use the NATS and Redis of NATS_URL and REDIS_URL (or --config)
    /// instead of starting servers. The demo then publishes fake data into
    /// that stream and resets the ordinals of the services it imports in
    /// that Redis: never on production.
    #[arg(long)]
    use_env_servers: bool,
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
            eprintln!("demo: {}", redact::log_line(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// Runs the demo and prints a per-service summary.
async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (nats_url, _nats) = nats(&config, args.use_env_servers).await?;
    let (redis_url, _redis) = redis(&config, args.use_env_servers).await?;
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
        redact::url(&fake.base_url()),
        args.entities
    );

    let importer = Importer::connect(config.clone()).await?;
    // A demo imports from the start, so it is comparable run to run.
    for service in &services {
        importer.io.store.reset(service).await?;
    }
    let mut consumer_config = match args.consumer_form {
        Form::Precise => ConsumerConfig::new(nats_url),
        Form::Seed => ConsumerConfig::seed(nats_url, config.redis_url.expose()),
    };
    println!("consumers: the {:?} feedback form", args.consumer_form);
    consumer_config.nats_auth = NatsAuth::from_config(&config);
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

/// How long a server of the environment has to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// The NATS URL to use: `NATS_URL`'s with `use_env_servers` (an error if
/// it does not answer), else a `nats-server -js` of the demo's own.
async fn nats(
    config: &Config,
    use_env_servers: bool,
) -> anyhow::Result<(String, Option<NatsServer>)> {
    let shown = redact::url(&config.nats_url);
    if use_env_servers {
        let addrs = server_addrs(&config.nats_url).map_err(|e| anyhow!("NATS_URL: {e}"))?;
        let options = NatsAuth::from_config(config).apply(async_nats::ConnectOptions::new());
        match tokio::time::timeout(ANSWER_WITHIN, options.connect(addrs)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("NATS at {shown} does not answer: {e}"),
            Err(_) => bail!("NATS at {shown} does not answer within {ANSWER_WITHIN:?}"),
        }
        println!("NATS: using {shown} (the demo publishes fake data into its stream)");
        return Ok((config.nats_url.clone(), None));
    }
    if std::env::var_os("NATS_URL").is_some() {
        println!("NATS: NATS_URL is not used without --use-env-servers");
    }
    let server = NatsServer::start()
        .await
        .context("starting nats-server -js")?;
    println!(
        "NATS: started nats-server -js on {}",
        redact::url(&server.url())
    );
    Ok((server.url(), Some(server)))
}

/// The Redis URL to use: `REDIS_URL`'s with `use_env_servers` (an error
/// if it does not answer), else a `redis-server` of the demo's own.
async fn redis(
    config: &Config,
    use_env_servers: bool,
) -> anyhow::Result<(String, Option<RedisServer>)> {
    let shown = redact::url(config.redis_url.expose());
    if use_env_servers {
        let connect = OrdinalStore::connect(&config.redis_url);
        match tokio::time::timeout(ANSWER_WITHIN, connect).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("Redis at {shown} does not answer: {e}"),
            Err(_) => bail!("Redis at {shown} does not answer within {ANSWER_WITHIN:?}"),
        }
        println!("Redis: using {shown} (the demo resets the ordinals it imports)");
        return Ok((config.redis_url.expose().to_owned(), None));
    }
    if std::env::var_os("REDIS_URL").is_some() {
        println!("Redis: REDIS_URL is not used without --use-env-servers");
    }
    let server = RedisServer::start()
        .await
        .context("starting redis-server")?;
    println!(
        "Redis: started redis-server on {}",
        redact::url(&server.url())
    );
    Ok((server.url(), Some(server)))
}
