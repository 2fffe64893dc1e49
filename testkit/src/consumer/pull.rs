//! The pull side: per instance a NATS connection that waits for the stream
//! (in the seed's form also for a current execution hash), then one pull
//! loop per service on its durable pull consumer, handling chunk messages
//! one by one and acking each after its feedback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use sis_importer::catalogue::Service;

use super::feedback::{max_payload, publish_feedback, Feedback};
use super::message::ChunkMessage;
use super::{current_hash, store, timed, ConsumerError, FeedbackForm, Shared, NATS_TIMEOUT};

/// Pause between attempts to connect, find the stream or reopen a consumer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Pause after a pull loop lost its consumer, so an outage is not a hot loop.
const REOPEN_PAUSE: Duration = Duration::from_millis(500);
/// Expiry of one batch pull request: an idle loop asks again this often.
const PULL_EXPIRES: Duration = Duration::from_millis(500);
/// Messages one pull request asks for. Small on purpose: a message buffered
/// in one instance is one another instance cannot take (a batch of 32 let
/// one instance hoard a whole backlog while the other idled), and its
/// `ack_wait` clock is already running. The next request goes out when
/// the batch is over; pulling 8 at a time did not change the benchmark's
/// end-to-end figures (docs/performance.md).
const PULL_BATCH: usize = 2;
/// Messages one pull request asks for in the seed's form: one, so an
/// instance holds at most one unacked chunk per service, as
/// importer-mankeli's `maxInFlight(1)` subscription did.
const PULL_BATCH_SEED: usize = 1;

/// Runs instance `index` until shutdown. Only the instance given `link_tx`
/// sends its JetStream context through it once connected (for
/// `publish_raw_feedback`).
pub(super) async fn run_instance(
    index: usize,
    shared: Arc<Shared>,
    link_tx: Option<watch::Sender<Option<jetstream::Context>>>,
    shutdown_rx: watch::Receiver<bool>,
) {
    let instance = Instance {
        index,
        shared,
        chunk_counter: Arc::new(AtomicU64::new(0)),
    };
    instance.run(link_tx, shutdown_rx).await
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
        // The seed's form: the hash follower runs beside the pull loops until
        // shutdown; dropping the set (on abort) aborts it.
        let mut follower = JoinSet::new();
        let current_hash = self.shared.config.redis_url.as_ref().and_then(|url| {
            (self.shared.config.form == FeedbackForm::Seed).then(|| {
                let (hash_tx, hash_rx) = watch::channel(None);
                let follow = current_hash::follow(
                    self.index,
                    url.clone(),
                    self.shared.clone(),
                    hash_tx,
                    shutdown_rx.clone(),
                );
                follower.spawn(follow);
                hash_rx
            })
        });
        let hash_known = match current_hash.clone() {
            Some(hash_rx) => self.wait_for_hash(hash_rx, &mut shutdown_rx).await,
            None => true,
        };
        if hash_known && self.wait_for_stream(&js, &mut shutdown_rx).await {
            self.run_pull_loops(&js, current_hash, &shutdown_rx).await;
        }
        while follower.join_next().await.is_some() {}
        // Drain sends the last acks and closes the connection.
        let _ = tokio::time::timeout(NATS_TIMEOUT, client.drain()).await;
    }

    /// Runs one pull loop per service until shutdown; `current_hash` is the
    /// seed's form's hash, `None` in the precise form.
    async fn run_pull_loops(
        &self,
        js: &jetstream::Context,
        current_hash: Option<watch::Receiver<Option<String>>>,
        shutdown_rx: &watch::Receiver<bool>,
    ) {
        let config = &self.shared.config;
        info!(instance = self.index, form = %config.form, stream = %config.stream, services = config.services.len(), "reference consumer running");
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
                current_hash: current_hash.clone(),
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
                    let url = sis_importer::redact::url(&config.nats_url);
                    warn!(instance = self.index, %url, error = %err, "reference consumer cannot connect yet; retrying");
                    warned = true;
                }
                Err(err) => debug!(instance = self.index, error = %err, "connect retry failed"),
            }
            if sleep_or_shutdown(RETRY_PAUSE, shutdown_rx).await {
                return None;
            }
        }
    }

    /// Waits until the seed's form knows a current hash; false on shutdown.
    async fn wait_for_hash(
        &self,
        mut hash_rx: watch::Receiver<Option<String>>,
        shutdown_rx: &mut watch::Receiver<bool>,
    ) -> bool {
        if hash_rx.borrow().is_none() {
            info!(
                instance = self.index,
                "waiting for a current execution hash in Redis"
            );
        }
        tokio::select! {
            biased;
            _ = shutdown_rx.wait_for(|stop| *stop) => false,
            // An error: the follower gave up (it only does on shutdown).
            known = hash_rx.wait_for(|hash| hash.is_some()) => known.is_ok(),
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
    /// The seed's form's current execution hash (sent by the instance's
    /// follower); `None` in the precise form.
    current_hash: Option<watch::Receiver<Option<String>>>,
}

impl PullLoop {
    /// Opens the durable consumer and pulls short batches from it, handling
    /// messages one by one; on any error reopens it after a pause, until
    /// shutdown. Short batch requests (rather than async-nats' continuous
    /// pull stream, which was seen to stall until its pull expired) keep
    /// the delay between a publish and its processing small.
    async fn run(self, mut shutdown_rx: watch::Receiver<bool>) {
        let mut healthy = true;
        let batch_size = match self.shared.config.form {
            FeedbackForm::Precise => PULL_BATCH,
            FeedbackForm::Seed => PULL_BATCH_SEED,
        };
        loop {
            match self.open().await {
                Ok(consumer) => {
                    healthy = true;
                    'batches: loop {
                        let batch = consumer
                            .batch()
                            .max_messages(batch_size)
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

    /// True in the precise form; in the seed's form, when the chunk carries
    /// the current execution hash.
    fn is_current(&self, chunk: &ChunkMessage<'_>) -> bool {
        self.current_hash.as_ref().is_none_or(|hash_rx| {
            hash_rx.borrow().as_deref() == Some(chunk.execution_hash.as_str())
        })
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

    /// Processes one chunk message as SPEC §4 wants (see the `consumer` module doc).
    async fn handle(&self, message: jetstream::Message, shutdown_rx: &mut watch::Receiver<bool>) {
        let service = &self.service;
        let config = &self.shared.config;
        let chunk = match ChunkMessage::decode(&message.payload) {
            Ok(chunk) => chunk,
            Err(err) => {
                warn!(service = %service.id, subject = %message.subject, error = %err, "not a chunk message; terminating it without feedback");
                self.shared.update(|r| r.malformed += 1);
                ack(&message, AckKind::Term).await;
                return;
            }
        };
        if !self.is_current(&chunk) {
            // importer-mankeli's way: an old run's chunk is not worth a
            // thing, nor an answer; acked so it is never seen again.
            debug!(service = %service.id, instance = self.instance, chunk_id = %chunk.chunk_id, execution_hash = %chunk.execution_hash, "chunk of another execution hash; acking it unprocessed");
            self.shared.record_dropped(service, &chunk);
            ack(&message, AckKind::Ack).await;
            return;
        }
        let counter = self.chunk_counter.fetch_add(1, Ordering::Relaxed);
        let latency = self.shared.latency(self.instance, counter);
        if !latency.is_zero() && sleep_or_shutdown(latency, shutdown_rx).await {
            // Stopping: let another instance or consumer have it now.
            ack(&message, AckKind::Nak(None)).await;
            return;
        }
        let feedback = Feedback::answer(config.form, service, &chunk, &config.fail_field);
        let bytes = message.payload.len();
        if feedback.is_fail() {
            self.shared
                .record_failure(self.instance, service, &chunk, bytes);
        } else {
            // Stored before answered, as a database transaction commits
            // before the consumer says OK.
            if let Some(sink) = &config.store_sink {
                if let Err(err) = store::write(sink, service, &chunk).await {
                    error!(service = %service.id, chunk_id = %chunk.chunk_id, error = %err, "entities not stored; NAKing the chunk for redelivery");
                    ack(&message, AckKind::Nak(Some(Duration::from_secs(1)))).await;
                    return;
                }
            }
            self.shared.record_ok(self.instance, service, &chunk, bytes);
        }
        debug!(service = %service.id, instance = self.instance, chunk_id = %chunk.chunk_id, status = feedback.status(), "chunk processed");
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
