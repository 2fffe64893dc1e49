//! The panic timeout held for JetStream's redelivery (`core/redelivery.rs`).

use super::*;

fn durable(ack_pending: u64, ack_wait: Duration) -> ConsumerProgress {
    ConsumerProgress {
        name: "reference_PERSON".into(),
        delivered: 10,
        ack_floor: 5,
        ack_pending,
        ack_wait,
    }
}

/// Two chunks published at `t0 + 1 s`, no feedback: the panic deadline
/// (15 s) is `t0 + 16 s`.
fn stalled(t0: Instant) -> (AttemptCore, Vec<ChunkOut>) {
    let mut c = core_with(1, windows(4, 64, 64), t0);
    c.on_batch(batch(10, vec![entity(0, 1), entity(1, 2)]), t0 + SECOND);
    let out = publish_all(&mut c);
    (c, out)
}

#[test]
fn the_consumers_are_read_once_per_stall_when_the_panic_deadline_passes() {
    let t0 = Instant::now();
    let (mut c, out) = stalled(t0);
    assert!(
        !c.wants_redelivery_read(t0 + 15 * SECOND),
        "not before the deadline"
    );
    assert!(c.wants_redelivery_read(t0 + 16 * SECOND));
    assert!(
        !c.wants_redelivery_read(t0 + 17 * SECOND),
        "one reading per stall"
    );
    assert!(!c.on_timeout(t0 + 17 * SECOND), "the reading is waited for");
    assert!(
        c.on_timeout(t0 + 16 * SECOND + READ_WAIT),
        "a reading that never comes is waited for READ_WAIT only"
    );
    // Progress starts a new stall, with a reading of its own.
    c.on_feedback(
        &fb(&c, &out[0].chunk_id, FeedbackStatus::Ok),
        t0 + 30 * SECOND,
    );
    assert!(!c.wants_redelivery_read(t0 + 44 * SECOND));
    assert!(c.wants_redelivery_read(t0 + 45 * SECOND));
}

#[test]
fn unacknowledged_deliveries_hold_the_attempt_for_their_ack_wait_then_it_is_abandoned() {
    let t0 = Instant::now();
    let (mut c, out) = stalled(t0);
    let read_at = t0 + 16 * SECOND;
    assert!(c.wants_redelivery_read(read_at));
    let hold = c
        .on_redelivery_read(&[durable(0, 5 * SECOND), durable(3, 30 * SECOND)], read_at)
        .expect("a durable holds deliveries");
    assert_eq!(
        hold.durables,
        [("reference_PERSON".to_string(), 3, 30 * SECOND)]
    );
    assert_eq!(hold.wait, 45 * SECOND, "ack wait, then the panic timeout");
    assert!(!c.on_timeout(read_at + 44 * SECOND), "held");
    assert!(
        c.on_timeout(read_at + 45 * SECOND),
        "nothing came: abandoned"
    );
    // Had the redelivered chunks been answered in time, the attempt goes on.
    let (mut c, _) = stalled(t0);
    assert!(c.wants_redelivery_read(read_at));
    c.on_redelivery_read(&[durable(3, 30 * SECOND)], read_at);
    c.on_feedback(
        &fb(&c, &out[0].chunk_id, FeedbackStatus::Ok),
        read_at + 31 * SECOND,
    );
    assert!(
        !c.on_timeout(read_at + 45 * SECOND),
        "progress ended the stall"
    );
}

#[test]
fn nothing_to_redeliver_a_failed_reading_or_an_endless_ack_wait_abandon_at_once() {
    let t0 = Instant::now();
    let at = t0 + 16 * SECOND;
    for outcome in [
        "nothing pending",
        "read failed",
        "ack wait beyond the bound",
    ] {
        let (mut c, _) = stalled(t0);
        assert!(c.wants_redelivery_read(at));
        match outcome {
            "nothing pending" => {
                assert_eq!(c.on_redelivery_read(&[durable(0, 30 * SECOND)], at), None)
            }
            "read failed" => c.on_redelivery_read_failed(),
            _ => assert_eq!(
                c.on_redelivery_read(&[durable(2, MAX_HOLD + SECOND)], at),
                None
            ),
        }
        assert!(c.on_timeout(at), "{outcome}");
    }
}
