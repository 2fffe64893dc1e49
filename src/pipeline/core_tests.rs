//! The attempt's rules, tested without servers: explicit instants for the
//! panic deadline, seeded random schedules for ordering and windows.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::catalogue::builtin;

const SECOND: Duration = Duration::from_secs(1);

fn entity(id: u32, ordinal: i64) -> Entity {
    Entity::from_json(format!(
        r#"{{"id":"e{id}","metadata":{{"modificationOrdinal":{ordinal}}}}}"#
    ))
}

fn batch(greatest: i64, entities: Vec<Entity>) -> BatchIn {
    BatchIn {
        since: 0,
        greatest_ordinal: greatest,
        entities,
        fetched_in: Duration::ZERO,
    }
}

fn windows(depth: usize, chunks: usize, publishes: usize) -> Windows {
    Windows {
        pipeline_depth: depth,
        max_chunks_in_flight: chunks,
        max_publishes_in_flight: publishes,
    }
}

fn core_with(max_entities: usize, w: Windows, t0: Instant) -> AttemptCore {
    let limits = ChunkLimits {
        max_entities,
        max_entity_bytes: 1 << 20,
    };
    AttemptCore::new(
        &builtin()[0],
        &lineage(false),
        1,
        limits,
        w,
        15 * SECOND,
        t0,
    )
}

fn lineage(resuming: bool) -> Lineage {
    resumed_from(resuming, 0)
}

/// The lineage of an attempt starting at the committed `since`.
fn resumed_from(resuming: bool, since: i64) -> Lineage {
    Lineage {
        execution_hash: "hash1".into(),
        epoch: 1,
        resuming,
        since,
    }
}

/// The id of the chunk of `len` entities from `start` in the batch up to
/// `greatest` (fetched after 0, epoch 1).
fn id(greatest: i64, start: u32, len: u32) -> String {
    format!("PERSON-1-0-{greatest}-{start}+{len}")
}

fn core(max_entities: usize) -> AttemptCore {
    core_with(max_entities, windows(4, 64, 64), Instant::now())
}

fn fb(core: &AttemptCore, chunk: &str, status: FeedbackStatus) -> Feedback {
    Feedback {
        channel: core.subject.clone(),
        status,
        execution_hash: core.execution_hash().to_owned(),
        chunk_id: chunk.into(),
        stack: None,
    }
}

fn publish_all(core: &mut AttemptCore) -> Vec<ChunkOut> {
    std::iter::from_fn(|| core.poll_publish()).collect()
}

fn actions(core: &mut AttemptCore) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

fn commits(core: &mut AttemptCore) -> Vec<i64> {
    actions(core)
        .into_iter()
        .filter_map(|a| match a {
            Action::Commit(c) => Some(c.greatest_ordinal),
            _ => None,
        })
        .collect()
}

fn ids(chunks: &[ChunkOut]) -> Vec<String> {
    chunks.iter().map(|c| c.chunk_id.clone()).collect()
}

#[test]
fn commits_in_batch_order_whatever_order_the_acks_come_in() {
    let mut c = core(2);
    let now = Instant::now();
    c.on_batch(
        batch(10, vec![entity(0, 1), entity(1, 2), entity(2, 3)]),
        now,
    );
    c.on_batch(batch(20, vec![entity(3, 11)]), now);
    let out = publish_all(&mut c);
    assert_eq!(ids(&out), [id(10, 0, 2), id(10, 2, 1), id(20, 0, 1)]);
    // The second batch is done first: nothing may be committed yet.
    assert_eq!(
        c.on_feedback(&fb(&c, &id(20, 0, 1), FeedbackStatus::Ok), now),
        Verdict::Done { entities: 1 }
    );
    assert!(commits(&mut c).is_empty());
    c.on_feedback(&fb(&c, &id(10, 2, 1), FeedbackStatus::Ok), now);
    assert!(commits(&mut c).is_empty());
    c.on_feedback(&fb(&c, &id(10, 0, 2), FeedbackStatus::Ok), now);
    assert_eq!(commits(&mut c), [10, 20]);
    assert_eq!(c.unfinished_chunks(), 0);
}

#[test]
fn duplicates_strangers_and_unpublished_chunks_never_count() {
    let mut c = core_with(1, windows(4, 1, 64), Instant::now());
    let now = Instant::now();
    c.on_batch(batch(10, vec![entity(0, 1), entity(1, 2)]), now);
    let out = publish_all(&mut c);
    assert_eq!(ids(&out), [id(10, 0, 1)], "window of one chunk");
    // Feedback for a chunk not yet published (forged) is ignored.
    assert_eq!(
        c.on_feedback(&fb(&c, &id(10, 1, 1), FeedbackStatus::Ok), now),
        Verdict::Ignored(IgnoreReason::UnknownOrDone)
    );
    let mut other = fb(&c, &id(10, 0, 1), FeedbackStatus::Ok);
    other.execution_hash = "old".into();
    assert_eq!(
        c.on_feedback(&other, now),
        Verdict::Ignored(IgnoreReason::OldExecution)
    );
    other = fb(&c, &id(10, 0, 1), FeedbackStatus::Ok);
    other.channel = "KORI_MODULE_CHANNEL".into();
    assert_eq!(
        c.on_feedback(&other, now),
        Verdict::Ignored(IgnoreReason::OtherChannel)
    );
    c.on_feedback(&fb(&c, &id(10, 0, 1), FeedbackStatus::Ok), now);
    assert_eq!(
        c.on_feedback(&fb(&c, &id(10, 0, 1), FeedbackStatus::Ok), now),
        Verdict::Ignored(IgnoreReason::UnknownOrDone)
    );
    assert!(commits(&mut c).is_empty(), "chunk 2 is still unfinished");
}

#[test]
fn failures_halve_until_the_poison_entity_is_dead_lettered_before_the_commit() {
    let mut c = core(8);
    let now = Instant::now();
    c.on_batch(
        batch(10, (0..8).map(|i| entity(i, i as i64)).collect()),
        now,
    );
    let poison = r#""id":"e5""#;
    let mut queue = publish_all(&mut c);
    let mut done = 0;
    while let Some(chunk) = queue.pop() {
        let bad = chunk.entities.iter().any(|e| e.get().contains(poison));
        let status = if bad {
            FeedbackStatus::Fail
        } else {
            FeedbackStatus::Ok
        };
        match c.on_feedback(&fb(&c, &chunk.chunk_id, status), now) {
            Verdict::Done { entities } => done += entities,
            Verdict::Split { .. } | Verdict::Poison { .. } => {}
            v @ (Verdict::Ignored(_) | Verdict::Remembered) => panic!("{v:?}"),
        }
        queue.extend(publish_all(&mut c));
    }
    assert_eq!(done, 7);
    let acts = actions(&mut c);
    let dead: Vec<usize> = acts
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::DeadLetter(d) if d.entity.get().contains(poison) && d.reason == "poison"))
        .map(|(i, _)| i)
        .collect();
    let commit = acts.iter().position(|a| matches!(a, Action::Commit(_)));
    assert_eq!(dead.len(), 1);
    assert!(dead[0] < commit.expect("the batch commits"));
    match &acts[commit.unwrap()] {
        Action::Commit(c) => {
            assert_eq!((c.entities, c.chunks), (8, 7));
            assert_eq!(
                c.window,
                WindowDelta {
                    scheduled: 8,
                    updated: 8
                }
            );
        }
        _ => unreachable!(),
    }
}

#[test]
fn the_same_identity_twice_in_one_batch_goes_out_one_after_the_other() {
    let mut c = core(2);
    let now = Instant::now();
    // e1 appears in the first chunk and, newer, in the second.
    c.on_batch(
        batch(
            10,
            vec![entity(0, 1), entity(1, 2), entity(2, 3), entity(1, 4)],
        ),
        now,
    );
    let out = publish_all(&mut c);
    assert_eq!(ids(&out), [id(10, 0, 2)]);
    assert_eq!(c.barrier.waiting.len(), 1);
    c.on_feedback(&fb(&c, &id(10, 0, 2), FeedbackStatus::Ok), now);
    assert_eq!(ids(&publish_all(&mut c)), [id(10, 2, 2)]);
}

#[test]
fn a_newer_version_waits_behind_a_failing_chunks_halves_and_its_dead_letter() {
    let mut c = core(4);
    let now = Instant::now();
    c.on_batch(
        batch(10, (0..4).map(|i| entity(i, i as i64)).collect()),
        now,
    );
    c.on_batch(batch(20, vec![entity(3, 13), entity(9, 14)]), now);
    assert_eq!(ids(&publish_all(&mut c)), [id(10, 0, 4)]);
    // The first chunk fails: halves e0,e1 and e2,e3. e3's newer version waits.
    c.on_feedback(&fb(&c, &id(10, 0, 4), FeedbackStatus::Fail), now);
    assert_eq!(ids(&publish_all(&mut c)), [id(10, 0, 2), id(10, 2, 2)]);
    c.on_feedback(&fb(&c, &id(10, 0, 2), FeedbackStatus::Ok), now);
    c.on_feedback(&fb(&c, &id(10, 2, 2), FeedbackStatus::Fail), now);
    assert_eq!(ids(&publish_all(&mut c)), [id(10, 2, 1), id(10, 3, 1)]);
    c.on_feedback(&fb(&c, &id(10, 2, 1), FeedbackStatus::Ok), now);
    assert!(publish_all(&mut c).is_empty(), "e3 (old) is still out");
    // e3 alone fails: dead-lettered, and only then its newer version goes.
    assert!(matches!(
        c.on_feedback(&fb(&c, &id(10, 3, 1), FeedbackStatus::Fail), now),
        Verdict::Poison { .. }
    ));
    assert_eq!(ids(&publish_all(&mut c)), [id(20, 0, 2)]);
    assert_eq!(commits(&mut c), [10]);
}

#[test]
fn depth_one_opens_the_next_batch_only_after_the_commit() {
    let mut c = core_with(10, windows(1, 64, 64), Instant::now());
    let now = Instant::now();
    assert!(c.wants_batch());
    c.on_batch(batch(10, vec![entity(0, 1)]), now);
    assert!(!c.wants_batch());
    let out = publish_all(&mut c);
    c.on_feedback(&fb(&c, &out[0].chunk_id, FeedbackStatus::Ok), now);
    assert!(c.wants_batch());
    assert_eq!(commits(&mut c), [10]);
}

#[test]
fn panic_deadline_follows_feedback_progress() {
    let t0 = Instant::now();
    let mut c = core_with(1, windows(4, 64, 64), t0);
    assert_eq!(c.poll_timeout(), None, "nothing unfinished, no deadline");
    c.on_batch(batch(10, vec![entity(0, 1), entity(1, 2)]), t0 + SECOND);
    assert_eq!(c.poll_timeout(), Some(t0 + 16 * SECOND));
    let out = publish_all(&mut c);
    assert!(!c.on_timeout(t0 + 15 * SECOND));
    c.on_feedback(
        &fb(&c, &out[0].chunk_id, FeedbackStatus::Ok),
        t0 + 10 * SECOND,
    );
    assert!(
        !c.on_timeout(t0 + 16 * SECOND),
        "progress moved the deadline"
    );
    assert!(c.on_timeout(t0 + 25 * SECOND));
    c.on_feedback(
        &fb(&c, &out[1].chunk_id, FeedbackStatus::Ok),
        t0 + 25 * SECOND,
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn too_large_entities_are_dead_lettered_and_the_batch_still_commits() {
    let limits = ChunkLimits {
        max_entities: 10,
        max_entity_bytes: 60,
    };
    let now = Instant::now();
    let mut c = AttemptCore::new(
        &builtin()[0],
        &lineage(false),
        1,
        limits,
        windows(2, 8, 8),
        SECOND,
        now,
    );
    let big = Entity::from_json(format!(r#"{{"id":"big","pad":"{}"}}"#, "x".repeat(80)));
    c.on_batch(batch(10, vec![big]), now);
    let acts = actions(&mut c);
    assert!(matches!(&acts[0], Action::DeadLetter(d) if d.reason == "too_large"));
    assert!(
        matches!(&acts[1], Action::Commit(c) if c.window == WindowDelta { scheduled: 1, updated: 1 })
    );
}

/// A seeded pseudo-random source for the simulations: `next(n)` is in
/// `0..n`.
fn lcg(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut rng = seed;
    move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n.max(1)
    }
}

/// An entity's identity and modification ordinal, as the simulations
/// make them.
fn id_of(e: &Entity) -> (String, i64) {
    let v: serde_json::Value = serde_json::from_str(e.get()).unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["metadata"]["modificationOrdinal"].as_i64().unwrap(),
    )
}

/// The simulations' poison entity: its chunk always fails.
const POISON: &str = r#""modificationOrdinal":37}"#;

/// The consumer of the simulations, as a store that upserts versions: a
/// chunk with the poison entity fails, a chunk of several entities fails
/// once when `roll` says so, and any other chunk is stored, checking that
/// no version is stored after a newer one of its identity or twice
/// (nothing acknowledged is sent again).
struct ModelConsumer {
    seed: u64,
    failed_once: HashSet<String>,
    latest: HashMap<String, i64>,
    stored: HashSet<(String, i64)>,
}

impl ModelConsumer {
    fn new(seed: u64) -> Self {
        ModelConsumer {
            seed,
            failed_once: HashSet::new(),
            latest: HashMap::new(),
            stored: HashSet::new(),
        }
    }

    fn answer(&mut self, chunk: &ChunkOut, mut roll: impl FnMut() -> bool) -> FeedbackStatus {
        let seed = self.seed;
        let has_poison = chunk.entities.iter().any(|e| e.get().contains(POISON));
        let flaky =
            chunk.entities.len() > 1 && roll() && self.failed_once.insert(chunk.chunk_id.clone());
        if has_poison || flaky {
            return FeedbackStatus::Fail;
        }
        for e in chunk.entities.iter() {
            let (id, ord) = id_of(e);
            let old = self.latest.insert(id.clone(), ord);
            assert!(
                old.is_none_or(|o| o < ord),
                "seed {seed}: {id} stored out of order"
            );
            assert!(
                self.stored.insert((id.clone(), ord)),
                "seed {seed}: {id}@{ord} stored twice (sent again after its OK)"
            );
        }
        FeedbackStatus::Ok
    }
}

/// A consumer with many instances, as a seeded random schedule: feedback in
/// any order, some chunks failing once, one poison entity. Checks every
/// rule after every step.
fn simulate(seed: u64, w: Windows) {
    let mut next = lcg(seed);
    let now = Instant::now();
    let mut c = core_with(1 + next(5) as usize, w, now);
    // 12 batches of 8 over 20 identities: many versions, some twice a batch.
    let mut ordinal = 0i64;
    let mut batches: Vec<BatchIn> = (0..12)
        .map(|_| {
            let entities = (0..8)
                .map(|_| {
                    ordinal += 1;
                    entity(next(20) as u32, ordinal)
                })
                .collect();
            batch(ordinal, entities)
        })
        .collect();
    batches.reverse();
    let mut in_flight: Vec<ChunkOut> = Vec::new();
    let mut consumer = ModelConsumer::new(seed);
    let mut committed = Vec::new();
    let mut publish_acks = 0usize;
    loop {
        if !batches.is_empty() && c.wants_batch() && next(3) == 0 {
            c.on_batch(batches.pop().unwrap(), now);
        }
        while let Some(chunk) = c.poll_publish() {
            // No two chunks out at once share an identity.
            for e in chunk.entities.iter() {
                let (id, _) = id_of(e);
                assert!(
                    !in_flight
                        .iter()
                        .any(|o| o.entities.iter().any(|x| id_of(x).0 == id)),
                    "seed {seed}: {id} in two chunks at once"
                );
            }
            in_flight.push(chunk);
            publish_acks += 1;
        }
        assert!(c.awaiting_feedback <= w.max_chunks_in_flight);
        assert!(c.awaiting_publish_ack <= w.max_publishes_in_flight);
        assert!(c.open_batches() <= w.pipeline_depth);
        if publish_acks > 0 && next(2) == 0 {
            c.on_published();
            publish_acks -= 1;
        }
        for a in actions(&mut c) {
            if let Action::Commit(commit) = a {
                committed.push(commit.greatest_ordinal);
            }
        }
        if in_flight.is_empty() {
            if batches.is_empty() && c.open_batches() == 0 {
                break;
            }
            if batches.is_empty() && c.awaiting_publish_ack > 0 {
                c.on_published();
                publish_acks -= 1;
            }
            continue;
        }
        let chunk = in_flight.swap_remove(next(in_flight.len() as u64) as usize);
        let status = consumer.answer(&chunk, || next(6) == 0);
        assert!(!matches!(
            c.on_feedback(&fb(&c, &chunk.chunk_id, status), now),
            Verdict::Ignored(_)
        ));
    }
    let expected: Vec<i64> = (1..=12).map(|b| b * 8).collect();
    assert_eq!(committed, expected, "seed {seed}: every batch, in order");
}

#[test]
fn random_schedules_keep_order_windows_and_commit_order() {
    for seed in 0..300 {
        let w = windows(
            1 + seed as usize % 4,
            1 + seed as usize % 7,
            1 + seed as usize % 3,
        );
        simulate(seed, w);
    }
}

#[test]
fn chunk_ids_name_service_epoch_batch_and_entity_range_and_parse_back() {
    let key = ChunkKey {
        since: 1700,
        greatest: 2700,
        start: 250,
        len: 250,
    };
    let id = key.id("PERSON", 3);
    assert_eq!(id, "PERSON-3-1700-2700-250+250");
    assert_eq!(ChunkKey::parse(&id, "PERSON", 3), Some(key));
    for other in [
        ChunkKey::parse(&id, "PERSON", 4),
        ChunkKey::parse(&id, "ATTAINMENT", 3),
        ChunkKey::parse("PERSON-3-1700-2700-250+0", "PERSON", 3),
        ChunkKey::parse("PERSON-3-1700-2700-0250+250", "PERSON", 3),
        ChunkKey::parse("PERSON-3-1700-2700-250", "PERSON", 3),
        ChunkKey::parse("PERSON-1-0001", "PERSON", 1),
    ] {
        assert_eq!(other, None);
    }
    let [a, b] = ChunkKey { len: 5, ..key }.halves();
    assert_eq!((a.start, a.len, b.start, b.len), (250, 2, 252, 3));
}

#[test]
fn resuming_sends_only_what_the_interrupted_attempt_did_not_finish() {
    let now = Instant::now();
    let limits = ChunkLimits {
        max_entities: 4,
        max_entity_bytes: 1 << 20,
    };
    let resumed = |w| AttemptCore::new(&builtin()[0], &lineage(true), 1, limits, w, SECOND, now);
    let mut c = resumed(windows(4, 64, 64));
    // What the interrupted attempt heard: 0+4 OK; 4+4 FAIL, its half 4+2
    // OK, then (a contradiction, ignored) FAIL for 0+4; 8+1 FAIL alone.
    for (chunk, status) in [
        (id(20, 0, 4), FeedbackStatus::Ok),
        (id(20, 4, 4), FeedbackStatus::Fail),
        (id(20, 4, 2), FeedbackStatus::Ok),
        (id(20, 0, 4), FeedbackStatus::Fail),
        (id(20, 8, 1), FeedbackStatus::Fail),
    ] {
        c.on_feedback(&fb(&c, &chunk, status), now);
    }
    let entities = (0..9).map(|i| entity(i, i as i64 + 1)).collect();
    c.on_batch(batch(20, entities), now);
    // Only the unfinished half goes out, under the id it had.
    assert_eq!(ids(&publish_all(&mut c)), [id(20, 6, 2)]);
    assert_eq!(c.recovered_chunks(), 3);
    let acts = actions(&mut c);
    assert!(
        matches!(&acts[..], [Action::DeadLetter(d)] if d.reason == "poison" && d.entity.get().contains(r#""e8""#)),
        "the lone failure is dead-lettered again: {acts:?}"
    );
    // Feedback arriving live for the half (its message was still in the
    // stream) finishes the batch; the window counts every entity once.
    assert_eq!(
        c.on_feedback(&fb(&c, &id(20, 6, 2), FeedbackStatus::Ok), now),
        Verdict::Done { entities: 2 }
    );
    match &actions(&mut c)[..] {
        [Action::Commit(commit)] => assert_eq!(
            commit.window,
            WindowDelta {
                scheduled: 9,
                updated: 9
            }
        ),
        other => panic!("{other:?}"),
    }
    // A core that is not resuming remembers nothing.
    let mut fresh = core(4);
    assert_eq!(
        fresh.on_feedback(&fb(&fresh, &id(20, 0, 4), FeedbackStatus::Ok), now),
        Verdict::Ignored(IgnoreReason::UnknownOrDone)
    );
    fresh.on_batch(
        batch(20, (0..4).map(|i| entity(i, i as i64 + 1)).collect()),
        now,
    );
    assert_eq!(ids(&publish_all(&mut fresh)), [id(20, 0, 4)]);
}

/// A whole import with the importer killed at random points and resumed
/// each time, over a model of JetStream (messages stay stored until a
/// consumer takes them; a repeated id is dropped, as in the duplicate
/// window) and of a consumer that stores versions and answers at once.
/// Checks: every batch committed once and in order, no version stored out
/// of order, and no version stored twice: nothing is re-sent that a
/// consumer acknowledged.
/// Returns the crashes, the feedback messages the resumptions read, and
/// what they would have read without moving `feedback_after` forward.
fn simulate_crashes(seed: u64) -> (u32, usize, usize) {
    let mut next = lcg(seed ^ 0x9e37_79b9);
    let now = Instant::now();
    let limits = ChunkLimits {
        max_entities: 1 + next(5) as usize,
        max_entity_bytes: 1 << 20,
    };
    let w = windows(1 + next(4) as usize, 1 + next(7) as usize, 64);
    let new_core = |resuming, since| {
        AttemptCore::new(
            &builtin()[0],
            &resumed_from(resuming, since),
            1,
            limits,
            w,
            SECOND,
            now,
        )
    };
    let mut ordinal = 0i64;
    let all: Vec<(i64, i64, Vec<Entity>)> = (0..12)
        .map(|_| {
            let since = ordinal;
            let entities = (0..8)
                .map(|_| {
                    ordinal += 1;
                    entity(next(20) as u32, ordinal)
                })
                .collect();
            (since, ordinal, entities)
        })
        .collect();
    let mut core = new_core(false, 0);
    // Stream sequence of the last feedback before what a resumption reads
    // (the attempt record's `feedback_after`); sequences are 1-based
    // positions in `feedback_log`.
    let mut feedback_after = 0usize;
    let (mut fed, mut committed_to, mut committed) = (0, 0i64, Vec::new());
    let mut stored_messages: Vec<ChunkOut> = Vec::new();
    let mut msg_ids: HashSet<String> = HashSet::new();
    let mut feedback_log: Vec<Feedback> = Vec::new();
    let mut consumer = ModelConsumer::new(seed);
    let mut crashes = 0;
    let (mut read_back, mut unbounded) = (0, 0);
    for step in 0.. {
        assert!(step < 100_000, "seed {seed}: no progress");
        if fed < all.len() && core.wants_batch() && next(3) == 0 {
            let (since, greatest, entities) = all[fed].clone();
            core.on_batch(
                BatchIn {
                    since,
                    greatest_ordinal: greatest,
                    entities,
                    fetched_in: Duration::ZERO,
                },
                now,
            );
            fed += 1;
        }
        while let Some(chunk) = core.poll_publish() {
            if msg_ids.insert(chunk.chunk_id.clone()) {
                stored_messages.push(chunk);
            }
            core.on_published();
        }
        for a in actions(&mut core) {
            if let Action::Commit(commit) = a {
                committed.push(commit.greatest_ordinal);
                committed_to = commit.greatest_ordinal;
            }
        }
        if crashes < 4 && next(12) == 0 {
            // SIGKILL: the next process resumes from the committed ordinal
            // and reads the feedback stored since the record's position,
            // which it moves forward.
            crashes += 1;
            core = new_core(true, committed_to);
            let read = &feedback_log[feedback_after..];
            read_back += read.len();
            unbounded += feedback_log.len();
            let sequenced = read
                .iter()
                .enumerate()
                .map(|(i, f)| ((feedback_after + i + 1) as u64, f));
            feedback_after = core.resume_after(sequenced, feedback_log.len() as u64) as usize;
            for f in read {
                core.on_feedback(f, now);
            }
            fed = all
                .iter()
                .position(|b| b.0 == committed_to)
                .unwrap_or(all.len());
            continue;
        }
        if stored_messages.is_empty() {
            if fed == all.len() && core.open_batches() == 0 {
                break;
            }
            continue;
        }
        let chunk = stored_messages.swap_remove(next(stored_messages.len() as u64) as usize);
        let status = consumer.answer(&chunk, || next(6) == 0);
        let f = fb(&core, &chunk.chunk_id, status);
        feedback_log.push(f.clone());
        core.on_feedback(&f, now);
    }
    let expected: Vec<i64> = (1..=12).map(|b| b * 8).collect();
    assert_eq!(
        committed, expected,
        "seed {seed}: every batch once, in order"
    );
    assert_eq!(
        consumer.stored.len(),
        95,
        "seed {seed}: all but the poison entity"
    );
    (crashes, read_back, unbounded)
}

#[test]
fn random_crashes_and_resumptions_lose_nothing_and_send_nothing_acknowledged_again() {
    let (mut crashes, mut read_back, mut unbounded) = (0, 0, 0);
    for (c, r, u) in (0..300).map(simulate_crashes) {
        (crashes, read_back, unbounded) = (crashes + c, read_back + r, unbounded + u);
    }
    assert!(crashes > 600, "the schedules crash often ({crashes})");
    // Each resumption reads from the oldest open batch's first feedback,
    // not from where the lineage began (12 batches and up to 4 open keep
    // the saving here near 40%; the longer the lineage, the greater).
    assert!(
        read_back * 3 < unbounded * 2,
        "read back {read_back} feedback messages; {unbounded} without the bound"
    );
}
