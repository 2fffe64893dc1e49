//! Shared test environment: a real `nats-server -js` and `redis-server`
//! on free ports, the fake Sisu and the reference consumer, and a
//! configuration with timings short enough for tests.

#![allow(dead_code)]

mod watch;
#[allow(unused_imports)]
pub use watch::{served_versions, spawn_rival, spawn_watcher, Sighting, Watch, Watched};

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sis_importer::catalogue::Service;
use sis_importer::config::{Config, Secret};
use sis_importer::importer::{Importer, RunSummary};
use sis_importer::shutdown::Shutdown;
use sis_importer::store::OrdinalStore;
use sis_testkit::consumer::{ConsumerConfig, Received, ReferenceConsumer};
use sis_testkit::fake_sisu::{FakeSisu, FakeSisuConfig};
use sis_testkit::servers::{NatsOptions, NatsServer, RedisOptions, RedisServer};

/// Runs `ids` to the end and asserts that the run succeeded.
pub async fn run_ok(importer: &Importer, ids: &[&str]) -> RunSummary {
    let summary = importer
        .run(&services(ids), Shutdown::never())
        .await
        .expect("the run starts");
    assert!(summary.success, "{summary:#?}");
    summary
}

/// The importer binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sis-importer");

/// `program` with `args`, only `PATH` in its environment and no stdin.
pub fn bare_command(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    cmd
}

/// Everything an import test talks to.
pub struct Env {
    pub nats: NatsServer,
    pub redis: RedisServer,
    pub fake: FakeSisu,
    pub consumer: ReferenceConsumer,
    /// What the NATS server demands of clients.
    pub nats_options: NatsOptions,
}

impl Env {
    /// Servers, a fake Sisu with `entities` per export service, a consumer.
    pub async fn start(entities: u64) -> Env {
        Self::start_with(entities, NatsOptions::default()).await
    }

    /// Like `start`, with NATS options (e.g. a small `max_payload`).
    pub async fn start_with(entities: u64, nats_options: NatsOptions) -> Env {
        let fake = FakeSisuConfig {
            seed: 7,
            entities_per_service: entities,
            ..FakeSisuConfig::default()
        };
        Self::start_custom(fake, nats_options, RedisOptions::default()).await
    }

    /// With the fake Sisu, NATS and Redis configured by the test (e.g.
    /// TLS, passwords).
    pub async fn start_custom(
        fake: FakeSisuConfig,
        nats_options: NatsOptions,
        redis_options: RedisOptions,
    ) -> Env {
        init_logging();
        let consumer_options = nats_options.clone();
        let nats = NatsServer::start_with(nats_options)
            .await
            .expect("nats-server starts");
        let redis = RedisServer::start_with(redis_options)
            .await
            .expect("redis-server starts");
        let fake = FakeSisu::start(fake).await.expect("fake Sisu starts");
        let mut consumer_config = ConsumerConfig::new(nats.url());
        consumer_config.nats_auth = consumer_options.client_auth();
        let consumer = ReferenceConsumer::start(consumer_config);
        Env {
            nats,
            redis,
            fake,
            consumer,
            nats_options: consumer_options,
        }
    }

    /// A configuration pointing at this environment, with short timings.
    pub fn config(&self) -> Config {
        let auth = self.nats_options.client_auth();
        Config {
            nats_token: auth.token,
            nats_user: auth.user_password.as_ref().map(|(u, _)| u.clone()),
            nats_password: auth.user_password.map(|(_, p)| p),
            nats_tls: auth.require_tls,
            nats_ca_path: auth.ca_path,
            nats_cert_path: auth.client_cert.as_ref().map(|(c, _)| c.clone()),
            nats_key_path: auth.client_cert.map(|(_, k)| k),
            sis_api_url: Some(self.fake.base_url()),
            kori_public_api_url: self.fake.kori_public_url(),
            nats_url: self.nats.url(),
            redis_url: Secret::new(self.redis.url()),
            fetch_amount: 50,
            max_chunk_size: 10,
            panic_timeout: Duration::from_secs(5),
            sis_retry_base: Duration::from_millis(10),
            sis_retry_max: Duration::from_millis(200),
            sis_request_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            pipeline_depth: test_setting("SIS_TEST_PIPELINE_DEPTH")
                .unwrap_or(Config::default().pipeline_depth),
            service_concurrency: test_setting("SIS_TEST_SERVICE_CONCURRENCY").unwrap_or(1),
            ..Config::default()
        }
    }

    /// Replaces the reference consumer with one configured by `change`.
    pub async fn replace_consumer(&mut self, change: impl FnOnce(&mut ConsumerConfig)) {
        let mut config = ConsumerConfig::new(self.nats.url());
        config.nats_auth = self.nats_options.client_auth();
        change(&mut config);
        let old = std::mem::replace(&mut self.consumer, ReferenceConsumer::start(config));
        old.stop().await;
    }

    /// The environment variables that point the binary at this environment.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SIS_API_URL", self.fake.base_url()),
            ("KORI_PUBLIC_API_URL", self.fake.kori_public_url()),
            ("NATS_URL", self.nats.url()),
            ("REDIS_URL", self.redis.url()),
            ("FETCH_AMOUNT", "50".into()),
            ("MAX_CHUNK_SIZE", "10".into()),
            ("LOG_FORMAT", "json".into()),
            (
                "PIPELINE_DEPTH",
                test_setting::<usize>("SIS_TEST_PIPELINE_DEPTH")
                    .unwrap_or(Config::default().pipeline_depth)
                    .to_string(),
            ),
            (
                "SERVICE_CONCURRENCY",
                test_setting::<usize>("SIS_TEST_SERVICE_CONCURRENCY")
                    .unwrap_or(1)
                    .to_string(),
            ),
        ]
    }

    /// The importer binary with `args`, a clean environment pointed at
    /// this one (only `PATH` and [`Env::env_vars`]) and no stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        self.env_command(BIN, args)
    }

    /// `program` with `args` in the same clean environment.
    pub fn env_command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = bare_command(program, args);
        cmd.envs(self.env_vars());
        cmd
    }

    /// Kills nats-server, leaves it down for 300 ms, and starts it again
    /// with the same store (an outage clients must ride out).
    pub async fn bounce_nats(&mut self) {
        self.nats.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.nats.restart().await.expect("nats-server restarts");
    }

    /// The same for redis-server (its data kept).
    pub async fn bounce_redis(&mut self) {
        self.redis.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.redis.restart().await.expect("redis-server restarts");
    }

    /// The outages of an import of PERSON then ATTAINMENT under way: NATS
    /// bounced once 300 PERSON entities have arrived, Redis once 300
    /// ATTAINMENT ones have. With `latency`, the consumer answers that much
    /// slower in between (so the second service is still committing when
    /// Redis goes) and at full speed after.
    pub async fn bounce_both_mid_import(&mut self, latency: Option<Duration>) {
        let arrived = |id: &'static str| move |r: &Received| entities_of(r, id) >= 300;
        assert!(
            self.consumer
                .wait_until(Duration::from_secs(30), arrived("PERSON"))
                .await
        );
        self.bounce_nats().await;
        if let Some(latency) = latency {
            self.consumer.set_latency(latency);
        }
        assert!(
            self.consumer
                .wait_until(Duration::from_secs(60), arrived("ATTAINMENT"))
                .await
        );
        self.bounce_redis().await;
        if latency.is_some() {
            self.consumer.set_latency(Duration::ZERO);
        }
    }

    /// A store on this environment's Redis.
    pub async fn store(&self) -> OrdinalStore {
        OrdinalStore::connect(&Secret::new(self.redis.url()))
            .await
            .expect("Redis answers")
    }

    /// Waits until `id`'s committed ordinal is `want` (polling Redis every
    /// 100 ms, at most `within`); the last ordinal read.
    pub async fn wait_for_ordinal(
        &self,
        id: &str,
        want: Option<i64>,
        within: Duration,
    ) -> Option<i64> {
        let store = self.store().await;
        let service = service(id);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = store.ordinal(&service).await.ok().flatten();
            if now == want || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `id` has committed everything the fake Sisu holds.
    pub async fn wait_until_imported(&self, id: &str, within: Duration) -> bool {
        let greatest = self.fake.greatest_ordinal(id);
        self.wait_for_ordinal(id, greatest, within).await == greatest
    }

    /// A connected importer.
    pub async fn importer(&self, config: Config) -> Arc<Importer> {
        config.validate().expect("test config is valid");
        Importer::connect(config).await.expect("importer connects")
    }

    /// Committed ordinal of `service` in Redis.
    pub async fn ordinal(&self, importer: &Importer, id: &str) -> Option<i64> {
        importer
            .io
            .store
            .ordinal(&service(id))
            .await
            .expect("redis answers")
    }

    /// Asserts that the change at `index` of `id` is the service's one dead
    /// letter, as a poison entity the consumer failed (`testError`), that
    /// every other change was delivered, and that the ordinal moved on.
    pub async fn assert_poison_dead_lettered(&self, importer: &Importer, id: &str, index: usize) {
        let poison = self.fake.expected(id)[index].clone();
        self.assert_delivered(id, &[&poison.identity]);
        let letters = importer.io.store.dead_letters(id, 10).await.unwrap();
        assert_eq!(
            letters.len(),
            1,
            "{id}: exactly the poison entity: {letters:?}"
        );
        assert_eq!(
            letters[0].identity.as_deref(),
            Some(poison.identity.as_str())
        );
        assert_eq!(letters[0].modification_ordinal, poison.ordinal);
        assert_eq!(letters[0].reason, "poison");
        assert!(
            letters[0].detail.contains("testError"),
            "the consumer's error text: {:?}",
            letters[0].detail
        );
        assert_eq!(
            self.ordinal(importer, id).await,
            self.fake.greatest_ordinal(id),
            "{id}: the ordinal moves on"
        );
    }

    /// Asserts the consumer has seen every change the fake serves for
    /// `id`, except the identities listed in `except`.
    pub fn assert_delivered(&self, id: &str, except: &[&str]) {
        let received = self.consumer.received();
        let seen = received
            .per_service
            .get(id)
            .map(|s| s.seen.clone())
            .unwrap_or_default();
        let expected = self.fake.expected(id);
        assert!(!expected.is_empty(), "{id}: the fake serves something");
        let missing: Vec<_> = expected
            .iter()
            .filter(|e| !except.contains(&e.identity.as_str()))
            .filter(|e| !seen.contains(&(e.identity.clone(), e.ordinal)))
            .collect();
        assert!(
            missing.is_empty(),
            "{id}: {} of {} changes not delivered, e.g. {:?}",
            missing.len(),
            expected.len(),
            missing.first().map(|e| (&e.identity, e.ordinal))
        );
    }
}

/// A window setting the whole suite runs under (`.ci/run` runs it with
/// `SIS_TEST_PIPELINE_DEPTH` 1 and 4 and `SIS_TEST_SERVICE_CONCURRENCY` 4).
pub fn test_setting<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a valid setting")),
    )
}

/// Runs `ids` in the background (for tests that break things meanwhile).
pub fn spawn_run(
    importer: &Arc<Importer>,
    ids: &[&str],
) -> tokio::task::JoinHandle<sis_importer::importer::RunSummary> {
    let (importer, services) = (importer.clone(), services(ids));
    tokio::spawn(async move {
        importer
            .run(&services, sis_importer::shutdown::Shutdown::never())
            .await
            .expect("no other run in progress")
    })
}

/// A built-in service by id.
pub fn service(id: &str) -> Service {
    sis_importer::catalogue::builtin()
        .into_iter()
        .find(|s| s.id == id)
        .expect("known service")
}

/// The given services, in catalogue order.
pub fn services(ids: &[&str]) -> Vec<Service> {
    sis_importer::catalogue::builtin()
        .into_iter()
        .filter(|s| ids.contains(&s.id.as_str()))
        .collect()
}

/// Entities the consumer acknowledged for a service (redeliveries included).
pub fn entities_of(received: &Received, id: &str) -> u64 {
    received.per_service.get(id).map_or(0, |s| s.entities)
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
}

/// Waits for a condition, polling.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, mut f: F) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

/// A TCP proxy in front of a server, so a test can cut one client off
/// (every proxied connection dropped, new ones refused) while the server
/// and its other clients go on.
pub struct CutProxy {
    /// Address clients connect to.
    pub addr: std::net::SocketAddr,
    cut_tx: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Proxies to `target` (`host:port`).
    pub async fn start(target: String) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut_tx, cut_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if *cut_rx.borrow() {
                    continue; // dropped: refused while cut
                }
                let target = target.clone();
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        CutProxy { addr, cut_tx, task }
    }

    /// Cuts every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        let _ = self.cut_tx.send(true);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        let _ = self.cut_tx.send(false);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A daemon over a real importer with its admin API on a free port:
/// `ADMIN_TOKEN` set to `token` (or unset), a lease of its own.
pub struct AdminApi {
    pub env: Env,
    pub importer: Arc<Importer>,
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    _stop: sis_importer::shutdown::ShutdownTrigger,
}

impl AdminApi {
    pub async fn start(entities: u64, ids: &[&str], token: Option<&str>) -> AdminApi {
        use sis_importer::importer::daemon::Daemon;
        use sis_importer::lease::Lease;
        let env = Env::start(entities).await;
        let mut config = env.config();
        config.admin_token = token.map(Secret::new);
        let importer = Importer::connect(config).await.expect("importer connects");
        let lease = Lease::new(importer.io.store.clone(), Duration::from_secs(10), "test");
        let (stop, shutdown) = sis_importer::shutdown::channel();
        let daemon = Daemon::new(
            importer.clone(),
            services(ids),
            shutdown.clone(),
            Some(lease),
        );
        let (addr, _server) =
            sis_importer::admin::serve(daemon, "127.0.0.1:0".parse().unwrap(), shutdown)
                .await
                .unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        AdminApi {
            env,
            importer,
            addr,
            http,
            _stop: stop,
        }
    }
}

/// SIGTERM to `child`, then its exit code and everything it wrote on
/// stderr (blocking: wrap it in `spawn_blocking` from async code).
pub fn terminate(mut child: std::process::Child) -> (Option<i32>, String) {
    use std::io::Read;
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -TERM {}", child.id());
    let status = child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    (status.code(), logs)
}
