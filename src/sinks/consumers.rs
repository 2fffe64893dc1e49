//! The durable consumers that read the stream: who reads a service's
//! subject, with what ack wait, and how far each has acknowledged. Read
//! from JetStream's consumer list (one request per page of 256), never
//! changed. The importer asks when a run starts (an ack wait longer than
//! it waits for feedback is warned about) and when a seed-form wave is
//! answered (its end waits for the ack floors, see `pipeline/core/seed.rs`).

use std::time::Duration;

use async_nats::jetstream::consumer::AckPolicy;
use futures::future::BoxFuture;
use futures::TryStreamExt;

use super::connection::subject_matches;
use super::Nats;
use crate::catalogue::Service;
use crate::pipeline::ports::ConsumerAcks;
use crate::pipeline::vocabulary::{ConsumerProgress, FeedbackError};

/// One durable consumer of the stream, as its info shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableConsumer {
    /// Its durable name.
    pub name: String,
    /// The subjects it filters on (empty: every subject of the stream).
    pub filter_subjects: Vec<String>,
    /// How long a delivered message may go unacknowledged before
    /// JetStream delivers it again.
    pub ack_wait: Duration,
    /// Whether it acknowledges messages one by one (explicit or all); a
    /// consumer without acks says nothing about what was stored.
    pub acks: bool,
    /// The last stream sequence delivered.
    pub delivered: u64,
    /// Every message up to this stream sequence is acknowledged.
    pub ack_floor: u64,
    /// Messages delivered and not yet acknowledged.
    pub ack_pending: u64,
}

impl DurableConsumer {
    /// Whether it reads `subject`.
    pub fn reads(&self, subject: &str) -> bool {
        self.filter_subjects.is_empty()
            || self
                .filter_subjects
                .iter()
                .any(|f| subject_matches(f, subject))
    }
}

/// Each of `services` with the durable consumers (with acks) that read
/// its subject.
pub fn readers<'a>(
    services: &'a [Service],
    durables: &'a [DurableConsumer],
) -> Vec<(&'a Service, Vec<&'a DurableConsumer>)> {
    services
        .iter()
        .map(|s| {
            let reading = durables
                .iter()
                .filter(|d| d.acks && d.reads(&s.subject))
                .collect();
            (s, reading)
        })
        .collect()
}

/// The durable consumers of `services` that redeliver a message later than
/// `budget` after it was delivered (`PANIC_TIMEOUT × UPDATE_RETRY_LIMIT`,
/// the longest the importer waits for a service's feedback): a consumer
/// killed in the middle of a chunk gets it back only after the importer
/// has given up on the service. As `SERVICE: durable (ack wait N s)`.
pub fn ack_waits_beyond(
    services: &[Service],
    durables: &[DurableConsumer],
    budget: Duration,
) -> Vec<String> {
    readers(services, durables)
        .into_iter()
        .flat_map(|(s, reading)| {
            reading
                .into_iter()
                .filter(|d| d.ack_wait > budget)
                .map(move |d| {
                    format!(
                        "{}: {} (ack wait {} s)",
                        s.id,
                        d.name,
                        d.ack_wait.as_secs_f64()
                    )
                })
        })
        .collect()
}

impl Nats {
    /// Every durable consumer of the stream (ephemeral ones, such as the
    /// importer's own feedback reader, are left out).
    pub async fn durable_consumers(&self) -> Result<Vec<DurableConsumer>, FeedbackError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            FeedbackError(format!("{what} (stream {}): {e}", self.stream))
        };
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| err("looking up the stream", &e))?;
        let infos: Vec<_> = stream
            .consumers()
            .try_collect()
            .await
            .map_err(|e| err("listing consumers", &e))?;
        Ok(infos
            .into_iter()
            .filter(|info| info.config.durable_name.is_some())
            .map(|info| {
                // One filter subject: the client is built for nats-server
                // 2.9, which knows no more (an empty one reads everything).
                let filter_subjects = match info.config.filter_subject.as_str() {
                    "" => Vec::new(),
                    one => vec![one.to_owned()],
                };
                DurableConsumer {
                    name: info.name,
                    filter_subjects,
                    ack_wait: info.config.ack_wait,
                    acks: matches!(info.config.ack_policy, AckPolicy::Explicit | AckPolicy::All),
                    delivered: info.delivered.stream_sequence,
                    ack_floor: info.ack_floor.stream_sequence,
                    ack_pending: info.num_ack_pending as u64,
                }
            })
            .collect())
    }
}

impl ConsumerAcks for Nats {
    fn progress(
        &self,
        subject: &str,
    ) -> BoxFuture<'static, Result<Vec<ConsumerProgress>, FeedbackError>> {
        let (nats, subject) = (self.clone(), subject.to_owned());
        Box::pin(async move {
            Ok(nats
                .durable_consumers()
                .await?
                .into_iter()
                .filter(|c| c.acks && c.reads(&subject))
                .map(|c| ConsumerProgress {
                    name: c.name,
                    delivered: c.delivered,
                    ack_floor: c.ack_floor,
                    ack_pending: c.ack_pending,
                    ack_wait: c.ack_wait,
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(filters: &[&str]) -> DurableConsumer {
        DurableConsumer {
            name: "c".into(),
            filter_subjects: filters.iter().map(|f| f.to_string()).collect(),
            ack_wait: Duration::from_secs(30),
            acks: true,
            delivered: 0,
            ack_floor: 0,
            ack_pending: 0,
        }
    }

    #[test]
    fn ack_waits_longer_than_the_importers_patience_are_named() {
        let services = crate::catalogue::builtin();
        let mut slow = consumer(&["ORI_PERSON_CHANNEL"]);
        slow.name = "mankeli".into();
        slow.ack_wait = Duration::from_secs(120);
        let quick = consumer(&["KORI_ORGANISATION_CHANNEL"]);
        let durables = [slow, quick];
        assert_eq!(
            ack_waits_beyond(&services, &durables, Duration::from_secs(90)),
            ["PERSON: mankeli (ack wait 120 s)"]
        );
        assert!(ack_waits_beyond(&services, &durables, Duration::from_secs(120)).is_empty());
    }

    #[test]
    fn a_consumer_reads_its_filters_or_everything() {
        assert!(consumer(&[]).reads("ORI_PERSON_CHANNEL"));
        assert!(consumer(&["ORI_PERSON_CHANNEL"]).reads("ORI_PERSON_CHANNEL"));
        assert!(consumer(&[">"]).reads("ORI_PERSON_CHANNEL"));
        assert!(!consumer(&["ORI_ATTAINMENT_CHANNEL"]).reads("ORI_PERSON_CHANNEL"));
    }
}
