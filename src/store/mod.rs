//! All Redis state in one place (SPEC §5): committed ordinals, the
//! `_SCHEDULED`/`_UPDATED` window counters, the execution hash, URN caches,
//! dead letters, forbidden services, per-service run records and the
//! import lease.
//!
//! - [`keys`]: every key name.
//! - `lua/`: the Lua scripts, one per file.
//! - `records`: the records kept (dead letters, attempt and run records).
//! - `cursor`: ordinals, window counters, attempt records and reset.
//! - `dead_letters`: dead letters with their entities, bounded per service.
//! - `runs`, `cache`, `lease`: the other state, one file each.
//! - `port`: [`OrdinalStore`] as the pipeline's `CursorStore`.
//! - `connect`: the first connection, and why Redis could not be reached
//!   ([`Unreachable`]).
//! - `pool`: where the pool's connections go, and which it drops;
//!   `sentinel`: Redis behind Sentinel (`redis+sentinel://`).
//!
//! Every operation is one request (a command, a pipeline or a script call)
//! sent by `OrdinalStore::query`, which retries a short while on
//! connection errors, so a Redis restart or a Sentinel failover mid-run
//! costs a pause, not the run; refused credentials are not retried. A
//! server that answers `READONLY` (a master demoted by a failover) or
//! `NOREPLICAS` (a master whose replica was promoted) loses its
//! connection, and the request is retried like after a lost connection:
//! the new connection goes where the sentinels say the master is now.
//! The ordinal is only ever written by one Lua script that refuses to move
//! it backwards.

mod cache;
mod connect;
mod cursor;
mod dead_letters;
pub mod keys;
mod lease;
mod pool;
mod port;
mod records;
mod runs;
mod sentinel;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisResult};

use crate::config::Secret;
use crate::outage::Outage;
use crate::retry::{Budget, RetryPolicy};

use pool::{ConnectError, Endpoint, Manager};

pub use connect::Unreachable;
pub use dead_letters::{Recorded, Settle, StoredLetter};
pub(crate) use lease::LeaseGrant;
pub use records::{AttemptRecord, DeadLetter, EntityJson, RunRecord, ServiceState};

/// Redis's retry policy: a lost connection is retried from 100 ms,
/// doubling up to 3 s, for 30 s; then the operation fails and the caller
/// (an attempt, the lease) decides.
const RETRY: RetryPolicy = RetryPolicy {
    first: Duration::from_millis(100),
    max: Duration::from_secs(3),
    jitter: false,
    budget: Budget::For(Duration::from_secs(30)),
};

/// Errors talking to Redis; they name the operation, never the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Could not connect at start.
    #[error("cannot connect to Redis at {url}: {cause}")]
    Connect {
        /// The URL without its password.
        url: String,
        /// Why, and what to fix.
        cause: Unreachable,
    },
    /// An operation failed (after retries).
    #[error("Redis {operation} failed: {source}")]
    Operation {
        /// What was being done.
        operation: &'static str,
        /// The cause.
        source: redis::RedisError,
    },
    /// A pooled connection could not be had (after retries, except for
    /// refused credentials).
    #[error("Redis {operation} failed: no connection ({message})")]
    Pool {
        /// What was being done.
        operation: &'static str,
        /// Why the pool could not connect (its last error told apart), or
        /// the pool's own error.
        message: String,
    },
    /// The lease was lost, so the write was refused.
    #[error("Redis {operation} refused: this instance no longer holds the import lease")]
    LeaseLost {
        /// What was being done.
        operation: &'static str,
    },
}

/// Tells the Redis [`Outage`] of the pool's own connection failures, and
/// keeps the last one (the pool itself only reports a timeout).
#[derive(Debug, Clone)]
struct OutageSink {
    outage: Arc<Outage>,
    last: connect::LastFailure,
}

impl bb8::ErrorSink<ConnectError> for OutageSink {
    fn sink(&self, error: ConnectError) {
        self.outage.failed(&error.to_string());
        self.last.set(&error);
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<ConnectError>> {
        Box::new(self.clone())
    }
}

/// Handle to Redis; cheap to clone.
#[derive(Clone)]
pub struct OrdinalStore {
    pool: bb8::Pool<Manager>,
    /// Redis going away and coming back, told once each.
    outage: Arc<Outage>,
    /// Where Redis is, for messages.
    target: connect::Target,
    /// The pool's last connection error.
    last_failure: connect::LastFailure,
}

/// One request to Redis that [`OrdinalStore::query`] can send again on
/// retry: a command, a pipeline or a script call.
trait Request: Sync {
    /// Sends it on `conn` (boxed: a future of a generic lifetime would not
    /// be known to be `Send`, rust-lang/rust#100013).
    fn send<'a, T: FromRedisValue + Send + 'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> BoxFuture<'a, RedisResult<T>>;
}

impl Request for redis::Cmd {
    fn send<'a, T: FromRedisValue + Send + 'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> BoxFuture<'a, RedisResult<T>> {
        Box::pin(self.query_async(conn))
    }
}

impl Request for redis::Pipeline {
    fn send<'a, T: FromRedisValue + Send + 'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> BoxFuture<'a, RedisResult<T>> {
        Box::pin(self.query_async(conn))
    }
}

impl Request for redis::ScriptInvocation<'_> {
    fn send<'a, T: FromRedisValue + Send + 'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> BoxFuture<'a, RedisResult<T>> {
        Box::pin(self.invoke_async(conn))
    }
}

impl OrdinalStore {
    /// Connects and pings; an unreachable Redis, or one that refuses the
    /// credentials, fails here, at start, within about 5 s (at once for
    /// credentials), saying why ([`Unreachable`]). `url` is `redis://`,
    /// `rediss://`, or for Redis behind Sentinel
    /// `redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT],…/MASTER[/DB]` or
    /// `rediss+sentinel://…`.
    pub async fn connect(url: &Secret) -> Result<OrdinalStore, StoreError> {
        let failed = |cause| StoreError::Connect {
            url: crate::redact::url(url.expose()),
            cause,
        };
        let endpoint = if sentinel::is_sentinel(url.expose()) {
            let parsed = sentinel::SentinelUrl::parse(url.expose()).map_err(|e| {
                failed(Unreachable::BadSentinelUrl {
                    problem: e.to_string(),
                })
            })?;
            Endpoint::Sentinel(sentinel::Sentinels::new(parsed))
        } else {
            let client =
                redis::Client::open(url.expose()).map_err(|_| failed(Unreachable::BadUrl))?;
            Endpoint::Direct(client)
        };
        let target = connect::Target::of(&endpoint);
        let first = connect::first_connection(&endpoint, &target)
            .await
            .map_err(failed)?;
        let manager = Manager { endpoint };
        let outage = Arc::new(Outage::new("redis"));
        let last_failure = connect::LastFailure::default();
        let pool = bb8::Pool::builder()
            .max_size(8)
            .connection_timeout(connect::CONNECT_TIMEOUT)
            // The pool retries connecting inside `get` until its timeout, so
            // a short outage surfaces only here.
            .error_sink(Box::new(OutageSink {
                outage: outage.clone(),
                last: last_failure.clone(),
            }))
            .build_unchecked(manager);
        // The pool makes its own connections, with the client's default
        // timeouts; this one only proved that Redis answers.
        drop(first);
        Ok(OrdinalStore {
            pool,
            outage,
            target,
            last_failure,
        })
    }

    /// The pool's error for `operation`, with the cause it hides (its last
    /// connection error), and whether retrying can help.
    fn pool_error(
        &self,
        operation: &'static str,
        e: bb8::RunError<ConnectError>,
    ) -> (StoreError, bool) {
        let cause = match e {
            bb8::RunError::User(e) => Some(self.target.classify(&e, connect::CONNECT_TIMEOUT)),
            bb8::RunError::TimedOut => self.last_failure.get(&self.target),
        };
        let permanent = cause.as_ref().is_some_and(Unreachable::is_permanent);
        let message = cause.map_or_else(
            || format!("none within {} s", connect::CONNECT_TIMEOUT.as_secs()),
            |c| c.to_string(),
        );
        (StoreError::Pool { operation, message }, !permanent)
    }

    /// Sends `request` on a pooled connection, retrying connection-level
    /// failures with [`RETRY`]'s backoff (30 s in all); `operation` names
    /// it in errors and logs.
    async fn query<T: FromRedisValue + Send>(
        &self,
        operation: &'static str,
        request: &impl Request,
    ) -> Result<T, StoreError> {
        let mut retry = RETRY.start();
        loop {
            let err = match self.pool.get().await {
                Ok(mut conn) => match request.send(&mut conn.inner).await {
                    Ok(v) => {
                        self.outage.succeeded();
                        self.last_failure.clear();
                        return Ok(v);
                    }
                    Err(e) if is_stale(&e) => {
                        // The pool drops it on return: the retry connects
                        // anew, to wherever the master is now.
                        conn.stale = true;
                        StoreError::Operation {
                            operation,
                            source: e,
                        }
                    }
                    Err(e) if is_transient(&e) => StoreError::Operation {
                        operation,
                        source: e,
                    },
                    Err(e) => {
                        return Err(StoreError::Operation {
                            operation,
                            source: e,
                        })
                    }
                },
                Err(e) => match self.pool_error(operation, e) {
                    (err, true) => err,
                    (err, false) => return Err(err),
                },
            };
            self.outage.failed(&err.to_string());
            let Some(wait) = retry.failed() else {
                return Err(err);
            };
            tracing::debug!(operation, error = %err, "Redis unavailable, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Checks Redis answers (readiness): once, without retrying.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| self.pool_error("ping", e).0)?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn.inner)
            .await
            .map_err(|source| StoreError::Operation {
                operation: "ping",
                source,
            })
    }
}

/// The server cannot take writes where it stands, which a failover
/// explains: it was master and is now a replica (READONLY), it is a master
/// cut off from its replicas (NOREPLICAS, with `min-replicas-to-write`:
/// one of them may have been promoted), or a replica without its master
/// (MASTERDOWN). The connection must go; a new one asks again where the
/// master is.
fn is_stale(e: &redis::RedisError) -> bool {
    server_codes(e)
        .iter()
        .any(|code| matches!(code.as_str(), "READONLY" | "NOREPLICAS" | "MASTERDOWN"))
}

/// A failure worth retrying: the connection, not the request, went wrong,
/// or Redis is still loading its data after a restart (LOADING).
fn is_transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || server_codes(e).iter().any(|code| code == "LOADING")
}

/// The server's error codes in `e`: its own, or those of the failed
/// commands of a pipeline or a transaction (a `MULTI` whose writes met
/// `READONLY` or `NOREPLICAS` fails as `EXECABORT`, the causes inside).
fn server_codes(e: &redis::RedisError) -> Vec<String> {
    e.clone()
        .into_server_errors()
        .map_or_else(Vec::new, |errors| {
            errors.iter().map(|(_, e)| e.code().to_owned()).collect()
        })
}
