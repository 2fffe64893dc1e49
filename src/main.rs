//! The `sis-importer` command line (SPEC §8).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sis_importer::config::Config;
use std::time::Duration;

use sis_importer::lease::Lease;
use sis_importer::pipeline::{daemon::Daemon, Importer};
use sis_importer::progress::Progress;
use sis_importer::shutdown::{self, ShutdownTrigger};
use sis_importer::status;
use sis_importer::store::OrdinalStore;

/// Copies every change from Sisu's export APIs into NATS JetStream,
/// committing cursors in Redis only after consumers acknowledge.
///
/// Configuration comes from --config (TOML) and the environment
/// (SIS_API_URL, NATS_URL, REDIS_URL, ...; see docs/configuration.md).
#[derive(Parser)]
#[command(name = "sis-importer", version)]
struct Cli {
    /// TOML configuration file; environment variables override it.
    #[arg(long, global = true, env = "SIS_IMPORTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ProgressMode {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: import at start and on the CRON schedule.
    Run,
    /// Import once and exit: 0 only if every selected service finished.
    Once {
        /// Service id to import (repeatable); default: SERVICES or all.
        #[arg(long = "service", value_name = "ID")]
        services: Vec<String>,
        /// Live progress line per service on stderr: `auto` draws it only
        /// when stderr is a terminal.
        #[arg(long, value_enum, default_value = "auto")]
        progress: ProgressMode,
    },
    /// Check the configuration and reach NATS, Redis and Sisu: one line
    /// per check; exits 1 at the first failure.
    Check,
    /// Show per-service ordinal, progress, last run, forbidden and dead letters.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete ordinals so the services re-import from 0.
    Reset {
        /// Service ids to reset.
        #[arg(value_name = "ID", required_unless_present = "all")]
        services: Vec<String>,
        /// Reset every service.
        #[arg(long, conflicts_with = "services")]
        all: bool,
        /// Reset even while an importer holds the import lease (its run
        /// may then commit over the reset).
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::read(cli.config.as_deref());
    if let (Command::Check, Err(e)) = (&cli.command, &config) {
        // `check` reports a configuration that does not even load as its
        // first line, like any other failed check.
        println!("{}", sis_importer::check::Check::failed("config", e));
        return ExitCode::from(1);
    }
    let outcome = config
        .map_err(anyhow::Error::from)
        .and_then(|config| runtime(&config)?.block_on(execute(cli, config)));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sis-importer: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The importer's commands run on `WORKER_THREADS` threads (default one:
/// the cheapest in CPU per GB, docs/performance.md).
fn runtime(config: &Config) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(sis_importer::runtime(config.worker_threads)?)
}

async fn execute(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    sis_importer::init_logging(config.log_format);
    match cli.command {
        Command::Run => {
            config.validate()?;
            let (schedule, tz) = (config.schedule()?, config.time_zone()?);
            let services = config.selected_services()?;
            let importer = Importer::connect(config).await?;
            let (trigger, shutdown) = shutdown::channel();
            spawn_signal_handler(trigger);
            let port = importer.config.port;
            let lease = Lease::new(
                importer.store.clone(),
                importer.config.lease_ttl,
                &importer.config.instance_id(),
            );
            let daemon = Daemon::new(importer, services, shutdown.clone(), Some(lease));
            let addr = std::net::SocketAddr::from(([0, 0, 0, 0], port));
            let (_, admin) = sis_importer::admin::serve(daemon.clone(), addr, shutdown)
                .await
                .with_context(|| format!("cannot listen on PORT {port} for the admin API"))?;
            daemon.serve(schedule, tz).await;
            let _ = admin.await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Once { services, progress } => {
            config.validate()?;
            let ids = (!services.is_empty()).then_some(services);
            let selected = config.pick(
                config.catalogue()?,
                ids.as_deref().or(config.services.as_deref()),
                "--service",
            )?;
            let importer = Importer::connect(config).await?;
            let (trigger, shutdown) = shutdown::channel();
            spawn_signal_handler(trigger);
            // One importer at a time: wait for the replicas' lease.
            let lease = Lease::new(
                importer.store.clone(),
                importer.config.lease_ttl,
                &importer.config.instance_id(),
            );
            if !lease.acquire(&mut shutdown.clone()).await {
                return Ok(ExitCode::SUCCESS);
            }
            let draw = match progress {
                ProgressMode::Auto => std::io::stderr().is_terminal(),
                ProgressMode::Always => true,
                ProgressMode::Never => false,
            };
            let progress =
                draw.then(|| Progress::spawn(importer.clone(), Duration::from_millis(200)));
            let summary = lease
                .while_held(&importer, importer.run(&selected, shutdown.clone()))
                .await;
            if let Some(progress) = progress {
                progress.finish().await;
            }
            let summary = summary?;
            // A signal is the operator's own stop: exit 0 (SPEC §2), with
            // what was acknowledged committed and the rest logged. A
            // POST_UPDATE that could not be published fails the run too.
            let finished = summary.success && summary.announced;
            Ok(if finished || shutdown.is_shutdown() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Check => {
            let passed = sis_importer::check::all(&config, |line| println!("{line}")).await;
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Status { json } => {
            let services = config.catalogue()?;
            let store = OrdinalStore::connect(&config.redis_url).await?;
            let rows = status::collect(&store, &services).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", status::render_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset {
            services,
            all,
            force,
        } => {
            let catalogue = config.catalogue()?;
            let chosen = if all {
                catalogue
            } else {
                config.pick(catalogue, Some(&services), "reset")?
            };
            if chosen.is_empty() {
                bail!("nothing to reset: name service ids or use --all");
            }
            let store = OrdinalStore::connect(&config.redis_url).await?;
            let key = sis_importer::lease::lease_key();
            for service in &chosen {
                if force {
                    store.reset(service).await?;
                } else if let Some(holder) = store.reset_unless_leased(service, &key).await? {
                    bail!(
                        "a run is in progress (import lease {key} held by {holder}): its \
                         commits would undo the reset of {}; reset after it ends, or add --force",
                        service.id
                    );
                }
                println!("reset {} ({})", service.id, service.ordinal_key);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn spawn_signal_handler(trigger: ShutdownTrigger) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received: stopping after outstanding acknowledgements (a second signal exits at once)");
        trigger.trigger();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        // Nothing unacknowledged was committed, so nothing is lost: the
        // next run re-sends from the committed ordinals.
        tracing::warn!(
            "second signal: exiting without waiting; unacknowledged batches stay uncommitted"
        );
        std::process::exit(130);
    });
}
