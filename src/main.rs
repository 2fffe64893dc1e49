//! The `sis-importer` command line (SPEC §8).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser, Subcommand};
use sis_importer::config::Config;
use std::time::Duration;

mod help;

use sis_importer::importer::{daemon::Daemon, Importer};
use sis_importer::lease::Lease;
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
#[command(name = "sis-importer", version, after_help = help::after_help(""))]
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
    #[command(after_help = help::after_help("run"))]
    Run,
    /// Import once and exit: 0 only if every selected service finished.
    #[command(after_help = help::after_help("once"))]
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
    #[command(after_help = help::after_help("check"))]
    Check,
    /// Show per-service ordinal, progress, last run, forbidden and dead letters.
    #[command(after_help = help::after_help("status"))]
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Services Sisu answered 403 for: clear the mark so the next run
    /// tries them again (a running daemon sees it at its next run).
    #[command(after_help = help::after_help("forbidden"))]
    Forbidden {
        #[command(subcommand)]
        action: ForbiddenAction,
    },
    /// Delete ordinals so the services re-import from 0, or set them
    /// (`--to`) so they import what comes after.
    #[command(after_help = help::after_help("reset"))]
    Reset {
        /// Service ids to reset.
        #[arg(value_name = "ID", required_unless_present = "all")]
        services: Vec<String>,
        /// Reset every service (asks on a terminal; `--yes` otherwise).
        #[arg(long, conflicts_with = "services")]
        all: bool,
        /// Set the ordinal to this value instead of deleting it (e.g. one
        /// `status --json` showed): the next run fetches after it.
        #[arg(long, value_name = "ORDINAL", allow_negative_numbers = true)]
        to: Option<i64>,
        /// Reset even while an importer holds the import lease (its run
        /// may then commit over the reset).
        #[arg(long)]
        force: bool,
        /// Do not ask before `--all`.
        #[arg(long)]
        yes: bool,
    },
    /// List, replay or clear dead letters: entities a consumer refused
    /// alone, or too large for a chunk.
    #[command(subcommand, after_help = help::after_help("dead-letters"))]
    DeadLetters(DeadLetterCommand),
    /// Print a completion script for the shell (bash, zsh, fish, elvish,
    /// powershell) to stdout.
    #[command(after_help = help::after_help("completions"))]
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of the program or of one command to
    /// stdout: `man -l <(sis-importer man)`.
    #[command(after_help = help::after_help("man"))]
    Man {
        /// The command whose page to print, e.g. `dead-letters replay`;
        /// none: the program's page, which lists the commands.
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ForbiddenAction {
    /// Clear the forbidden mark of the named services (all without ids).
    #[command(after_help = help::after_help("forbidden clear"))]
    Clear {
        /// Service ids; none: every forbidden service.
        #[arg(value_name = "ID")]
        services: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// Show the dead letters of one service or of all, newest last.
    #[command(after_help = help::after_help("dead-letters list"))]
    List {
        /// Service id; default: every service that has dead letters.
        #[arg(value_name = "SERVICE")]
        service: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show at most this many (the newest) per service.
        #[arg(long, default_value_t = sis_importer::dead_letters::DEFAULT_LIMIT)]
        limit: usize,
    },
    /// Send the stored entities again; no ordinal moves.
    ///
    /// They go through the normal path: chunks under a new execution hash,
    /// feedback, halving, dead-lettered again if they still fail. Waits for
    /// the import lease; delivered letters leave the list, the others stay.
    /// Exits 0 only if every chosen letter was delivered.
    #[command(after_help = help::after_help("dead-letters replay"))]
    Replay {
        /// Service id.
        #[arg(value_name = "SERVICE")]
        service: String,
        /// Replay the letters of this identity (every version).
        #[arg(long, value_name = "ID", required_unless_present = "all")]
        id: Option<String>,
        /// Replay every letter of the service.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Remove dead letters (and their entities) without sending them.
    #[command(after_help = help::after_help("dead-letters clear"))]
    Clear {
        /// Service id.
        #[arg(value_name = "SERVICE")]
        service: String,
        /// Remove only the letters of this identity; default: all of the
        /// service's.
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generated from the command line's definition alone: no configuration.
    match &cli.command {
        Command::Completions { shell } => return print_completions(*shell),
        Command::Man { command } => return print_man_page(command),
        _ => {}
    }
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
            // Errors mask every URL they name themselves (their hints show
            // the form of a URL with a password, which a blanket mask
            // would hide).
            eprintln!("sis-importer: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `sis-importer completions <shell>`.
fn print_completions(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sis-importer", &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if shell == clap_complete::Shell::Bash {
        // clap_complete spells the state of a hyphenated program two ways
        // (`sis__importer__subcmd__once` while walking the words,
        // `sis__subcmd__importer__subcmd__once` in the arms), so nothing
        // after the first word would complete (clap-rs/clap#6421). One
        // spelling makes the arms match again.
        script = script.replace("sis__subcmd__importer", "sis__importer");
    }
    match std::io::stdout().write_all(script.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sis-importer: cannot write the completion script: {e}");
            ExitCode::from(2)
        }
    }
}

/// `sis-importer man [COMMAND]...`: the page of the program or of the
/// named command (`man once`, `man dead-letters replay`).
fn print_man_page(path: &[String]) -> ExitCode {
    let mut command = Cli::command();
    command.build();
    for name in path {
        let Some(sub) = command.find_subcommand(name) else {
            // Exits 2, as clap does for any other bad argument.
            Cli::command()
                .error(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "no command `{}`: `sis-importer --help` lists them",
                        path.join(" ")
                    ),
                )
                .exit();
        };
        command = sub.clone();
    }
    match help::man_page(command, &path.join(" "), &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sis-importer: cannot write the manual page: {e}");
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
                importer.io.store.clone(),
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
            // One importer at a time: wait for the replicas' lease.
            let Some((importer, lease, shutdown)) = under_lease(config).await? else {
                return Ok(ExitCode::SUCCESS);
            };
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
                let header = status::header(&store, &config).await?;
                print!("{}", status::render_header(&header, &config));
                print!("{}", status::render_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Forbidden {
            action: ForbiddenAction::Clear { services },
        } => {
            let ids: Vec<String> = if services.is_empty() {
                Vec::new()
            } else {
                config
                    .pick(config.catalogue()?, Some(&services), "forbidden clear")?
                    .into_iter()
                    .map(|s| s.id)
                    .collect()
            };
            let store = OrdinalStore::connect(&config.redis_url).await?;
            let cleared = store.unforbid(&ids).await?;
            if cleared.is_empty() {
                println!("no forbidden mark to clear");
            }
            for id in cleared {
                println!("cleared the forbidden mark of {id}: the next run tries it again");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset {
            services,
            all,
            to,
            force,
            yes,
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
            if all && !yes && !confirmed_all(&config, chosen.len(), to)? {
                bail!("nothing reset");
            }
            let store = OrdinalStore::connect(&config.redis_url).await?;
            let key = sis_importer::lease::lease_key();
            for service in &chosen {
                if force {
                    store.reset_to(service, to).await?;
                } else if let Some(holder) = store.reset_unless_leased(service, &key, to).await? {
                    bail!(
                        "a run is in progress (import lease {key} held by {holder}): its \
                         commits would undo the reset of {}; reset after it ends, or add --force",
                        service.id
                    );
                }
                match to {
                    Some(ordinal) => {
                        println!("set {} ({}) to {ordinal}", service.id, service.ordinal_key)
                    }
                    None => println!("reset {} ({})", service.id, service.ordinal_key),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::DeadLetters(command) => dead_letters(command, config).await,
        Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("main prints these before reading the configuration")
        }
    }
}

/// `sis-importer dead-letters …`.
async fn dead_letters(command: DeadLetterCommand, config: Config) -> anyhow::Result<ExitCode> {
    use sis_importer::dead_letters as letters;
    use sis_importer::importer::replay::Pick;
    let catalogue = config.catalogue()?;
    let one = |id: String| -> anyhow::Result<_> {
        let mut picked = config.pick(catalogue.clone(), Some(&[id]), "dead-letters")?;
        Ok(picked.remove(0))
    };
    match command {
        DeadLetterCommand::List {
            service,
            json,
            limit,
        } => {
            let services = match service {
                Some(id) => vec![one(id)?],
                None => catalogue.clone(),
            };
            let store = OrdinalStore::connect(&config.redis_url).await?;
            let named = services.len() == 1;
            let rows = letters::collect(&store, &services, limit, named).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", letters::render_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Clear { service, id } => {
            let service = one(service)?;
            let store = OrdinalStore::connect(&config.redis_url).await?;
            let removed = letters::clear(&store, &service.id, id.as_deref()).await?;
            println!("removed {removed} dead letters of {}", service.id);
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Replay { service, id, .. } => {
            let service = one(service)?;
            // Without --id, clap made sure --all was given.
            let pick = id.map_or(Pick::All, Pick::Identity);
            config.validate()?;
            // Never beside a run: wait for the replicas' lease as `once` does.
            let Some((importer, lease, shutdown)) = under_lease(config).await? else {
                return Ok(ExitCode::SUCCESS);
            };
            let report = importer
                .replay_dead_letters(&service, &pick, Some(&lease), shutdown)
                .await;
            // Released already unless the replay was refused before it began.
            lease.release().await;
            let report = report?;
            print!("{}", letters::render_replay(&report));
            Ok(if report.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// Connects, stops at a signal, and waits for the replicas' import lease
/// (`once` and a replay never run beside another importer's run); `None`
/// when a signal came while waiting (exit 0: the operator's own stop).
async fn under_lease(
    config: Config,
) -> anyhow::Result<Option<(std::sync::Arc<Importer>, Lease, shutdown::Shutdown)>> {
    let importer = Importer::connect(config).await?;
    let (trigger, shutdown) = shutdown::channel();
    spawn_signal_handler(trigger);
    let lease = Lease::new(
        importer.io.store.clone(),
        importer.config.lease_ttl,
        &importer.config.instance_id(),
    );
    if !lease.acquire(&mut shutdown.clone()).await {
        return Ok(None);
    }
    Ok(Some((importer, lease, shutdown)))
}

/// `reset --all` without `--yes`: asks on a terminal; refuses otherwise.
fn confirmed_all(config: &Config, services: usize, to: Option<i64>) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "reset --all changes the ordinals of all {services} services: add --yes to confirm \
             (no terminal to ask on)"
        );
    }
    let what = to.map_or("delete".to_owned(), |o| format!("set to {o}"));
    eprint!(
        "{what} the ordinals of all {services} services in {}? [y/N] ",
        sis_importer::redact::url(config.redis_url.expose())
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
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
