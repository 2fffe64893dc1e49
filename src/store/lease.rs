//! The lease operations behind [`crate::lease::Lease`]: take or extend,
//! read, release, each on the key it is given.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Cmd, Script};

use super::{OrdinalStore, StoreError};

static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/lease.lua")));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/release.lua")));

/// What [`OrdinalStore::lease_acquire`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseGrant {
    /// The lease is the caller's (it was free, expired or already its).
    Held,
    /// Taken from an earlier process of the same instance, `from`.
    Reclaimed { from: String },
    /// Another instance holds it.
    Denied { holder: String },
}

impl OrdinalStore {
    /// Takes the lease `key` for `owner` if it is free, or extends it if
    /// `owner` holds it, or, with `reclaim`, takes it from the holder whose
    /// owner string is exactly `reclaim` (one the caller proved gone).
    pub(crate) async fn lease_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Duration,
        reclaim: Option<&str>,
    ) -> Result<LeaseGrant, StoreError> {
        let mut call = ACQUIRE.key(key);
        call.arg(owner)
            .arg(ttl.as_millis() as u64)
            .arg(reclaim.unwrap_or(""));
        let (code, holder): (i64, String) = self.query("acquire lease", &call).await?;
        Ok(match code {
            1 => LeaseGrant::Held,
            2 => LeaseGrant::Reclaimed { from: holder },
            _ => LeaseGrant::Denied { holder },
        })
    }

    /// Who holds the lease `key` now, if anyone.
    pub async fn lease_holder(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.query("read lease", &Cmd::get(key)).await
    }

    /// Who holds the lease `key` and how long it has left, if anyone.
    pub(crate) async fn lease_left(
        &self,
        key: &str,
    ) -> Result<Option<(String, Duration)>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.get(key).pttl(key);
        let (holder, left): (Option<String>, i64) = self.query("read lease", &pipe).await?;
        Ok(holder.map(|h| (h, Duration::from_millis(left.max(0) as u64))))
    }

    /// Deletes the lease `key` if `owner` holds it.
    pub(crate) async fn lease_release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let mut call = RELEASE.key(key);
        call.arg(owner);
        self.query("release lease", &call).await
    }
}
