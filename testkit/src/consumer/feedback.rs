//! The feedback message of SPEC §4 in the consumer's two forms, and its
//! publishing through JetStream. The precise form names the chunk in OK and
//! FAIL alike; the seed's form is importer-mankeli's: OK without `chunkId`,
//! FAIL as the chunk message echoed with `status`, `amount`, `channel` and
//! `stack` added.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use tracing::{debug, warn};

use sis_importer::catalogue::{Service, FEEDBACK_SUBJECT};

use super::message::{identity, ChunkMessage, Fields};
use super::{timed, ConsumerError, FeedbackForm};

/// Attempts to publish one feedback message before the chunk is NAKed.
const FEEDBACK_ATTEMPTS: u32 = 8;
/// Wait for one feedback publish ack. Shorter than `NATS_TIMEOUT`: a publish
/// written into a dying connection is never answered, and a retry after a
/// reconnect is cheap (the importer ignores duplicate feedback).
const FEEDBACK_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer to one chunk, in the configured form.
pub(super) struct Feedback<'a> {
    form: FeedbackForm,
    channel: &'a str,
    chunk: &'a ChunkMessage<'a>,
    /// `None` for OK; for FAIL the error text (`stack`).
    failure: Option<String>,
}

impl<'a> Feedback<'a> {
    /// The answer to `chunk` on `service`: FAIL naming the first entity
    /// whose `fail_field` is truthy, else OK with the entity count.
    pub(super) fn answer(
        form: FeedbackForm,
        service: &'a Service,
        chunk: &'a ChunkMessage<'a>,
        fail_field: &str,
    ) -> Self {
        let failure = chunk
            .failing_entity(fail_field)
            .map(|entity| format!("{fail_field} in entity {}", identity(service, entity)));
        Feedback {
            form,
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
        let status = self.status();
        let result = match (self.form, &self.failure) {
            (FeedbackForm::Precise, failure) => serde_json::to_vec(&PreciseWire {
                channel: self.channel,
                status,
                amount: if failure.is_some() {
                    0
                } else {
                    chunk.entities.len()
                },
                execution_hash: &chunk.execution_hash,
                chunk_id: &chunk.chunk_id,
                entities: (failure.is_some() && with_entities).then_some(&chunk.entities),
                stack: failure.as_deref(),
            }),
            (FeedbackForm::Seed, None) => serde_json::to_vec(&SeedOkWire {
                status,
                amount: chunk.entities.len(),
                channel: self.channel,
                execution_hash: &chunk.execution_hash,
            }),
            (FeedbackForm::Seed, Some(stack)) => serde_json::to_vec(&SeedFailWire {
                received: &chunk.fields,
                with_entities,
                channel: self.channel,
                stack,
            }),
        };
        result.expect("feedback serialises")
    }
}

/// The precise form, fields in the documented order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreciseWire<'a> {
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

/// The seed's OK: no `chunkId`; the seed's importer counted `amount`
/// against the hash's `_SCHEDULED`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeedOkWire<'a> {
    status: &'static str,
    amount: usize,
    channel: &'a str,
    execution_hash: &'a str,
}

/// The seed's FAIL: `{...received, status: "FAIL", amount: 0, channel,
/// stack}` as JavaScript's spread builds it: the received fields in their
/// order, a field the answer sets replaced where it stood, the others
/// appended.
struct SeedFailWire<'a> {
    received: &'a Fields<'a>,
    /// False for the too-large fallback: `entities` left out.
    with_entities: bool,
    channel: &'a str,
    stack: &'a str,
}

impl SeedFailWire<'_> {
    /// The fields the answer sets, in the order they are appended.
    const SET: [&'static str; 4] = ["status", "amount", "channel", "stack"];

    fn set<M: SerializeMap>(&self, map: &mut M, key: &str) -> Result<(), M::Error> {
        match key {
            "status" => map.serialize_entry(key, "FAIL"),
            "amount" => map.serialize_entry(key, &0),
            "channel" => map.serialize_entry(key, self.channel),
            _ => map.serialize_entry(key, self.stack),
        }
    }
}

impl Serialize for SeedFailWire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut set_already = [false; 4];
        for (key, value) in &self.received.0 {
            if !self.with_entities && key == "entities" {
                continue;
            }
            match Self::SET.iter().position(|set| set == key) {
                Some(i) if set_already[i] => {}
                Some(i) => {
                    self.set(&mut map, key)?;
                    set_already[i] = true;
                }
                None => map.serialize_entry(key, value)?,
            }
        }
        for (i, key) in Self::SET.iter().enumerate() {
            if !set_already[i] {
                self.set(&mut map, key)?;
            }
        }
        map.end()
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
            Err(ConsumerError::Nats { source, .. })
                if is_stream_not_found(&source) && !captured(js).await.unwrap_or(true) =>
            {
                warn!("no stream captures {FEEDBACK_SUBJECT}; sending feedback as a core NATS message");
                let client = js.client();
                timed(
                    "publishing feedback (core)",
                    client.publish(FEEDBACK_SUBJECT, body.clone()),
                )
                .await?;
                return timed("flushing feedback", client.flush()).await;
            }
            // No responders although a stream captures the subject (or
            // JetStream could not say): its leader is being elected after
            // a node died. Sent again, not as a core message nobody reads.
            Err(err) if attempt == FEEDBACK_ATTEMPTS => return Err(err),
            Err(err) => debug!(attempt, error = %err, "feedback publish failed; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    unreachable!("the last attempt returns")
}

/// Whether a stream captures the feedback subject (None: JetStream did
/// not answer).
async fn captured(js: &jetstream::Context) -> Option<bool> {
    use jetstream::context::GetStreamByNameErrorKind;
    let lookup = tokio::time::timeout(FEEDBACK_ACK_TIMEOUT, js.stream_by_subject(FEEDBACK_SUBJECT));
    match lookup.await {
        Ok(Ok(_)) => Some(true),
        Ok(Err(e)) if e.kind() == GetStreamByNameErrorKind::NotFound => Some(false),
        Ok(Err(_)) | Err(_) => None,
    }
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

    /// JavaScript's `{...message, status, amount, channel, stack}`: a field
    /// the answer sets stays where the message had it, with the new value.
    #[test]
    fn the_seed_fail_echoes_every_field_in_order_and_overrides_in_place() {
        let payload = br#"{"chunkId":"c-1","status":"NEW","executionHash":"h1","entities":[{"id":"e","testError":1}],"extra":{"a":[1, 2]}}"#;
        let chunk = ChunkMessage::decode(payload).unwrap();
        let service = service();
        let feedback = Feedback::answer(FeedbackForm::Seed, &service, &chunk, "testError");
        assert_eq!(
            feedback.into_body(usize::MAX),
            r#"{"chunkId":"c-1","status":"FAIL","executionHash":"h1","entities":[{"id":"e","testError":1}],"extra":{"a":[1, 2]},"amount":0,"channel":"ORI_PERSON_CHANNEL","stack":"testError in entity e"}"#
        );
    }

    #[test]
    fn the_precise_form_is_unchanged() {
        let payload = br#"{"executionHash":"h1","chunkId":"c-1","entities":[{"id":"e"}]}"#;
        let chunk = ChunkMessage::decode(payload).unwrap();
        let service = service();
        let feedback = Feedback::answer(FeedbackForm::Precise, &service, &chunk, "testError");
        assert_eq!(
            feedback.into_body(usize::MAX),
            r#"{"channel":"ORI_PERSON_CHANNEL","status":"OK","amount":1,"executionHash":"h1","chunkId":"c-1"}"#
        );
    }
}
