//! The seed's form's one current execution hash, learned from Redis as
//! importer-mankeli learns it: the key `CURRENT_EXECUTION_HASH` read at
//! start, then every message on the channel of that name replaces it. A
//! lost connection is reopened and the key read again, since a PUBLISH may
//! have gone by meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{ConsumerError, Shared};

/// The Redis key and channel of the current execution hash (SPEC §5, fixed).
pub(super) const HASH_KEY: &str = "CURRENT_EXECUTION_HASH";
/// Bound on connecting, subscribing, reading the key and each ping.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the subscription's connection is pinged: a silent network
/// (no FIN, no RST) would otherwise keep an old hash forever.
const PING_EVERY: Duration = Duration::from_secs(5);
/// First pause before reconnecting; doubled up to `RECONNECT_PAUSE_MAX`.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between reconnection attempts.
const RECONNECT_PAUSE_MAX: Duration = Duration::from_secs(2);

/// Follows the current hash of the Redis at `redis_url` for `instance`,
/// sending every new value through `hash_tx` (`None` until one is known)
/// and recording it in `Received::current_hashes`, until shutdown.
/// `redis_url` was validated by `ConsumerConfig::validate`.
pub(super) async fn follow(
    instance: usize,
    redis_url: String,
    shared: Arc<Shared>,
    hash_tx: watch::Sender<Option<String>>,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let holder = Holder {
        instance,
        shared,
        hash_tx,
    };
    let client = match redis::Client::open(redis_url) {
        Ok(client) => client,
        Err(err) => {
            warn!(instance, error = %err, "Redis URL does not parse; the current execution hash stays unknown");
            return;
        }
    };
    let mut pause = RECONNECT_PAUSE;
    let mut healthy = true;
    loop {
        let mut subscribed = false;
        let ended = tokio::select! {
            biased;
            _ = shutdown_rx.wait_for(|stop| *stop) => return,
            ended = subscribe_and_follow(&holder, &client, &mut subscribed) => ended,
        };
        if subscribed {
            // That outage is over; this failure is a new one.
            pause = RECONNECT_PAUSE;
            healthy = true;
        }
        // Warn once per outage; retries of the same outage are debug.
        if healthy {
            warn!(instance, error = %ended, "lost the current execution hash's Redis connection; reconnecting");
        } else {
            debug!(instance, error = %ended, "Redis reconnection failed");
        }
        healthy = false;
        tokio::select! {
            _ = shutdown_rx.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RECONNECT_PAUSE_MAX);
    }
}

/// One connection's life: subscribes, reads the key, then applies every
/// message until the connection fails; returns why it ended. Sets
/// `subscribed` once subscribed and the key read.
async fn subscribe_and_follow(
    holder: &Holder,
    client: &redis::Client,
    subscribed: &mut bool,
) -> ConsumerError {
    let instance = holder.instance;
    let pubsub = match redis_timed("connecting to Redis", client.get_async_pubsub()).await {
        Ok(pubsub) => pubsub,
        Err(err) => return err,
    };
    let (mut sink, mut messages) = pubsub.split();
    // Subscribed before the key is read, so a hash set in between arrives
    // as a message after the read and wins, as it must.
    if let Err(err) = redis_timed("subscribing to the hash channel", sink.subscribe(HASH_KEY)).await
    {
        return err;
    }
    match read_key(client).await {
        Ok(Some(hash)) => holder.replace(hash, "key"),
        // No hash yet (or not any more): keep what is known, wait for a PUBLISH.
        Ok(None) => debug!(instance, "no {HASH_KEY} in Redis yet"),
        Err(err) => return err,
    }
    *subscribed = true;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => match message.get_payload::<String>() {
                    Ok(hash) => holder.replace(hash, "channel"),
                    Err(err) => warn!(instance, error = %err, "a {HASH_KEY} message that is not a string; ignored"),
                },
                None => return ConsumerError::Closed { what: "the Redis subscription" },
            },
            _ = ping.tick() => {
                if let Err(err) = redis_timed("pinging Redis", sink.ping::<redis::Value>()).await {
                    return err;
                }
            }
        }
    }
}

async fn read_key(client: &redis::Client) -> Result<Option<String>, ConsumerError> {
    let mut connection = redis_timed(
        "connecting to Redis",
        client.get_multiplexed_async_connection(),
    )
    .await?;
    redis_timed(
        "reading the current execution hash",
        redis::cmd("GET").arg(HASH_KEY).query_async(&mut connection),
    )
    .await
}

/// Where one instance keeps its current hash.
struct Holder {
    instance: usize,
    shared: Arc<Shared>,
    /// Read by the instance's pull loops before each chunk.
    hash_tx: watch::Sender<Option<String>>,
}

impl Holder {
    /// Makes `hash` the current one, telling the pull loops and the
    /// record if it changed.
    fn replace(&self, hash: String, from: &str) {
        let changed = self.hash_tx.send_if_modified(|current| {
            if current.as_deref() == Some(hash.as_str()) {
                return false;
            }
            info!(instance = self.instance, hash = %hash, from, "current execution hash");
            *current = Some(hash.clone());
            true
        });
        if changed {
            self.shared.update(|r| {
                r.current_hashes.insert(self.instance, hash);
            });
        }
    }
}

/// Runs a Redis future under `REDIS_TIMEOUT`, naming the operation in errors.
async fn redis_timed<T>(
    operation: &'static str,
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, ConsumerError> {
    match tokio::time::timeout(REDIS_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(ConsumerError::Redis { operation, source }),
        Err(_) => Err(ConsumerError::TimedOut {
            operation,
            after: REDIS_TIMEOUT,
        }),
    }
}
