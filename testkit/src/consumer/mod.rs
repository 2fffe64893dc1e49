//! The reference consumer: the consumer side of the wire contract (SPEC §4)
//! against a real NATS server, standing in for the downstream "mankelis" in
//! tests, benchmarks and the demo.
//!
//! Every instance has its own NATS connection and, once the importer has
//! created the stream, runs one pull loop per service on a shared durable
//! pull consumer `<prefix>_<service id>` (one filter subject each: nats-server
//! 2.9 knows no more), so instances split the work; each loop handles one
//! chunk at a time. Per chunk it waits the configured latency, answers
//! `FAIL` when an entity carries a truthy fail field (`testError` by
//! default) and `OK` otherwise, writes an OK chunk's entities to the
//! configured [`StoreSink`], and publishes the feedback through JetStream,
//! awaiting its ack before acking the chunk (a crash in between means a
//! redelivery: at least once). What arrived is recorded for assertions,
//! including an upserting store (last write wins per entity identity) that
//! counts versions stored after a newer one (see [`ServiceReceived::stored`]).
//! Test switches change the latency, withhold or duplicate feedback, and raw
//! feedback can be injected.
//!
//! It answers in one of two forms ([`FeedbackForm`]). The precise form
//! names the chunk in every answer. The seed's form is importer-mankeli's
//! (SPEC §4, "The consumer that exists speaks the seed's form"): each
//! instance follows the one current execution hash in Redis, acks chunks of
//! any other hash without processing or answering them, answers OK without
//! `chunkId` and FAIL by echoing the chunk message, and holds at most one
//! unacked chunk per service (mankeli's `maxInFlight(1)`).
//!
//! # Layout
//! - this file: [`ReferenceConsumer`] (start, stop, the test switches,
//!   reading what was received), the state its tasks share, [`ConsumerError`].
//! - `config`: [`ConsumerConfig`], [`FeedbackForm`], their defaults,
//!   [`ConfigError`].
//! - `pull`: the instances and their pull loops: connecting, waiting for the
//!   stream (and, in the seed's form, for a hash), pulling, handling one
//!   chunk, acking.
//! - `current_hash`: the seed's form's current execution hash, followed in Redis.
//! - `message`: the chunk message decoded, its entities judged.
//! - `feedback`: the feedback message in both forms, and publishing it.
//! - `store`: [`StoreSink`], where OK entities go before the answer, and
//!   [`JsonLinesFile`].
//! - `record`: [`Received`], [`ServiceReceived`], the order-violation
//!   bookkeeping, [`SeenProbe`].

mod config;
mod current_hash;
mod feedback;
mod message;
mod pull;
mod record;
#[cfg(test)]
mod seed_tests;
mod store;
#[cfg(test)]
mod tests;

pub use config::{ConfigError, ConsumerConfig, FeedbackForm};
pub use record::{Received, SeenProbe, ServiceReceived};
pub use store::{JsonLinesFile, StoreSink, StoredEntity};

use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::warn;

/// Bound on every single NATS request, publish or ack.
const NATS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` lets chunks in progress finish before aborting.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Errors of the consumer's own NATS and Redis operations, naming the operation.
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
    /// A Redis operation failed (the seed's form following the hash).
    #[error("{operation} failed: {source}")]
    Redis {
        /// What was attempted.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A connection or subscription ended under the consumer.
    #[error("{what} was closed")]
    Closed {
        /// What ended.
        what: &'static str,
    },
    /// Writing an OK chunk's entities to the [`StoreSink`] failed.
    #[error("storing the entities failed: {source}")]
    Store {
        /// The sink's error.
        #[source]
        source: std::io::Error,
    },
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
    /// connect, wait for the stream (in the seed's form also for a current
    /// hash) and create their consumers on their own. Must be called inside
    /// a Tokio runtime; panics on a configuration
    /// [`ConsumerConfig::validate`] refuses (an empty `nats_url`, the seed's
    /// form without a Redis URL).
    pub fn start(config: ConsumerConfig) -> ReferenceConsumer {
        if let Err(err) = config.validate() {
            panic!("{err}");
        }
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
            instances.spawn(pull::run_instance(
                index,
                shared.clone(),
                link_tx.take(),
                shutdown_rx.clone(),
            ));
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
            feedback::publish_feedback(&js, body.into()).await
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
}

/// `d` in nanoseconds, saturating.
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

/// Runs a NATS future under `NATS_TIMEOUT`, naming the operation in errors.
async fn timed<T, E, F>(operation: &'static str, future: F) -> Result<T, ConsumerError>
where
    F: IntoFuture<Output = Result<T, E>>,
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
