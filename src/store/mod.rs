//! All Redis state in one place (SPEC §5): committed ordinals, the
//! `_SCHEDULED`/`_UPDATED` window counters, the execution hash, URN caches,
//! dead letters, forbidden services and per-service run records.
//!
//! Every operation retries a short while on connection errors, so a Redis
//! restart mid-run costs a pause, not the run. The ordinal is only ever
//! written by one Lua script that refuses to move it backwards.

use std::collections::BTreeMap;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::catalogue::Service;
use crate::config::Secret;
use crate::retry::{Budget, RetryPolicy};

pub mod keys;

use keys::{attempt_key, dead_letter_key, dead_letter_seen_key, status_key, urn_cache_key};

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

/// A poison or too-large entity, kept for the operator (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Service id.
    pub service: String,
    /// Identity (`id`, or the composite identity of SISU-SHAPES.md).
    pub identity: Option<String>,
    /// `metadata.modificationOrdinal`, where present.
    pub modification_ordinal: Option<i64>,
    /// `poison` or `too_large`.
    pub reason: String,
    /// What the consumer said, or the sizes involved.
    pub detail: String,
    /// When, RFC 3339.
    pub time: String,
    /// The attempt that dead-lettered it.
    pub execution_hash: String,
    /// The chunk it was in (poison) or would have been in.
    pub chunk_id: Option<String>,
}

/// The latest attempt at a service, written before its first publish, so
/// that the attempt a crash or shutdown interrupts can be resumed under the
/// same execution hash and epoch (the same chunk ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Goes up by one with every new execution hash of the service.
    pub epoch: u64,
    /// The attempt's execution hash.
    pub execution_hash: String,
    /// The committed ordinal it started from.
    pub since: i64,
    /// Stream sequence of the last feedback message stored when it started
    /// (its feedback comes after); `None` when the stream does not capture
    /// feedback (nothing to recover from).
    pub feedback_after: Option<u64>,
    /// False once it completed or was abandoned after a panic timeout:
    /// nothing to resume.
    pub open: bool,
}

/// The last run of one service, as `status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Start, RFC 3339.
    pub started: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// `ok`, `failed`, `forbidden`, `interrupted` or `skipped`.
    pub result: String,
    /// The error, if any (never a secret).
    pub error: Option<String>,
    /// Entities committed in that run.
    pub entities: u64,
}

/// Tells the Redis [`Outage`](crate::outage::Outage) of the pool's own
/// connection failures.
#[derive(Debug, Clone)]
struct OutageSink(std::sync::Arc<crate::outage::Outage>);

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
    outage: std::sync::Arc<crate::outage::Outage>,
}

type Conn<'a> = bb8::PooledConnection<'a, RedisConnectionManager>;

impl OrdinalStore {
    /// Connects and pings; an unreachable Redis fails here, at start.
    pub async fn connect(url: &Secret) -> Result<OrdinalStore, StoreError> {
        let connect_err = |source| StoreError::Connect {
            url: crate::redact::url(url.expose()),
            source,
        };
        let manager = RedisConnectionManager::new(url.expose()).map_err(connect_err)?;
        let outage = std::sync::Arc::new(crate::outage::Outage::new("redis"));
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

    /// Runs `op` with a pooled connection, retrying connection-level
    /// failures with backoff for up to 30 s.
    async fn run<T, F>(&self, operation: &'static str, op: F) -> Result<T, StoreError>
    where
        F: for<'c> Fn(&'c mut Conn<'_>) -> futures::future::BoxFuture<'c, redis::RedisResult<T>>,
    {
        let mut retry = RETRY.start();
        loop {
            let err = match self.pool.get().await {
                Ok(mut conn) => match op(&mut conn).await {
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

    /// Committed ordinal of a service (`None` when absent).
    pub async fn ordinal(&self, service: &Service) -> Result<Option<i64>, StoreError> {
        let key = service.ordinal_key.clone();
        let raw: Option<String> = self
            .run("read ordinal", |c| {
                let key = key.clone();
                Box::pin(async move { c.get(key).await })
            })
            .await?;
        // A value another program wrote that is not a number counts as 0
        // (import from the start) rather than stopping the importer.
        Ok(raw.map(|v| v.trim().parse().unwrap_or(0)))
    }

    /// Starts an attempt: the window counters go to 0, the execution hash
    /// is stored and published, and the attempt record written.
    pub async fn begin_attempt(
        &self,
        service: &Service,
        record: &AttemptRecord,
    ) -> Result<(), StoreError> {
        let (s, u, a) = (
            service.scheduled_key(),
            service.updated_key(),
            attempt_key(&service.id),
        );
        let h = record.execution_hash.clone();
        let fields = [
            ("epoch", record.epoch.to_string()),
            ("execution_hash", h.clone()),
            ("since", record.since.to_string()),
            (
                "feedback_after",
                record
                    .feedback_after
                    .map_or(String::new(), |n| n.to_string()),
            ),
            ("open", u8::from(record.open).to_string()),
        ];
        self.run("begin attempt", |c| {
            let (s, u, a, h, fields) = (s.clone(), u.clone(), a.clone(), h.clone(), fields.clone());
            Box::pin(async move {
                redis::pipe()
                    .atomic()
                    .set(&s, 0)
                    .ignore()
                    .set(&u, 0)
                    .ignore()
                    .set(keys::EXECUTION_HASH, &h)
                    .ignore()
                    .publish(keys::EXECUTION_HASH, &h)
                    .ignore()
                    .hset_multiple(&a, &fields)
                    .ignore()
                    .query_async::<()>(&mut **c)
                    .await
            })
        })
        .await
    }

    /// The service's latest attempt record, if any (one that cannot be
    /// read counts as none: the next attempt then starts afresh).
    pub async fn attempt_record(
        &self,
        service: &Service,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let key = attempt_key(&service.id);
        let fields: BTreeMap<String, String> = self
            .run("read attempt record", |c| {
                let key = key.clone();
                Box::pin(async move { c.hgetall(key).await })
            })
            .await?;
        let get = |name: &str| fields.get(name).map(String::as_str);
        Ok((|| {
            Some(AttemptRecord {
                epoch: get("epoch")?.parse().ok()?,
                execution_hash: get("execution_hash")?.to_owned(),
                since: get("since")?.parse().ok()?,
                feedback_after: get("feedback_after")?.parse().ok(),
                open: get("open")? == "1",
            })
        })())
    }

    /// Marks the service's attempt record as nothing to resume.
    pub async fn close_attempt(&self, service: &Service) -> Result<(), StoreError> {
        let key = attempt_key(&service.id);
        self.run("close attempt record", |c| {
            let key = key.clone();
            Box::pin(async move { c.hset(key, "open", "0").await })
        })
        .await
    }

    /// Adds to `_SCHEDULED` (published) and `_UPDATED` (acknowledged).
    pub async fn add_window(
        &self,
        service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> Result<(), StoreError> {
        if scheduled == 0 && updated == 0 {
            return Ok(());
        }
        let (s, u) = (service.scheduled_key(), service.updated_key());
        self.run("count window", |c| {
            let (s, u) = (s.clone(), u.clone());
            Box::pin(async move {
                redis::pipe()
                    .incr(&s, scheduled)
                    .ignore()
                    .incr(&u, updated)
                    .ignore()
                    .query_async::<()>(&mut **c)
                    .await
            })
        })
        .await
    }

    /// Commits `ordinal` for a fully acknowledged batch of `entities`:
    /// the ordinal moves forward only, and both window counters drop by the
    /// batch. With a `lease`, the write happens only while that lease is
    /// held. Returns the committed ordinal after the call.
    pub async fn commit(
        &self,
        service: &Service,
        ordinal: i64,
        entities: u64,
        lease: Option<(&str, &str)>,
    ) -> Result<i64, StoreError> {
        let keys = [
            service.ordinal_key.clone(),
            service.scheduled_key(),
            service.updated_key(),
            lease
                .map(|(k, _)| k.to_owned())
                .unwrap_or_else(keys::lease_key),
        ];
        let owner = lease.map(|(_, o)| o.to_owned()).unwrap_or_default();
        let result: i64 = self
            .run("commit ordinal", |c| {
                let (keys, owner) = (keys.clone(), owner.clone());
                Box::pin(async move {
                    COMMIT_SCRIPT
                        .key(&keys[0])
                        .key(&keys[1])
                        .key(&keys[2])
                        .key(&keys[3])
                        .arg(ordinal)
                        .arg(entities)
                        .arg(owner)
                        .invoke_async(&mut **c)
                        .await
                })
            })
            .await?;
        if result < 0 {
            return Err(StoreError::LeaseLost {
                operation: "commit ordinal",
            });
        }
        Ok(result)
    }

    /// The keys `reset` deletes. The dead letters' "seen" set goes too, so
    /// a re-import records a still-poisonous entity again; so does the
    /// attempt record, so the re-import is never a resumption (its
    /// execution hash is new, and with it every `Nats-Msg-Id`).
    fn reset_keys(service: &Service) -> [String; 5] {
        [
            service.ordinal_key.clone(),
            service.scheduled_key(),
            service.updated_key(),
            dead_letter_seen_key(&service.id),
            attempt_key(&service.id),
        ]
    }

    /// Deletes a service's ordinal and window counters (re-import from 0).
    pub async fn reset(&self, service: &Service) -> Result<(), StoreError> {
        let keys = Self::reset_keys(service);
        self.run("reset ordinal", |c| {
            let keys = keys.clone();
            Box::pin(async move { c.del(&keys[..]).await })
        })
        .await
    }

    /// Like [`OrdinalStore::reset`], but only while nobody holds the lease
    /// `lease_key`, checked and done in one script: a run in progress would
    /// commit over the reset. `Some(holder)` when refused.
    pub async fn reset_unless_leased(
        &self,
        service: &Service,
        lease_key: &str,
    ) -> Result<Option<String>, StoreError> {
        let keys = Self::reset_keys(service);
        let lease_key = lease_key.to_owned();
        self.run("reset ordinal", |c| {
            let (keys, lease_key) = (keys.clone(), lease_key.clone());
            Box::pin(async move {
                let mut invocation = RESET_SCRIPT.key(lease_key);
                invocation.key(&keys[..]);
                invocation.invoke_async(&mut **c).await
            })
        })
        .await
    }

    /// Records a dead letter once: the same entity version (identity and
    /// ordinal) found again by a retried attempt is not listed twice.
    /// Returns whether it was new.
    pub async fn dead_letter(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let key = dead_letter_key(&letter.service);
        let seen = dead_letter_seen_key(&letter.service);
        let member = format!(
            "{}@{}",
            letter.identity.as_deref().unwrap_or("?"),
            letter
                .modification_ordinal
                .map_or("?".into(), |o| o.to_string())
        );
        let body = serde_json::to_string(letter).expect("dead letter serializes");
        let added: i64 = self
            .run("record dead letter", |c| {
                let (key, seen, member, body) =
                    (key.clone(), seen.clone(), member.clone(), body.clone());
                Box::pin(async move {
                    DEAD_LETTER_SCRIPT
                        .key(key)
                        .key(seen)
                        .arg(member)
                        .arg(body)
                        .invoke_async(&mut **c)
                        .await
                })
            })
            .await?;
        Ok(added == 1)
    }

    /// Number of dead letters of a service.
    pub async fn dead_letter_count(&self, service: &str) -> Result<u64, StoreError> {
        let key = dead_letter_key(service);
        self.run("count dead letters", |c| {
            let key = key.clone();
            Box::pin(async move { c.llen(key).await })
        })
        .await
    }

    /// The newest `limit` dead letters of a service, oldest first.
    pub async fn dead_letters(
        &self,
        service: &str,
        limit: isize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let key = dead_letter_key(service);
        let raw: Vec<String> = self
            .run("read dead letters", |c| {
                let key = key.clone();
                Box::pin(async move { c.lrange(key, -limit, -1).await })
            })
            .await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    /// A cached URN code-book answer.
    pub async fn cached(&self, url: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = urn_cache_key(url);
        self.run("read URN cache", |c| {
            let key = key.clone();
            Box::pin(async move { c.get(key).await })
        })
        .await
    }

    /// Caches a URN code-book answer under its URL for `ttl`.
    pub async fn cache(&self, url: &str, body: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let (key, body) = (urn_cache_key(url), body.to_vec());
        self.run("write URN cache", |c| {
            let (key, body) = (key.clone(), body.clone());
            Box::pin(async move { c.set_ex(key, body, ttl.as_secs()).await })
        })
        .await
    }

    /// Marks or clears a service as forbidden.
    pub async fn set_forbidden(&self, service: &str, forbidden: bool) -> Result<(), StoreError> {
        let member = service.to_owned();
        self.run("record forbidden", |c| {
            let member = member.clone();
            Box::pin(async move {
                if forbidden {
                    c.sadd(keys::FORBIDDEN, member).await
                } else {
                    c.srem(keys::FORBIDDEN, member).await
                }
            })
        })
        .await
    }

    /// Clears the forbidden set (a new process tries every service again).
    pub async fn clear_forbidden(&self) -> Result<(), StoreError> {
        self.run("clear forbidden", |c| {
            Box::pin(async move { c.del(keys::FORBIDDEN).await })
        })
        .await
    }

    /// Services marked forbidden.
    pub async fn forbidden(&self) -> Result<Vec<String>, StoreError> {
        self.run("read forbidden", |c| {
            Box::pin(async move { c.smembers(keys::FORBIDDEN).await })
        })
        .await
    }

    /// Stores a service's last-run record.
    pub async fn record_run(&self, service: &str, record: &RunRecord) -> Result<(), StoreError> {
        let (key, body) = (
            status_key(service),
            serde_json::to_string(record).expect("serializes"),
        );
        self.run("record run", |c| {
            let (key, body) = (key.clone(), body.clone());
            Box::pin(async move { c.set(key, body).await })
        })
        .await
    }

    /// Stores the whole run's summary fields.
    pub async fn record_last_run(
        &self,
        fields: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let pairs: Vec<(String, String)> = fields.clone().into_iter().collect();
        self.run("record last run", |c| {
            let pairs = pairs.clone();
            Box::pin(async move { c.hset_multiple(keys::LAST_RUN, &pairs).await })
        })
        .await
    }

    /// Everything `status` shows about one service, in one round trip.
    pub async fn service_status(&self, service: &Service) -> Result<ServiceState, StoreError> {
        let keys = [
            service.ordinal_key.clone(),
            service.scheduled_key(),
            service.updated_key(),
            status_key(&service.id),
            dead_letter_key(&service.id),
        ];
        let (ordinal, scheduled, updated, record, dead): (
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            u64,
        ) = self
            .run("read status", |c| {
                let keys = keys.clone();
                Box::pin(async move {
                    redis::pipe()
                        .get(&keys[0])
                        .get(&keys[1])
                        .get(&keys[2])
                        .get(&keys[3])
                        .llen(&keys[4])
                        .query_async(&mut **c)
                        .await
                })
            })
            .await?;
        Ok(ServiceState {
            ordinal: ordinal.map(|v| v.trim().parse().unwrap_or(0)),
            scheduled: scheduled.unwrap_or(0),
            updated: updated.unwrap_or(0),
            last_run: record.and_then(|r| serde_json::from_str(&r).ok()),
            dead_letters: dead,
        })
    }

    /// Takes the lease `key` for `owner` if it is free, or extends it if
    /// `owner` holds it, or, with `reclaim`, takes it from a holder whose
    /// owner string starts with `reclaim` (an earlier process of the same
    /// instance).
    pub async fn lease_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Duration,
        reclaim: Option<&str>,
    ) -> Result<LeaseGrant, StoreError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        let reclaim = reclaim.unwrap_or("").to_owned();
        let (code, holder): (i64, String) = self
            .run("acquire lease", |c| {
                let (key, owner, reclaim) = (key.clone(), owner.clone(), reclaim.clone());
                Box::pin(async move {
                    LEASE_SCRIPT
                        .key(key)
                        .arg(owner)
                        .arg(ttl.as_millis() as u64)
                        .arg(reclaim)
                        .invoke_async(&mut **c)
                        .await
                })
            })
            .await?;
        Ok(match code {
            1 => LeaseGrant::Held,
            2 => LeaseGrant::Reclaimed { from: holder },
            _ => LeaseGrant::Denied { holder },
        })
    }

    /// Who holds the lease `key` now, if anyone.
    pub async fn lease_holder(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.run("read lease", |c| {
            let key = key.clone();
            Box::pin(async move { redis::cmd("GET").arg(key).query_async(&mut **c).await })
        })
        .await
    }

    /// Deletes the lease `key` if `owner` holds it.
    pub async fn lease_release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.run("release lease", |c| {
            let (key, owner) = (key.clone(), owner.clone());
            Box::pin(async move {
                RELEASE_SCRIPT
                    .key(key)
                    .arg(owner)
                    .invoke_async(&mut **c)
                    .await
            })
        })
        .await
    }

    /// When the last whole run finished (RFC 3339), if any.
    pub async fn last_run_finished(&self) -> Result<Option<String>, StoreError> {
        self.run("read last run", |c| {
            Box::pin(async move { c.hget(keys::LAST_RUN, "finished_at").await })
        })
        .await
    }

    /// Checks Redis answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
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

    /// The pool, for the lease lock.
    pub fn pool(&self) -> &bb8::Pool<RedisConnectionManager> {
        &self.pool
    }
}

/// What Redis holds about one service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceState {
    /// Committed ordinal.
    pub ordinal: Option<i64>,
    /// `_SCHEDULED`.
    pub scheduled: i64,
    /// `_UPDATED`.
    pub updated: i64,
    /// Last run record.
    pub last_run: Option<RunRecord>,
    /// Number of dead letters.
    pub dead_letters: u64,
}

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

/// Commits an acknowledged batch (`lua/commit.lua`).
static COMMIT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua/commit.lua")));

/// Appends a dead letter once per entity version (`lua/dead_letter.lua`).
static DEAD_LETTER_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua/dead_letter.lua")));

/// What [`OrdinalStore::lease_acquire`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The lease is the caller's (it was free, expired or already its).
    Held,
    /// Taken from an earlier process of the same instance, `from`.
    Reclaimed { from: String },
    /// Another instance holds it.
    Denied { holder: String },
}

/// Takes, extends or reclaims the lease (`lua/lease.lua`).
static LEASE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua/lease.lua")));

/// Resets unless the lease is held (`lua/reset.lua`).
static RESET_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua/reset.lua")));

/// Deletes the lease if it is the caller's (`lua/release.lua`).
static RELEASE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua/release.lua")));

impl crate::pipeline::ports::CursorStore for OrdinalStore {
    fn add_window(
        &self,
        service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> futures::future::BoxFuture<'static, Result<(), StoreError>> {
        let (store, service) = (self.clone(), service.clone());
        Box::pin(async move { store.add_window(&service, scheduled, updated).await })
    }

    fn dead_letter(
        &self,
        letter: DeadLetter,
    ) -> futures::future::BoxFuture<'static, Result<bool, StoreError>> {
        let store = self.clone();
        Box::pin(async move { store.dead_letter(&letter).await })
    }

    fn commit(
        &self,
        service: &Service,
        ordinal: i64,
        entities: u64,
        lease: Option<(String, String)>,
    ) -> futures::future::BoxFuture<'static, Result<i64, StoreError>> {
        let (store, service) = (self.clone(), service.clone());
        Box::pin(async move {
            let lease = lease.as_ref().map(|(k, o)| (k.as_str(), o.as_str()));
            store.commit(&service, ordinal, entities, lease).await
        })
    }
}
