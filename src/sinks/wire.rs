//! The wire format on NATS (SPEC §4): chunk envelopes out, feedback in.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::entity::Entity;
use crate::pipeline::vocabulary::{Feedback, FeedbackStatus};

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

/// The feedback fields as they come; `entities` is kept raw and read only
/// when it is needed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackWire<'a> {
    channel: String,
    status: StatusWire,
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

/// `OK` or `FAIL` on the wire.
#[derive(Clone, Copy, Deserialize)]
enum StatusWire {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "FAIL")]
    Fail,
}

/// Parses a feedback message in either of SPEC §4's forms into the
/// pipeline's [`Feedback`]. The echoed `entities` of a FAIL are read only
/// when it has no `chunkId` (they are the only way to find the chunk
/// then); they must be an array then. `stack` is kept as text, at most
/// 2000 bytes.
pub fn parse_feedback(body: &[u8]) -> Result<Feedback, serde_json::Error> {
    let wire: FeedbackWire = serde_json::from_slice(body)?;
    let status = match wire.status {
        StatusWire::Ok => FeedbackStatus::Ok,
        StatusWire::Fail => FeedbackStatus::Fail,
    };
    let echoed = match (&wire.chunk_id, status, wire.entities) {
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
        status,
        execution_hash: wire.execution_hash,
        chunk_id: wire.chunk_id,
        amount: wire.amount,
        stack: stack_text(wire.stack),
        echoed,
    })
}

/// The consumer's error text, shortened for logs and dead letters.
fn stack_text(stack: Option<serde_json::Value>) -> String {
    let text = match stack {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    let mut end = text.len().min(2000);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
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
        let ok = parse_feedback(
            br#"{"channel":"C","status":"OK","amount":3,"executionHash":"h","chunkId":"c"}"#,
        )
        .unwrap();
        assert_eq!(ok.status, FeedbackStatus::Ok);
        let fail = parse_feedback(br#"{"channel":"C","status":"FAIL","amount":0,"executionHash":"h","chunkId":"c","entities":[{}],"stack":"boom"}"#).unwrap();
        assert_eq!(fail.status, FeedbackStatus::Fail);
        assert_eq!(fail.stack, "boom");
        assert_eq!(fail.chunk_id.as_deref(), Some("c"));
        assert!(
            fail.echoed.is_empty(),
            "the echo is not read with a chunkId"
        );
        assert!(parse_feedback(b"{").is_err());
        assert!(parse_feedback(
            br#"{"channel":"C","status":"MAYBE","executionHash":"h","chunkId":"c"}"#
        )
        .is_err());
    }

    #[test]
    fn the_seeds_ok_has_an_amount_and_no_chunk_id() {
        // importer-mankeli's OK: its handler's result, then these four.
        let ok = parse_feedback(
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
        let fail = parse_feedback(
            br#"{"executionHash":"h","entities":[{"id":"a"}, {"id":"b"}],"status":"FAIL","amount":0,"channel":"C","stack":"Error: boom\n    at x"}"#,
        )
        .unwrap();
        assert_eq!(fail.chunk_id, None);
        let echoed: Vec<&str> = fail.echoed.iter().map(|e| e.get()).collect();
        assert_eq!(echoed, [r#"{"id":"a"}"#, r#"{"id":"b"}"#]);
        assert!(
            parse_feedback(br#"{"executionHash":"h","entities":{},"status":"FAIL","channel":"C"}"#)
                .is_err(),
            "an echo that is not a list is malformed"
        );
    }
}
