//! Replaying dead letters (`sis-importer dead-letters replay`, `POST
//! /dead-letters/{service}/replay`): the chosen letters' stored entities
//! go out again through the normal path, and the ones consumers now take
//! leave the list.
//!
//! A replay is one service's attempt (`AttemptKind::Replay`) whose only
//! batch is the stored entities, one per entity version, in ordinal order:
//! chunked, published under a fresh execution hash (stored and published
//! on `CURRENT_EXECUTION_HASH`, so consumers that keep one current hash
//! take its chunks), feedback joined, a failing chunk halved, a failing
//! lone entity dead-lettered again. It commits no ordinal and touches
//! neither `_SCHEDULED`/`_UPDATED` nor the attempt record. A replay with no
//! feedback progress for `PANIC_TIMEOUT` is tried again with a new hash, up
//! to `UPDATE_RETRY_LIMIT` attempts, as an import is.
//!
//! Only when an attempt completed is the list changed, in one step per
//! hundred entries: the versions that were delivered leave it (entries and
//! `:SEEN` members); the ones that failed again stay, once each. A crash,
//! a stop or a failure before that leaves the list as it was, so nothing
//! is lost (consumers may get an entity twice: they upsert). The caller
//! holds the import lease, and the importer's run lock is held throughout,
//! so a replay never overlaps a run.

use std::collections::HashSet;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use serde::Serialize;

use super::attempt::{AttemptEnd, AttemptKind};
use super::Importer;
use crate::catalogue::Service;
use crate::entity::Entity;
use crate::lease::Lease;
use crate::pipeline::core::AttemptFailure;
use crate::pipeline::ports::BatchSource;
use crate::pipeline::vocabulary::{Batch, FetchError};
use crate::shutdown::Shutdown;
use crate::store::{AttemptRecord, DeadLetter, StoreError};

mod plan;
use plan::Plan;

/// At most this many letters a replay did not send are named in its
/// report (all are counted).
const NAMED_SKIPPED: usize = 100;

/// Which dead letters of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// Every one.
    All,
    /// Those of one identity (every version).
    Identity(String),
}

impl Pick {
    /// Whether `letter` is one of them.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        match self {
            Pick::All => true,
            Pick::Identity(id) => letter.identity.as_deref() == Some(id.as_str()),
        }
    }
}

/// Why a replay did not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A run (or another replay) is in progress in this process.
    #[error("a run is in progress; replay the dead letters after it ends")]
    RunInProgress,
    /// Another instance holds the import lease: a run is in progress there.
    #[error("a run is in progress (import lease held by {holder}); replay the dead letters after it ends")]
    LeaseHeld {
        /// The lease's holder.
        holder: String,
    },
    /// `--id` names no dead letter of the service.
    #[error("no dead letter of {service} has identity {identity:?}{known}")]
    NoSuchIdentity {
        /// Service id.
        service: String,
        /// The identity asked for.
        identity: String,
        /// Some identities it has, e.g. `; it has: a, b`.
        known: String,
    },
    /// Redis failed (after retries).
    #[error("replaying dead letters: {0}")]
    Store(#[from] StoreError),
}

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayResult {
    /// An attempt completed: the list is settled.
    Completed,
    /// No chosen letter keeps its entity: nothing was sent.
    NothingToReplay,
    /// Stopped by shutdown: the list is as it was.
    Interrupted,
    /// Publishing, feedback or panic timeouts failed it: the list is as it was.
    Failed,
}

/// One dead letter in a replay's report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LetterNote {
    /// Identity.
    pub identity: Option<String>,
    /// `metadata.modificationOrdinal`.
    pub modification_ordinal: Option<i64>,
    /// Failed again: what the consumer said (or the sizes); not
    /// replayable: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl LetterNote {
    pub(crate) fn of(letter: &DeadLetter, detail: Option<String>) -> LetterNote {
        LetterNote {
            identity: letter.identity.clone(),
            modification_ordinal: letter.modification_ordinal,
            detail,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Service id.
    pub service: String,
    /// How it ended.
    pub result: ReplayResult,
    /// Why it failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's execution hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_hash: Option<String>,
    /// Entity versions consumers took: removed from the list.
    pub delivered: Vec<LetterNote>,
    /// Entity versions that failed again: kept, once each.
    pub failed_again: Vec<LetterNote>,
    /// Letters not sent: no entity kept (the first hundred; see
    /// `not_replayable_total`).
    pub not_replayable: Vec<LetterNote>,
    /// How many letters were not sent.
    pub not_replayable_total: usize,
}

impl ReplayReport {
    /// Whether every chosen letter was delivered.
    pub fn success(&self) -> bool {
        self.result == ReplayResult::Completed
            && self.failed_again.is_empty()
            && self.not_replayable_total == 0
    }
}

/// The stored entities as a source of one batch. Its `since` and
/// `greatestOrdinal` are 0, so its chunk ids (`<service>-<epoch>-0-0-…`)
/// are told apart from an import's at a glance.
struct ReplaySource {
    entities: Vec<Entity>,
}

impl BatchSource for ReplaySource {
    fn batches(
        &self,
        _: &Service,
        _: i64,
        _: u32,
    ) -> BoxStream<'static, Result<Batch, FetchError>> {
        let batch = Batch {
            since: 0,
            greatest_ordinal: 0,
            has_more: false,
            entities: self.entities.clone(),
            fetched_in: Duration::ZERO,
        };
        futures::stream::iter([Ok(batch)]).boxed()
    }
}

impl Importer {
    /// Replays the dead letters of `service` that `pick` chooses (see the
    /// module doc), holding `lease` meanwhile (renewed, released at the
    /// end; `None`: no replicas to keep out). Refused at once while a run
    /// of this process is in progress or another instance holds the lease
    /// (`sis-importer dead-letters replay` waits for the lease first).
    pub async fn replay_dead_letters(
        &self,
        service: &Service,
        pick: &Pick,
        lease: Option<&Lease>,
        shutdown: Shutdown,
    ) -> Result<ReplayReport, ReplayError> {
        // The run lock first: a run of this process takes it before the
        // lease, and with it held no run of this process can start.
        let _running = self
            .run
            .lock
            .try_lock()
            .map_err(|_| ReplayError::RunInProgress)?;
        let Some(lease) = lease else {
            return self.replay(service, pick, shutdown).await;
        };
        if !lease.try_acquire().await? {
            let holder = crate::lease::holder(&self.io.store).await?;
            return Err(ReplayError::LeaseHeld {
                holder: holder.unwrap_or_else(|| "another instance".into()),
            });
        }
        lease
            .while_held(self, self.replay(service, pick, shutdown))
            .await
    }

    /// [`Importer::replay_dead_letters`] once the locks are held.
    async fn replay(
        &self,
        service: &Service,
        pick: &Pick,
        mut shutdown: Shutdown,
    ) -> Result<ReplayReport, ReplayError> {
        let plan = self.plan(service, pick).await?;
        let nothing = plan.versions.is_empty() && plan.not_replayable_total == 0;
        if let (Pick::Identity(identity), true) = (pick, nothing) {
            return Err(self.no_such_identity(service, identity).await);
        }
        let mut report = ReplayReport {
            service: service.id.clone(),
            result: ReplayResult::NothingToReplay,
            error: None,
            attempts: 0,
            execution_hash: None,
            delivered: Vec::new(),
            failed_again: Vec::new(),
            not_replayable: plan.not_replayable.clone(),
            not_replayable_total: plan.not_replayable_total,
        };
        if plan.versions.is_empty() {
            return Ok(report);
        }
        let source = ReplaySource {
            entities: plan.versions.iter().map(|v| v.entity.clone()).collect(),
        };
        let since = self.io.store.ordinal(service).await?.unwrap_or(0);
        let epoch = self
            .io
            .store
            .attempt_record(service)
            .await?
            .map_or(0, |r| r.epoch);
        let limit = self.config.update_retry_limit;
        let mut batch_no = 1;
        for attempt in 1..=limit {
            let record = AttemptRecord {
                epoch: epoch + u64::from(attempt),
                execution_hash: super::new_execution_hash(),
                since,
                feedback_after: None,
                open: false,
            };
            tracing::info!(service = %service.id, attempt, entities = source.entities.len(), execution_hash = %record.execution_hash, "replaying dead letters");
            report.attempts = attempt;
            report.execution_hash = Some(record.execution_hash.clone());
            let kind = AttemptKind::Replay(&source);
            let (end, _, again) = self
                .attempt_of(kind, service, record, since, &mut batch_no, &mut shutdown)
                .await;
            let error = match end {
                AttemptEnd::Completed => {
                    let again: Vec<DeadLetter> =
                        again.into_iter().map(DeadLetter::from_record).collect();
                    let (remove, delivered, failed_again) = plan.settle(&again);
                    self.io
                        .store
                        .settle_dead_letters(&service.id, &remove)
                        .await?;
                    report.result = ReplayResult::Completed;
                    report.delivered = delivered;
                    report.failed_again = failed_again;
                    tracing::info!(service = %service.id, delivered = report.delivered.len(), failed_again = report.failed_again.len(), not_replayable = report.not_replayable_total, "dead letters replayed");
                    return Ok(report);
                }
                AttemptEnd::Interrupted => {
                    report.result = ReplayResult::Interrupted;
                    return Ok(report);
                }
                AttemptEnd::PanicTimeout if shutdown.is_shutdown() => {
                    report.result = ReplayResult::Interrupted;
                    return Ok(report);
                }
                AttemptEnd::PanicTimeout => {
                    let why = self.reporter.ignored_why(&service.id).unwrap_or_else(|| {
                        format!("no feedback about {} arrived", service.subject)
                    });
                    let secs = self.config.panic_timeout.as_secs_f64();
                    format!("no feedback progress within PANIC_TIMEOUT ({secs} s): {why}")
                }
                AttemptEnd::Failed(e @ AttemptFailure::Feedback(_)) if !shutdown.is_shutdown() => {
                    e.to_string()
                }
                AttemptEnd::Failed(e) => {
                    report.result = ReplayResult::Failed;
                    report.error = Some(e.to_string());
                    return Ok(report);
                }
            };
            tracing::warn!(service = %service.id, attempt, limit, error = %error, "dead-letter replay did not complete; nothing removed from the list");
            report.result = ReplayResult::Failed;
            report.error = Some(format!("attempt {attempt} of {limit}: {error}"));
        }
        Ok(report)
    }

    /// What to send: the chosen letters that keep their entity (bounded by
    /// `dead_letter_entity_bytes`), then the entries of the same versions
    /// without it; the rest only counted, the first hundred named, so
    /// memory stays bounded however long the list is.
    async fn plan(&self, service: &Service, pick: &Pick) -> Result<Plan, StoreError> {
        let id = &service.id;
        let store = &self.io.store;
        let mut entries = store
            .scan_dead_letters(id, |l| pick.matches(l) && l.entity.is_some())
            .await?;
        let versions: HashSet<String> = entries.iter().map(|e| e.letter.version()).collect();
        let mut unsent = (0, Vec::new());
        let duplicates = store
            .scan_dead_letters(id, |l| {
                if !pick.matches(l) || l.entity.is_some() {
                    return false;
                }
                if versions.contains(&l.version()) {
                    return true;
                }
                unsent.0 += 1;
                if unsent.1.len() < NAMED_SKIPPED {
                    unsent.1.push(LetterNote::of(l, l.not_replayable()));
                }
                false
            })
            .await?;
        entries.extend(duplicates);
        let mut plan = Plan::of(entries);
        plan.not_replayable_total += unsent.0;
        plan.not_replayable.extend(unsent.1);
        Ok(plan)
    }

    /// The error for an identity with no dead letter, naming (some of)
    /// the identities the service has.
    async fn no_such_identity(&self, service: &Service, identity: &str) -> ReplayError {
        match self.io.store.dead_letter_identities(&service.id).await {
            Ok(known) => ReplayError::NoSuchIdentity {
                service: service.id.clone(),
                identity: identity.to_owned(),
                known,
            },
            Err(e) => ReplayError::Store(e),
        }
    }
}
