//! The reference consumer: the consumer side of the wire contract (SPEC §4)
//! against a real NATS server, standing in for the downstream "mankelis" in
//! tests, benchmarks and the demo.
//!
//! Every instance has its own NATS connection and, once the importer has
//! created the stream, runs one pull loop per service on a shared durable
//! pull consumer `<prefix>_<service id>` (one filter subject each: nats-server
//! 2.9 knows no more), so instances split the work. Per chunk it waits the
//! configured latency, answers `FAIL` when an entity carries a truthy
//! `testError` and `OK` otherwise, publishing the feedback through JetStream
//! and awaiting its ack before acking the chunk (a crash in between means a
//! redelivery: at least once). What arrived is recorded for assertions,
//! including an upserting store (last write wins per entity identity) that
//! counts versions stored after a newer one (see [`ServiceReceived::stored`]).
//! Test switches withhold or duplicate feedback, and raw feedback can be
//! injected.

use std::collections::{hash_map, BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use sis_importer::catalogue::{self, Service, FEEDBACK_SUBJECT};

/// An entity as seen: its identity and its modification ordinal (none
/// for whole-set kinds).
type Sighting = (String, Option<i64>);

/// Bound on every single NATS request, publish or ack.
const NATS_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts to connect, find the stream or reopen a consumer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Pause after a pull loop lost its consumer, so an outage is not a hot loop.
const REOPEN_PAUSE: Duration = Duration::from_millis(500);
/// Attempts to publish one feedback message before the chunk is NAKed.
const FEEDBACK_ATTEMPTS: u32 = 8;
/// Wait for one feedback publish ack. Shorter than `NATS_TIMEOUT`: a publish
/// written into a dying connection is never answered, and a retry after a
/// reconnect is cheap (the importer ignores duplicate feedback).
const FEEDBACK_ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// Expiry of one batch pull request: an idle loop asks again this often.
const PULL_EXPIRES: Duration = Duration::from_millis(500);
/// Messages one pull request asks for. Small on purpose: a message buffered
/// in one instance is one another instance cannot take (a batch of 32 let
/// one instance hoard a whole backlog while the other idled), and its
/// `ack_wait` clock is already running. The client re-pulls at half, so
/// processing stays pipelined.
const PULL_BATCH: usize = 2;
/// How long `stop` lets chunks in progress finish before aborting.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Most examples kept in [`ServiceReceived::order_violation_examples`].
const ORDER_VIOLATION_EXAMPLES: usize = 20;

/// Configuration of a [`ReferenceConsumer`].
#[derive(Clone)]
pub struct ConsumerConfig {
    /// NATS server URL.
    pub nats_url: String,
    /// NATS credentials and TLS, as the server wants them.
    pub nats_auth: sis_importer::sinks::NatsAuth,
    /// Stream to consume from; default `SIS_IMPORTER`.
    pub stream: String,
    /// Services to consume; default: the built-in catalogue.
    pub services: Vec<Service>,
    /// Durable consumer names are `<prefix>_<service id>`; default `reference`.
    pub durable_prefix: String,
    /// Instances sharing each durable consumer; default 2.
    pub instances: usize,
    /// Processing delay per chunk; default 0. The actual delay of a chunk
    /// is `latency` plus a uniform random part in `[0, latency_jitter]`.
    pub latency: Duration,
    /// Upper bound of the random extra delay per chunk (uniform, inclusive);
    /// default 0 (no jitter: every chunk waits exactly `latency`).
    pub latency_jitter: Duration,
    /// Seed of the jitter; default 0. Each chunk's draw comes from a
    /// `StdRng` seeded with this seed, the instance index and a per-instance
    /// chunk counter, so a test varies the delays by varying the seed.
    pub jitter_seed: u64,
    /// Keep every received (identity, ordinal) and chunk id; default true.
    pub record: bool,
    /// `ack_wait` of the durable consumers (redelivery of unacked chunks);
    /// default 30 s.
    pub ack_wait: Duration,
}

impl ConsumerConfig {
    /// The defaults above, against `nats_url`.
    pub fn new(nats_url: impl Into<String>) -> Self {
        ConsumerConfig {
            nats_url: nats_url.into(),
            nats_auth: Default::default(),
            stream: "SIS_IMPORTER".to_owned(),
            services: catalogue::builtin(),
            durable_prefix: "reference".to_owned(),
            instances: 2,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            jitter_seed: 0,
            record: true,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// The defaults above with an empty `nats_url`, for
/// `ConsumerConfig { nats_url, ..Default::default() }`; `start` refuses an
/// empty URL (a silent fallback to port 4222 would reach the machine's own
/// NATS, which tests must never touch).
impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig::new("")
    }
}

impl std::fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field("nats_url", &self.nats_url)
            .field("nats_auth", &self.nats_auth)
            .field("stream", &self.stream)
            .field("services", &self.services.len())
            .field("durable_prefix", &self.durable_prefix)
            .field("instances", &self.instances)
            .field("latency", &self.latency)
            .field("latency_jitter", &self.latency_jitter)
            .field("jitter_seed", &self.jitter_seed)
            .field("record", &self.record)
            .field("ack_wait", &self.ack_wait)
            .finish()
    }
}

/// Errors of the consumer's own NATS operations, naming the operation.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// A NATS operation did not finish within its timeout.
    #[error("{operation} timed out after {after:?}")]
    TimedOut {
        /// What was attempted.
        operation: &'static str,
        /// The timeout that expired.
        after: Duration,
    },
    /// A NATS operation failed.
    #[error("{operation} failed: {source}")]
    Nats {
        /// What was attempted.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
}

/// What the consumer received so far (a snapshot, or borrowed in `wait_until`).
#[derive(Clone, Default, Debug)]
pub struct Received {
    /// Chunks answered (or, with `never_answer`, processed) as OK.
    pub chunks_ok: u64,
    /// Chunks answered FAIL because of a `testError` entity.
    pub chunks_failed: u64,
    /// Entities in OK chunks, redeliveries included.
    pub entities_ok: u64,
    /// Messages on a service subject that were not chunk JSON.
    pub malformed: u64,
    /// Per service id.
    pub per_service: BTreeMap<String, ServiceReceived>,
    /// Chunks (OK or FAIL) processed per instance index.
    pub per_instance: BTreeMap<usize, u64>,
}

/// What arrived for one service.
#[derive(Clone, Default, Debug)]
pub struct ServiceReceived {
    /// OK chunks.
    pub chunks: u64,
    /// FAIL chunks.
    pub chunks_failed: u64,
    /// Entities in OK chunks, redeliveries included.
    pub entities: u64,
    /// (identity, `metadata.modificationOrdinal`) of every OK entity (`record` only).
    pub seen: HashSet<(String, Option<i64>)>,
    /// Largest OK chunk in entities.
    pub max_chunk_entities: usize,
    /// Largest chunk message body in bytes (OK or FAIL).
    pub max_chunk_bytes: usize,
    /// Execution hashes of OK chunks (`record` only).
    pub execution_hashes: BTreeSet<String>,
    /// Chunk ids of OK chunks in arrival order, repeats kept (`record` only).
    pub chunk_ids: Vec<String>,
    /// (execution hash, chunk id) of FAIL chunks in arrival order (`record`
    /// only).
    pub failed_chunks: Vec<(String, String)>,
    /// The upserting store: per identity ([`Service::identity_of`]), the
    /// `metadata.modificationOrdinal` of the version currently stored, last
    /// write wins as in a real upserting consumer (`record` only). Written
    /// when an OK chunk is processed (after its latency, before its
    /// feedback); entities without identity or ordinal are skipped.
    pub stored: HashMap<String, i64>,
    /// Entities whose ordinal was lower than the one already in `stored` for
    /// their identity when they were stored: an older version overwrote a
    /// newer one (`record` only). Checked and written under one lock, so
    /// concurrent instances are judged atomically. A JetStream redelivery of
    /// an old chunk (after `ack_wait`, a NAK or a server restart) also counts
    /// here: use a long `ack_wait` when asserting zero.
    pub order_violations: u64,
    /// The first violations (at most 20): (identity, stored ordinal,
    /// arriving ordinal).
    pub order_violation_examples: Vec<(String, i64, i64)>,
}

/// A running reference consumer; see the module doc. Dropping it aborts its
/// tasks; [`ReferenceConsumer::stop`] lets chunks in progress finish first.
pub struct ReferenceConsumer {
    shared: Arc<Shared>,
    /// `stop` sends `true`; every instance and pull loop holds a receiver and
    /// winds down at its next wait.
    shutdown_tx: watch::Sender<bool>,
    /// Instance 0's JetStream context once connected (sent by that instance
    /// task), used by `publish_raw_feedback`.
    link_rx: watch::Receiver<Option<jetstream::Context>>,
    /// The instance tasks. Each owns a `JoinSet` of its pull loops, so
    /// aborting an instance (dropping this set) aborts its loops too.
    instances: JoinSet<()>,
}

/// See [`ReferenceConsumer::probe`].
#[derive(Clone)]
pub struct SeenProbe {
    shared: Arc<Shared>,
}

impl SeenProbe {
    /// Distinct versions of `service` received in OK chunks (`record` only).
    pub fn seen(&self, service: &str) -> usize {
        let received = self.shared.received.lock().expect("received lock");
        received
            .per_service
            .get(service)
            .map_or(0, |s| s.seen.len())
    }

    /// The first of `versions` ((identity, ordinal) of `service`) not
    /// received in an OK chunk (`record` only), checked under the lock.
    pub fn first_unseen<'a>(
        &self,
        service: &str,
        versions: impl IntoIterator<Item = &'a (String, Option<i64>)>,
    ) -> Option<&'a (String, Option<i64>)> {
        let received = self.shared.received.lock().expect("received lock");
        let seen = received.per_service.get(service).map(|s| &s.seen);
        versions
            .into_iter()
            .find(|v| !seen.is_some_and(|seen| seen.contains(*v)))
    }
}

/// State shared by the handle and all tasks.
struct Shared {
    config: ConsumerConfig,
    latency_nanos: AtomicU64,
    latency_jitter_nanos: AtomicU64,
    never_answer: AtomicBool,
    duplicate_feedback: AtomicBool,
    received: Mutex<Received>,
    /// Notified (all waiters) after every change of `received`.
    changed: Notify,
}

impl ReferenceConsumer {
    /// Starts the instances in spawned tasks and returns at once; they
    /// connect, wait for the stream and create their consumers on their own.
    /// Must be called inside a Tokio runtime; panics on an empty `nats_url`.
    pub fn start(config: ConsumerConfig) -> ReferenceConsumer {
        assert!(
            !config.nats_url.is_empty(),
            "ConsumerConfig::nats_url is empty"
        );
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (link_tx, link_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            latency_nanos: AtomicU64::new(nanos(config.latency)),
            latency_jitter_nanos: AtomicU64::new(nanos(config.latency_jitter)),
            never_answer: AtomicBool::new(false),
            duplicate_feedback: AtomicBool::new(false),
            received: Mutex::new(Received::default()),
            changed: Notify::new(),
            config,
        });
        let mut instances = JoinSet::new();
        let mut link_tx = Some(link_tx);
        for index in 0..shared.config.instances.max(1) {
            let instance = Instance {
                index,
                shared: shared.clone(),
                chunk_counter: Arc::new(AtomicU64::new(0)),
            };
            instances.spawn(instance.run(link_tx.take(), shutdown_rx.clone()));
        }
        ReferenceConsumer {
            shared,
            shutdown_tx,
            link_rx,
            instances,
        }
    }

    /// Changes the per-chunk processing delay from the next chunk on (the
    /// jitter, if any, still comes on top).
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_nanos
            .store(nanos(latency), Ordering::Relaxed);
    }

    /// On: process, record and ack chunks but send no feedback.
    pub fn set_never_answer(&self, on: bool) {
        self.shared.never_answer.store(on, Ordering::Relaxed);
    }

    /// On: send every feedback message twice.
    pub fn set_duplicate_feedback(&self, on: bool) {
        self.shared.duplicate_feedback.store(on, Ordering::Relaxed);
    }

    /// Publishes `body` as it is on the feedback subject through JetStream
    /// (for malformed or forged feedback), once the consumer is connected.
    pub fn publish_raw_feedback(
        &self,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), ConsumerError>> + Send + 'static {
        let mut link_rx = self.link_rx.clone();
        async move {
            let wait = link_rx.wait_for(|link| link.is_some());
            let js = match tokio::time::timeout(NATS_TIMEOUT, wait).await {
                Ok(Ok(link)) => link.clone().expect("waited for Some"),
                Ok(Err(_)) | Err(_) => {
                    return Err(ConsumerError::TimedOut {
                        operation: "waiting for the consumer's NATS connection",
                        after: NATS_TIMEOUT,
                    })
                }
            };
            publish_feedback(&js, body.into()).await
        }
    }

    /// A handle that asks what was received without copying it, for a
    /// watcher running beside the test.
    pub fn probe(&self) -> SeenProbe {
        SeenProbe {
            shared: self.shared.clone(),
        }
    }

    /// A copy of what was received so far.
    pub fn received(&self) -> Received {
        self.shared.received.lock().expect("received lock").clone()
    }

    /// Waits until `condition` holds for what was received (checked after
    /// every change) or `timeout` passes; returns whether it held.
    pub async fn wait_until<F: Fn(&Received) -> bool>(
        &self,
        timeout: Duration,
        condition: F,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check so a change in between still wakes us.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if condition(&self.shared.received.lock().expect("received lock")) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return condition(&self.shared.received.lock().expect("received lock"));
            }
        }
    }

    /// Stops all instances: chunks in progress finish (a latency wait is cut
    /// short and its chunk NAKed for redelivery), connections are drained.
    pub async fn stop(mut self) {
        let _ = self.shutdown_tx.send(true);
        let all_done = async { while self.instances.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_GRACE, all_done).await.is_err() {
            warn!("reference consumer did not stop within {STOP_GRACE:?}; aborting it");
            self.instances.abort_all();
        }
    }
}

/// One instance: a NATS connection and a pull loop per service.
struct Instance {
    index: usize,
    shared: Arc<Shared>,
    /// Chunks this instance has started processing (all its pull loops),
    /// one input of each chunk's jitter seed.
    chunk_counter: Arc<AtomicU64>,
}

impl Instance {
    async fn run(
        self,
        link_tx: Option<watch::Sender<Option<jetstream::Context>>>,
        mut shutdown_rx: watch::Receiver<bool>,
    ) {
        let Some(client) = self.connect(&mut shutdown_rx).await else {
            return;
        };
        let js = jetstream::new(client.clone());
        if let Some(link_tx) = link_tx {
            let _ = link_tx.send(Some(js.clone()));
        }
        if self.wait_for_stream(&js, &mut shutdown_rx).await {
            self.run_pull_loops(&js, &shutdown_rx).await;
        }
        // Drain sends the last acks and closes the connection.
        let _ = tokio::time::timeout(NATS_TIMEOUT, client.drain()).await;
    }

    /// Runs one pull loop per service until shutdown.
    async fn run_pull_loops(&self, js: &jetstream::Context, shutdown_rx: &watch::Receiver<bool>) {
        let config = &self.shared.config;
        info!(instance = self.index, stream = %config.stream, services = config.services.len(), "reference consumer running");
        // Pull loops end when `shutdown_rx` flips; dropping the set (on abort)
        // aborts them.
        let mut loops = JoinSet::new();
        for service in &config.services {
            let pull = PullLoop {
                instance: self.index,
                chunk_counter: self.chunk_counter.clone(),
                js: js.clone(),
                service: service.clone(),
                shared: self.shared.clone(),
            };
            loops.spawn(pull.run(shutdown_rx.clone()));
        }
        while loops.join_next().await.is_some() {}
    }

    /// Connects, retrying until it works or shutdown; `None` on shutdown.
    async fn connect(&self, shutdown_rx: &mut watch::Receiver<bool>) -> Option<async_nats::Client> {
        let config = &self.shared.config;
        let mut warned = false;
        loop {
            let mut options = async_nats::ConnectOptions::new()
                .name(format!("{}-{}", config.durable_prefix, self.index))
                .connection_timeout(NATS_TIMEOUT)
                // Tests restart the server: reconnect within ~1 s, not 4 s.
                .reconnect_delay_callback(|attempt| {
                    Duration::from_millis(100 * attempt.min(10) as u64)
                });
            options = config.nats_auth.apply(options);
            let servers =
                sis_importer::sinks::connection::server_addrs(&config.nats_url).unwrap_or_default();
            match options.connect(servers).await {
                Ok(client) => return Some(client),
                Err(err) if !warned => {
                    warn!(instance = self.index, url = %config.nats_url, error = %err, "reference consumer cannot connect yet; retrying");
                    warned = true;
                }
                Err(err) => debug!(instance = self.index, error = %err, "connect retry failed"),
            }
            if sleep_or_shutdown(RETRY_PAUSE, shutdown_rx).await {
                return None;
            }
        }
    }

    /// Polls until the importer has created the stream; false on shutdown.
    async fn wait_for_stream(
        &self,
        js: &jetstream::Context,
        shutdown_rx: &mut watch::Receiver<bool>,
    ) -> bool {
        let stream = &self.shared.config.stream;
        loop {
            match tokio::time::timeout(NATS_TIMEOUT, js.get_stream(stream)).await {
                Ok(Ok(_)) => return true,
                Ok(Err(err)) => {
                    debug!(instance = self.index, %stream, error = %err, "stream not there yet")
                }
                Err(_) => debug!(instance = self.index, %stream, "stream lookup timed out"),
            }
            if sleep_or_shutdown(RETRY_PAUSE, shutdown_rx).await {
                return false;
            }
        }
    }
}

/// One instance's pull loop on one service's durable consumer.
struct PullLoop {
    instance: usize,
    /// The instance's chunk counter, shared by its pull loops.
    chunk_counter: Arc<AtomicU64>,
    js: jetstream::Context,
    service: Service,
    shared: Arc<Shared>,
}

impl PullLoop {
    /// Opens the durable consumer and pulls short batches from it, handling
    /// messages one by one; on any error reopens it after a pause, until
    /// shutdown. Short batch requests (rather than async-nats' continuous
    /// pull stream, which was seen to stall until its pull expired) keep
    /// the delay between a publish and its processing small.
    async fn run(self, mut shutdown_rx: watch::Receiver<bool>) {
        let mut healthy = true;
        loop {
            match self.open().await {
                Ok(consumer) => {
                    healthy = true;
                    'batches: loop {
                        let batch = consumer
                            .batch()
                            .max_messages(PULL_BATCH)
                            .expires(PULL_EXPIRES)
                            .messages();
                        let mut messages = match timed("requesting a batch", batch).await {
                            Ok(messages) => messages,
                            Err(err) => {
                                warn!(service = %self.service.id, instance = self.instance, error = %err, "pull request failed; reopening");
                                break 'batches;
                            }
                        };
                        loop {
                            let next = tokio::select! {
                                biased;
                                _ = shutdown_rx.wait_for(|stop| *stop) => return,
                                next = tokio::time::timeout(PULL_EXPIRES * 3, messages.next()) => next,
                            };
                            match next {
                                Ok(Some(Ok(message))) => {
                                    self.handle(message, &mut shutdown_rx).await
                                }
                                Ok(Some(Err(err))) => {
                                    warn!(service = %self.service.id, instance = self.instance, error = %err, "pull batch failed; reopening");
                                    break 'batches;
                                }
                                // The batch is over (filled or expired): ask again.
                                Ok(None) => break,
                                Err(_) => {
                                    warn!(service = %self.service.id, instance = self.instance, "pull batch silent past its expiry; reopening");
                                    break 'batches;
                                }
                            }
                        }
                    }
                }
                // Warn once per outage; retries of the same outage are debug.
                Err(err) if healthy => {
                    warn!(service = %self.service.id, instance = self.instance, error = %err, "cannot open pull consumer; retrying");
                    healthy = false;
                }
                Err(err) => debug!(service = %self.service.id, error = %err, "reopen failed"),
            }
            if sleep_or_shutdown(REOPEN_PAUSE, &mut shutdown_rx).await {
                return;
            }
        }
    }

    async fn open(&self) -> Result<jetstream::consumer::PullConsumer, ConsumerError> {
        let config = &self.shared.config;
        let durable = format!("{}_{}", config.durable_prefix, self.service.id);
        let stream = timed("looking up the stream", self.js.get_stream(&config.stream)).await?;
        let consumer_config = pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: self.service.subject.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_wait: config.ack_wait,
            ..Default::default()
        };
        timed(
            "creating the pull consumer",
            stream.get_or_create_consumer(&durable, consumer_config),
        )
        .await
    }

    /// Processes one chunk message as SPEC §4 wants (see module doc).
    async fn handle(&self, message: jetstream::Message, shutdown_rx: &mut watch::Receiver<bool>) {
        let service = &self.service;
        let chunk: ChunkMessage = match serde_json::from_slice(&message.payload) {
            Ok(chunk) => chunk,
            Err(err) => {
                warn!(service = %service.id, subject = %message.subject, error = %err, "not a chunk message; terminating it without feedback");
                self.shared.update(|r| r.malformed += 1);
                ack(&message, AckKind::Term).await;
                return;
            }
        };
        let counter = self.chunk_counter.fetch_add(1, Ordering::Relaxed);
        let latency = self.shared.latency(self.instance, counter);
        if !latency.is_zero() && sleep_or_shutdown(latency, shutdown_rx).await {
            // Stopping: let another instance or consumer have it now.
            ack(&message, AckKind::Nak(None)).await;
            return;
        }
        let failing = chunk.entities.iter().find(|entity| has_test_error(entity));
        let feedback = match failing {
            Some(entity) => {
                let identity = identity(service, entity);
                self.shared
                    .record_failure(self.instance, service, &chunk, message.payload.len());
                Feedback {
                    channel: &service.subject,
                    status: "FAIL",
                    amount: 0,
                    execution_hash: &chunk.execution_hash,
                    chunk_id: &chunk.chunk_id,
                    entities: Some(&chunk.entities),
                    stack: Some(format!("testError in entity {identity}")),
                }
            }
            None => {
                self.shared
                    .record_ok(self.instance, service, &chunk, message.payload.len());
                Feedback {
                    channel: &service.subject,
                    status: "OK",
                    amount: chunk.entities.len(),
                    execution_hash: &chunk.execution_hash,
                    chunk_id: &chunk.chunk_id,
                    entities: None,
                    stack: None,
                }
            }
        };
        debug!(service = %service.id, instance = self.instance, chunk_id = %chunk.chunk_id, status = feedback.status, "chunk processed");
        if !self.shared.never_answer.load(Ordering::Relaxed) {
            let body = feedback.into_body(max_payload(&self.js));
            let copies = if self.shared.duplicate_feedback.load(Ordering::Relaxed) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                if let Err(err) = publish_feedback(&self.js, body.clone()).await {
                    error!(service = %service.id, chunk_id = %chunk.chunk_id, error = %err, "feedback not delivered; NAKing the chunk for redelivery");
                    ack(&message, AckKind::Nak(Some(Duration::from_secs(1)))).await;
                    return;
                }
            }
        }
        ack(&message, AckKind::Ack).await;
    }
}

/// A chunk message (SPEC §4); entities stay raw JSON, forwarded as received.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChunkMessage<'a> {
    execution_hash: String,
    chunk_id: String,
    #[serde(borrow)]
    entities: Vec<&'a RawValue>,
}

/// A feedback message (SPEC §4), fields in the documented order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Feedback<'a> {
    channel: &'a str,
    status: &'static str,
    amount: usize,
    execution_hash: &'a str,
    chunk_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entities: Option<&'a [&'a RawValue]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
}

impl Feedback<'_> {
    /// The JSON body. A FAIL that would exceed the server's `max_payload`
    /// (a chunk near the limit plus the feedback envelope) goes without its
    /// entities rather than not at all; the importer knows the chunk's entities.
    fn into_body(mut self, max_payload: usize) -> bytes::Bytes {
        let body = serde_json::to_vec(&self).expect("feedback serialises");
        if body.len() <= max_payload || self.entities.is_none() {
            return body.into();
        }
        warn!(
            chunk_id = self.chunk_id,
            bytes = body.len(),
            max_payload,
            "FAIL feedback too large; sending it without entities"
        );
        self.entities = None;
        serde_json::to_vec(&self)
            .expect("feedback serialises")
            .into()
    }
}

/// The connection's `max_payload` (0 before the first INFO: no limit known).
fn max_payload(js: &jetstream::Context) -> usize {
    match js.client().server_info().max_payload {
        0 => usize::MAX,
        n => n,
    }
}

/// Publishes on the feedback subject through JetStream and awaits the ack,
/// retrying with backoff (the server may be restarting). A subject no stream
/// captures falls back to a core publish, so a plain subscriber still hears it.
async fn publish_feedback(
    js: &jetstream::Context,
    body: bytes::Bytes,
) -> Result<(), ConsumerError> {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=FEEDBACK_ATTEMPTS {
        let result = async {
            let ack = timed(
                "publishing feedback",
                js.publish(FEEDBACK_SUBJECT, body.clone()),
            )
            .await?;
            match tokio::time::timeout(FEEDBACK_ACK_TIMEOUT, ack.into_future()).await {
                Ok(result) => result.map_err(|err| ConsumerError::Nats {
                    operation: "awaiting the feedback publish ack",
                    source: err.into(),
                }),
                Err(_) => Err(ConsumerError::TimedOut {
                    operation: "awaiting the feedback publish ack",
                    after: FEEDBACK_ACK_TIMEOUT,
                }),
            }
        }
        .await;
        match result {
            Ok(_) => return Ok(()),
            Err(ConsumerError::Nats { source, .. }) if is_stream_not_found(&source) => {
                warn!("no stream captures {FEEDBACK_SUBJECT}; sending feedback as a core NATS message");
                let client = js.client();
                timed(
                    "publishing feedback (core)",
                    client.publish(FEEDBACK_SUBJECT, body.clone()),
                )
                .await?;
                return timed("flushing feedback", client.flush()).await;
            }
            Err(err) if attempt == FEEDBACK_ATTEMPTS => return Err(err),
            Err(err) => debug!(attempt, error = %err, "feedback publish failed; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    unreachable!("the last attempt returns")
}

fn is_stream_not_found(err: &async_nats::Error) -> bool {
    err.downcast_ref::<jetstream::context::PublishError>()
        .is_some_and(|e| e.kind() == jetstream::context::PublishErrorKind::StreamNotFound)
}

/// Runs a NATS future under `NATS_TIMEOUT`, naming the operation in errors.
async fn timed<T, E, F>(operation: &'static str, future: F) -> Result<T, ConsumerError>
where
    F: std::future::IntoFuture<Output = Result<T, E>>,
    E: Into<async_nats::Error>,
{
    match tokio::time::timeout(NATS_TIMEOUT, future.into_future()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(ConsumerError::Nats {
            operation,
            source: err.into(),
        }),
        Err(_) => Err(ConsumerError::TimedOut {
            operation,
            after: NATS_TIMEOUT,
        }),
    }
}

/// Acks (or NAKs / terms) a message; a failure only means a redelivery later.
async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(err) = timed("acking a chunk", message.ack_with(kind)).await {
        warn!(subject = %message.subject, error = %err, "ack failed; the chunk will be redelivered");
    }
}

/// Sleeps `pause`; true if shutdown was signalled meanwhile (or before).
async fn sleep_or_shutdown(pause: Duration, shutdown_rx: &mut watch::Receiver<bool>) -> bool {
    if *shutdown_rx.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => false,
        // A dropped sender (handle gone) counts as shutdown too.
        _ = shutdown_rx.wait_for(|stop| *stop) => true,
    }
}

/// True when the entity is an object with a truthy (JavaScript sense) `testError`.
fn has_test_error(entity: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "testError")]
        test_error: Option<serde_json::Value>,
    }
    use serde_json::Value;
    // Serde would also read a JSON array into the struct, field by position.
    if !is_object(entity) {
        return false;
    }
    match serde_json::from_str::<Probe>(entity.get())
        .ok()
        .and_then(|p| p.test_error)
    {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

fn is_object(entity: &RawValue) -> bool {
    entity.get().trim_start().starts_with('{')
}

/// The service's identity of an entity, else its `id`, else its raw JSON.
fn identity(service: &Service, entity: &RawValue) -> String {
    #[derive(Deserialize)]
    struct IdProbe {
        id: Option<serde_json::Value>,
    }
    service
        .identity_of(entity.get())
        .or_else(|| {
            if !is_object(entity) {
                return None;
            }
            let id = serde_json::from_str::<IdProbe>(entity.get()).ok()?.id?;
            Some(match id {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
        })
        .unwrap_or_else(|| entity.get().to_owned())
}

impl Shared {
    /// The delay of one chunk: the latency plus, with a jitter bound, a
    /// uniform draw in `[0, bound]` from a generator seeded with the jitter
    /// seed, the instance index and the instance's chunk counter.
    fn latency(&self, instance: usize, counter: u64) -> Duration {
        let base = self.latency_nanos.load(Ordering::Relaxed);
        let bound = self.latency_jitter_nanos.load(Ordering::Relaxed);
        let extra = if bound == 0 {
            0
        } else {
            let seed = splitmix64(
                splitmix64(self.config.jitter_seed ^ splitmix64(instance as u64)) ^ counter,
            );
            rand::rngs::StdRng::seed_from_u64(seed).random_range(0..=bound)
        };
        Duration::from_nanos(base.saturating_add(extra))
    }

    fn update(&self, change: impl FnOnce(&mut Received)) {
        change(&mut self.received.lock().expect("received lock"));
        self.changed.notify_waiters();
    }

    fn record_ok(
        &self,
        instance: usize,
        service: &Service,
        chunk: &ChunkMessage<'_>,
        bytes: usize,
    ) {
        let record = self.config.record;
        // Parsed outside the lock: other loops keep recording meanwhile.
        let (seen, versions): (Vec<Sighting>, Vec<(String, i64)>) = if record {
            let pair = |e: &&RawValue| {
                (
                    identity(service, e),
                    catalogue::modification_ordinal(e.get()),
                )
            };
            let version = |e: &&RawValue| {
                Some((
                    service.identity_of(e.get())?,
                    catalogue::modification_ordinal(e.get())?,
                ))
            };
            (
                chunk.entities.iter().map(pair).collect(),
                chunk.entities.iter().filter_map(version).collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let n = chunk.entities.len();
        self.update(|r| {
            r.chunks_ok += 1;
            r.entities_ok += n as u64;
            *r.per_instance.entry(instance).or_default() += 1;
            let s = r.per_service.entry(service.id.clone()).or_default();
            s.chunks += 1;
            s.entities += n as u64;
            s.max_chunk_entities = s.max_chunk_entities.max(n);
            s.max_chunk_bytes = s.max_chunk_bytes.max(bytes);
            if record {
                s.seen.extend(seen);
                if !s.execution_hashes.contains(&chunk.execution_hash) {
                    s.execution_hashes.insert(chunk.execution_hash.clone());
                }
                s.chunk_ids.push(chunk.chunk_id.clone());
                // Check and write under the same lock: atomic across instances.
                for (id, ordinal) in versions {
                    match s.stored.entry(id) {
                        hash_map::Entry::Vacant(slot) => {
                            slot.insert(ordinal);
                        }
                        hash_map::Entry::Occupied(mut slot) => {
                            let current = *slot.get();
                            if ordinal < current {
                                s.order_violations += 1;
                                if s.order_violation_examples.len() < ORDER_VIOLATION_EXAMPLES {
                                    let id = slot.key().clone();
                                    s.order_violation_examples.push((id, current, ordinal));
                                }
                            }
                            // Last write wins, as in an upserting store.
                            slot.insert(ordinal);
                        }
                    }
                }
            }
        });
    }

    fn record_failure(
        &self,
        instance: usize,
        service: &Service,
        chunk: &ChunkMessage<'_>,
        bytes: usize,
    ) {
        let record = self.config.record;
        self.update(|r| {
            r.chunks_failed += 1;
            *r.per_instance.entry(instance).or_default() += 1;
            let s = r.per_service.entry(service.id.clone()).or_default();
            s.chunks_failed += 1;
            if record {
                s.failed_chunks
                    .push((chunk.execution_hash.clone(), chunk.chunk_id.clone()));
            }
            s.max_chunk_bytes = s.max_chunk_bytes.max(bytes);
        });
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// SplitMix64's finaliser: mixes the jitter seed's parts so that nearby
/// (seed, instance, counter) triples give unrelated generator seeds.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::NatsServer;
    use async_nats::jetstream::stream;

    const WAIT: Duration = Duration::from_secs(20);

    fn two_services() -> Vec<Service> {
        let ids = ["PERSON", "TERM_REGISTRATION"];
        catalogue::builtin()
            .into_iter()
            .filter(|s| ids.contains(&s.id.as_str()))
            .collect()
    }

    /// A consumer on `services`, started before the stream exists (as in
    /// real runs), then the stream as the importer would create it.
    async fn setup(
        services: Vec<Service>,
        instances: usize,
    ) -> (NatsServer, jetstream::Context, ReferenceConsumer) {
        // `RUST_LOG=debug cargo test -- --nocapture` shows the consumer's log.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let nats = NatsServer::start().await.unwrap();
        let consumer = ReferenceConsumer::start(ConsumerConfig {
            services: services.clone(),
            instances,
            ack_wait: Duration::from_secs(5),
            ..ConsumerConfig::new(nats.url())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let mut subjects: Vec<String> = services.iter().map(|s| s.subject.clone()).collect();
        subjects.push(FEEDBACK_SUBJECT.into());
        js.create_stream(stream::Config {
            name: "SIS_IMPORTER".into(),
            subjects,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
        (nats, js, consumer)
    }

    fn chunk(chunk_id: &str, entities: &[&str]) -> String {
        format!(
            r#"{{"executionHash":"h1","chunkId":"{chunk_id}","entities":[{}]}}"#,
            entities.join(",")
        )
    }

    async fn publish(js: &jetstream::Context, subject: &str, body: String) {
        // Retried: right after a server restart the first attempts may fail.
        for _ in 0..50 {
            if let Ok(Ok(ack)) = tokio::time::timeout(
                NATS_TIMEOUT,
                js.publish(subject.to_owned(), body.clone().into()),
            )
            .await
            {
                if ack.await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("could not publish to {subject}");
    }

    async fn feedback_subscriber(nats: &NatsServer) -> async_nats::Subscriber {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let sub = client.subscribe(FEEDBACK_SUBJECT).await.unwrap();
        client.flush().await.unwrap();
        sub
    }

    /// Collects feedback bodies until `quiet` passes without one.
    async fn collect(sub: &mut async_nats::Subscriber, quiet: Duration) -> Vec<String> {
        let mut bodies = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
            bodies.push(String::from_utf8(m.payload.to_vec()).unwrap());
        }
        bodies
    }

    #[tokio::test]
    async fn answers_ok_and_fail_exactly_as_specified() {
        let (nats, js, consumer) = setup(two_services(), 2).await;
        let mut sub = feedback_subscriber(&nats).await;
        let p1 = r#"{"id":"p1","documentState":"ACTIVE","metadata":{"modificationOrdinal":7}}"#;
        let p2 = r#"{"id": "p2", "documentState":"DELETED"}"#;
        let bad = r#"{"id":"p3","testError":true,"x":[1, 2]}"#;
        let term = r#"{"studyRightId":"sr","studentId":"st","metadata":{"modificationOrdinal":3}}"#;
        // A malformed message first: the loop must go on after it.
        publish(&js, "ORI_PERSON_CHANNEL", "this is not json".into()).await;
        publish(&js, "ORI_PERSON_CHANNEL", chunk("ok-1", &[p1, p2])).await;
        publish(&js, "ORI_PERSON_CHANNEL", chunk("fail-1", &[p1, bad])).await;
        publish(&js, "ORI_TERM_REGISTRATION", chunk("term-1", &[term])).await;
        let mut bodies = collect(&mut sub, Duration::from_secs(3)).await;
        bodies.sort();
        assert_eq!(bodies.len(), 3, "{bodies:?}");
        let fail = format!(
            r#"{{"channel":"ORI_PERSON_CHANNEL","status":"FAIL","amount":0,"executionHash":"h1","chunkId":"fail-1","entities":[{p1},{bad}],"stack":"testError in entity p3"}}"#
        );
        assert_eq!(bodies[0], fail);
        assert_eq!(
            bodies[1],
            r#"{"channel":"ORI_PERSON_CHANNEL","status":"OK","amount":2,"executionHash":"h1","chunkId":"ok-1"}"#
        );
        assert_eq!(
            bodies[2],
            r#"{"channel":"ORI_TERM_REGISTRATION","status":"OK","amount":1,"executionHash":"h1","chunkId":"term-1"}"#
        );

        let r = consumer.received();
        assert_eq!(
            (r.chunks_ok, r.chunks_failed, r.entities_ok, r.malformed),
            (2, 1, 3, 1)
        );
        let person = &r.per_service["PERSON"];
        let expected: HashSet<_> = [("p1".to_string(), Some(7)), ("p2".to_string(), None)].into();
        assert_eq!(person.seen, expected);
        assert_eq!(person.chunk_ids, ["ok-1"]);
        assert_eq!(person.max_chunk_entities, 2);
        assert_eq!(person.execution_hashes, BTreeSet::from(["h1".to_string()]));
        let term_seen = &r.per_service["TERM_REGISTRATION"].seen;
        assert!(term_seen.contains(&("studyRightId=sr,studentId=st".to_string(), Some(3))));
        consumer.stop().await;
    }

    #[tokio::test]
    async fn duplicate_mode_sends_two_and_never_answer_sends_none() {
        let (nats, js, consumer) = setup(two_services(), 1).await;
        let mut sub = feedback_subscriber(&nats).await;
        consumer.set_duplicate_feedback(true);
        publish(
            &js,
            "ORI_PERSON_CHANNEL",
            chunk("dup-1", &[r#"{"id":"a"}"#]),
        )
        .await;
        assert_eq!(collect(&mut sub, Duration::from_secs(2)).await.len(), 2);

        consumer.set_duplicate_feedback(false);
        consumer.set_never_answer(true);
        publish(
            &js,
            "ORI_PERSON_CHANNEL",
            chunk("silent-1", &[r#"{"id":"b"}"#]),
        )
        .await;
        assert!(consumer.wait_until(WAIT, |r| r.chunks_ok == 2).await);
        assert!(collect(&mut sub, Duration::from_secs(2)).await.is_empty());
        // Processed and acked all the same: nothing left pending.
        let mut durable = js
            .get_stream("SIS_IMPORTER")
            .await
            .unwrap()
            .get_consumer::<pull::Config>("reference_PERSON")
            .await
            .unwrap();
        let info = durable.info().await.unwrap();
        assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));

        consumer.set_never_answer(false);
        consumer
            .publish_raw_feedback(b"{not json".to_vec())
            .await
            .unwrap();
        assert_eq!(
            collect(&mut sub, Duration::from_secs(1)).await,
            ["{not json"]
        );
        consumer.stop().await;
    }

    #[tokio::test]
    async fn instances_share_the_work_and_process_each_chunk_once() {
        let (nats, js, consumer) = setup(two_services(), 3).await;
        let mut sub = feedback_subscriber(&nats).await;
        consumer.set_latency(Duration::from_millis(20));
        for i in 0..60 {
            publish(
                &js,
                "ORI_PERSON_CHANNEL",
                chunk(&format!("c-{i}"), &[&format!(r#"{{"id":"e{i}"}}"#)]),
            )
            .await;
        }
        assert!(consumer.wait_until(WAIT, |r| r.chunks_ok >= 60).await);
        assert_eq!(collect(&mut sub, Duration::from_secs(2)).await.len(), 60);
        let r = consumer.received();
        let ids: HashSet<_> = r.per_service["PERSON"].chunk_ids.iter().collect();
        assert_eq!((r.chunks_ok, ids.len()), (60, 60));
        assert!(
            r.per_instance.len() >= 2,
            "work not shared: {:?}",
            r.per_instance
        );
        consumer.stop().await;
    }

    #[tokio::test]
    async fn survives_a_nats_restart_mid_stream() {
        // Only "every chunk seen" is asserted: after a SIGKILL, nats-server
        // 2.9 forgets acks it had not yet persisted and redelivers.
        let (mut nats, js, consumer) = setup(two_services(), 2).await;
        consumer.set_latency(Duration::from_millis(50));
        for i in 0..30 {
            publish(
                &js,
                "ORI_PERSON_CHANNEL",
                chunk(&format!("a-{i}"), &[&format!(r#"{{"id":"a{i}"}}"#)]),
            )
            .await;
        }
        assert!(consumer.wait_until(WAIT, |r| r.chunks_ok >= 5).await);
        nats.restart().await.unwrap();
        for i in 0..30 {
            publish(
                &js,
                "ORI_PERSON_CHANNEL",
                chunk(&format!("b-{i}"), &[&format!(r#"{{"id":"b{i}"}}"#)]),
            )
            .await;
        }
        let all_seen = |r: &Received| {
            r.per_service
                .get("PERSON")
                .is_some_and(|s| s.seen.len() == 60)
        };
        assert!(
            consumer.wait_until(Duration::from_secs(60), all_seen).await,
            "{:?}",
            consumer.received().chunks_ok
        );
        consumer.stop().await;
    }

    #[tokio::test]
    async fn stop_hands_a_chunk_in_progress_back_at_once() {
        let (nats, js, consumer) = setup(two_services(), 1).await;
        consumer.set_latency(Duration::from_secs(30));
        publish(
            &js,
            "ORI_PERSON_CHANNEL",
            chunk("slow-1", &[r#"{"id":"s"}"#]),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stopping = std::time::Instant::now();
        consumer.stop().await;
        assert!(stopping.elapsed() < Duration::from_secs(2));
        // NAKed, so a successor gets it well before ack_wait (5 s) ends.
        let successor = ReferenceConsumer::start(ConsumerConfig {
            services: two_services(),
            ..ConsumerConfig::new(nats.url())
        });
        let got = successor
            .wait_until(Duration::from_secs(3), |r| r.chunks_ok == 1)
            .await;
        assert!(got, "{:?}", successor.received());
        successor.stop().await;
    }

    #[tokio::test]
    async fn connects_with_a_token() {
        let options = crate::servers::NatsOptions {
            token: Some("t0ken".into()),
            ..Default::default()
        };
        let nats = NatsServer::start_with(options).await.unwrap();
        let consumer = ReferenceConsumer::start(ConsumerConfig {
            nats_auth: sis_importer::sinks::NatsAuth {
                token: Some(sis_importer::config::Secret::new("t0ken")),
                ..Default::default()
            },
            services: two_services(),
            ..ConsumerConfig::new(nats.url())
        });
        let client = async_nats::ConnectOptions::with_token("t0ken".into())
            .connect(nats.url())
            .await
            .unwrap();
        let js = jetstream::new(client);
        js.create_stream(stream::Config {
            name: "SIS_IMPORTER".into(),
            subjects: vec!["ORI_PERSON_CHANNEL".into(), FEEDBACK_SUBJECT.into()],
            ..Default::default()
        })
        .await
        .unwrap();
        publish(&js, "ORI_PERSON_CHANNEL", chunk("t-1", &[r#"{"id":"t"}"#])).await;
        assert!(consumer.wait_until(WAIT, |r| r.chunks_ok == 1).await);
        consumer.stop().await;
    }

    #[tokio::test]
    async fn full_catalogue_with_default_config() {
        let (_nats, js, consumer) = setup(catalogue::builtin(), 2).await;
        for service in catalogue::builtin() {
            publish(
                &js,
                &service.subject,
                chunk(&service.id, &[r#"{"id":"x"}"#]),
            )
            .await;
        }
        assert!(
            consumer
                .wait_until(WAIT, |r| r.per_service.len() == 26 && r.chunks_ok == 26)
                .await
        );
        let start = std::time::Instant::now();
        consumer.stop().await;
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn truthiness_follows_javascript() {
        let t = |json: &str| has_test_error(&RawValue::from_string(json.into()).unwrap());
        for yes in [
            r#"{"testError":true}"#,
            r#"{"testError":1}"#,
            r#"{"testError":"x"}"#,
            r#"{"testError":{}}"#,
        ] {
            assert!(t(yes), "{yes}");
        }
        for no in [
            r#"{"testError":false}"#,
            r#"{"testError":0}"#,
            r#"{"testError":""}"#,
            r#"{"testError":null}"#,
            "{}",
            "[1]",
            "3",
        ] {
            assert!(!t(no), "{no}");
        }
    }
}
