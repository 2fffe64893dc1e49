//! Dead letters with their entities (`sis-importer dead-letters`): a
//! poison entity listed, replayed to a fixed consumer byte for byte and
//! gone from the list with no ordinal, window counter or attempt record
//! touched; entities that still fail halved down and kept once; clear by
//! identity and all; the bound on kept entity bytes and old letters
//! without an entity; a replay killed midway; a consumer of the seed's
//! form. The admin routes and the lease: `dead_letters_admin.rs`.

mod common;
#[path = "dead_letters/support.rs"]
mod support;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::Value;
use sis_importer::importer::replay::{Pick, ReplayResult};
use sis_importer::shutdown::Shutdown;
use sis_testkit::consumer::ConsumerConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_entity_reaches_the_fixed_consumer_as_sisu_sent_it_and_leaves_the_list() {
    let mut env = poisoned(&[7]).await;
    let poison = change(&env, 7);
    let (code, table, _) = cli(&env, &["list"]);
    assert_eq!(code, Some(0));
    let row = table.lines().nth(1).expect("a row");
    for cell in [
        "PERSON",
        &poison.0,
        &poison.1.unwrap().to_string(),
        "poison",
        "yes",
        "testError",
    ] {
        assert!(row.contains(cell), "{cell} in {table}");
    }
    let (_, json, _) = cli(&env, &["list", "PERSON", "--json"]);
    let rows: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["total"], 1, "{rows}");
    assert_eq!(rows[0]["letters"][0]["identity"], poison.0.as_str());
    assert_eq!(rows[0]["letters"][0]["replayable"], true);
    assert!(rows[0]["letters"][0]["entityBytes"].as_u64().unwrap() > 100);

    let mut conn = redis(&env).await;
    let before = untouched(&mut conn).await;
    fix_consumer(&mut env).await;
    let nats = async_nats::connect(env.nats.url()).await.unwrap();
    let mut chunks = nats.subscribe("ORI_PERSON_CHANNEL").await.unwrap();
    let (code, out, err) = cli(&env, &["replay", "PERSON", "--all"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("1 delivered and removed, 0 failed again"),
        "{out}"
    );

    assert!(eventually(Duration::from_secs(10), || seen_by_consumer(&env, &poison)).await);
    assert_eq!(
        entities_of(&env.consumer.received(), "PERSON"),
        1,
        "that one alone"
    );
    let chunk = tokio::time::timeout(Duration::from_secs(5), chunks.next()).await;
    let payload = chunk.unwrap().unwrap().payload;
    let none = tokio::time::timeout(Duration::from_secs(1), chunks.next()).await;
    assert!(none.is_err(), "one chunk");
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Chunk {
        execution_hash: String,
        chunk_id: String,
        entities: Vec<Box<serde_json::value::RawValue>>,
    }
    let chunk: Chunk = serde_json::from_slice(&payload).unwrap();
    let id = &chunk.chunk_id;
    assert!(
        id.starts_with("PERSON-") && id.ends_with("-0-0-0+1"),
        "{id}"
    );
    let hash: String = cmd(&mut conn, &["GET", "CURRENT_EXECUTION_HASH"]).await;
    assert_eq!(chunk.execution_hash, hash, "published as the current hash");
    let url = format!(
        "{}/ori/api/persons/v1/export?since=0&limit=1000",
        env.fake.base_url()
    );
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    let entity = chunk.entities[0].get();
    assert!(entity.contains("testError"));
    assert!(
        page.contains(entity),
        "byte for byte as Sisu sent it: {entity}"
    );

    assert_eq!(letter_keys(&mut conn).await, (0, 0, None));
    assert_eq!(
        untouched(&mut conn).await,
        before,
        "ordinal, window, attempt record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_that_still_fail_are_halved_and_kept_once_and_a_replay_moves_nothing() {
    let mut env = Env::start(60).await;
    for i in [3, 11, 19] {
        env.fake.faults().poison("PERSON", i);
    }
    env.fake.faults().oversize("PERSON", 25, 150_000);
    let mut config = env.config();
    config.max_chunk_bytes = 100_000;
    let importer = env.importer(config.clone()).await;
    run_ok(&importer, &["PERSON"]).await;
    let mut conn = redis(&env).await;
    let listed: Vec<String> = cmd(&mut conn, &["LRANGE", LIST, "0", "-1"]).await;
    assert_eq!(listed.len(), 4, "three poison, one too large");
    // A reset keeps the list and forgets what was seen: the replays below
    // must neither commit an ordinal nor start a window or an attempt.
    env.store().await.reset(&service("PERSON")).await.unwrap();
    let failed_before = env.consumer.received().per_service["PERSON"].chunks_failed;

    let person = service("PERSON");
    let report = importer
        .replay_dead_letters(&person, &Pick::All, None, Shutdown::never())
        .await
        .unwrap();
    assert_eq!(report.result, ReplayResult::Completed, "{report:?}");
    assert_eq!((report.delivered.len(), report.failed_again.len()), (0, 4));
    assert!(!report.success());
    let too_large = report
        .failed_again
        .iter()
        .filter_map(|n| n.detail.as_deref());
    assert_eq!(too_large.filter(|d| d.starts_with("too_large")).count(), 1);
    let failed = env.consumer.received().per_service["PERSON"].chunks_failed - failed_before;
    assert!(
        failed >= 5,
        "three poison entities in one chunk halved down: {failed}"
    );
    let after: Vec<String> = cmd(&mut conn, &["LRANGE", LIST, "0", "-1"]).await;
    assert_eq!(after, listed, "each kept once, as it was");
    assert_eq!(
        cmd::<u64>(&mut conn, &["SCARD", SEEN]).await,
        4,
        "seen again"
    );

    // Raise MAX_CHUNK_BYTES, fix the consumer, replay: all four arrive.
    fix_consumer(&mut env).await;
    config.max_chunk_bytes = 900_000;
    let importer = env.importer(config).await;
    let report = importer
        .replay_dead_letters(&person, &Pick::All, None, Shutdown::never())
        .await
        .unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(report.delivered.len(), 4);
    for i in [3, 11, 19, 25] {
        assert!(seen_by_consumer(&env, &change(&env, i)), "change {i}");
    }
    assert_eq!(letter_keys(&mut conn).await, (0, 0, None));
    for key in UNTOUCHED {
        assert_eq!(cmd::<u8>(&mut conn, &["EXISTS", key]).await, 0, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_removes_one_identity_or_all_and_names_what_there_is() {
    let env = poisoned(&[3, 11]).await;
    let (first, second) = (change(&env, 3).0, change(&env, 11).0);
    let mut conn = redis(&env).await;
    let (code, out, _) = cli(&env, &["clear", "PERSON", "--id", &first]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "removed 1 dead letters of PERSON")
    );
    let (len, seen, bytes) = letter_keys(&mut conn).await;
    assert_eq!((len, seen), (1, 1));
    let kept = env.store().await.dead_letters("PERSON", 10).await.unwrap();
    assert_eq!(kept[0].identity.as_deref(), Some(second.as_str()));
    assert_eq!(
        bytes, kept[0].entity_bytes,
        "the cleared entity's bytes are given back"
    );

    let (code, _, err) = cli(&env, &["clear", "PERSON", "--id", "hy-nope"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("\"hy-nope\"") && err.contains(&second),
        "{err}"
    );
    let (code, _, err) = cli(&env, &["list", "PERSONS"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("\"PERSONS\"") && err.contains("PERSON,"),
        "{err}"
    );

    assert_eq!(cli(&env, &["clear", "PERSON"]).0, Some(0));
    assert_eq!(letter_keys(&mut conn).await, (0, 0, None));
    let (_, table, _) = cli(&env, &["list"]);
    assert_eq!(table, "no dead letters\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_past_the_bound_and_old_letters_are_listed_and_not_replayed() {
    let mut env = Env::start(60).await;
    for i in [3, 11, 19] {
        env.fake.faults().poison("PERSON", i);
    }
    // Below the largest entity (refused alone) and below any two of the
    // others (the second one recorded does not fit beside the first).
    let url = format!(
        "{}/ori/api/persons/v1/export?since=0&limit=1000",
        env.fake.base_url()
    );
    #[derive(serde::Deserialize)]
    struct Page {
        entities: Vec<Box<serde_json::value::RawValue>>,
    }
    let page: Page = reqwest::get(url).await.unwrap().json().await.unwrap();
    let poisoned = page.entities.iter().map(|e| e.get());
    let sizes = poisoned.filter(|e| e.contains("\"testError\":true"));
    let mut sizes: Vec<u64> = sizes.map(|e| e.len() as u64).collect();
    sizes.sort();
    let bound = sizes[2] - 1;
    assert!(sizes[0] + sizes[1] > bound, "{sizes:?}");
    let mut config = env.config();
    config.dead_letter_entity_bytes = bound;
    run_ok(&*env.importer(config).await, &["PERSON"]).await;
    let mut conn = redis(&env).await;
    let old = r#"{"service":"PERSON","identity":"hy-old","modificationOrdinal":1,"reason":"poison","detail":"x","time":"2020-01-01T00:00:00+00:00","executionHash":"h","chunkId":null}"#;
    cmd::<u64>(&mut conn, &["RPUSH", LIST, old]).await;

    let letters = env.store().await.dead_letters("PERSON", 10).await.unwrap();
    let kept: Vec<_> = letters.iter().filter(|l| l.entity.is_some()).collect();
    assert_eq!(kept.len(), 1, "{letters:?}");
    let kept_bytes = kept[0].entity_bytes.unwrap();
    assert!(kept_bytes < sizes[2], "{kept_bytes} of {sizes:?}");
    assert_eq!(letter_keys(&mut conn).await, (4, 3, Some(kept_bytes)));
    let omitted = letters.iter().filter_map(|l| l.entity_omitted.as_deref());
    for why in omitted.clone() {
        assert!(why.contains(&format!("at most {bound} bytes")), "{why}");
    }
    assert_eq!(omitted.count(), 2);
    let (_, table, _) = cli(&env, &["list"]);
    assert_eq!(table.matches("  yes  ").count(), 1, "{table}");
    assert_eq!(table.matches("no (not kept)").count(), 2, "{table}");
    assert_eq!(table.matches("no (old letter)").count(), 1, "{table}");

    fix_consumer(&mut env).await;
    let (code, out, err) = cli(&env, &["replay", "PERSON", "--all"]);
    assert_eq!(code, Some(1), "not everything could be sent: {out}{err}");
    assert!(out.contains("1 delivered and removed"), "{out}");
    assert_eq!(out.matches("not replayable").count(), 3, "{out}");
    assert!(out.contains("hy-old@1  no entity kept"), "{out}");
    assert_eq!(letter_keys(&mut conn).await, (3, 2, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_keeps_one_current_hash_takes_the_replay() {
    let mut env = Env::start(60).await;
    env.fake.faults().poison("PERSON", 9);
    let redis_url = env.redis.url();
    let seed = |fail_field: &str| {
        let (url, fail_field) = (redis_url.clone(), fail_field.to_owned());
        move |c: &mut ConsumerConfig| {
            *c = ConsumerConfig {
                nats_auth: c.nats_auth.clone(),
                fail_field,
                ..ConsumerConfig::seed(c.nats_url.clone(), url)
            }
        }
    };
    env.replace_consumer(seed("testError")).await;
    let importer = env.importer(env.config()).await;
    run_ok(&importer, &["PERSON"]).await;
    env.assert_poison_dead_lettered(&importer, "PERSON", 9)
        .await;
    env.replace_consumer(seed("notAField")).await;
    // Started, it has read the current hash: from now on it follows.
    let ready = || !env.consumer.received().current_hashes.is_empty();
    assert!(eventually(Duration::from_secs(10), ready).await);
    let report = importer
        .replay_dead_letters(&service("PERSON"), &Pick::All, None, Shutdown::never())
        .await
        .unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(report.attempts, 1, "no chunk dropped for its hash");
    assert!(seen_by_consumer(&env, &change(&env, 9)));
    assert_eq!(env.consumer.received().dropped_other_hash, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_killed_midway_loses_nothing() {
    let mut env = poisoned(&[7]).await;
    fix_consumer(&mut env).await;
    env.consumer.set_latency(Duration::from_secs(3));
    let mut conn = redis(&env).await;
    let listed: Vec<String> = cmd(&mut conn, &["LRANGE", LIST, "0", "-1"]).await;
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "lease_ttl_secs = 3\n").unwrap();
    let nats = async_nats::connect(env.nats.url()).await.unwrap();
    let mut chunks = nats.subscribe("ORI_PERSON_CHANNEL").await.unwrap();
    let args = ["dead-letters", "replay", "PERSON", "--all", "--config"];
    let mut replay = env.command(&args).arg(config.path()).spawn().unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), chunks.next()).await;
    assert!(
        next.unwrap().is_some(),
        "the chunk is out, its feedback 3 s away"
    );
    replay.kill().unwrap();
    replay.wait().unwrap();
    let after: Vec<String> = cmd(&mut conn, &["LRANGE", LIST, "0", "-1"]).await;
    assert_eq!(after, listed, "nothing removed before the replay completed");
    assert_eq!(letter_keys(&mut conn).await.1, 1);

    env.consumer.set_latency(Duration::ZERO);
    let mut again = env.command(&args);
    let (code, out, err) = output(&again.arg(config.path()).output().unwrap());
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(letter_keys(&mut conn).await, (0, 0, None));
    assert!(seen_by_consumer(&env, &change(&env, 7)));
}
