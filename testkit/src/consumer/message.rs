//! The messages of SPEC §4 as the consumer sees them: decoding a chunk
//! message, judging its entities (`testError`, identity), and the feedback
//! message it answers with, published through JetStream.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::{debug, warn};

use sis_importer::catalogue::{Service, FEEDBACK_SUBJECT};

use super::{timed, ConsumerError};

/// Attempts to publish one feedback message before the chunk is NAKed.
const FEEDBACK_ATTEMPTS: u32 = 8;
/// Wait for one feedback publish ack. Shorter than `NATS_TIMEOUT`: a publish
/// written into a dying connection is never answered, and a retry after a
/// reconnect is cheap (the importer ignores duplicate feedback).
const FEEDBACK_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// A chunk message (SPEC §4); entities stay raw JSON, forwarded as received.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChunkMessage<'a> {
    pub(super) execution_hash: String,
    pub(super) chunk_id: String,
    #[serde(borrow)]
    pub(super) entities: Vec<&'a RawValue>,
}

/// A feedback message (SPEC §4), fields in the documented order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Feedback<'a> {
    channel: &'a str,
    status: &'static str,
    amount: usize,
    execution_hash: &'a str,
    chunk_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entities: Option<&'a [&'a RawValue]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
}

impl<'a> Feedback<'a> {
    /// The answer to `chunk` on `service`: FAIL naming the first entity with
    /// a truthy `testError`, the chunk's entities attached; else OK with the
    /// entity count.
    pub(super) fn answer(service: &'a Service, chunk: &'a ChunkMessage<'_>) -> Self {
        match chunk.entities.iter().find(|entity| has_test_error(entity)) {
            Some(entity) => Feedback {
                channel: &service.subject,
                status: "FAIL",
                amount: 0,
                execution_hash: &chunk.execution_hash,
                chunk_id: &chunk.chunk_id,
                entities: Some(&chunk.entities),
                stack: Some(format!("testError in entity {}", identity(service, entity))),
            },
            None => Feedback {
                channel: &service.subject,
                status: "OK",
                amount: chunk.entities.len(),
                execution_hash: &chunk.execution_hash,
                chunk_id: &chunk.chunk_id,
                entities: None,
                stack: None,
            },
        }
    }

    /// `"OK"` or `"FAIL"`.
    pub(super) fn status(&self) -> &'static str {
        self.status
    }

    pub(super) fn is_fail(&self) -> bool {
        self.status == "FAIL"
    }

    /// The JSON body. A FAIL that would exceed the server's `max_payload`
    /// (a chunk near the limit plus the feedback envelope) goes without its
    /// entities rather than not at all; the importer knows the chunk's entities.
    pub(super) fn into_body(mut self, max_payload: usize) -> bytes::Bytes {
        let body = serde_json::to_vec(&self).expect("feedback serialises");
        if body.len() <= max_payload || self.entities.is_none() {
            return body.into();
        }
        warn!(
            chunk_id = self.chunk_id,
            bytes = body.len(),
            max_payload,
            "FAIL feedback too large; sending it without entities"
        );
        self.entities = None;
        serde_json::to_vec(&self)
            .expect("feedback serialises")
            .into()
    }
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

/// True when the entity is an object with a truthy (JavaScript sense) `testError`.
pub(super) fn has_test_error(entity: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "testError")]
        test_error: Option<serde_json::Value>,
    }
    use serde_json::Value;
    // Serde would also read a JSON array into the struct, field by position.
    if !is_object(entity) {
        return false;
    }
    match serde_json::from_str::<Probe>(entity.get())
        .ok()
        .and_then(|p| p.test_error)
    {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

fn is_object(entity: &RawValue) -> bool {
    entity.get().trim_start().starts_with('{')
}

/// The service's identity of an entity, else its `id`, else its raw JSON.
pub(super) fn identity(service: &Service, entity: &RawValue) -> String {
    #[derive(Deserialize)]
    struct IdProbe {
        id: Option<serde_json::Value>,
    }
    service
        .identity_of(entity.get())
        .or_else(|| {
            if !is_object(entity) {
                return None;
            }
            let id = serde_json::from_str::<IdProbe>(entity.get()).ok()?.id?;
            Some(match id {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
        })
        .unwrap_or_else(|| entity.get().to_owned())
}
