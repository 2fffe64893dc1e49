//! [`Lease`]: the Redis lease lock (`SIS_IMPORTER:LOCK`) that lets exactly
//! one of several importer replicas import at a time. The holder renews it
//! while a run is in progress; every ordinal commit checks it in the same
//! Lua script that writes the ordinal, so an instance that lost its lease
//! stops committing at once. A holder that dies stops renewing, and the
//! lease expires after its time to live for another replica to take; a
//! restart of the same instance (`INSTANCE_ID`) takes it back at once.

use std::time::Duration;

use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::store::{LeaseGrant, OrdinalStore, StoreError};

/// Key of the lease (spelled in [`crate::store::keys`] with every other key).
pub use crate::store::keys::lease_key;

/// Who holds the lease now, if anyone.
pub async fn holder(store: &OrdinalStore) -> Result<Option<String>, StoreError> {
    store.lease_holder(&lease_key()).await
}

/// One instance's claim on the lease.
#[derive(Clone)]
pub struct Lease {
    store: OrdinalStore,
    owner: String,
    /// The start of the owner string of every process of this instance.
    instance: String,
    ttl: Duration,
}

impl Lease {
    /// A lease for this process of instance `instance_id` (`INSTANCE_ID`,
    /// see `Config::instance_id`): owner `<id> (pid <pid>, <random>)`.
    pub fn new(store: OrdinalStore, ttl: Duration, instance_id: &str) -> Lease {
        let instance = format!("{instance_id} (");
        let owner = format!(
            "{instance}pid {}, {})",
            std::process::id(),
            &crate::pipeline::new_execution_hash()[..8]
        );
        Lease {
            store,
            owner,
            instance,
            ttl,
        }
    }

    /// This instance's owner string.
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

    /// Waits until the lease is ours, polling a third of its time to live;
    /// false on shutdown.
    pub async fn acquire(&self, shutdown: &mut Shutdown) -> bool {
        let mut told = false;
        // The lease's retry policy: poll at a third of its time to live
        // until it is ours or shutdown.
        let mut retry = RetryPolicy::every(self.ttl / 3).start();
        loop {
            let grant = self
                .store
                .lease_acquire(&lease_key(), &self.owner, self.ttl, Some(&self.instance))
                .await;
            match grant {
                Ok(LeaseGrant::Held) => return true,
                Ok(LeaseGrant::Reclaimed { from }) => {
                    tracing::warn!(
                        this_instance = %self.owner,
                        earlier = %from,
                        "took this instance's own unexpired import lease back from an earlier process (restarted?); if that process still runs, give each instance its own INSTANCE_ID"
                    );
                    return true;
                }
                Ok(LeaseGrant::Denied { holder }) if !told => {
                    tracing::info!(
                        this_instance = %self.owner,
                        holder = %holder,
                        "another instance holds the import lease; waiting"
                    );
                    told = true;
                }
                Ok(LeaseGrant::Denied { .. }) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check the import lease"),
            }
            let wait = retry.failed().unwrap_or(self.ttl / 3);
            tokio::select! {
                _ = shutdown.recv() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
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
    /// makes `importer`'s commits check it, and releases it afterwards.
    pub async fn while_held<T>(
        &self,
        importer: &crate::pipeline::Importer,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        importer.set_lease(Some((lease_key(), self.owner.clone())));
        let (stop_keeping, keeping) = crate::shutdown::channel();
        let keeper = self.keep(keeping, || importer.mark_lease_lost());
        let work = async {
            let out = work.await;
            stop_keeping.trigger();
            out
        };
        let (out, ()) = tokio::join!(work, keeper);
        importer.set_lease(None);
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
