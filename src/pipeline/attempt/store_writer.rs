//! [`StoreWriter`]: the attempt's writes into the cursor store (window
//! counters, dead letters, commits) as a `Sink` of [`StoreOp`]s, performed
//! in the order they come, one under way at a time, and a `Stream` of
//! their outcomes. Accepting a write never waits: the core bounds the
//! queue (at most `pipeline_depth` commits, one dead letter per entity of
//! the open batches, window deltas merged into one), so feedback goes on
//! being handled while Redis is slow.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::{FutureExt, Sink, Stream};

use super::super::core::Commit;
use super::super::ports::{CursorStore, StoreDone};
use super::super::vocabulary::DeadLetterRecord;
use crate::catalogue::Service;

/// A write for the cursor store.
#[derive(Debug)]
pub(crate) enum StoreOp {
    /// Add to `_SCHEDULED` and `_UPDATED`.
    Window(u64, u64),
    /// Record a dead letter.
    DeadLetter(DeadLetterRecord),
    /// Add a batch's window counters, then commit its ordinal (under the
    /// lease, when given).
    Commit(Commit, Option<(String, String)>),
}

/// See the module doc.
pub(crate) struct StoreWriter<C> {
    store: C,
    service: Service,
    /// Bytes of entities the service's dead letters may keep.
    entity_budget: u64,
    queue: VecDeque<StoreOp>,
    current: Option<BoxFuture<'static, StoreDone>>,
    /// The stream waits for a write to come.
    waiting: Option<Waker>,
    /// No more writes come: the stream ends once the queue is done.
    closed: bool,
}

impl<C: CursorStore + Clone + 'static> StoreWriter<C> {
    /// Writes of `service` into `store`.
    pub(crate) fn new(store: C, service: Service, entity_budget: u64) -> Self {
        StoreWriter {
            store,
            service,
            entity_budget,
            queue: VecDeque::new(),
            current: None,
            waiting: None,
            closed: false,
        }
    }

    fn start_next(&mut self) {
        if self.current.is_some() {
            return;
        }
        let Some(op) = self.queue.pop_front() else {
            return;
        };
        let (store, service) = (self.store.clone(), self.service.clone());
        self.current = Some(match op {
            StoreOp::Window(s, u) => {
                let write = store.add_window(&service, s, u);
                Box::pin(async move { StoreDone::Window(write.await) })
            }
            StoreOp::DeadLetter(letter) => {
                let write = store.dead_letter(letter.clone(), self.entity_budget);
                Box::pin(async move { StoreDone::DeadLetter(letter, write.await) })
            }
            StoreOp::Commit(commit, lease) => Box::pin(async move {
                let w = commit.window;
                let result = match store.add_window(&service, w.scheduled, w.updated).await {
                    Ok(()) => {
                        let (ordinal, entities) = (commit.greatest_ordinal, commit.entities);
                        store.commit(&service, ordinal, entities, lease).await
                    }
                    Err(e) => Err(e),
                };
                StoreDone::Commit(commit, result)
            }),
        });
    }
}

impl<C: CursorStore + Clone + Unpin + 'static> Sink<StoreOp> for StoreWriter<C> {
    type Error = std::convert::Infallible;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, op: StoreOp) -> Result<(), Self::Error> {
        let merged = match (&op, self.queue.back_mut()) {
            (StoreOp::Window(s, u), Some(StoreOp::Window(qs, qu))) => {
                *qs += s;
                *qu += u;
                true
            }
            _ => false,
        };
        if !merged {
            self.queue.push_back(op);
        }
        self.start_next();
        if let Some(waker) = self.waiting.take() {
            waker.wake();
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// No more writes: the stream ends once those queued are done.
    fn poll_close(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Result<(), Self::Error>> {
        self.closed = true;
        if let Some(waker) = self.waiting.take() {
            waker.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl<C: CursorStore + Clone + Unpin + 'static> Stream for StoreWriter<C> {
    type Item = StoreDone;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StoreDone>> {
        let Some(current) = self.current.as_mut() else {
            if self.closed {
                return Poll::Ready(None);
            }
            self.waiting = Some(cx.waker().clone());
            return Poll::Pending;
        };
        let done = futures::ready!(current.poll_unpin(cx));
        self.current = None;
        self.start_next();
        Poll::Ready(Some(done))
    }
}
