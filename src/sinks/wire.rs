//! The wire format on NATS (SPEC §4): chunk envelopes out, feedback in.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::entity::Entity;

/// Bytes a chunk message may need beyond its entities: the envelope with
/// the longest hash and chunk id we make, plus the `Nats-Msg-Id` header.
pub const ENVELOPE_RESERVE: usize = 512;

/// Encodes `{"executionHash": …, "chunkId": …, "entities": [ … ]}` with
/// the entities' JSON copied byte for byte.
pub fn encode_chunk(execution_hash: &str, chunk_id: &str, entities: &[Entity]) -> Bytes {
    let size: usize = entities.iter().map(|e| e.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 64 + execution_hash.len() + chunk_id.len());
    out.extend_from_slice(b"{\"executionHash\":");
    push_json_string(&mut out, execution_hash);
    out.extend_from_slice(b",\"chunkId\":");
    push_json_string(&mut out, chunk_id);
    out.extend_from_slice(b",\"entities\":[");
    for (i, entity) in entities.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(entity.as_bytes());
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("strings serialize");
}

/// What a consumer said about a chunk, in either of SPEC §4's forms: the
/// precise one names the chunk (`chunkId`) in OK and FAIL alike; the
/// seed's (importer-mankeli's) OK carries only `amount`, and its FAIL
/// echoes the chunk message, `chunkId` included when the chunk had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// The subject the chunk came on.
    pub channel: String,
    /// `OK` or `FAIL`.
    pub status: FeedbackStatus,
    /// The attempt's hash.
    pub execution_hash: String,
    /// The chunk; `None` in a seed-form OK.
    pub chunk_id: Option<String>,
    /// Entities the consumer stored (OK) or 0 (FAIL), as the consumer
    /// counted them; `None` when absent.
    pub amount: Option<u64>,
    /// The consumer's error text on FAIL.
    pub stack: Option<serde_json::Value>,
    /// A FAIL without `chunkId`: the echoed chunk's entities, by which the
    /// chunk is found (empty otherwise: with a `chunkId` the importer
    /// splits its own copy and the echo is not read).
    pub echoed: Vec<Entity>,
}

/// The fields as they come; `entities` is kept raw and read only when it
/// is needed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackWire<'a> {
    channel: String,
    status: FeedbackStatus,
    execution_hash: String,
    #[serde(default)]
    chunk_id: Option<String>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    stack: Option<serde_json::Value>,
    #[serde(default, borrow)]
    entities: Option<&'a RawValue>,
}

/// Feedback status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FeedbackStatus {
    /// The chunk is stored.
    #[serde(rename = "OK")]
    Ok,
    /// The chunk failed.
    #[serde(rename = "FAIL")]
    Fail,
}

impl Feedback {
    /// Parses a feedback message. The echoed `entities` of a FAIL are read
    /// only when it has no `chunkId` (they are the only way to find the
    /// chunk then); they must be an array then.
    pub fn parse(body: &[u8]) -> Result<Feedback, serde_json::Error> {
        let wire: FeedbackWire = serde_json::from_slice(body)?;
        let echoed = match (&wire.chunk_id, wire.status, wire.entities) {
            (None, FeedbackStatus::Fail, Some(raw)) => {
                let list: Vec<&RawValue> = serde_json::from_str(raw.get())?;
                list.into_iter()
                    .map(|e| Entity::from_json(e.get().to_owned()))
                    .collect()
            }
            _ => Vec::new(),
        };
        Ok(Feedback {
            channel: wire.channel,
            status: wire.status,
            execution_hash: wire.execution_hash,
            chunk_id: wire.chunk_id,
            amount: wire.amount,
            stack: wire.stack,
            echoed,
        })
    }

    /// Feedback in the precise form about `chunk_id`, as a consumer would
    /// send it (benchmarks and tests).
    pub fn precise(
        channel: &str,
        status: FeedbackStatus,
        execution_hash: &str,
        chunk_id: &str,
    ) -> Feedback {
        Feedback {
            channel: channel.to_owned(),
            status,
            execution_hash: execution_hash.to_owned(),
            chunk_id: Some(chunk_id.to_owned()),
            amount: None,
            stack: None,
            echoed: Vec::new(),
        }
    }

    /// The chunk id for logs (`-` when the feedback names none).
    pub(crate) fn chunk_label(&self) -> &str {
        self.chunk_id.as_deref().unwrap_or("-")
    }

    /// The consumer's error text, shortened for logs and dead letters.
    pub(crate) fn stack_text(&self) -> String {
        let text = match &self.stack {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let mut end = text.len().min(2000);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_keeps_bytes() {
        let e = vec![
            Entity::from_json(r#"{"id":"ä", "n" :1}"#.into()),
            Entity::from_json("{}".into()),
        ];
        let p = encode_chunk("h\"1", "PERSON-1-0001", &e);
        let text = std::str::from_utf8(&p).unwrap();
        assert_eq!(
            text,
            r#"{"executionHash":"h\"1","chunkId":"PERSON-1-0001","entities":[{"id":"ä", "n" :1},{}]}"#
        );
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            entities: Vec<&'a serde_json::value::RawValue>,
        }
        let back: Envelope = serde_json::from_slice(&p).unwrap();
        assert_eq!(back.entities[0].get(), e[0].get());
    }

    #[test]
    fn feedback_parses_both_statuses() {
        let ok = Feedback::parse(
            br#"{"channel":"C","status":"OK","amount":3,"executionHash":"h","chunkId":"c"}"#,
        )
        .unwrap();
        assert_eq!(ok.status, FeedbackStatus::Ok);
        let fail = Feedback::parse(br#"{"channel":"C","status":"FAIL","amount":0,"executionHash":"h","chunkId":"c","entities":[{}],"stack":"boom"}"#).unwrap();
        assert_eq!(fail.status, FeedbackStatus::Fail);
        assert_eq!(fail.stack_text(), "boom");
        assert_eq!(fail.chunk_id.as_deref(), Some("c"));
        assert!(
            fail.echoed.is_empty(),
            "the echo is not read with a chunkId"
        );
        assert!(Feedback::parse(b"{").is_err());
        assert!(Feedback::parse(
            br#"{"channel":"C","status":"MAYBE","executionHash":"h","chunkId":"c"}"#
        )
        .is_err());
    }

    #[test]
    fn the_seeds_ok_has_an_amount_and_no_chunk_id() {
        // importer-mankeli's OK: its handler's result, then these four.
        let ok = Feedback::parse(
            br#"{"rows":3,"status":"OK","amount":3,"channel":"C","executionHash":"h"}"#,
        )
        .unwrap();
        assert_eq!(
            (ok.status, ok.chunk_id, ok.amount),
            (FeedbackStatus::Ok, None, Some(3))
        );
    }

    #[test]
    fn a_fail_without_chunk_id_carries_its_echoed_entities() {
        let fail = Feedback::parse(
            br#"{"executionHash":"h","entities":[{"id":"a"}, {"id":"b"}],"status":"FAIL","amount":0,"channel":"C","stack":"Error: boom\n    at x"}"#,
        )
        .unwrap();
        assert_eq!(fail.chunk_id, None);
        let echoed: Vec<&str> = fail.echoed.iter().map(|e| e.get()).collect();
        assert_eq!(echoed, [r#"{"id":"a"}"#, r#"{"id":"b"}"#]);
        assert!(
            Feedback::parse(
                br#"{"executionHash":"h","entities":{},"status":"FAIL","channel":"C"}"#
            )
            .is_err(),
            "an echo that is not a list is malformed"
        );
    }
}
