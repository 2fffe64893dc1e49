//! [`Lease`]: the Redis lease lock (`SIS_IMPORTER:LOCK`) that lets exactly
//! one of several importer replicas import at a time. The holder renews it
//! while a run is in progress; every ordinal commit checks it in the same
//! Lua script that writes the ordinal, so an instance that lost its lease
//! stops committing at once. A holder that dies stops renewing, and the
//! lease expires after its time to live for another replica to take. An
//! unexpired lease is taken back only from a holder that is provably gone
//! (SPEC §2): an earlier process of this instance on this host whose
//! process has ended, or a restarted container's predecessor that missed
//! its renewal (`holder`).

mod holder;

use std::time::Duration;

pub use holder::{Holder, Verdict};

use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::store::{LeaseGrant, OrdinalStore, StoreError};

/// Key of the lease (spelled in [`crate::store::keys`] with every other key).
pub use crate::store::keys::lease_key;

/// Who holds the lease now, if anyone.
pub async fn holder(store: &OrdinalStore) -> Result<Option<String>, StoreError> {
    store.lease_holder(&lease_key()).await
}

/// What works under the lease ([`Lease::while_held`]): told the lease
/// (key, owner) its commits must hold, and that it was lost.
pub trait LeaseUser {
    /// Commits must hold `lease` from now on (`None`: no check).
    fn hold(&self, lease: Option<(String, String)>);
    /// Another instance took the lease.
    fn lost(&self);
}

impl<T: LeaseUser + ?Sized> LeaseUser for std::sync::Arc<T> {
    fn hold(&self, lease: Option<(String, String)>) {
        (**self).hold(lease)
    }

    fn lost(&self) {
        (**self).lost()
    }
}

/// One process's claim on the lease.
#[derive(Clone)]
pub struct Lease {
    store: OrdinalStore,
    owner: String,
    /// This process, as the owner string names it.
    identity: Holder,
    ttl: Duration,
}

impl Lease {
    /// A lease for this process of instance `instance_id` (`INSTANCE_ID`,
    /// see `Config::instance_id`): owner `<id> (host <host>, pid
    /// <pid>@<pid namespace>, <random>)`.
    pub fn new(store: OrdinalStore, ttl: Duration, instance_id: &str) -> Lease {
        let identity = Holder::this_process(instance_id);
        let owner = identity.owner(&format!("{:08x}", rand::random::<u32>()));
        Lease {
            store,
            owner,
            identity,
            ttl,
        }
    }

    /// This process's owner string.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes the lease if free, or extends it if already ours (never from
    /// an earlier process of this instance: that is [`Lease::acquire`]'s).
    pub async fn try_acquire(&self) -> Result<bool, StoreError> {
        let grant = self
            .store
            .lease_acquire(&lease_key(), &self.owner, self.ttl, None)
            .await?;
        Ok(grant == LeaseGrant::Held)
    }

    /// Waits until the lease is ours, polling a third of its time to live,
    /// and saying once who holds it; false on shutdown. A holder that is
    /// provably gone loses it at once (see the module doc).
    pub async fn acquire(&self, shutdown: &mut Shutdown) -> bool {
        let mut told: Option<String> = None;
        // The lease's retry policy: poll at a third of its time to live
        // until it is ours or shutdown.
        let mut retry = RetryPolicy::every(self.ttl / 3).start();
        loop {
            let grant = self
                .store
                .lease_acquire(&lease_key(), &self.owner, self.ttl, None)
                .await;
            match grant {
                Ok(LeaseGrant::Held) => return true,
                Ok(LeaseGrant::Denied { holder }) => {
                    match self.take_back(&holder, shutdown).await {
                        Some(true) => return true,
                        Some(false) => {}
                        None => return false,
                    }
                    if told.as_deref() != Some(holder.as_str()) {
                        self.tell_waiting(&holder);
                        told = Some(holder);
                    }
                }
                Ok(LeaseGrant::Reclaimed { .. }) => return true,
                Err(e) => tracing::warn!(error = %e, "cannot check the import lease"),
            }
            let wait = retry.failed().unwrap_or(self.ttl / 3);
            tokio::select! {
                _ = shutdown.recv() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Takes the lease from `holder` if it is provably gone: `Some(true)`
    /// when taken, `Some(false)` when not, `None` on shutdown.
    async fn take_back(&self, holder: &str, shutdown: &mut Shutdown) -> Option<bool> {
        let proof = match self.identity.judge(holder, holder::running) {
            Verdict::Alive => return Some(false),
            Verdict::Gone => "its process has ended",
            Verdict::GoneIfNotRenewed => {
                if !self.missed_renewal(holder, shutdown).await? {
                    return Some(false);
                }
                "a restarted container's predecessor (this pid, another pid namespace) that did not renew it"
            }
        };
        let grant = self
            .store
            .lease_acquire(&lease_key(), &self.owner, self.ttl, Some(holder))
            .await;
        match grant {
            Ok(LeaseGrant::Reclaimed { from }) => {
                tracing::warn!(
                    this_process = %self.owner,
                    earlier = %from,
                    proof,
                    "took this instance's unexpired import lease back from an earlier process that is gone"
                );
                Some(true)
            }
            Ok(LeaseGrant::Held) => Some(true),
            Ok(LeaseGrant::Denied { .. }) => Some(false),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the import lease");
                Some(false)
            }
        }
    }

    /// Whether `holder` left the lease unrenewed for longer than a renewal
    /// interval (a live holder renews every third of the time to live);
    /// `None` on shutdown.
    async fn missed_renewal(&self, holder: &str, shutdown: &mut Shutdown) -> Option<bool> {
        let read = || async {
            match self.store.lease_left(&lease_key()).await {
                Ok(Some((h, left))) if h == holder => Some(left),
                _ => None,
            }
        };
        let before = read().await?;
        let margin = (self.ttl / 10).max(Duration::from_millis(500));
        let waited = self.ttl / 3 + margin;
        tracing::info!(holder, wait_secs = waited.as_secs_f64(), "the import lease is held under this process's pid in another pid namespace (a restarted container?): taking it back if it is not renewed meanwhile");
        tokio::select! {
            _ = shutdown.recv() => return None,
            _ = tokio::time::sleep(waited) => {}
        }
        let Some(after) = read().await else {
            return Some(false);
        };
        // Renewed: its time left went back up instead of running down.
        Some(after + waited <= before + margin / 2)
    }

    /// Says once who holds the lease while this process waits for it.
    fn tell_waiting(&self, holder: &str) {
        let same_instance =
            Holder::parse(holder).is_some_and(|h| h.instance == self.identity.instance);
        if same_instance {
            tracing::warn!(
                this_process = %self.owner,
                holder,
                "another live process of this INSTANCE_ID holds the import lease; waiting until it releases it or it expires (a daemon and `once` on one host, or two replicas sharing an id: give each replica its own INSTANCE_ID)"
            );
        } else {
            tracing::info!(
                this_process = %self.owner,
                holder,
                "another instance holds the import lease; waiting"
            );
        }
    }

    /// Renews the lease every third of its time to live until `stop`
    /// fires; if it was lost, logs loudly and calls `lost` (commits then
    /// fail by themselves).
    pub async fn keep(&self, mut stop: Shutdown, lost: impl Fn()) {
        loop {
            tokio::select! {
                _ = stop.recv() => return,
                _ = tokio::time::sleep(self.ttl / 3) => {}
            }
            match self.try_acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(owner = %self.owner, "import lease lost to another instance; commits are refused and no further service starts");
                    lost();
                    // Never take it back mid-run: the run is over for us.
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the import lease"),
            }
        }
    }

    /// Runs `work` with the lease already acquired: renews it meanwhile,
    /// makes `user`'s commits check it, and releases it afterwards.
    pub async fn while_held<T>(
        &self,
        user: &impl LeaseUser,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        user.hold(Some((lease_key(), self.owner.clone())));
        let (stop_keeping, keeping) = crate::shutdown::channel();
        let keeper = self.keep(keeping, || user.lost());
        let work = async {
            let out = work.await;
            stop_keeping.trigger();
            out
        };
        let (out, ()) = tokio::join!(work, keeper);
        user.hold(None);
        self.release().await;
        out
    }

    /// Gives the lease up if it is ours.
    pub async fn release(&self) {
        if let Err(e) = self.store.lease_release(&lease_key(), &self.owner).await {
            tracing::warn!(error = %e, "cannot release the import lease; it expires by itself");
        }
    }
}
