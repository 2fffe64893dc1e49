//! The wire format on NATS (SPEC §4): chunk envelopes out, feedback in.

use bytes::Bytes;
use serde::Deserialize;

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

/// What a consumer said about a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    /// The subject the chunk came on.
    pub channel: String,
    /// `OK` or `FAIL`.
    pub status: FeedbackStatus,
    /// The attempt's hash.
    pub execution_hash: String,
    /// The chunk.
    pub chunk_id: String,
    /// The consumer's error text on FAIL.
    #[serde(default)]
    pub stack: Option<serde_json::Value>,
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
    /// Parses a feedback message; the echoed `entities` are not read (the
    /// importer splits its own copy).
    pub fn parse(body: &[u8]) -> Result<Feedback, serde_json::Error> {
        serde_json::from_slice(body)
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
        assert!(Feedback::parse(b"{").is_err());
        assert!(Feedback::parse(
            br#"{"channel":"C","status":"MAYBE","executionHash":"h","chunkId":"c"}"#
        )
        .is_err());
    }
}
