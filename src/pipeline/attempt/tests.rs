//! The driver, tested without servers: every port is in memory (a batch
//! stream, a chunk sink that acknowledges each publish, a consumer task
//! answering through a feedback channel, a cursor store in a mutex), and
//! time is tokio's paused clock, so the panic timeout and the shutdown
//! grace pass in no real time. Each test is one rule of the composed
//! attempt: what is committed, when it ends, how far ahead it fetches.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, Sink, Stream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::*;
use crate::catalogue::builtin;
use crate::entity::Entity;
use crate::pipeline::chunker::ChunkLimits;
use crate::pipeline::core::{ChunkOut, FeedbackForm, Lineage, Timeouts, Windows};
use crate::pipeline::telemetry::Reporter;
use crate::pipeline::vocabulary::{
    DeadLetterRecord, Feedback, FeedbackStatus, Recorded, StoreFailure,
};

const PANIC: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(5);
const HASH: &str = "hash1";

/// The cursor store: what was written, in order.
#[derive(Default)]
struct Written {
    commits: Vec<i64>,
    scheduled: u64,
    updated: u64,
    letters: Vec<DeadLetterRecord>,
    /// Commits fail (as Redis down after its retries would).
    fail_commits: bool,
}

#[derive(Clone, Default)]
struct MemStore(Arc<Mutex<Written>>);

impl MemStore {
    fn commits(&self) -> Vec<i64> {
        self.0.lock().unwrap().commits.clone()
    }
}

impl CursorStore for MemStore {
    fn add_window(
        &self,
        _service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> BoxFuture<'static, Result<(), StoreFailure>> {
        let mut w = self.0.lock().unwrap();
        w.scheduled += scheduled;
        w.updated += updated;
        async { Ok(()) }.boxed()
    }

    fn dead_letter(
        &self,
        letter: DeadLetterRecord,
        _entity_budget: u64,
    ) -> BoxFuture<'static, Result<Recorded, StoreFailure>> {
        self.0.lock().unwrap().letters.push(letter);
        async {
            Ok(Recorded {
                new: true,
                entity_kept: true,
            })
        }
        .boxed()
    }

    fn commit(
        &self,
        _service: &Service,
        ordinal: i64,
        _entities: u64,
        _lease: Option<(String, String)>,
    ) -> BoxFuture<'static, Result<i64, StoreFailure>> {
        let mut w = self.0.lock().unwrap();
        if w.fail_commits {
            return async { Err(StoreFailure::Failed("Redis: connection refused".into())) }.boxed();
        }
        w.commits.push(ordinal);
        async move { Ok(ordinal) }.boxed()
    }
}

/// The chunk sink: the broker acknowledges every publish at once, and the
/// chunk goes on to the consumer.
struct MemSink {
    to_consumer: mpsc::UnboundedSender<ChunkOut>,
    acks: VecDeque<Result<Published, PublishFailure>>,
    waker: Option<Waker>,
    seq: u64,
    /// Publishes given up (a broker that never answers).
    refuse: bool,
}

impl Sink<ChunkOut> for MemSink {
    type Error = PublishFailure;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, chunk: ChunkOut) -> Result<(), Self::Error> {
        let this = self.get_mut();
        this.seq += 1;
        let outcome = if this.refuse {
            Err(PublishFailure {
                chunk_id: chunk.chunk_id.clone(),
                subject: "subject".into(),
                attempts: 5,
                message: "no responders".into(),
            })
        } else {
            Ok(Published {
                chunk_id: chunk.chunk_id.clone(),
                stream_seq: this.seq,
            })
        };
        this.acks.push_back(outcome);
        if let Some(w) = this.waker.take() {
            w.wake();
        }
        let _ = this.to_consumer.send(chunk);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl Stream for MemSink {
    type Item = Result<Published, PublishFailure>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.acks.pop_front() {
            Some(ack) => Poll::Ready(Some(ack)),
            None => {
                this.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// No durable consumer reads the subject.
struct NoDurables;

impl ConsumerAcks for NoDurables {
    fn progress(
        &self,
        _subject: &str,
    ) -> BoxFuture<'static, Result<Vec<ConsumerProgress>, FeedbackError>> {
        async { Ok(Vec::new()) }.boxed()
    }
}

/// How the test consumer answers a chunk.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Fail,
    /// Never (a consumer that is down).
    Silent,
    /// OK after this long.
    OkAfter(Duration),
}

fn entity(id: u32, ordinal: i64) -> Entity {
    Entity::from_json(format!(
        r#"{{"id":"e{id}","metadata":{{"modificationOrdinal":{ordinal}}}}}"#
    ))
}

/// `n` batches of `per` entities each; batch `b` (from 1) ends at ordinal
/// `b * 100`.
fn batches(n: i64, per: u32) -> Vec<Result<Batch, FetchError>> {
    (1..=n)
        .map(|b| {
            Ok(Batch {
                since: (b - 1) * 100,
                greatest_ordinal: b * 100,
                has_more: b < n,
                entities: (0..per)
                    .map(|i| entity(b as u32 * 1000 + i, (b - 1) * 100 + i as i64 + 1))
                    .collect(),
                fetched_in: Duration::ZERO,
            })
        })
        .collect()
}

/// What one attempt did.
struct Ran {
    end: AttemptEnd,
    store: MemStore,
    /// Batches taken from the source.
    pulled: usize,
    /// Chunks the sink was given.
    published: Vec<ChunkOut>,
}

/// Options of one run.
struct Setup {
    batches: Vec<Result<Batch, FetchError>>,
    windows: Windows,
    max_entities: usize,
    answer: fn(&ChunkOut) -> Answer,
    store: MemStore,
    refuse_publishes: bool,
    /// Shutdown is asked for once this many chunks are published.
    shutdown_after: Option<usize>,
    /// The feedback stream ends once this many chunks are published.
    feedback_ends_after: Option<usize>,
}

impl Setup {
    fn new(batches: Vec<Result<Batch, FetchError>>, answer: fn(&ChunkOut) -> Answer) -> Self {
        Setup {
            batches,
            windows: Windows {
                pipeline_depth: 2,
                max_chunks_in_flight: 8,
                max_publishes_in_flight: 8,
            },
            max_entities: 10,
            answer,
            store: MemStore::default(),
            refuse_publishes: false,
            shutdown_after: None,
            feedback_ends_after: None,
        }
    }

    async fn run(self) -> Ran {
        let service = builtin().into_iter().next().expect("a service");
        let limits = ChunkLimits {
            max_entities: self.max_entities,
            max_entity_bytes: 1 << 20,
        };
        let lineage = Lineage {
            execution_hash: HASH.into(),
            epoch: 1,
            resuming: false,
            since: 0,
            form: FeedbackForm::Unknown,
            replay: false,
        };
        let timeouts = Timeouts {
            panic: PANIC,
            shutdown_grace: GRACE,
        };
        let now = tokio::time::Instant::now().into_std();
        let mut core = AttemptCore::new(&service, &lineage, 1, limits, self.windows, timeouts, now);

        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let batches = futures::StreamExt::boxed(futures::StreamExt::inspect(
            futures::stream::iter(self.batches),
            move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            },
        ));
        let (to_consumer, mut chunks) = mpsc::unbounded_channel::<ChunkOut>();
        let (feedback_tx, feedback_rx) = mpsc::unbounded_channel();
        let sink = MemSink {
            to_consumer,
            acks: VecDeque::new(),
            waker: None,
            seq: 0,
            refuse: self.refuse_publishes,
        };
        let (trigger, shutdown) = crate::shutdown::channel();
        let published = Arc::new(Mutex::new(Vec::new()));
        let seen = published.clone();
        let (answer, subject) = (self.answer, service.subject.clone());
        let (shutdown_after, ends_after) = (self.shutdown_after, self.feedback_ends_after);
        let consumer = tokio::spawn(async move {
            let mut feedback_tx = Some(feedback_tx);
            while let Some(chunk) = chunks.recv().await {
                let count = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(chunk.clone());
                    seen.len()
                };
                if shutdown_after == Some(count) {
                    trigger.trigger();
                }
                if ends_after == Some(count) {
                    feedback_tx = None;
                }
                let Some(tx) = feedback_tx.clone() else {
                    continue;
                };
                let status = match answer(&chunk) {
                    Answer::Silent => continue,
                    Answer::Fail => FeedbackStatus::Fail,
                    Answer::Ok | Answer::OkAfter(_) => FeedbackStatus::Ok,
                };
                let mut fb = Feedback::precise(&subject, status, HASH, &chunk.chunk_id);
                fb.amount = Some(chunk.entities.len() as u64);
                fb.stack = "consumer says no".into();
                let delay = match answer(&chunk) {
                    Answer::OkAfter(d) => d,
                    _ => Duration::ZERO,
                };
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Ok(Ok(fb)));
                });
            }
        });
        let io = AttemptIo {
            batches,
            publisher: sink,
            feedback: futures::StreamExt::boxed(UnboundedReceiverStream::new(feedback_rx)),
            store: self.store.clone(),
            entity_budget: 1 << 20,
            lease: None,
            acks: Arc::new(NoDurables),
        };
        let reporter = Reporter::default();
        let mut observer = AttemptObserver::new(&reporter, &service, 0, false);
        // A rule broken so that the attempt never ends fails here, not
        // by hanging: the virtual clock runs far past every deadline.
        let end = tokio::time::timeout(
            Duration::from_secs(3600),
            run(&mut core, io, &service, &mut observer, shutdown),
        )
        .await
        .expect("the attempt ends within an hour of virtual time");
        consumer.abort();
        let published = published.lock().unwrap().clone();
        Ran {
            end,
            store: self.store,
            pulled: pulled.load(Ordering::SeqCst),
            published,
        }
    }
}

fn has_entity(chunk: &ChunkOut, id: &str) -> bool {
    chunk.entities.iter().any(|e| e.get().contains(id))
}

#[tokio::test(start_paused = true)]
async fn every_batch_acknowledged_commits_each_in_order_and_completes() {
    let ran = Setup::new(batches(5, 25), |_| Answer::Ok).run().await;
    assert!(matches!(ran.end, AttemptEnd::Completed), "{:?}", ran.end);
    assert_eq!(ran.store.commits(), vec![100, 200, 300, 400, 500]);
    let w = ran.store.0.lock().unwrap();
    assert_eq!((w.scheduled, w.updated), (125, 125));
    // 25 entities in chunks of 10: 3 chunks a batch, each sent once.
    assert_eq!(ran.published.len(), 15);
}

#[tokio::test(start_paused = true)]
async fn no_feedback_abandons_the_attempt_at_the_panic_timeout_without_committing() {
    let started = tokio::time::Instant::now();
    let ran = Setup::new(batches(3, 5), |_| Answer::Silent).run().await;
    assert!(matches!(ran.end, AttemptEnd::PanicTimeout), "{:?}", ran.end);
    let waited = started.elapsed();
    assert!(
        waited >= PANIC && waited < PANIC + Duration::from_secs(1),
        "ended after {waited:?}"
    );
    assert!(ran.store.commits().is_empty());
}

#[tokio::test(start_paused = true)]
async fn feedback_that_keeps_coming_holds_off_the_panic_timeout() {
    // Each chunk is answered 20 s after its publish: the attempt takes far
    // longer than the panic timeout, but never 30 s without progress.
    let mut setup = Setup::new(batches(4, 10), |_| Answer::OkAfter(Duration::from_secs(20)));
    setup.windows.pipeline_depth = 1;
    let started = tokio::time::Instant::now();
    let ran = setup.run().await;
    assert!(matches!(ran.end, AttemptEnd::Completed), "{:?}", ran.end);
    assert!(started.elapsed() >= Duration::from_secs(80));
    assert_eq!(ran.store.commits(), vec![100, 200, 300, 400]);
}

#[tokio::test(start_paused = true)]
async fn the_source_is_read_no_further_ahead_than_the_pipeline_depth() {
    let mut setup = Setup::new(batches(10, 5), |_| Answer::Silent);
    setup.windows.pipeline_depth = 3;
    let ran = setup.run().await;
    assert!(matches!(ran.end, AttemptEnd::PanicTimeout), "{:?}", ran.end);
    assert_eq!(ran.pulled, 3, "batches taken while none was acknowledged");
}

#[tokio::test(start_paused = true)]
async fn no_more_chunks_await_feedback_than_the_window_allows() {
    let mut setup = Setup::new(batches(2, 50), |_| Answer::Silent);
    setup.windows.max_chunks_in_flight = 3;
    setup.max_entities = 5;
    let ran = setup.run().await;
    assert!(matches!(ran.end, AttemptEnd::PanicTimeout), "{:?}", ran.end);
    assert_eq!(ran.published.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn after_a_source_failure_what_was_fetched_is_drained_and_committed_then_it_fails() {
    let mut input = batches(2, 10);
    input.push(Err(FetchError {
        forbidden: false,
        message: "GET /persons: 502 after 5 tries".into(),
    }));
    // Deep enough that the failure is read while both batches still
    // wait for their answers.
    let mut setup = Setup::new(input, |_| Answer::OkAfter(Duration::from_secs(2)));
    setup.windows.pipeline_depth = 4;
    let ran = setup.run().await;
    assert_eq!(ran.pulled, 3);
    match &ran.end {
        AttemptEnd::Failed(AttemptFailure::Source(e)) => assert!(e.message.contains("502")),
        other => panic!("ended {other:?}"),
    }
    assert_eq!(ran.store.commits(), vec![100, 200]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_fetching_and_commits_what_is_answered_within_the_grace() {
    // The consumer answers in 3 s (within the 5 s grace); shutdown comes
    // with the first chunk of the first batch.
    let mut setup = Setup::new(batches(6, 10), |_| Answer::OkAfter(Duration::from_secs(3)));
    setup.shutdown_after = Some(1);
    let ran = setup.run().await;
    assert!(matches!(ran.end, AttemptEnd::Interrupted), "{:?}", ran.end);
    let commits = ran.store.commits();
    assert!(!commits.is_empty(), "answered batches are committed");
    assert!(
        ran.pulled <= 2,
        "fetched {} batches after shutdown",
        ran.pulled
    );
    assert_eq!(commits.len(), ran.pulled);
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_at_the_grace_when_the_consumer_is_silent() {
    let mut setup = Setup::new(batches(3, 10), |_| Answer::Silent);
    setup.shutdown_after = Some(1);
    let started = tokio::time::Instant::now();
    let ran = setup.run().await;
    assert!(matches!(ran.end, AttemptEnd::Interrupted), "{:?}", ran.end);
    let waited = started.elapsed();
    assert!(waited >= GRACE && waited < PANIC, "ended after {waited:?}");
    assert!(ran.store.commits().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_poison_entity_is_isolated_dead_lettered_and_the_batch_still_commits() {
    let answer = |c: &ChunkOut| {
        if has_entity(c, r#""e1007""#) {
            Answer::Fail
        } else {
            Answer::Ok
        }
    };
    let ran = Setup::new(batches(1, 10), answer).run().await;
    assert!(matches!(ran.end, AttemptEnd::Completed), "{:?}", ran.end);
    assert_eq!(ran.store.commits(), vec![100]);
    let w = ran.store.0.lock().unwrap();
    assert_eq!(w.letters.len(), 1);
    assert_eq!(w.letters[0].identity.as_deref(), Some("e1007"));
    assert_eq!(w.letters[0].reason, "poison");
    // Halves are not counted again, and the dead letter counts as done.
    assert_eq!((w.scheduled, w.updated), (10, 10));
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_fails_the_attempt() {
    let setup = Setup::new(batches(3, 5), |_| Answer::Ok);
    setup.store.0.lock().unwrap().fail_commits = true;
    let ran = setup.run().await;
    match &ran.end {
        AttemptEnd::Failed(AttemptFailure::Store(e)) => {
            assert!(e.to_string().contains("connection refused"))
        }
        other => panic!("ended {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_publish_given_up_fails_the_attempt_at_once() {
    let mut setup = Setup::new(batches(3, 5), |_| Answer::Silent);
    setup.refuse_publishes = true;
    let started = tokio::time::Instant::now();
    let ran = setup.run().await;
    assert!(
        matches!(ran.end, AttemptEnd::Failed(AttemptFailure::Publish(_))),
        "{:?}",
        ran.end
    );
    assert!(
        started.elapsed() < PANIC,
        "did not wait for the panic timeout"
    );
    assert!(ran.store.commits().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_feedback_stream_that_ends_fails_the_attempt_but_keeps_what_was_answered() {
    // Batch 1 has one chunk; the stream ends once the second chunk (batch
    // 2's) is published, before its answer.
    let mut setup = Setup::new(batches(3, 10), |_| Answer::Ok);
    setup.windows.pipeline_depth = 1;
    setup.feedback_ends_after = Some(2);
    let ran = setup.run().await;
    assert!(
        matches!(ran.end, AttemptEnd::Failed(AttemptFailure::Feedback(_))),
        "{:?}",
        ran.end
    );
    assert_eq!(ran.store.commits(), vec![100]);
}
