//! A service's cursor: the committed ordinal, the `_SCHEDULED`/`_UPDATED`
//! window counters, the attempt record, and reset.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use redis::{Cmd, Script};

use super::keys::{self, attempt_key, dead_letter_seen_key, lease_key};
use super::records::parse_ordinal;
use super::{AttemptRecord, OrdinalStore, StoreError};
use crate::catalogue::Service;

static COMMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/commit.lua")));
static RESET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/reset.lua")));

impl OrdinalStore {
    /// Committed ordinal of a service (`None` when absent; not a number: 0).
    pub async fn ordinal(&self, service: &Service) -> Result<Option<i64>, StoreError> {
        let raw: Option<String> = self
            .query("read ordinal", &Cmd::get(&service.ordinal_key))
            .await?;
        Ok(raw.as_deref().map(parse_ordinal))
    }

    /// Starts an attempt: the window counters go to 0, the execution hash
    /// is stored and published (consumers that keep one current hash learn
    /// it from the channel), and the attempt record written, in one
    /// transaction. Returns how many subscribers the hash reached.
    pub(crate) async fn begin_attempt(
        &self,
        service: &Service,
        record: &AttemptRecord,
    ) -> Result<u64, StoreError> {
        let hash = &record.execution_hash;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(keys::scheduled_key(&service.ordinal_key), 0)
            .ignore()
            .set(keys::updated_key(&service.ordinal_key), 0)
            .ignore()
            .set(keys::EXECUTION_HASH, hash)
            .ignore()
            .publish(keys::EXECUTION_HASH, hash)
            .hset_multiple(attempt_key(&service.id), &record.to_fields())
            .ignore();
        let (receivers,): (u64,) = self.query("begin attempt", &pipe).await?;
        Ok(receivers)
    }

    /// Stores and publishes `hash` as the current execution hash, and
    /// nothing else: a dead-letter replay's start (no window counters, no
    /// attempt record). Returns how many subscribers it reached.
    pub(crate) async fn publish_execution_hash(&self, hash: &str) -> Result<u64, StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(keys::EXECUTION_HASH, hash)
            .ignore()
            .publish(keys::EXECUTION_HASH, hash);
        let (receivers,): (u64,) = self.query("publish execution hash", &pipe).await?;
        Ok(receivers)
    }

    /// The current execution hash (`CURRENT_EXECUTION_HASH`), if any.
    pub(crate) async fn execution_hash(&self) -> Result<Option<String>, StoreError> {
        self.query("read execution hash", &Cmd::get(keys::EXECUTION_HASH))
            .await
    }

    /// The service's latest attempt record, if any (one that cannot be
    /// read counts as none: the next attempt then starts afresh).
    pub(crate) async fn attempt_record(
        &self,
        service: &Service,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let fields: BTreeMap<String, String> = self
            .query(
                "read attempt record",
                &Cmd::hgetall(attempt_key(&service.id)),
            )
            .await?;
        Ok(AttemptRecord::from_fields(&fields))
    }

    /// Marks the service's attempt record as nothing to resume.
    pub(crate) async fn close_attempt(&self, service: &Service) -> Result<(), StoreError> {
        let close = Cmd::hset(attempt_key(&service.id), "open", "0");
        self.query("close attempt record", &close).await
    }

    /// Adds to `_SCHEDULED` (published) and `_UPDATED` (acknowledged).
    pub(crate) async fn add_window(
        &self,
        service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> Result<(), StoreError> {
        if scheduled == 0 && updated == 0 {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.incr(keys::scheduled_key(&service.ordinal_key), scheduled)
            .ignore()
            .incr(keys::updated_key(&service.ordinal_key), updated)
            .ignore();
        self.query("count window", &pipe).await
    }

    /// Commits `ordinal` for a fully acknowledged batch of `entities`:
    /// the ordinal moves forward only, and both window counters drop by the
    /// batch. With a `lease` (key, owner), the write happens only while
    /// that lease is held. Returns the committed ordinal after the call.
    pub async fn commit(
        &self,
        service: &Service,
        ordinal: i64,
        entities: u64,
        lease: Option<(&str, &str)>,
    ) -> Result<i64, StoreError> {
        // Without a lease the script ignores KEYS[4]; it is still named, so
        // the script always gets four keys.
        let (lease_key, owner) = match lease {
            Some((key, owner)) => (key.to_owned(), owner),
            None => (lease_key(), ""),
        };
        let mut call = COMMIT.prepare_invoke();
        call.key(&service.ordinal_key)
            .key(keys::scheduled_key(&service.ordinal_key))
            .key(keys::updated_key(&service.ordinal_key))
            .key(lease_key)
            .arg(ordinal)
            .arg(entities)
            .arg(owner);
        let result: i64 = self.query("commit ordinal", &call).await?;
        if result < 0 {
            return Err(StoreError::LeaseLost {
                operation: "commit ordinal",
            });
        }
        Ok(result)
    }

    /// The keys `reset` deletes: the ordinal (first) and both window
    /// counters. The dead letters' "seen" set goes too, so a re-import
    /// records a still-poisonous entity again; so does the attempt record,
    /// so the re-import is never a resumption (its chunk ids are new, and
    /// with them every `Nats-Msg-Id`). The dead-letter list itself is kept.
    fn reset_keys(service: &Service) -> [String; 5] {
        [
            service.ordinal_key.clone(),
            keys::scheduled_key(&service.ordinal_key),
            keys::updated_key(&service.ordinal_key),
            dead_letter_seen_key(&service.id),
            attempt_key(&service.id),
        ]
    }

    /// Deletes the keys `reset_keys` names: the next run imports the
    /// service from 0, afresh.
    pub async fn reset(&self, service: &Service) -> Result<(), StoreError> {
        self.reset_to(service, None).await
    }

    /// Like [`OrdinalStore::reset`], then sets the ordinal to `to` when
    /// given: the next run imports what comes after it.
    pub async fn reset_to(&self, service: &Service, to: Option<i64>) -> Result<(), StoreError> {
        let keys = Self::reset_keys(service);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&keys[..]).ignore();
        if let Some(ordinal) = to {
            pipe.set(&service.ordinal_key, ordinal).ignore();
        }
        self.query("reset ordinal", &pipe).await
    }

    /// Like [`OrdinalStore::reset`], but only while nobody holds the lease
    /// `lease_key`, checked and done in one script: a run in progress would
    /// commit over the reset. `Some(holder)` when refused.
    pub async fn reset_unless_leased(
        &self,
        service: &Service,
        lease_key: &str,
        to: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        let keys = Self::reset_keys(service);
        let mut call = RESET.key(lease_key);
        call.key(&keys[..])
            .arg(to.map_or(String::new(), |o| o.to_string()));
        self.query("reset ordinal", &call).await
    }
}
