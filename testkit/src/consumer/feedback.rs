//! The feedback message of SPEC §4, naming the chunk in OK and FAIL alike,
//! and its publishing through JetStream.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream;
use serde::Serialize;
use serde_json::value::RawValue;
use tracing::{debug, warn};

use sis_importer::catalogue::{Service, FEEDBACK_SUBJECT};

use super::message::{identity, ChunkMessage};
use super::{timed, ConsumerError};

/// Attempts to publish one feedback message before the chunk is NAKed.
const FEEDBACK_ATTEMPTS: u32 = 8;
/// Wait for one feedback publish ack. Shorter than `NATS_TIMEOUT`: a publish
/// written into a dying connection is never answered, and a retry after a
/// reconnect is cheap (the importer ignores duplicate feedback).
const FEEDBACK_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer to one chunk.
pub(super) struct Feedback<'a> {
    channel: &'a str,
    chunk: &'a ChunkMessage<'a>,
    /// `None` for OK; for FAIL the error text (`stack`).
    failure: Option<String>,
}

impl<'a> Feedback<'a> {
    /// The answer to `chunk` on `service`: FAIL naming the first entity
    /// whose `fail_field` is truthy, else OK with the entity count.
    pub(super) fn answer(
        service: &'a Service,
        chunk: &'a ChunkMessage<'a>,
        fail_field: &str,
    ) -> Self {
        let failure = chunk
            .failing_entity(fail_field)
            .map(|entity| format!("{fail_field} in entity {}", identity(service, entity)));
        Feedback {
            channel: &service.subject,
            chunk,
            failure,
        }
    }

    /// `"OK"` or `"FAIL"`.
    pub(super) fn status(&self) -> &'static str {
        if self.is_fail() {
            "FAIL"
        } else {
            "OK"
        }
    }

    /// True for a FAIL answer.
    pub(super) fn is_fail(&self) -> bool {
        self.failure.is_some()
    }

    /// The JSON body. A FAIL that would exceed the server's `max_payload`
    /// (a chunk near the limit plus the feedback envelope) goes without its
    /// entities rather than not at all, still naming the chunk: the
    /// importer knows the chunk's entities.
    pub(super) fn into_body(self, max_payload: usize) -> bytes::Bytes {
        let body = self.to_body(true);
        if body.len() <= max_payload || !self.is_fail() {
            return body.into();
        }
        warn!(
            chunk_id = %self.chunk.chunk_id,
            bytes = body.len(),
            max_payload,
            "FAIL feedback too large; sending it without entities"
        );
        self.to_body(false).into()
    }

    fn to_body(&self, with_entities: bool) -> Vec<u8> {
        let chunk = self.chunk;
        let failure = &self.failure;
        serde_json::to_vec(&Wire {
            channel: self.channel,
            status: self.status(),
            amount: if failure.is_some() {
                0
            } else {
                chunk.entities.len()
            },
            execution_hash: &chunk.execution_hash,
            chunk_id: &chunk.chunk_id,
            entities: (failure.is_some() && with_entities).then_some(&chunk.entities),
            stack: failure.as_deref(),
        })
        .expect("feedback serialises")
    }
}

/// The feedback message, fields in the documented order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    channel: &'a str,
    status: &'static str,
    amount: usize,
    execution_hash: &'a str,
    chunk_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entities: Option<&'a Vec<&'a RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<&'a str>,
}

/// The connection's `max_payload` (0 before the first INFO: no limit known).
pub(super) fn max_payload(js: &jetstream::Context) -> usize {
    match js.client().server_info().max_payload {
        0 => usize::MAX,
        n => n,
    }
}

/// Publishes on the feedback subject through JetStream and awaits the ack,
/// retrying with backoff (the server may be restarting). A subject no stream
/// captures falls back to a core publish, so a plain subscriber still hears it.
pub(super) async fn publish_feedback(
    js: &jetstream::Context,
    body: bytes::Bytes,
) -> Result<(), ConsumerError> {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=FEEDBACK_ATTEMPTS {
        let result = async {
            let ack = timed(
                "publishing feedback",
                js.publish(FEEDBACK_SUBJECT, body.clone()),
            )
            .await?;
            match tokio::time::timeout(FEEDBACK_ACK_TIMEOUT, ack.into_future()).await {
                Ok(result) => result.map_err(|err| ConsumerError::Nats {
                    operation: "awaiting the feedback publish ack",
                    source: err.into(),
                }),
                Err(_) => Err(ConsumerError::TimedOut {
                    operation: "awaiting the feedback publish ack",
                    after: FEEDBACK_ACK_TIMEOUT,
                }),
            }
        }
        .await;
        match result {
            Ok(_) => return Ok(()),
            Err(ConsumerError::Nats { source, .. }) if is_stream_not_found(&source) => {
                warn!("no stream captures {FEEDBACK_SUBJECT}; sending feedback as a core NATS message");
                let client = js.client();
                timed(
                    "publishing feedback (core)",
                    client.publish(FEEDBACK_SUBJECT, body.clone()),
                )
                .await?;
                return timed("flushing feedback", client.flush()).await;
            }
            Err(err) if attempt == FEEDBACK_ATTEMPTS => return Err(err),
            Err(err) => debug!(attempt, error = %err, "feedback publish failed; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    unreachable!("the last attempt returns")
}

fn is_stream_not_found(err: &async_nats::Error) -> bool {
    err.downcast_ref::<jetstream::context::PublishError>()
        .is_some_and(|e| e.kind() == jetstream::context::PublishErrorKind::StreamNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        sis_importer::catalogue::builtin().remove(0)
    }

    #[test]
    fn ok_names_the_chunk() {
        let payload = br#"{"executionHash":"h1","chunkId":"c-1","entities":[{"id":"e"}]}"#;
        let chunk = ChunkMessage::decode(payload).unwrap();
        let service = service();
        let feedback = Feedback::answer(&service, &chunk, "testError");
        assert_eq!(
            feedback.into_body(usize::MAX),
            r#"{"channel":"ORI_PERSON_CHANNEL","status":"OK","amount":1,"executionHash":"h1","chunkId":"c-1"}"#
        );
    }
}
