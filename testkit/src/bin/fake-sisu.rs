//! `fake-sisu` (`cargo fake-sisu`): serves the fake Sisu (generated data)
//! on a port in the foreground until Ctrl-C, for trying the importer out
//! by hand.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sis_testkit::fake_sisu::{FakeSisu, FakeSisuConfig, FieldOrder, TlsServerConfig};

/// Serves the fake Sisu (generated data) on a port, for trying things out.
#[derive(Parser, Debug)]
#[command(name = "fake-sisu", version)]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Entities per export service.
    #[arg(long, default_value_t = 10_000)]
    entities: u64,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Generation to serve: 1 is the initial data; each later one adds
    /// 10% of --entities (rounded up, at least 1) changes per export
    /// service on top, ~70% updates, ~15% deletions and ~15% new
    /// identities. Run an importer against 1, restart with 2 (same seed
    /// and entities) and it imports only the changes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    generation: u64,
    /// Put `greatestOrdinal` and `hasMore` after `entities` in export
    /// pages; real Sisu sends them first.
    #[arg(long)]
    fields_last: bool,
    /// Delay before every answer, in milliseconds (a slow Sisu).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Send export pages at this many bytes per second (0: no limit);
    /// with --latency-ms, a Sisu that thinks, then transfers.
    #[arg(long, default_value_t = 0)]
    transfer_rate: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Demand client certificates issued by these CAs (PEM bundle).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    sis_importer::init_logging(None);
    let outcome = sis_importer::runtime(0)
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(serve(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-sisu: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let read = |what: &str, path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsServerConfig {
            cert_pem: read("--tls-cert", cert)?,
            key_pem: read("--tls-key", key)?,
            client_ca_pem: args
                .client_ca
                .as_ref()
                .map(|ca| read("--client-ca", ca))
                .transpose()?,
        }),
        _ => None,
    };
    let port = args.port;
    let fake = FakeSisu::start(FakeSisuConfig {
        seed: args.seed,
        entities_per_service: args.entities,
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        tls,
        field_order: if args.fields_last {
            FieldOrder::FieldsLast
        } else {
            FieldOrder::Sisu
        },
    })
    .await
    .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let changes = changes_per_generation(args.entities);
    for _ in 1..args.generation {
        fake.add_generation(changes);
    }
    fake.faults()
        .latency(None, Duration::from_millis(args.latency_ms));
    fake.faults().transfer_rate(args.transfer_rate);
    println!("fake Sisu on {}", fake.base_url());
    println!(
        "  generation {}: {} entities + {} changes per export service",
        args.generation,
        args.entities,
        (args.generation - 1) * changes
    );
    println!("  SIS_API_URL={}", fake.base_url());
    println!("  KORI_PUBLIC_API_URL={}", fake.kori_public_url());
    tokio::signal::ctrl_c().await?;
    fake.shutdown().await;
    Ok(())
}

/// Changes per export service in each generation after the first: 10% of
/// the initial entities, at least one.
fn changes_per_generation(entities: u64) -> u64 {
    entities.div_ceil(10).max(1)
}
