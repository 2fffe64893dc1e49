//! The daemon: re-arms one-time services, runs at start and on the cron
//! schedule, never two runs at once, and on shutdown lets the current run
//! finish its grace period.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use chrono_tz::Tz;
use tokio::task::JoinHandle;

use super::Importer;
use crate::catalogue::Service;
use crate::lease::Lease;
use crate::shutdown::Shutdown;

/// Starts runs in the background; shared by the schedule and the admin API.
pub struct Daemon {
    importer: Arc<Importer>,
    services: Vec<Service>,
    shutdown: Shutdown,
    /// The replicas' lease; `None` imports without asking anyone.
    lease: Option<Lease>,
    /// The run in progress (or waiting for the lease), if any.
    current: Mutex<Option<JoinHandle<()>>>,
    /// Whether [`Daemon::prepare`] ran in this process.
    prepared: std::sync::atomic::AtomicBool,
}

impl Daemon {
    /// A daemon importing `services`.
    pub fn new(
        importer: Arc<Importer>,
        services: Vec<Service>,
        shutdown: Shutdown,
        lease: Option<Lease>,
    ) -> Arc<Daemon> {
        Arc::new(Daemon {
            importer,
            services,
            shutdown,
            lease,
            current: Mutex::new(None),
            prepared: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The importer.
    pub fn importer(&self) -> &Arc<Importer> {
        &self.importer
    }

    /// The replicas' lease, if this daemon uses one.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The services each run imports.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Whether a run of this daemon is in progress or waiting for the lease.
    pub(crate) fn is_busy(&self) -> bool {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().is_some_and(|h| !h.is_finished()) || self.importer.is_running()
    }

    /// Starts a run unless one is in progress; true if started.
    pub(crate) fn start_run(self: &Arc<Self>, why: &'static str) -> bool {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|h| !h.is_finished()) || self.importer.is_running() {
            tracing::warn!(
                trigger = why,
                "run skipped: the previous run is still in progress"
            );
            return false;
        }
        let this = Arc::clone(self);
        *current = Some(tokio::spawn(async move {
            match &this.lease {
                Some(lease) => this.run_holding(lease, why).await,
                None => this.run_now(why).await,
            }
        }));
        true
    }

    async fn run_now(&self, why: &'static str) {
        // Shared state is touched only by the lease holder: the first run
        // of this process re-arms, not its start-up (which may overlap
        // another replica's run).
        if !self
            .prepared
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            if let Err(e) = self.prepare().await {
                tracing::warn!(error = %e, "could not re-arm one-time services; trying again next run");
                self.prepared
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            }
        }
        tracing::info!(trigger = why, "starting run");
        if let Err(e) = self
            .importer
            .run(&self.services, self.shutdown.clone())
            .await
        {
            tracing::warn!(trigger = why, error = %e, "run not started");
        }
    }

    /// Waits for the lease, runs while renewing it, then releases it. A run
    /// another instance finished while this one waited is not repeated.
    async fn run_holding(&self, lease: &Lease, why: &'static str) {
        let store = &self.importer.io.store;
        // Unreadable either time: run rather than skip on a guess.
        let before = store.last_run_finished().await;
        let mut shutdown = self.shutdown.clone();
        if !lease.acquire(&mut shutdown).await {
            return;
        }
        let after = store.last_run_finished().await;
        if matches!((&before, &after), (Ok(b), Ok(a)) if a != b) {
            tracing::info!(
                trigger = why,
                "another instance finished a run while this one waited; not repeating it"
            );
            lease.release().await;
            return;
        }
        lease.while_held(&self.importer, self.run_now(why)).await;
    }

    /// Re-arms one-time services and clears the forbidden list: a new
    /// process tries everything again.
    pub(crate) async fn prepare(&self) -> Result<(), crate::store::StoreError> {
        for service in self.services.iter().filter(|s| s.one_time) {
            self.importer.io.store.reset(service).await?;
        }
        self.importer.io.store.clear_forbidden().await?;
        tracing::info!(
            one_time = self.services.iter().filter(|s| s.one_time).count(),
            "one-time services re-armed"
        );
        Ok(())
    }

    /// Runs now, then at every tick of `schedule` in `tz`, until shutdown;
    /// then waits for the current run to end.
    pub async fn serve(self: Arc<Self>, schedule: cron::Schedule, tz: Tz) {
        let mut shutdown = self.shutdown.clone();
        self.start_run("start-up");
        loop {
            let Some(next) = schedule.upcoming(tz).next() else {
                tracing::warn!("the cron schedule has no future run");
                shutdown.recv().await;
                break;
            };
            let wait = (next.with_timezone(&Utc) - Utc::now())
                .to_std()
                .unwrap_or_default();
            tracing::debug!(next = %next, "next scheduled run");
            tokio::select! {
                _ = shutdown.recv() => break,
                _ = tokio::time::sleep(wait) => { self.start_run("cron"); }
            }
        }
        let current = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = current {
            tracing::info!("waiting for the current run to stop");
            let _ = handle.await;
        }
    }
}
