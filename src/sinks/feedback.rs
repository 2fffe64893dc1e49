//! `JetStreamFeedback`: consumers' feedback, read back from the stream
//! that captures `SCHEDULER_STATUS_CHANNEL`, through an ordered push
//! consumer. Feedback sent while the importer was reconnecting is stored by
//! JetStream and delivered once the consumer is back, so a broker restart
//! costs a pause, not a panic timeout. Consumers that publish feedback with
//! core NATS are captured all the same.
//!
//! The consumer starts at the last feedback message already in the stream
//! (skipped): the ordered consumer tracks stream sequences from its first
//! delivery, so after a reconnect it resumes right after what it saw
//! instead of replaying the stream's whole feedback history (only a
//! recreation before that first delivery, a moment after start, would
//! replay it; the skip filter keeps even that correct). A missed heartbeat
//! is not an error here: the consumer recreates itself on the next poll.
//!
//! The stream always captures the feedback subject: the importer refuses
//! to start with one that does not (`Nats::ensure_stream`).

use async_nats::jetstream::consumer::push::{self, OrderedErrorKind};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures::stream::StreamExt;

use super::wire::parse_feedback;
use super::Nats;
use crate::catalogue::FEEDBACK_SUBJECT;
use crate::pipeline::ports::{FeedbackSource, StoredFeedback, Subscription};
use crate::pipeline::vocabulary::{FeedbackError, FeedbackItem, MalformedFeedback};
use crate::retry::{Budget, RetryPolicy};

/// Feedback from the stream.
#[derive(Clone)]
pub struct JetStreamFeedback {
    nats: Nats,
}

impl JetStreamFeedback {
    /// Feedback through `nats`, whose stream stores the feedback subject.
    pub fn new(nats: Nats) -> Self {
        JetStreamFeedback { nats }
    }

    fn error(&self, what: &str, e: &dyn std::fmt::Display) -> FeedbackError {
        FeedbackError(format!("{what} (stream {}): {e}", self.nats.stream))
    }

    async fn stream(&self) -> Result<async_nats::jetstream::stream::Stream, FeedbackError> {
        self.nats
            .jetstream
            .get_stream(&self.nats.stream)
            .await
            .map_err(|e| self.error("looking up the stream", &e))
    }

    /// An ordered push consumer of the feedback subject from `deliver_policy`.
    async fn consumer(
        &self,
        stream: &async_nats::jetstream::stream::Stream,
        deliver_policy: DeliverPolicy,
    ) -> Result<push::Ordered, FeedbackError> {
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.nats.client.new_inbox(),
                filter_subject: FEEDBACK_SUBJECT.to_owned(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| self.error("creating the feedback consumer", &e))?;
        consumer
            .messages()
            .await
            .map_err(|e| self.error("reading feedback", &e))
    }

    async fn open_stream(&self) -> Result<Subscription, FeedbackError> {
        let err = |what: &str, e: &dyn std::fmt::Display| self.error(what, e);
        let stream = self.stream().await?;
        let (deliver_policy, skip_through) = match stream
            .get_last_raw_message_by_subject(FEEDBACK_SUBJECT)
            .await
        {
            Ok(last) => (
                DeliverPolicy::ByStartSequence {
                    start_sequence: last.sequence,
                },
                last.sequence,
            ),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                (DeliverPolicy::All, 0)
            }
            Err(e) => return Err(err("reading the last feedback", &e)),
        };
        let messages = self.consumer(&stream, deliver_policy).await?;
        let stream_name = self.nats.stream.clone();
        let stream = messages
            .filter_map(move |m| {
                let item = match m {
                    Ok(m) => {
                        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(u64::MAX);
                        (seq > skip_through).then(|| Ok(parse(&m.payload)))
                    }
                    // The consumer went quiet (its server restarted, or a
                    // stall): the next poll recreates it right after the
                    // last feedback seen, so nothing is lost.
                    Err(e) if e.kind() == OrderedErrorKind::MissingHeartbeat => {
                        tracing::warn!(stream = %stream_name, "feedback consumer missed its heartbeat; recreating it after the last feedback seen");
                        None
                    }
                    Err(e) => Some(Err(FeedbackError(format!(
                        "reading feedback (stream {stream_name}): {e}"
                    )))),
                };
                std::future::ready(item)
            })
            .boxed();
        Ok(Subscription {
            stream,
            after: Some(skip_through),
        })
    }

    async fn read_stored(
        &self,
        after: u64,
        through: u64,
    ) -> Result<Vec<StoredFeedback>, FeedbackError> {
        let mut found = Vec::new();
        if through <= after {
            return Ok(found);
        }
        let stream = self.stream().await?;
        let start_sequence = after + 1;
        let mut messages = self
            .consumer(&stream, DeliverPolicy::ByStartSequence { start_sequence })
            .await?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| self.error("reading stored feedback", &e))?;
            let info = message
                .info()
                .map_err(|e| self.error("reading stored feedback", &e))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            if sequence > through {
                break;
            }
            found.push(StoredFeedback {
                sequence,
                item: parse(&message.payload),
            });
            if sequence == through || pending == 0 {
                break;
            }
        }
        Ok(found)
    }
}

fn parse(body: &[u8]) -> FeedbackItem {
    parse_feedback(body).map_err(|e| MalformedFeedback {
        reason: e.to_string(),
        bytes: body.len(),
    })
}

/// Opening the feedback consumer's retry policy: from 200 ms doubling to
/// 3 s, for 30 s. JetStream answers nothing while a clustered stream elects
/// a leader or a restarted node catches up, which takes seconds.
const OPEN_RETRY: RetryPolicy = RetryPolicy {
    first: std::time::Duration::from_millis(200),
    max: std::time::Duration::from_secs(3),
    jitter: false,
    budget: Budget::For(std::time::Duration::from_secs(30)),
};

/// How long reading the feedback stored for an interrupted attempt may
/// take before it is given up (its chunks are then sent again).
const STORED_READ_FOR: std::time::Duration = std::time::Duration::from_secs(30);

impl FeedbackSource for JetStreamFeedback {
    async fn stored(&self, after: u64, through: u64) -> Result<Vec<StoredFeedback>, FeedbackError> {
        tokio::time::timeout(STORED_READ_FOR, self.read_stored(after, through))
            .await
            .map_err(|_| self.error("reading stored feedback", &"timed out after 30 s"))?
    }

    async fn subscribe(&self) -> Result<Subscription, FeedbackError> {
        let mut retry = OPEN_RETRY.start();
        loop {
            let e = match self.open_stream().await {
                Ok(stream) => return Ok(stream),
                Err(e) => e,
            };
            let Some(wait) = retry.failed() else {
                return Err(e);
            };
            if retry.failures() == 1 {
                tracing::warn!(error = %e, "cannot open the feedback consumer yet (a JetStream leader election or a node catching up?); retrying for up to 30 s");
            }
            tokio::time::sleep(wait).await;
        }
    }
}
