//! [`Gate`]: a stream of batches pulled only while the core wants one. The
//! source's stream is lazy (the next page is requested only when asked
//! for), so an open gate is what lets the next request go; a closed one
//! holds fetching back while `pipeline_depth` batches are open.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::Stream;

/// The switch of a [`Gated`] stream, kept by the driver.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    open: AtomicBool,
    waker: AtomicWaker,
}

impl Gate {
    /// Opens or closes the gate; opening wakes the stream behind it.
    pub(crate) fn set(&self, open: bool) {
        let was = self.shared.open.swap(open, Ordering::AcqRel);
        if open && !was {
            self.shared.waker.wake();
        }
    }

    /// `inner`, pulled only while this gate is open; its end comes as one
    /// `None` item (the driver must hear that the source is done).
    pub(crate) fn wrap<S: Stream + Unpin>(&self, inner: S) -> Gated<S> {
        Gated {
            inner: Some(inner),
            shared: self.shared.clone(),
        }
    }
}

/// See [`Gate::wrap`].
pub(crate) struct Gated<S> {
    inner: Option<S>,
    shared: Arc<Shared>,
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = Option<S::Item>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        this.shared.waker.register(cx.waker());
        if !this.shared.open.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(Some(item))),
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(Some(None))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
