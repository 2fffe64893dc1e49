//! The attempt's rules, tested without servers, one rule per test, with
//! explicit instants for the panic deadline; seeded random schedules are
//! in `simulations`.

use super::*;
use crate::catalogue::builtin;

const SECOND: Duration = Duration::from_secs(1);

fn entity(id: u32, ordinal: i64) -> Entity {
    Entity::from_json(format!(
        r#"{{"id":"e{id}","metadata":{{"modificationOrdinal":{ordinal}}}}}"#
    ))
}

fn batch(greatest: i64, entities: Vec<Entity>) -> Batch {
    Batch {
        since: 0,
        greatest_ordinal: greatest,
        has_more: true,
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
        panic_after(15 * SECOND),
        t0,
    )
}

/// Time limits with the panic timeout `panic` (and a grace of 5 s).
fn panic_after(panic: Duration) -> Timeouts {
    Timeouts {
        panic,
        shutdown_grace: 5 * SECOND,
    }
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
        form: FeedbackForm::Unknown,
        replay: false,
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
    Feedback::precise(&core.subject, status, core.execution_hash(), chunk)
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
            v @ (Verdict::Ignored(_) | Verdict::Remembered | Verdict::Credited { .. }) => {
                panic!("{v:?}")
            }
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
    assert!(
        !c.on_timeout(t0 + 25 * SECOND),
        "not before the consumers are read"
    );
    assert!(c.wants_redelivery_read(t0 + 25 * SECOND));
    assert_eq!(c.on_redelivery_read(&[], t0 + 25 * SECOND), None);
    assert!(c.on_timeout(t0 + 25 * SECOND), "nothing to redeliver");
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
        panic_after(SECOND),
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
    let resumed = |w| {
        AttemptCore::new(
            &builtin()[0],
            &lineage(true),
            1,
            limits,
            w,
            panic_after(SECOND),
            now,
        )
    };
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

mod redelivery;
mod seed;
mod simulations;
