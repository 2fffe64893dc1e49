//! Unit tests of the reference consumer against a real `nats-server`, and
//! the helpers the seed's form's tests (`seed_tests`) share.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use serde_json::value::RawValue;

use sis_importer::catalogue::{self, Service, FEEDBACK_SUBJECT, POST_UPDATE_SUBJECT};

use super::message::is_truthy;
use super::{ConsumerConfig, Received, ReferenceConsumer, NATS_TIMEOUT};
use crate::servers::NatsServer;

pub(super) const WAIT: Duration = Duration::from_secs(20);

pub(super) fn two_services() -> Vec<Service> {
    let ids = ["PERSON", "TERM_REGISTRATION"];
    catalogue::builtin()
        .into_iter()
        .filter(|s| ids.contains(&s.id.as_str()))
        .collect()
}

/// A consumer on `services`, started before the stream exists (as in
/// real runs), then the stream as the importer would create it.
async fn setup(
    services: Vec<Service>,
    instances: usize,
) -> (NatsServer, jetstream::Context, ReferenceConsumer) {
    init_logging();
    let nats = NatsServer::start().await.unwrap();
    let consumer = ReferenceConsumer::start(ConsumerConfig {
        services: services.clone(),
        instances,
        ack_wait: Duration::from_secs(5),
        ..ConsumerConfig::new(nats.url())
    });
    let js = create_stream(&nats, &services, stream::Config::default()).await;
    (nats, js, consumer)
}

/// `RUST_LOG=debug cargo test -- --nocapture` shows the consumer's log.
pub(super) fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// After a pause that lets a consumer started just before wait for it,
/// creates the stream as the importer would (`services`' subjects, the
/// feedback subject, `POST_UPDATE` and `POST_UPDATE_FINISH`), from `base`
/// (for limits).
pub(super) async fn create_stream(
    nats: &NatsServer,
    services: &[Service],
    base: stream::Config,
) -> jetstream::Context {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut subjects: Vec<String> = services.iter().map(|s| s.subject.clone()).collect();
    subjects.extend([
        FEEDBACK_SUBJECT.to_owned(),
        POST_UPDATE_SUBJECT.to_owned(),
        "POST_UPDATE_FINISH".to_owned(),
    ]);
    js.create_stream(stream::Config {
        name: "SIS_IMPORTER".into(),
        subjects,
        storage: stream::StorageType::File,
        ..base
    })
    .await
    .unwrap();
    js
}

fn chunk(chunk_id: &str, entities: &[&str]) -> String {
    chunk_of("h1", chunk_id, entities)
}

/// A chunk message of `execution_hash` as the importer sends it.
pub(super) fn chunk_of(execution_hash: &str, chunk_id: &str, entities: &[&str]) -> String {
    format!(
        r#"{{"executionHash":"{execution_hash}","chunkId":"{chunk_id}","entities":[{}]}}"#,
        entities.join(",")
    )
}

/// Publishes through JetStream and awaits the ack, retrying.
pub(super) async fn publish(js: &jetstream::Context, subject: &str, body: String) {
    // Retried: right after a server restart the first attempts may fail.
    for _ in 0..50 {
        if let Ok(Ok(ack)) = tokio::time::timeout(
            NATS_TIMEOUT,
            js.publish(subject.to_owned(), body.clone().into()),
        )
        .await
        {
            if ack.await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not publish to {subject}");
}

/// A core subscription on the feedback subject.
pub(super) async fn feedback_subscriber(nats: &NatsServer) -> async_nats::Subscriber {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let sub = client.subscribe(FEEDBACK_SUBJECT).await.unwrap();
    client.flush().await.unwrap();
    sub
}

/// Collects feedback bodies until `quiet` passes without one.
pub(super) async fn collect(sub: &mut async_nats::Subscriber, quiet: Duration) -> Vec<String> {
    let mut bodies = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
        bodies.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    bodies
}

#[tokio::test]
async fn answers_ok_and_fail_exactly_as_specified() {
    let (nats, js, consumer) = setup(two_services(), 2).await;
    let mut sub = feedback_subscriber(&nats).await;
    let p1 = r#"{"id":"p1","documentState":"ACTIVE","metadata":{"modificationOrdinal":7}}"#;
    let p2 = r#"{"id": "p2", "documentState":"DELETED"}"#;
    let bad = r#"{"id":"p3","testError":true,"x":[1, 2]}"#;
    let term = r#"{"studyRightId":"sr","studentId":"st","metadata":{"modificationOrdinal":3}}"#;
    // A malformed message first: the loop must go on after it.
    publish(&js, "ORI_PERSON_CHANNEL", "this is not json".into()).await;
    publish(&js, "ORI_PERSON_CHANNEL", chunk("ok-1", &[p1, p2])).await;
    publish(&js, "ORI_PERSON_CHANNEL", chunk("fail-1", &[p1, bad])).await;
    publish(&js, "ORI_TERM_REGISTRATION", chunk("term-1", &[term])).await;
    let mut bodies = collect(&mut sub, Duration::from_secs(3)).await;
    bodies.sort();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let fail = format!(
        r#"{{"channel":"ORI_PERSON_CHANNEL","status":"FAIL","amount":0,"executionHash":"h1","chunkId":"fail-1","entities":[{p1},{bad}],"stack":"testError in entity p3"}}"#
    );
    assert_eq!(bodies[0], fail);
    assert_eq!(
        bodies[1],
        r#"{"channel":"ORI_PERSON_CHANNEL","status":"OK","amount":2,"executionHash":"h1","chunkId":"ok-1"}"#
    );
    assert_eq!(
        bodies[2],
        r#"{"channel":"ORI_TERM_REGISTRATION","status":"OK","amount":1,"executionHash":"h1","chunkId":"term-1"}"#
    );

    let r = consumer.received();
    assert_eq!(
        (r.chunks_ok, r.chunks_failed, r.entities_ok, r.malformed),
        (2, 1, 3, 1)
    );
    let person = &r.per_service["PERSON"];
    let expected: HashSet<_> = [("p1".to_string(), Some(7)), ("p2".to_string(), None)].into();
    assert_eq!(person.seen, expected);
    assert_eq!(person.chunk_ids, ["ok-1"]);
    assert_eq!(person.max_chunk_entities, 2);
    assert_eq!(person.execution_hashes, BTreeSet::from(["h1".to_string()]));
    let term_seen = &r.per_service["TERM_REGISTRATION"].seen;
    assert!(term_seen.contains(&("studyRightId=sr,studentId=st".to_string(), Some(3))));
    consumer.stop().await;
}

#[tokio::test]
async fn duplicate_mode_sends_two_and_never_answer_sends_none() {
    let (nats, js, consumer) = setup(two_services(), 1).await;
    let mut sub = feedback_subscriber(&nats).await;
    consumer.set_duplicate_feedback(true);
    publish(
        &js,
        "ORI_PERSON_CHANNEL",
        chunk("dup-1", &[r#"{"id":"a"}"#]),
    )
    .await;
    assert_eq!(collect(&mut sub, Duration::from_secs(2)).await.len(), 2);

    consumer.set_duplicate_feedback(false);
    consumer.set_never_answer(true);
    publish(
        &js,
        "ORI_PERSON_CHANNEL",
        chunk("silent-1", &[r#"{"id":"b"}"#]),
    )
    .await;
    assert!(consumer.wait_until(WAIT, |r| r.chunks_ok == 2).await);
    assert!(collect(&mut sub, Duration::from_secs(2)).await.is_empty());
    // Processed and acked all the same: nothing left pending.
    let mut durable = js
        .get_stream("SIS_IMPORTER")
        .await
        .unwrap()
        .get_consumer::<pull::Config>("reference_PERSON")
        .await
        .unwrap();
    let info = durable.info().await.unwrap();
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));

    consumer.set_never_answer(false);
    consumer
        .publish_raw_feedback(b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!(
        collect(&mut sub, Duration::from_secs(1)).await,
        ["{not json"]
    );
    consumer.stop().await;
}

#[tokio::test]
async fn instances_share_the_work_and_process_each_chunk_once() {
    let (nats, js, consumer) = setup(two_services(), 3).await;
    let mut sub = feedback_subscriber(&nats).await;
    consumer.set_latency(Duration::from_millis(20));
    for i in 0..60 {
        publish(
            &js,
            "ORI_PERSON_CHANNEL",
            chunk(&format!("c-{i}"), &[&format!(r#"{{"id":"e{i}"}}"#)]),
        )
        .await;
    }
    assert!(consumer.wait_until(WAIT, |r| r.chunks_ok >= 60).await);
    assert_eq!(collect(&mut sub, Duration::from_secs(2)).await.len(), 60);
    let r = consumer.received();
    let ids: HashSet<_> = r.per_service["PERSON"].chunk_ids.iter().collect();
    assert_eq!((r.chunks_ok, ids.len()), (60, 60));
    assert!(
        r.per_instance.len() >= 2,
        "work not shared: {:?}",
        r.per_instance
    );
    consumer.stop().await;
}

#[tokio::test]
async fn survives_a_nats_restart_mid_stream() {
    // Only "every chunk seen" is asserted: after a SIGKILL, nats-server
    // 2.9 forgets acks it had not yet persisted and redelivers.
    let (mut nats, js, consumer) = setup(two_services(), 2).await;
    consumer.set_latency(Duration::from_millis(50));
    for i in 0..30 {
        publish(
            &js,
            "ORI_PERSON_CHANNEL",
            chunk(&format!("a-{i}"), &[&format!(r#"{{"id":"a{i}"}}"#)]),
        )
        .await;
    }
    assert!(consumer.wait_until(WAIT, |r| r.chunks_ok >= 5).await);
    nats.restart().await.unwrap();
    for i in 0..30 {
        publish(
            &js,
            "ORI_PERSON_CHANNEL",
            chunk(&format!("b-{i}"), &[&format!(r#"{{"id":"b{i}"}}"#)]),
        )
        .await;
    }
    let all_seen = |r: &Received| {
        r.per_service
            .get("PERSON")
            .is_some_and(|s| s.seen.len() == 60)
    };
    assert!(
        consumer.wait_until(Duration::from_secs(60), all_seen).await,
        "{:?}",
        consumer.received().chunks_ok
    );
    consumer.stop().await;
}

#[tokio::test]
async fn stop_hands_a_chunk_in_progress_back_at_once() {
    let (nats, js, consumer) = setup(two_services(), 1).await;
    consumer.set_latency(Duration::from_secs(30));
    publish(
        &js,
        "ORI_PERSON_CHANNEL",
        chunk("slow-1", &[r#"{"id":"s"}"#]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = std::time::Instant::now();
    consumer.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(2));
    // NAKed, so a successor gets it well before ack_wait (5 s) ends.
    let successor = ReferenceConsumer::start(ConsumerConfig {
        services: two_services(),
        ..ConsumerConfig::new(nats.url())
    });
    let got = successor
        .wait_until(Duration::from_secs(3), |r| r.chunks_ok == 1)
        .await;
    assert!(got, "{:?}", successor.received());
    successor.stop().await;
}

#[tokio::test]
async fn connects_with_a_token() {
    let options = crate::servers::NatsOptions {
        token: Some("t0ken".into()),
        ..Default::default()
    };
    let nats = NatsServer::start_with(options).await.unwrap();
    let consumer = ReferenceConsumer::start(ConsumerConfig {
        nats_auth: sis_importer::sinks::NatsAuth {
            token: Some(sis_importer::config::Secret::new("t0ken")),
            ..Default::default()
        },
        services: two_services(),
        ..ConsumerConfig::new(nats.url())
    });
    let client = async_nats::ConnectOptions::with_token("t0ken".into())
        .connect(nats.url())
        .await
        .unwrap();
    let js = jetstream::new(client);
    js.create_stream(stream::Config {
        name: "SIS_IMPORTER".into(),
        subjects: vec!["ORI_PERSON_CHANNEL".into(), FEEDBACK_SUBJECT.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    publish(&js, "ORI_PERSON_CHANNEL", chunk("t-1", &[r#"{"id":"t"}"#])).await;
    assert!(consumer.wait_until(WAIT, |r| r.chunks_ok == 1).await);
    consumer.stop().await;
}

#[tokio::test]
async fn full_catalogue_with_default_config() {
    let (_nats, js, consumer) = setup(catalogue::builtin(), 2).await;
    for service in catalogue::builtin() {
        publish(
            &js,
            &service.subject,
            chunk(&service.id, &[r#"{"id":"x"}"#]),
        )
        .await;
    }
    assert!(
        consumer
            .wait_until(WAIT, |r| r.per_service.len() == 26 && r.chunks_ok == 26)
            .await
    );
    let start = std::time::Instant::now();
    consumer.stop().await;
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn truthiness_follows_javascript() {
    let t = |json: &str| is_truthy(&RawValue::from_string(json.into()).unwrap(), "testError");
    for yes in [
        r#"{"testError":true}"#,
        r#"{"testError":1}"#,
        r#"{"testError":"x"}"#,
        r#"{"testError":{}}"#,
    ] {
        assert!(t(yes), "{yes}");
    }
    for no in [
        r#"{"testError":false}"#,
        r#"{"testError":0}"#,
        r#"{"testError":""}"#,
        r#"{"testError":null}"#,
        "{}",
        "[1]",
        "3",
    ] {
        assert!(!t(no), "{no}");
    }
}
