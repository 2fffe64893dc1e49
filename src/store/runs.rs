//! What `status` shows: per-service run records and state, the forbidden
//! set, and the last whole run.

use std::collections::BTreeMap;

use redis::Cmd;

use super::keys::{self, dead_letter_key, status_key};
use super::records::parse_ordinal;
use super::{OrdinalStore, RunRecord, ServiceState, StoreError};
use crate::catalogue::Service;

/// The status pipeline's answer: ordinal, `_SCHEDULED`, `_UPDATED`, the
/// run record, the dead-letter count, the feedback form, the last success.
type StatusReply = (
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    u64,
    Option<String>,
    Option<String>,
);

impl OrdinalStore {
    /// Marks or clears a service as forbidden.
    pub async fn set_forbidden(&self, service: &str, forbidden: bool) -> Result<(), StoreError> {
        let change = if forbidden {
            Cmd::sadd(keys::FORBIDDEN, service)
        } else {
            Cmd::srem(keys::FORBIDDEN, service)
        };
        self.query("record forbidden", &change).await
    }

    /// Clears the forbidden set (a new process tries every service again).
    pub(crate) async fn clear_forbidden(&self) -> Result<(), StoreError> {
        self.query("clear forbidden", &Cmd::del(keys::FORBIDDEN))
            .await
    }

    /// Clears the forbidden mark of `services` (every marked one when
    /// empty); returns those that had one.
    pub async fn unforbid(&self, services: &[String]) -> Result<Vec<String>, StoreError> {
        let marked = self.forbidden().await?;
        let cleared: Vec<String> = marked
            .into_iter()
            .filter(|s| services.is_empty() || services.contains(s))
            .collect();
        if !cleared.is_empty() {
            let remove = Cmd::srem(keys::FORBIDDEN, &cleared);
            let _: u64 = self.query("clear forbidden", &remove).await?;
        }
        Ok(cleared)
    }

    /// Services marked forbidden.
    pub async fn forbidden(&self) -> Result<Vec<String>, StoreError> {
        self.query("read forbidden", &Cmd::smembers(keys::FORBIDDEN))
            .await
    }

    /// Records the form `service`'s consumers answer in (`precise`, `seed`).
    pub(crate) async fn set_feedback_form(
        &self,
        service: &str,
        form: &str,
    ) -> Result<(), StoreError> {
        let write = Cmd::hset(keys::FEEDBACK_FORM, service, form);
        self.query("record feedback form", &write).await
    }

    /// The form each service's consumers were last seen to answer in.
    pub async fn feedback_forms(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.query("read feedback forms", &Cmd::hgetall(keys::FEEDBACK_FORM))
            .await
    }

    /// Records that `service` finished a run at `at` (RFC 3339).
    pub(crate) async fn record_success(&self, service: &str, at: &str) -> Result<(), StoreError> {
        let write = Cmd::hset(keys::LAST_SUCCESS, service, at);
        self.query("record last success", &write).await
    }

    /// When each service last finished a run (RFC 3339).
    pub async fn last_successes(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.query("read last successes", &Cmd::hgetall(keys::LAST_SUCCESS))
            .await
    }

    /// Stores a service's last-run record.
    pub(crate) async fn record_run(
        &self,
        service: &str,
        record: &RunRecord,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(record).expect("run record serializes");
        self.query("record run", &Cmd::set(status_key(service), body))
            .await
    }

    /// Stores the whole run's summary fields.
    pub(crate) async fn record_last_run(
        &self,
        fields: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let pairs: Vec<(&String, &String)> = fields.iter().collect();
        let write = Cmd::hset_multiple(keys::LAST_RUN, &pairs);
        self.query("record last run", &write).await
    }

    /// When the last whole run finished (RFC 3339), if any.
    pub(crate) async fn last_run_finished(&self) -> Result<Option<String>, StoreError> {
        let read = Cmd::hget(keys::LAST_RUN, "finished_at");
        self.query("read last run", &read).await
    }

    /// Everything `status` shows about one service but the forbidden flag,
    /// in one round trip.
    pub async fn service_status(&self, service: &Service) -> Result<ServiceState, StoreError> {
        let mut pipe = redis::pipe();
        pipe.get(&service.ordinal_key)
            .get(keys::scheduled_key(&service.ordinal_key))
            .get(keys::updated_key(&service.ordinal_key))
            .get(status_key(&service.id))
            .llen(dead_letter_key(&service.id))
            .hget(keys::FEEDBACK_FORM, &service.id)
            .hget(keys::LAST_SUCCESS, &service.id);
        let (ordinal, scheduled, updated, record, dead_letters, feedback_form, last_success): StatusReply =
            self.query("read status", &pipe).await?;
        Ok(ServiceState {
            ordinal: ordinal.as_deref().map(parse_ordinal),
            scheduled: scheduled.unwrap_or(0),
            updated: updated.unwrap_or(0),
            last_run: record.and_then(|r| serde_json::from_str(&r).ok()),
            dead_letters,
            feedback_form,
            last_success,
        })
    }
}
