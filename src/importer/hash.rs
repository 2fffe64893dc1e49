//! One execution hash for a whole run, shared by its services: consumers
//! that keep one current hash (importer-mankeli) drop chunks of any other,
//! so services side by side must not each have their own. It changes
//! between runs, and after a panic timeout when no other service is under
//! way (SPEC §2's new hash); with others under way the retry gets a new
//! epoch (new chunk ids) under the same hash instead.

use super::{new_execution_hash, Importer};
use crate::pipeline::core::FeedbackForm;

/// The run's hash and the services importing under it.
#[derive(Debug, Default)]
pub(super) struct RunHash {
    /// The hash attempts start under.
    hash: String,
    /// Services of the run importing now.
    in_flight: usize,
    /// The hash this process last published on `CURRENT_EXECUTION_HASH`.
    published: Option<String>,
}

/// After a new hash reached consumers, how long the first publish waits so
/// that they have taken it in before its chunks arrive (a consumer that
/// keeps one hash acks a chunk of another without feedback).
const HASH_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

impl Importer {
    /// Chooses the run's execution hash: the current one when it belongs to
    /// an interrupted run that one of `services` can resume (its attempt
    /// record is open under it; seed-form services never resume, their
    /// feedback cannot be matched to chunks), else a new one.
    pub(super) async fn begin_run_hash(&self, services: &[crate::catalogue::Service]) {
        let current = self.io.store.execution_hash().await.ok().flatten();
        let mut resumable = false;
        if let Some(current) = &current {
            for service in services {
                if self.reporter.known_form(&service.id) == FeedbackForm::Seed {
                    continue;
                }
                if let Ok(Some(record)) = self.io.store.attempt_record(service).await {
                    if record.open && record.execution_hash == *current {
                        resumable = true;
                        break;
                    }
                }
            }
        }
        let hash = match current {
            Some(current) if resumable => current,
            _ => new_execution_hash(),
        };
        let mut run = self.run.hash.lock().unwrap_or_else(|e| e.into_inner());
        run.hash = hash;
        run.in_flight = 0;
    }

    /// A service of the run starts importing.
    pub(super) fn service_entered(&self) {
        let mut run = self.run.hash.lock().unwrap_or_else(|e| e.into_inner());
        run.in_flight += 1;
    }

    /// A service of the run is done.
    pub(super) fn service_left(&self) {
        let mut run = self.run.hash.lock().unwrap_or_else(|e| e.into_inner());
        run.in_flight = run.in_flight.saturating_sub(1);
    }

    /// The hash an attempt starts under. A retry (after a panic timeout or
    /// a feedback failure) gets a new hash when no other service is under
    /// way (see the module doc).
    pub(super) fn attempt_hash(&self, retry: bool) -> String {
        let mut run = self.run.hash.lock().unwrap_or_else(|e| e.into_inner());
        if run.hash.is_empty() || (retry && run.in_flight <= 1) {
            run.hash = new_execution_hash();
        }
        run.hash.clone()
    }

    /// `hash` was published and reached `receivers` subscribers: when it is
    /// new to them, give them [`HASH_SETTLE`] to take it in.
    pub(super) async fn hash_published(&self, hash: &str, receivers: u64) {
        let new = {
            let mut run = self.run.hash.lock().unwrap_or_else(|e| e.into_inner());
            let new = run.published.as_deref() != Some(hash);
            run.published = Some(hash.to_owned());
            new
        };
        if new && receivers > 0 {
            tokio::time::sleep(HASH_SETTLE).await;
        }
    }
}
