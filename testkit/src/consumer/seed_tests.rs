//! Tests of the seed's form (importer-mankeli's behaviour, SPEC §4) and of
//! the fail field in both forms, against real `nats-server` and
//! `redis-server` processes.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use redis::aio::MultiplexedConnection;

use sis_importer::catalogue::FEEDBACK_SUBJECT;

use super::current_hash::HASH_KEY;
use super::tests::{
    chunk_of, collect, create_stream, feedback_subscriber, init_logging, publish, two_services,
    WAIT,
};
use super::{ConsumerConfig, FeedbackForm, ReferenceConsumer, StoreSink, StoredEntity};
use crate::servers::{NatsOptions, NatsServer, RedisServer};

const PERSON: &str = "ORI_PERSON_CHANNEL";
const DURABLE: &str = "reference_PERSON";
const P1: &str = r#"{"id":"p1","documentState":"ACTIVE","metadata":{"modificationOrdinal":7}}"#;
const P2: &str = r#"{"id": "p2", "documentState":"DELETED"}"#;
const BAD: &str = r#"{"id":"p3","testError":true,"x":[1, 2]}"#;

/// A [`StoreSink`] keeping what it is given.
#[derive(Default)]
struct MemoryStore(Mutex<Vec<StoredEntity>>);

impl StoreSink for MemoryStore {
    fn store(&self, entities: &[StoredEntity]) -> io::Result<()> {
        self.0.lock().unwrap().extend_from_slice(entities);
        Ok(())
    }
}

impl MemoryStore {
    fn identities(&self) -> Vec<String> {
        let stored = self.0.lock().unwrap();
        stored.iter().map(|e| e.identity.clone()).collect()
    }
}

/// Servers, a seed-form consumer on two services storing into `store`, the
/// stream, and a Redis connection to play the importer with.
struct Rig {
    nats: NatsServer,
    redis_server: RedisServer,
    redis: MultiplexedConnection,
    js: jetstream::Context,
    consumer: ReferenceConsumer,
    store: Arc<MemoryStore>,
}

/// What a rig differs in.
#[derive(Default)]
struct Setup {
    /// `CURRENT_EXECUTION_HASH` set (not published) before the consumer starts.
    preset_hash: Option<&'static str>,
    nats: NatsOptions,
    stream: stream::Config,
}

async fn rig(preset_hash: Option<&'static str>) -> Rig {
    let setup = Setup {
        preset_hash,
        ..Setup::default()
    };
    rig_with(setup, |_| {}).await
}

async fn rig_with(setup: Setup, change: impl FnOnce(&mut ConsumerConfig)) -> Rig {
    init_logging();
    let nats = NatsServer::start_with(setup.nats).await.unwrap();
    let redis_server = RedisServer::start().await.unwrap();
    let mut redis = connect_redis(&redis_server).await;
    if let Some(hash) = setup.preset_hash {
        set_key(&mut redis, hash).await;
    }
    let store = Arc::new(MemoryStore::default());
    let mut config = ConsumerConfig {
        services: two_services(),
        store_sink: Some(store.clone()),
        ..ConsumerConfig::seed(nats.url(), redis_server.url())
    };
    change(&mut config);
    let consumer = ReferenceConsumer::start(config);
    let js = create_stream(&nats, &two_services(), setup.stream).await;
    Rig {
        nats,
        redis_server,
        redis,
        js,
        consumer,
        store,
    }
}

async fn connect_redis(server: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// SET only: a consumer learns it at (re)connection, not at once.
async fn set_key(redis: &mut MultiplexedConnection, hash: &str) {
    let _: () = redis::cmd("SET")
        .arg(HASH_KEY)
        .arg(hash)
        .query_async(redis)
        .await
        .unwrap();
}

/// PUBLISH only: what a subscribed consumer hears.
async fn publish_hash(redis: &mut MultiplexedConnection, hash: &str) {
    let _: i64 = redis::cmd("PUBLISH")
        .arg(HASH_KEY)
        .arg(hash)
        .query_async(redis)
        .await
        .unwrap();
}

impl Rig {
    /// Waits until every instance holds `hash` current.
    async fn knows(&self, hash: &str, instances: usize) -> bool {
        self.consumer
            .wait_until(WAIT, |r| {
                r.current_hashes.len() == instances && r.current_hashes.values().all(|h| h == hash)
            })
            .await
    }

    /// The durable consumer's info, once the consumer has created it.
    async fn durable(&self) -> Option<jetstream::consumer::Info> {
        let stream = self.js.get_stream("SIS_IMPORTER").await.unwrap();
        let mut durable = stream.get_consumer::<pull::Config>(DURABLE).await.ok()?;
        Some(durable.info().await.unwrap().clone())
    }

    /// The durable's ack floor (stream sequence); 0 before it exists.
    async fn ack_floor(&self) -> u64 {
        self.durable()
            .await
            .map_or(0, |info| info.ack_floor.stream_sequence)
    }

    /// Waits until the durable's ack floor reaches stream sequence `seq`.
    async fn acked_through(&self, seq: u64) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.ack_floor().await >= seq {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

#[tokio::test]
async fn seed_form_answers_ok_without_chunk_id_and_fail_as_the_chunk_echoed() {
    let rig = rig(Some("h1")).await;
    assert!(rig.knows("h1", 1).await);
    let mut sub = feedback_subscriber(&rig.nats).await;
    publish(&rig.js, PERSON, chunk_of("h1", "ok-1", &[P1, P2])).await;
    publish(&rig.js, PERSON, chunk_of("h1", "fail-1", &[P1, BAD])).await;
    let bodies = collect(&mut sub, Duration::from_secs(3)).await;
    // One instance, one chunk at a time: answers in publishing order.
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(
        bodies[0],
        r#"{"status":"OK","amount":2,"channel":"ORI_PERSON_CHANNEL","executionHash":"h1"}"#
    );
    let fail = format!(
        r#"{{"executionHash":"h1","chunkId":"fail-1","entities":[{P1},{BAD}],"status":"FAIL","amount":0,"channel":"ORI_PERSON_CHANNEL","stack":"testError in entity p3"}}"#
    );
    assert_eq!(bodies[1], fail);

    let r = rig.consumer.received();
    assert_eq!(
        (r.chunks_ok, r.chunks_failed, r.dropped_other_hash),
        (1, 1, 0)
    );
    assert_eq!(r.per_service["PERSON"].chunk_ids, ["ok-1"]);
    let stored = rig.store.0.lock().unwrap().clone();
    let p2 = StoredEntity {
        service: "PERSON".into(),
        identity: "p2".into(),
        ordinal: None,
        document_state: Some("DELETED".into()),
    };
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0].identity.as_str(), stored[0].ordinal),
        ("p1", Some(7))
    );
    assert_eq!(stored[1], p2);
    rig.consumer.stop().await;
}

#[tokio::test]
async fn seed_form_fail_too_large_goes_without_entities_but_names_the_chunk() {
    let setup = Setup {
        preset_hash: Some("h1"),
        nats: NatsOptions {
            max_payload: Some(2048),
            ..Default::default()
        },
        ..Setup::default()
    };
    let rig = rig_with(setup, |_| {}).await;
    assert!(rig.knows("h1", 1).await);
    let mut sub = feedback_subscriber(&rig.nats).await;
    let pad = "x".repeat(1900);
    let big = format!(r#"{{"id":"big","testError":1,"pad":"{pad}"}}"#);
    let body = chunk_of("h1", "big-1", &[&big]);
    assert!(
        body.len() < 2048 && body.len() + 100 > 2048,
        "{}",
        body.len()
    );
    publish(&rig.js, PERSON, body).await;
    assert_eq!(
        collect(&mut sub, Duration::from_secs(3)).await,
        [
            r#"{"executionHash":"h1","chunkId":"big-1","status":"FAIL","amount":0,"channel":"ORI_PERSON_CHANNEL","stack":"testError in entity big"}"#
        ]
    );
    rig.consumer.stop().await;
}

#[tokio::test]
async fn a_chunk_of_another_hash_is_acked_unprocessed_and_unanswered() {
    let rig = rig(Some("h1")).await;
    assert!(rig.knows("h1", 1).await);
    let mut sub = feedback_subscriber(&rig.nats).await;
    publish(&rig.js, PERSON, chunk_of("h0", "old-1", &[P1])).await;
    assert!(
        rig.consumer
            .wait_until(WAIT, |r| r.dropped_other_hash == 1)
            .await
    );
    assert!(rig.acked_through(1).await, "{:?}", rig.durable().await);
    let info = rig.durable().await.unwrap();
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    assert!(collect(&mut sub, Duration::from_secs(2)).await.is_empty());
    let r = rig.consumer.received();
    let person = &r.per_service["PERSON"];
    assert_eq!((r.chunks_ok, r.chunks_failed, r.entities_ok), (0, 0, 0));
    assert_eq!(person.dropped_other_hash, 1);
    assert_eq!(
        person.dropped_chunks,
        [("h0".to_string(), "old-1".to_string())]
    );
    assert!(person.stored.is_empty() && person.seen.is_empty());
    assert!(rig.store.identities().is_empty());

    // The loop goes on: the current hash's next chunk is answered.
    publish(&rig.js, PERSON, chunk_of("h1", "new-1", &[P2])).await;
    assert_eq!(collect(&mut sub, Duration::from_secs(3)).await.len(), 1);
    assert_eq!(rig.store.identities(), ["p2"]);
    rig.consumer.stop().await;
}

#[tokio::test]
async fn a_hash_published_on_the_channel_replaces_the_current_one_in_every_instance() {
    let mut rig = rig_with(
        Setup {
            preset_hash: Some("h1"),
            ..Setup::default()
        },
        |config| config.instances = 2,
    )
    .await;
    assert!(rig.knows("h1", 2).await);
    let mut sub = feedback_subscriber(&rig.nats).await;
    publish(&rig.js, PERSON, chunk_of("h1", "a-1", &[P1])).await;
    assert!(rig.consumer.wait_until(WAIT, |r| r.chunks_ok == 1).await);
    // Published only, the key left at h1: the channel alone must do it.
    publish_hash(&mut rig.redis, "h2").await;
    assert!(
        rig.knows("h2", 2).await,
        "{:?}",
        rig.consumer.received().current_hashes
    );
    publish(&rig.js, PERSON, chunk_of("h1", "late-1", &[P2])).await;
    publish(&rig.js, PERSON, chunk_of("h2", "new-1", &[P2])).await;
    let done = |r: &super::Received| r.chunks_ok == 2 && r.dropped_other_hash == 1;
    assert!(rig.consumer.wait_until(WAIT, done).await);
    let r = rig.consumer.received();
    let person = &r.per_service["PERSON"];
    assert_eq!(person.chunk_ids, ["a-1", "new-1"]);
    assert_eq!(
        person.dropped_chunks,
        [("h1".to_string(), "late-1".to_string())]
    );
    let hashes: Vec<String> = collect(&mut sub, Duration::from_secs(2))
        .await
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["executionHash"].to_string())
        .collect();
    assert_eq!(hashes, [r#""h1""#, r#""h2""#]);
    rig.consumer.stop().await;
}

#[tokio::test]
async fn a_hash_already_in_redis_at_start_is_used_without_a_publish() {
    let rig = rig(Some("h7")).await;
    let mut sub = feedback_subscriber(&rig.nats).await;
    publish(&rig.js, PERSON, chunk_of("h7", "c-1", &[P1])).await;
    assert!(rig.consumer.wait_until(WAIT, |r| r.chunks_ok == 1).await);
    assert_eq!(collect(&mut sub, Duration::from_secs(2)).await.len(), 1);
    assert_eq!(rig.consumer.received().current_hashes[&0], "h7");
    rig.consumer.stop().await;
}

#[tokio::test]
async fn nothing_is_consumed_before_a_hash_is_known() {
    let mut rig = rig(None).await;
    publish(&rig.js, PERSON, chunk_of("h3", "early-1", &[P1])).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = rig.consumer.received();
    assert_eq!((r.chunks_ok, r.dropped_other_hash), (0, 0));
    // The importer's way: the key, then the channel.
    set_key(&mut rig.redis, "h3").await;
    publish_hash(&mut rig.redis, "h3").await;
    assert!(rig.consumer.wait_until(WAIT, |r| r.chunks_ok == 1).await);
    assert_eq!(rig.consumer.received().dropped_other_hash, 0);
    rig.consumer.stop().await;
}

#[tokio::test]
async fn the_key_is_read_again_after_a_lost_redis_connection() {
    let mut rig = rig(Some("h1")).await;
    assert!(rig.knows("h1", 1).await);
    // Set without a PUBLISH, as if the PUBLISH was missed while the
    // subscription was down; then the subscription goes down.
    set_key(&mut rig.redis, "h2").await;
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query_async(&mut rig.redis)
        .await
        .unwrap();
    assert!(rig.knows("h2", 1).await);

    // A whole Redis outage: it comes back, then the next run starts.
    rig.redis_server.kill();
    rig.redis_server.restart().await.unwrap();
    let mut redis = connect_redis(&rig.redis_server).await;
    set_key(&mut redis, "h3").await;
    publish_hash(&mut redis, "h3").await;
    assert!(rig.knows("h3", 1).await);
    publish(&rig.js, PERSON, chunk_of("h3", "c-1", &[P1])).await;
    assert!(rig.consumer.wait_until(WAIT, |r| r.chunks_ok == 1).await);
    rig.consumer.stop().await;
}

#[tokio::test]
async fn feedback_is_in_the_stream_before_the_chunk_is_acked() {
    let rig = rig(Some("h1")).await;
    assert!(rig.knows("h1", 1).await);
    publish(&rig.js, PERSON, chunk_of("h1", "c-1", &[P1])).await;
    assert!(rig.acked_through(1).await);
    let stream = rig.js.get_stream("SIS_IMPORTER").await.unwrap();
    let feedback = stream
        .get_last_raw_message_by_subject(FEEDBACK_SUBJECT)
        .await
        .unwrap();
    let acked_at = rig.durable().await.unwrap().ack_floor.last_active;
    let acked_at = acked_at.expect("the server reports when the ack floor moved");
    assert!(
        feedback.time <= acked_at,
        "{:?} > {acked_at:?}",
        feedback.time
    );
    rig.consumer.stop().await;
}

#[tokio::test]
async fn a_chunk_whose_feedback_cannot_be_published_is_not_acked() {
    // Room for the chunk and one more message, which the test takes first.
    let setup = Setup {
        preset_hash: Some("h1"),
        stream: stream::Config {
            max_messages: 2,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        },
        ..Setup::default()
    };
    let rig = rig_with(setup, |config| {
        config.latency = Duration::from_millis(500);
    })
    .await;
    assert!(rig.knows("h1", 1).await);
    publish(&rig.js, PERSON, chunk_of("h1", "c-1", &[P1])).await;
    publish(&rig.js, FEEDBACK_SUBJECT, "{}".into()).await;
    // Processed (stored, even) but its feedback is refused: not acked.
    assert!(rig.consumer.wait_until(WAIT, |r| r.chunks_ok >= 1).await);
    for _ in 0..20 {
        assert_eq!(rig.ack_floor().await, 0);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Room again: the feedback goes out, then the ack.
    let stream = rig.js.get_stream("SIS_IMPORTER").await.unwrap();
    stream.purge().filter(FEEDBACK_SUBJECT).await.unwrap();
    assert!(rig.acked_through(1).await);
    let feedback = stream
        .get_last_raw_message_by_subject(FEEDBACK_SUBJECT)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&feedback.payload).unwrap();
    assert_eq!(body["status"], "OK");
    rig.consumer.stop().await;
}

/// A [`StoreSink`] whose first write fails, as a database that is down;
/// counts the writes.
#[derive(Default)]
struct DownOnce(AtomicU32);

impl StoreSink for DownOnce {
    fn store(&self, _: &[StoredEntity]) -> io::Result<()> {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 => Err(io::Error::other("database down")),
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn a_chunk_not_stored_is_not_answered_but_comes_again() {
    let setup = Setup {
        preset_hash: Some("h1"),
        ..Setup::default()
    };
    let store = Arc::new(DownOnce::default());
    let sink = store.clone();
    let rig = rig_with(setup, |config| config.store_sink = Some(sink)).await;
    assert!(rig.knows("h1", 1).await);
    let mut sub = feedback_subscriber(&rig.nats).await;
    publish(&rig.js, PERSON, chunk_of("h1", "c-1", &[P1])).await;
    // Handed back (NAKed) unanswered, then stored and answered once.
    assert!(rig.acked_through(1).await);
    assert_eq!(collect(&mut sub, Duration::from_secs(2)).await.len(), 1);
    assert_eq!(rig.consumer.received().chunks_ok, 1);
    assert_eq!(store.0.load(Ordering::SeqCst), 2);
    rig.consumer.stop().await;
}

#[tokio::test]
async fn the_fail_field_decides_in_both_forms() {
    for form in [FeedbackForm::Precise, FeedbackForm::Seed] {
        let rig = rig_with(
            Setup {
                preset_hash: Some("h1"),
                ..Setup::default()
            },
            |config| {
                config.form = form;
                config.fail_field = "broken".into();
            },
        )
        .await;
        if form == FeedbackForm::Seed {
            assert!(rig.knows("h1", 1).await);
        }
        let mut sub = feedback_subscriber(&rig.nats).await;
        let not_the_field = r#"{"id":"a","testError":true}"#;
        let the_field = r#"{"id":"b","broken":"yes"}"#;
        publish(&rig.js, PERSON, chunk_of("h1", "ok-1", &[not_the_field])).await;
        publish(&rig.js, PERSON, chunk_of("h1", "fail-1", &[the_field])).await;
        let bodies: Vec<serde_json::Value> = collect(&mut sub, Duration::from_secs(3))
            .await
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        assert_eq!(bodies.len(), 2, "{form}: {bodies:?}");
        let (ok, fail) = if bodies[0]["status"] == "OK" {
            (&bodies[0], &bodies[1])
        } else {
            (&bodies[1], &bodies[0])
        };
        assert_eq!(ok["status"], "OK", "{form}");
        assert_eq!(fail["status"], "FAIL", "{form}");
        assert_eq!(fail["chunkId"], "fail-1", "{form}");
        assert_eq!(fail["stack"], "broken in entity b", "{form}");
        let r = rig.consumer.received();
        assert_eq!((r.chunks_ok, r.chunks_failed), (1, 1), "{form}");
        rig.consumer.stop().await;
    }
}

#[test]
#[should_panic(expected = "needs ConsumerConfig::redis_url")]
fn the_seed_form_without_redis_is_refused_at_start() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    ReferenceConsumer::start(ConsumerConfig {
        form: FeedbackForm::Seed,
        ..ConsumerConfig::new("nats://127.0.0.1:1")
    });
}
