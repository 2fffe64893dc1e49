//! The children: fake Sisu and consumers (long-lived), and the measured
//! roles (import, fetch-only, publish-only). Each prints `timing` when its
//! clock starts and `key=value` lines at the end.

use std::future::IntoFuture;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sis_importer::catalogue::Service;
use sis_importer::config::{Config, Secret};
use sis_importer::importer::Importer;
use sis_importer::pipeline::chunker::{plan, ChunkLimits};
use sis_importer::pipeline::ports::BatchSource;
use sis_importer::shutdown::Shutdown;
use sis_importer::sinks::wire::{encode_chunk, ENVELOPE_RESERVE};
use sis_importer::sources::{SisuClient, SisuSource};
use sis_testkit::consumer::{ConsumerConfig, ReferenceConsumer};
use sis_testkit::fake_sisu::{FakeSisu, FakeSisuConfig};

use crate::knob;
use crate::measure::{cpu_secs, proc_status_kib};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn fake() -> ExitCode {
    let fake = FakeSisu::start(FakeSisuConfig {
        seed: 7,
        entities_per_service: knob("BENCH_N", 200_000),
        field_order: if knob("BENCH_FIELDS_LAST", 0) != 0 {
            sis_testkit::fake_sisu::FieldOrder::FieldsLast
        } else {
            sis_testkit::fake_sisu::FieldOrder::Sisu
        },
        ..FakeSisuConfig::default()
    })
    .await
    .expect("fake Sisu starts");
    fake.faults()
        .latency(None, Duration::from_millis(knob("BENCH_LATENCY_MS", 0)));
    fake.faults().transfer_rate(knob("BENCH_TRANSFER_RATE", 0));
    println!("url={}\nready", fake.base_url());
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn consumer() -> ExitCode {
    let nats_url = std::env::var("NATS_URL").expect("NATS_URL");
    let _consumer = ReferenceConsumer::start(ConsumerConfig {
        instances: knob("BENCH_INSTANCES", 2) as usize,
        latency: Duration::from_millis(knob("BENCH_LATENCY_MS", 0)),
        record: false,
        ..ConsumerConfig::new(nats_url)
    });
    println!("ready");
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}

/// Runs a measured role on the runtime the importer itself would use
/// (`WORKER_THREADS`), so the stage limits are measured as the importer runs.
pub(crate) fn on_importer_runtime(role: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    let runtime = sis_importer::runtime(config().worker_threads).expect("runtime");
    runtime.block_on(role)
}

fn config() -> Config {
    let mut config = Config {
        sis_retry_base: Duration::from_millis(10),
        sis_retry_max: Duration::from_millis(200),
        ..Config::default()
    };
    // Never the machine's own Redis: the parent always sets REDIS_URL.
    config.redis_url = Secret::new("");
    config
        .apply_env(|k| std::env::var(k).ok())
        .expect("bench environment is valid");
    config.validate().expect("bench config is valid");
    config
}

/// Starts the clock: the parent samples the other processes' CPU now.
fn start_clock() -> (Instant, f64) {
    println!("timing");
    (Instant::now(), cpu_secs(std::process::id()))
}

fn report(started: Instant, cpu_before: f64, entities: u64, bytes: u64) {
    println!(
        "wall_s={}\ncpu_s={}\nentities={entities}\nbytes={bytes}\npeak_rss_kib={}",
        started.elapsed().as_secs_f64(),
        cpu_secs(std::process::id()) - cpu_before,
        proc_status_kib("VmHWM")
    );
}

pub(crate) async fn import() -> ExitCode {
    let config = config();
    let services = config.selected_services().expect("services");
    let importer = Importer::connect(config).await.expect("importer connects");
    for service in &services {
        importer.io.store.reset(service).await.expect("reset");
    }
    // Earlier runs' messages would only fill the disk.
    let stream = importer
        .io
        .nats
        .jetstream
        .get_stream(&importer.io.nats.stream)
        .await
        .expect("the stream exists");
    stream.purge().await.expect("purge");
    wait_for_consumers(&stream, &services).await;
    let (started, cpu) = start_clock();
    let summary = importer
        .run(&services, Shutdown::never())
        .await
        .expect("run");
    assert!(summary.success, "{summary:#?}");
    let entities = summary.services.iter().map(|r| r.entities).sum();
    // The bytes are those fetch-only counts over the same data (the parent
    // fills them in), so nothing is fetched again here.
    report(started, cpu, entities, 0);
    ExitCode::SUCCESS
}

/// The configuration, its services and the importer's own Sisu source.
async fn sisu() -> (Config, Vec<Service>, SisuSource) {
    let config = config();
    let services = config.selected_services().expect("services");
    let client = SisuClient::new(&config).expect("client");
    let store = sis_importer::store::OrdinalStore::connect(&config.redis_url)
        .await
        .expect("redis");
    let cache = std::sync::Arc::new(store);
    (config, services, SisuSource { client, cache })
}

/// Reads every page of `services` from the start, handing each batch to
/// `each`; returns the entities and their bytes.
async fn read_pages(
    config: &Config,
    services: &[Service],
    source: &SisuSource,
    mut each: impl FnMut(sis_importer::sources::Batch),
) -> (u64, u64) {
    let (mut entities, mut bytes) = (0, 0);
    for service in services {
        let mut pages = source.batches(service, 0, config.fetch_amount);
        while let Some(batch) = pages.next().await {
            let batch = batch.expect("page");
            entities += batch.entities.len() as u64;
            bytes += batch.entities.iter().map(|e| e.len() as u64).sum::<u64>();
            each(batch);
        }
    }
    (entities, bytes)
}

pub(crate) async fn fetch() -> ExitCode {
    let (config, services, source) = sisu().await;
    let (started, cpu) = start_clock();
    let (entities, bytes) = read_pages(&config, &services, &source, |_| {}).await;
    report(started, cpu, entities, bytes);
    ExitCode::SUCCESS
}

pub(crate) async fn publish() -> ExitCode {
    let (config, services, source) = sisu().await;
    let nats = async_nats::connect(&config.nats_url).await.expect("nats");
    let limits = ChunkLimits::new(
        config.max_chunk_size,
        config.max_chunk_bytes,
        nats.server_info().max_payload,
        ENVELOPE_RESERVE,
    );
    // The same chunks the importer would send, prepared before the clock.
    let mut chunks = Vec::new();
    let (entities, bytes) = read_pages(&config, &services, &source, |batch| {
        for (i, chunk) in plan(batch.entities, limits).chunks.into_iter().enumerate() {
            chunks.push(encode_chunk(
                "0123456789abcdef0123456789abcdef",
                &format!("BENCH-{i}"),
                &chunk,
            ));
        }
    })
    .await;
    let js = async_nats::jetstream::new(nats);
    let _ = js.delete_stream("BENCH_PUBLISH").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_PUBLISH".into(),
        subjects: vec!["BENCH.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("bench stream");
    let (started, cpu) = start_clock();
    let mut acks = futures::stream::FuturesUnordered::<
        <async_nats::jetstream::context::PublishAckFuture as IntoFuture>::IntoFuture,
    >::new();
    for payload in chunks {
        if acks.len() >= config.max_publishes_in_flight {
            acks.next().await.expect("an ack").expect("acked");
        }
        let ack = js.publish("BENCH.PERSON", payload).await.expect("publish");
        acks.push(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        ack.expect("acked");
    }
    report(started, cpu, entities, bytes);
    ExitCode::SUCCESS
}

async fn wait_for_consumers(stream: &async_nats::jetstream::stream::Stream, services: &[Service]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for service in services {
        let name = format!("reference_{}", service.id);
        while stream.consumer_info(&name).await.is_err() {
            assert!(Instant::now() < deadline, "consumer {name} never appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
