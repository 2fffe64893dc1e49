//! [`StoreQueue`]: an attempt's cursor-store writes (window counters,
//! dead letters, commits), performed in the order the core hands them out,
//! one under way at a time, beside the attempt's other work.

use std::collections::VecDeque;

use futures::future::BoxFuture;

use super::core::Commit;
use super::ports::CursorStore;
use crate::catalogue::Service;
use crate::store::{DeadLetter, Recorded, StoreError};

/// A write for the cursor store.
pub(super) enum StoreOp {
    Window(u64, u64),
    DeadLetter(DeadLetter),
    Commit(Commit, Option<(String, String)>),
}

/// A finished store write.
pub(super) enum StoreDone {
    Window(Result<(), StoreError>),
    DeadLetter(DeadLetter, Result<Recorded, StoreError>),
    Commit(Commit, Result<i64, StoreError>),
}

/// Store writes in order, one under way at a time. The queue is bounded by
/// the core's windows: at most `pipeline_depth` commits, one dead letter
/// per entity in the open batches, and window deltas merged into one.
pub(super) struct StoreQueue<C> {
    store: C,
    service: Service,
    /// Bytes of entities the service's dead letters may keep.
    entity_budget: u64,
    queue: VecDeque<StoreOp>,
    current: Option<BoxFuture<'static, StoreDone>>,
}

impl<C: CursorStore + Clone + 'static> StoreQueue<C> {
    pub(super) fn new(store: C, service: Service, entity_budget: u64) -> Self {
        StoreQueue {
            store,
            service,
            entity_budget,
            queue: VecDeque::new(),
            current: None,
        }
    }

    pub(super) fn push(&mut self, op: StoreOp) {
        if let (StoreOp::Window(s, u), Some(StoreOp::Window(qs, qu))) = (&op, self.queue.back_mut())
        {
            *qs += s;
            *qu += u;
            return;
        }
        self.queue.push_back(op);
        self.start_next();
    }

    pub(super) fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    pub(super) fn start_next(&mut self) {
        if self.current.is_some() {
            return;
        }
        let Some(op) = self.queue.pop_front() else {
            return;
        };
        let store = self.store.clone();
        let service = self.service.clone();
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
                        store
                            .commit(&service, commit.greatest_ordinal, commit.entities, lease)
                            .await
                    }
                    Err(e) => Err(e),
                };
                StoreDone::Commit(commit, result)
            }),
        });
    }

    /// The next finished write; pending while none is under way.
    pub(super) async fn next(&mut self) -> StoreDone {
        let Some(current) = self.current.as_mut() else {
            return std::future::pending().await;
        };
        let done = current.await;
        self.current = None;
        self.start_next();
        done
    }
}
