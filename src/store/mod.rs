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
//!
//! Every operation is one request (a command, a pipeline or a script call)
//! sent by `OrdinalStore::query`, which retries a short while on
//! connection errors, so a Redis restart mid-run costs a pause, not the run.
//! The ordinal is only ever written by one Lua script that refuses to move
//! it backwards.

mod cache;
mod cursor;
mod dead_letters;
pub mod keys;
mod lease;
mod port;
mod records;
mod runs;

use std::sync::Arc;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use futures::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisResult};

use crate::config::Secret;
use crate::outage::Outage;
use crate::retry::{Budget, RetryPolicy};

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
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// The URL without its password.
        url: String,
        /// The cause.
        source: redis::RedisError,
    },
    /// An operation failed (after retries).
    #[error("Redis {operation} failed: {source}")]
    Operation {
        /// What was being done.
        operation: &'static str,
        /// The cause.
        source: redis::RedisError,
    },
    /// A pooled connection could not be had (after retries).
    #[error("Redis {operation} failed: no connection ({message})")]
    Pool {
        /// What was being done.
        operation: &'static str,
        /// The pool's error.
        message: String,
    },
    /// The lease was lost, so the write was refused.
    #[error("Redis {operation} refused: this instance no longer holds the import lease")]
    LeaseLost {
        /// What was being done.
        operation: &'static str,
    },
}

/// Tells the Redis [`Outage`] of the pool's own connection failures.
#[derive(Debug, Clone)]
struct OutageSink(Arc<Outage>);

impl bb8::ErrorSink<redis::RedisError> for OutageSink {
    fn sink(&self, error: redis::RedisError) {
        self.0.failed(&error.to_string());
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<redis::RedisError>> {
        Box::new(self.clone())
    }
}

/// Handle to Redis; cheap to clone.
#[derive(Clone)]
pub struct OrdinalStore {
    pool: bb8::Pool<RedisConnectionManager>,
    /// Redis going away and coming back, told once each.
    outage: Arc<Outage>,
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
    /// Connects and pings; an unreachable Redis fails here, at start.
    pub async fn connect(url: &Secret) -> Result<OrdinalStore, StoreError> {
        let connect_err = |source| StoreError::Connect {
            url: crate::redact::url(url.expose()),
            source,
        };
        let manager = RedisConnectionManager::new(url.expose()).map_err(connect_err)?;
        let outage = Arc::new(Outage::new("redis"));
        let pool = bb8::Pool::builder()
            .max_size(8)
            .connection_timeout(Duration::from_secs(5))
            // The pool retries connecting inside `get` until its timeout, so
            // a short outage surfaces only here.
            .error_sink(Box::new(OutageSink(outage.clone())))
            .build(manager)
            .await
            .map_err(connect_err)?;
        let store = OrdinalStore { pool, outage };
        let mut conn = store.pool.get().await.map_err(|e| match e {
            bb8::RunError::User(source) => connect_err(source),
            bb8::RunError::TimedOut => {
                connect_err(redis::RedisError::from((redis::ErrorKind::Io, "timed out")))
            }
        })?;
        redis::cmd("PING")
            .query_async::<()>(&mut *conn)
            .await
            .map_err(connect_err)?;
        drop(conn);
        Ok(store)
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
                Ok(mut conn) => match request.send(&mut conn).await {
                    Ok(v) => {
                        self.outage.succeeded();
                        return Ok(v);
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
                Err(e) => StoreError::Pool {
                    operation,
                    message: e.to_string(),
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
        let mut conn = self.pool.get().await.map_err(|e| StoreError::Pool {
            operation: "ping",
            message: e.to_string(),
        })?;
        redis::cmd("PING")
            .query_async::<()>(&mut *conn)
            .await
            .map_err(|source| StoreError::Operation {
                operation: "ping",
                source,
            })
    }
}

/// A failure worth retrying: the connection, not the request, went wrong
/// (or Redis is still loading its data after a restart).
fn is_transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
        )
}
