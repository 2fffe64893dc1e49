//! The seed's feedback form (`core/seed.rs`): waves, counting OK amounts,
//! FAIL found by its echo, the ack floors, and a seeded simulation of a
//! seed-form consumer checking that no ordinal passes an unanswered entity.

use std::collections::{HashMap, HashSet};

use super::*;

/// An OK in the seed's form: an amount, no chunk id.
fn seed_ok(core: &AttemptCore, amount: u64) -> Feedback {
    Feedback {
        amount: Some(amount),
        chunk_id: None,
        ..fb(core, "", FeedbackStatus::Ok)
    }
}

/// A FAIL in the seed's form without `chunkId`: the chunk's entities echoed.
fn seed_fail(core: &AttemptCore, chunk: &ChunkOut) -> Feedback {
    Feedback {
        chunk_id: None,
        amount: Some(0),
        echoed: chunk.entities.to_vec(),
        ..fb(core, "", FeedbackStatus::Fail)
    }
}

fn progress(delivered: u64, ack_floor: u64) -> ConsumerProgress {
    ConsumerProgress {
        name: "mankeli_PERSON".into(),
        delivered,
        ack_floor,
        ack_pending: 0,
        ack_wait: Duration::from_secs(60),
    }
}

/// Five entities in chunks of two, every publish acknowledged at stream
/// sequences 1, 2, 3, ….
fn five_in_three_chunks(c: &mut AttemptCore, now: Instant) -> Vec<ChunkOut> {
    c.on_batch(
        batch(10, (0..5).map(|i| entity(i, i as i64 + 1)).collect()),
        now,
    );
    let out = publish_all(c);
    for (seq, chunk) in out.iter().enumerate() {
        c.on_published(&chunk.chunk_id, seq as u64 + 1);
    }
    out
}

#[test]
fn a_seed_form_ok_switches_to_waves_and_the_wave_commits_when_its_amounts_add_up() {
    let now = Instant::now();
    let mut c = core(2);
    let out = five_in_three_chunks(&mut c, now);
    assert_eq!(out.len(), 3);
    assert_eq!(
        c.on_feedback(&seed_ok(&c, 2), now),
        Verdict::Credited {
            entities: 2,
            switched: true
        }
    );
    assert_eq!(c.form(), FeedbackForm::Seed);
    c.on_batch(batch(20, vec![entity(9, 11)]), now);
    assert!(
        c.poll_publish().is_none(),
        "nothing goes out while a wave is under way"
    );
    c.on_feedback(&seed_ok(&c, 2), now);
    assert!(commits(&mut c).is_empty(), "one chunk is still unanswered");
    c.on_feedback(&seed_ok(&c, 1), now);
    assert_eq!(commits(&mut c), [10]);
    let wave = c.poll_wave_end().expect("the wave ended");
    assert_eq!((wave.chunks, wave.entities), (3, 5));
    assert_eq!(wave.by, WaveConfirmation::Amounts);
    assert_eq!(ids(&publish_all(&mut c)), [id(20, 0, 1)], "the next wave");
}

#[test]
fn a_fail_without_chunk_id_is_found_by_its_echoed_entities_and_halved() {
    let now = Instant::now();
    let mut c = core(2);
    let out = five_in_three_chunks(&mut c, now);
    c.on_feedback(&seed_ok(&c, 1), now);
    match c.on_feedback(&seed_fail(&c, &out[0]), now) {
        Verdict::Split { failed, .. } => assert_eq!(failed, out[0].chunk_id),
        v => panic!("{v:?}"),
    }
    // The halves wait for the wave: one chunk of two is still unanswered.
    assert!(c.poll_publish().is_none());
    c.on_feedback(&seed_ok(&c, 2), now);
    let halves = publish_all(&mut c);
    assert_eq!(ids(&halves), [id(10, 0, 1), id(10, 1, 1)]);
    assert!(
        commits(&mut c).is_empty(),
        "the failed chunk's halves are out"
    );
    c.on_feedback(&seed_ok(&c, 1), now);
    c.on_feedback(&seed_ok(&c, 1), now);
    assert_eq!(commits(&mut c), [10]);
}

#[test]
fn an_echo_that_matches_no_chunk_awaiting_feedback_is_ignored() {
    let now = Instant::now();
    let mut c = core(2);
    let out = five_in_three_chunks(&mut c, now);
    let mut stranger = out[0].clone();
    stranger.entities = vec![entity(7, 70)].into();
    assert_eq!(
        c.on_feedback(&seed_fail(&c, &stranger), now),
        Verdict::Ignored(IgnoreReason::UnidentifiedFail)
    );
    let mut shorter = out[0].clone();
    shorter.entities = out[0].entities[..1].into();
    assert_eq!(
        c.on_feedback(&seed_fail(&c, &shorter), now),
        Verdict::Ignored(IgnoreReason::UnidentifiedFail),
        "the echo must be the whole chunk"
    );
}

#[test]
fn an_ok_with_nothing_awaiting_or_no_amount_is_ignored() {
    let now = Instant::now();
    let mut c = core(2);
    assert_eq!(
        c.on_feedback(&seed_ok(&c, 2), now),
        Verdict::Ignored(IgnoreReason::Surplus)
    );
    five_in_three_chunks(&mut c, now);
    let mut no_amount = seed_ok(&c, 0);
    assert_eq!(
        c.on_feedback(&no_amount, now),
        Verdict::Ignored(IgnoreReason::NoAmount)
    );
    no_amount.amount = None;
    assert_eq!(
        c.on_feedback(&no_amount, now),
        Verdict::Ignored(IgnoreReason::NoAmount)
    );
}

#[test]
fn with_durable_consumers_a_wave_ends_only_when_their_ack_floors_cover_it() {
    let now = Instant::now();
    let mut c = core(2);
    c.guard_with_ack_floors(true);
    five_in_three_chunks(&mut c, now);
    // A duplicated OK: the amounts add up while one chunk is unanswered.
    for amount in [2, 2, 2] {
        c.on_feedback(&seed_ok(&c, amount), now);
    }
    assert_eq!(c.poll_ack_floor(), Some((1, 3)));
    c.on_ack_floors(&[progress(3, 2)], now);
    assert!(commits(&mut c).is_empty(), "chunk 3 is not acknowledged");
    c.on_ack_floors(&[progress(0, 0)], now);
    assert!(commits(&mut c).is_empty(), "no durable reached the wave");
    c.on_ack_floors(&[progress(3, 3), progress(0, 0)], now);
    assert_eq!(
        commits(&mut c),
        [10],
        "every durable that reached the wave acknowledged it all"
    );
    let wave = c.poll_wave_end().unwrap();
    assert_eq!((wave.by, wave.surplus), (WaveConfirmation::AckFloor, 1));
}

#[test]
fn a_wave_whose_ack_floors_do_not_come_ends_on_its_amounts_after_the_wait() {
    let t0 = Instant::now();
    let mut c = core_with(2, windows(4, 64, 64), t0);
    c.guard_with_ack_floors(true);
    five_in_three_chunks(&mut c, t0);
    c.on_feedback(&seed_ok(&c, 5), t0);
    let wait = ACK_FLOOR_WAIT;
    assert_eq!(c.poll_timeout(), Some(t0 + wait), "sooner than the panic");
    assert!(!c.on_timeout(t0 + wait - SECOND / 10));
    assert!(commits(&mut c).is_empty());
    assert!(!c.on_timeout(t0 + wait), "the attempt goes on");
    assert_eq!(commits(&mut c), [10]);
    assert_eq!(
        c.poll_wave_end().unwrap().by,
        WaveConfirmation::AmountsAfterWait
    );
}

#[test]
fn an_ok_naming_its_chunk_still_finishes_it_alone_in_waves() {
    let now = Instant::now();
    let mut c = core(2);
    let out = five_in_three_chunks(&mut c, now);
    c.on_feedback(&seed_ok(&c, 2), now);
    assert_eq!(
        c.on_feedback(&fb(&c, &out[2].chunk_id, FeedbackStatus::Ok), now),
        Verdict::Done { entities: 1 }
    );
    assert!(commits(&mut c).is_empty());
    c.on_feedback(&seed_ok(&c, 2), now);
    assert_eq!(commits(&mut c), [10]);
}

#[test]
fn a_service_known_to_answer_in_the_seed_form_starts_in_waves() {
    let now = Instant::now();
    let lineage = Lineage {
        form: FeedbackForm::Seed,
        ..lineage(false)
    };
    let limits = ChunkLimits {
        max_entities: 2,
        max_entity_bytes: 1 << 20,
    };
    let mut c = AttemptCore::new(
        &builtin()[0],
        &lineage,
        1,
        limits,
        windows(4, 64, 64),
        panic_after(15 * SECOND),
        now,
    );
    c.on_batch(
        batch(10, vec![entity(0, 1), entity(1, 2), entity(2, 3)]),
        now,
    );
    let wave = publish_all(&mut c);
    assert_eq!(wave.len(), 2, "one wave: the whole batch");
    c.on_feedback(&fb(&c, &wave[0].chunk_id, FeedbackStatus::Ok), now);
    c.on_batch(batch(20, vec![entity(3, 11)]), now);
    assert!(
        c.poll_publish().is_none(),
        "feedback sealed the wave: the second batch waits for the next"
    );
    c.on_feedback(&seed_ok(&c, 1), now);
    assert_eq!(ids(&publish_all(&mut c)), [id(20, 0, 1)]);
}

/// A seed-form consumer in a seeded random schedule: it answers every
/// chunk once, in any order, OK without `chunkId` or, for a poison entity
/// or now and then, FAIL echoing the entities without `chunkId`. After
/// every step: no commit passes an entity whose chunk was not answered,
/// no newer version goes out before the older one's chunk was answered,
/// and in the end everything is committed.
#[test]
fn seeded_seed_form_schedules_never_commit_past_an_unanswered_entity() {
    for seed in 0..200u64 {
        let mut next = lcg(seed);
        let now = Instant::now();
        let mut c = core_with(
            1 + next(4) as usize,
            windows(1 + next(3) as usize, 1 + next(8) as usize, 64),
            now,
        );
        // Batches of ids drawn from a small pool, so versions repeat.
        let mut batches: Vec<(i64, Vec<Entity>)> = Vec::new();
        let mut ordinal = 0;
        for _ in 0..6 {
            let n = 1 + next(6);
            let entities = (0..n)
                .map(|_| {
                    ordinal += 1;
                    let id = next(8);
                    let poison = if next(30) == 0 { POISON } else { "" };
                    Entity::from_json(format!(
                        r#"{{"id":"e{id}",{poison}"metadata":{{"modificationOrdinal":{ordinal}}}}}"#
                    ))
                })
                .collect();
            batches.push((ordinal, entities));
        }
        let last = batches.last().unwrap().0;
        let mut batches = batches.into_iter();
        // Entity versions answered OK or failed alone, and the latest
        // version of each identity answered.
        let mut answered: HashSet<(String, i64)> = HashSet::new();
        let mut out: Vec<ChunkOut> = Vec::new();
        let mut fetched: HashMap<String, Vec<i64>> = HashMap::new();
        let mut committed = 0;
        let mut batch_entities: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
        let mut failed_once = HashSet::new();
        for _step in 0..2000 {
            if c.wants_batch() {
                if let Some((greatest, entities)) = batches.next() {
                    for (id, ord) in entities.iter().map(version) {
                        fetched.entry(id).or_default().push(ord);
                    }
                    batch_entities.insert(greatest, entities.iter().map(version).collect());
                    c.on_batch(batch(greatest, entities), now);
                }
            }
            while let Some(chunk) = c.poll_publish() {
                // Every older version fetched must be answered (versions of
                // one identity in one chunk are stored in order by the
                // consumer).
                let in_chunk: HashSet<(String, i64)> = chunk.entities.iter().map(version).collect();
                for (id, ord) in &in_chunk {
                    for older in fetched.get(id).into_iter().flatten().filter(|o| *o < ord) {
                        let older = (id.clone(), *older);
                        assert!(
                            in_chunk.contains(&older) || answered.contains(&older),
                            "seed {seed}: {id}@{ord} went out before {older:?} was answered"
                        );
                    }
                }
                let stream_seq = out.len() as u64 + 1;
                c.on_published(&chunk.chunk_id, stream_seq);
                out.push(chunk);
            }
            for a in actions(&mut c) {
                if let Action::Commit(commit) = a {
                    for (g, versions) in &batch_entities {
                        if *g <= commit.greatest_ordinal {
                            for v in versions {
                                assert!(
                                    answered.contains(v),
                                    "seed {seed}: committed {} past unanswered {v:?}",
                                    commit.greatest_ordinal
                                );
                            }
                        }
                    }
                    committed = commit.greatest_ordinal;
                }
            }
            if out.is_empty() {
                if committed == last {
                    break;
                }
                continue;
            }
            let chunk = out.swap_remove(next(out.len() as u64) as usize);
            let poisoned = chunk.entities.iter().any(|e| e.get().contains(POISON));
            let flaky = chunk.entities.len() > 1
                && next(5) == 0
                && failed_once.insert(chunk.chunk_id.clone());
            let feedback = if poisoned || flaky {
                if chunk.entities.len() == 1 {
                    answered.insert(version(&chunk.entities[0]));
                }
                seed_fail(&c, &chunk)
            } else {
                answered.extend(chunk.entities.iter().map(version));
                seed_ok(&c, chunk.entities.len() as u64)
            };
            assert!(!matches!(
                c.on_feedback(&feedback, now),
                Verdict::Ignored(_)
            ));
        }
        assert_eq!(committed, last, "seed {seed}: everything committed");
    }
}

/// A simulation entity's (identity, ordinal).
fn version(e: &Entity) -> (String, i64) {
    let v: serde_json::Value = serde_json::from_str(e.get()).unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["metadata"]["modificationOrdinal"].as_i64().unwrap(),
    )
}

/// What marks a poison entity of this simulation: its chunk always fails.
const POISON: &str = r#""poison":1,"#;

/// A seeded pseudo-random source: `next(n)` is in `0..n`.
fn lcg(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut rng = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n.max(1)
    }
}
