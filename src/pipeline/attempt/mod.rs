//! One attempt at one service, as the design card draws it:
//!
//! ```text
//! batches ──(Gate: pulled while the core has room)──┐
//! feedback ─────────────────────────────────────────┤
//! publish acks ◀── ChunkPublisher (Sink) ◀── chunks ─┤  merged (tokio-stream)
//! store outcomes ◀── StoreWriter (Sink) ◀── actions ─┤  into one stream of
//! ack floors ◀── reads the core asks for ────────────┤  events, folded into
//! ticks, shutdown ───────────────────────────────────┘  the AttemptCore
//! ```
//!
//! Everything that comes in (a batch, feedback, a publish ack, a store
//! outcome, an ack-floor reading, a tick, shutdown) is one stream of
//! `Event`s; each is handed to the pure core, and what the core hands
//! out goes to a sink: chunks into the chunk sink (through a channel the
//! window bounds, so the publisher's `poll_ready`, which waits for its
//! window and the rate limit, never holds up the events), writes into the
//! store writer, ack-floor reads into their channel. The driver keeps no
//! state of its own: when to fetch, publish, commit and end are rules of
//! the core (`core/`); telemetry hears everything through the observer.
//!
//! The events are a fold over a merged stream rather than a `select!`, so
//! that no input has a priority the code does not show, and a deadline is
//! a tick (every 250 ms) rather than a timer reset by hand: the panic
//! timeout, a wave's wait for ack floors and the shutdown grace are
//! checked at ticks.

mod gate;
mod store_writer;
#[cfg(test)]
mod tests;

use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::SinkExt;
use tokio_stream::wrappers::{IntervalStream, ReceiverStream};
use tokio_stream::StreamExt;

use super::core::{Action, AttemptCore, AttemptEnd, AttemptFailure, READ_WAIT};
pub(crate) use super::ports::StoreDone;
use super::ports::{ChunkSink, ConsumerAcks, CursorStore, FeedbackStream};
use super::telemetry::AttemptObserver;
use super::vocabulary::{
    Batch, ConsumerProgress, FeedbackError, FeedbackItem, FetchError, PublishFailure, Published,
};
use crate::catalogue::Service;
use crate::shutdown::Shutdown;
use gate::Gate;
pub(crate) use store_writer::{StoreOp, StoreWriter};

/// How often deadlines are checked and window counters and telemetry
/// flushed.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// Seed form: how long after the last reading the durable consumers' ack
/// floors are read again while an answered wave waits for them.
const ACK_FLOOR_EVERY: Duration = Duration::from_millis(50);

/// What an attempt reads from and writes to.
pub(crate) struct AttemptIo<P, C> {
    /// The source's batches after the committed ordinal (lazy).
    pub batches: BoxStream<'static, Result<Batch, FetchError>>,
    /// Where chunks go; its stream is the publishes' outcomes.
    pub publisher: P,
    /// Feedback, subscribed before the first publish.
    pub feedback: FeedbackStream,
    /// The cursor store.
    pub store: C,
    /// Bytes of entities the service's dead letters may keep.
    pub entity_budget: u64,
    /// The lease every commit must hold, when replicas are used.
    pub lease: Option<(String, String)>,
    /// The durable consumers' progress (seed-form waves).
    pub acks: std::sync::Arc<dyn ConsumerAcks>,
}

/// Everything that can happen to an attempt.
enum Event {
    /// A batch, the source's failure, or (`None`) its end.
    Batch(Option<Result<Batch, FetchError>>),
    /// A feedback message (or an unreadable one), or the stream broke.
    Feedback(Result<FeedbackItem, FeedbackError>),
    /// The feedback stream ended.
    FeedbackEnded,
    /// A publish was acknowledged, or given up.
    Published(Result<Published, PublishFailure>),
    /// A store write finished.
    Stored(StoreDone),
    /// The durable consumers' progress was read.
    AckFloors(Result<Vec<ConsumerProgress>, FeedbackError>),
    /// The durable consumers were read for a stall (redelivery pending?).
    Redelivery(Result<Vec<ConsumerProgress>, FeedbackError>),
    /// Time passed.
    Tick,
    /// Shutdown was asked for.
    Shutdown,
}

/// Runs `core` over `io` until it ends; see the module doc.
pub(crate) async fn run<P, C>(
    core: &mut AttemptCore,
    io: AttemptIo<P, C>,
    service: &Service,
    observer: &mut AttemptObserver<'_>,
    mut shutdown: Shutdown,
) -> AttemptEnd
where
    P: ChunkSink + 'static,
    C: CursorStore + Clone + Unpin + 'static,
{
    let gate = Gate::default();
    let (chunk_sink, acks) = futures::StreamExt::split(io.publisher);
    let (chunks_tx, chunks_rx) = tokio::sync::mpsc::channel(core.windows().max_publishes_in_flight);
    let publishing =
        futures::StreamExt::forward(ReceiverStream::new(chunks_rx).map(Ok), chunk_sink);
    let (mut store_tx, mut stored) = futures::StreamExt::split(StoreWriter::new(
        io.store,
        service.clone(),
        io.entity_budget,
    ));
    let (floors_tx, floors_rx) = tokio::sync::mpsc::channel(1);
    let subject = service.subject.clone();
    let consumers = io.acks.clone();
    let floors = ReceiverStream::new(floors_rx).then(move |()| {
        let read = consumers.progress(&subject);
        async move {
            tokio::time::sleep(ACK_FLOOR_EVERY).await;
            read.await
        }
    });
    let (redelivery_tx, redelivery_rx) = tokio::sync::mpsc::channel(1);
    let subject = service.subject.clone();
    let redelivery = ReceiverStream::new(redelivery_rx).then(move |()| {
        let read = io.acks.progress(&subject);
        async move {
            tokio::time::timeout(READ_WAIT, read)
                .await
                .unwrap_or_else(|_| Err(FeedbackError("no answer in time".into())))
        }
    });
    let shutdown = stream::once(async move { shutdown.recv().await });
    let events = gate
        .wrap(io.batches)
        .map(Event::Batch)
        .merge(
            io.feedback
                .map(Event::Feedback)
                .chain(stream::iter([Event::FeedbackEnded])),
        )
        .merge(acks.map(Event::Published))
        .merge((&mut stored).map(Event::Stored))
        .merge(floors.map(Event::AckFloors))
        .merge(redelivery.map(Event::Redelivery))
        .merge(IntervalStream::new(tokio::time::interval(TICK)).map(|_| Event::Tick))
        .merge(shutdown.map(|()| Event::Shutdown));
    let mut events = std::pin::pin!(events);
    let attempt = async {
        loop {
            gate.set(core.wants_batch());
            let Some(event) = events.next().await else {
                unreachable!("the ticks never end");
            };
            let now = tokio::time::Instant::now().into_std();
            handle(core, observer, event, now);
            while let Some(chunk) = core.poll_publish() {
                observer.chunk_published(&chunk);
                chunks_tx
                    .try_send(chunk)
                    .expect("the core's publish window bounds the channel");
            }
            store(core, &mut store_tx, &io.lease).await;
            if core.wants_ack_floor_read() {
                // Full: a reading is queued already, and it will do.
                let _ = floors_tx.try_send(());
            }
            if core.wants_redelivery_read(now) {
                let _ = redelivery_tx.try_send(());
            }
            observer.core_said(core);
            if let Some(end) = core.poll_end() {
                return end;
            }
        }
    };
    let end = tokio::select! {
        end = attempt => end,
        _ = publishing => unreachable!("the chunk channel outlives the attempt"),
    };
    finish(core, observer, end, store_tx, &mut stored, &io.lease).await
}

/// Hands one event to the core (and tells the observer).
fn handle(
    core: &mut AttemptCore,
    observer: &mut AttemptObserver<'_>,
    event: Event,
    now: std::time::Instant,
) {
    match event {
        Event::Batch(Some(Ok(batch))) => {
            let (entities, since, greatest) =
                (batch.entities.len(), batch.since, batch.greatest_ordinal);
            let opened = core.on_batch(batch, now);
            observer.batch_opened(&opened, entities, since, greatest);
        }
        Event::Batch(Some(Err(error))) => core.on_source_error(error),
        Event::Batch(None) => core.on_source_end(),
        Event::Feedback(Ok(Ok(feedback))) => {
            let verdict = core.on_feedback(&feedback, now);
            observer.feedback(&feedback, &verdict);
        }
        Event::Feedback(Ok(Err(malformed))) => observer.malformed(&malformed),
        Event::Feedback(Err(broken)) => core.on_failure(broken.into()),
        Event::FeedbackEnded => {
            core.on_failure(FeedbackError("the feedback stream ended".into()).into())
        }
        Event::Published(Ok(published)) => {
            core.on_published(&published.chunk_id, published.stream_seq)
        }
        Event::Published(Err(failure)) => core.on_failure(failure.into()),
        Event::Stored(done) => {
            if let Err(failure) = observer.stored(done) {
                core.on_failure(failure.into());
            }
        }
        Event::AckFloors(Ok(durables)) => core.on_ack_floors(&durables, now),
        Event::AckFloors(Err(e)) => {
            tracing::debug!(error = %e, "reading the ack floors failed; asking again");
            core.on_ack_floor_read_failed();
        }
        Event::Redelivery(Ok(durables)) => {
            if let Some(hold) = core.on_redelivery_read(&durables, now) {
                observer.holding_for_redelivery(&hold, core.unfinished_chunks());
            }
        }
        Event::Redelivery(Err(e)) => {
            tracing::debug!(error = %e, "reading the durable consumers for redelivery failed");
            core.on_redelivery_read_failed();
        }
        Event::Tick => {
            core.on_tick(now);
            core.flush_window();
            observer.flush();
        }
        Event::Shutdown => {
            if core.on_shutdown(now) {
                observer.shutting_down(core.unfinished_chunks());
            }
        }
    }
}

/// Hands the core's store writes to the writer, in order.
async fn store<S>(core: &mut AttemptCore, store_tx: &mut S, lease: &Option<(String, String)>)
where
    S: futures::Sink<StoreOp, Error = std::convert::Infallible> + Unpin,
{
    while let Some(action) = core.poll_action() {
        let op = match action {
            Action::Window(delta) => StoreOp::Window(delta.scheduled, delta.updated),
            Action::DeadLetter(letter) => StoreOp::DeadLetter(letter),
            Action::Commit(commit) => StoreOp::Commit(commit, lease.clone()),
        };
        // The writer accepts at once (its queue is bounded by the core).
        let _ = store_tx.feed(op).await;
    }
}

/// After the end: what is fully acknowledged is committed whatever ended
/// the attempt (unless the store itself failed), and the writes still
/// queued are waited for.
async fn finish<S, D>(
    core: &mut AttemptCore,
    observer: &mut AttemptObserver<'_>,
    end: AttemptEnd,
    mut store_tx: S,
    stored: &mut D,
    lease: &Option<(String, String)>,
) -> AttemptEnd
where
    S: futures::Sink<StoreOp, Error = std::convert::Infallible> + Unpin,
    D: futures::Stream<Item = StoreDone> + Unpin,
{
    observer.ended(&end, core.unfinished_chunks());
    if matches!(end, AttemptEnd::Failed(AttemptFailure::Store(_))) {
        return end;
    }
    core.flush_window();
    store(core, &mut store_tx, lease).await;
    let _ = store_tx.close().await;
    while let Some(done) = stored.next().await {
        if let Err(failure) = observer.stored(done) {
            tracing::warn!(error = %failure, "could not write to Redis at the end of the attempt");
            return match end {
                AttemptEnd::Completed => AttemptEnd::Failed(failure.into()),
                other => other,
            };
        }
    }
    end
}
