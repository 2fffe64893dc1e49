//! `ChunkPublisher`: the pipeline's `ChunkSink` on JetStream, a
//! `futures::Sink` of chunks and a `Stream` of their publish acks. Its
//! `poll_ready` holds back while `max_publishes_in_flight` publishes await
//! their ack (the publish window: a slow broker slows the chunks down) and
//! while the `governor` rate limit says wait. Each publish encodes the
//! envelope (SPEC §4), awaits the ack and retries under the same
//! `Nats-Msg-Id`, so that a publish retried after a lost ack is stored once.

use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage as Publish;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, Stream};
use futures::{FutureExt, Sink, StreamExt};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::wire::encode_chunk;
use super::Nats;
use crate::pipeline::core::ChunkOut;
use crate::pipeline::vocabulary::{PublishFailure, Published};
use crate::retry::{Budget, RetryPolicy};

/// Publishing's retry policy: from 100 ms doubling to 5 s, for 60 s (a NATS
/// restart fits in it), always under the same `Nats-Msg-Id`.
const PUBLISH_RETRY: RetryPolicy = RetryPolicy {
    first: Duration::from_millis(100),
    max: Duration::from_secs(5),
    jitter: false,
    budget: Budget::For(Duration::from_secs(60)),
};

/// A chunk encoded and ready to go.
#[derive(Debug, Clone)]
struct Encoded {
    chunk_id: String,
    /// `Nats-Msg-Id`: unique per attempt and chunk, stable across retries.
    msg_id: String,
    payload: Bytes,
}

/// Publishes chunks on one subject; see the module doc.
pub struct ChunkPublisher {
    nats: Nats,
    subject: String,
    /// Each future publishes one chunk (with its retries) and resolves to
    /// its outcome; pushed by `start_send`, drained by `poll_next`.
    in_flight: FuturesUnordered<BoxFuture<'static, Result<Published, PublishFailure>>>,
    /// Publishes under way at most (the publish window).
    window: usize,
    limiter: Option<DefaultDirectRateLimiter>,
    /// The rate limit's wait under way, if any.
    rate_wait: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The rate limit let one chunk through: `start_send` may go.
    permitted: bool,
    /// `poll_ready` waits for a publish to finish (the window is full).
    ready_waker: Option<Waker>,
    /// `poll_next` waits for a publish to start (none under way).
    next_waker: Option<Waker>,
    ack_timeout: Duration,
}

impl ChunkPublisher {
    /// A publisher for `subject`, with at most `window` publishes awaiting
    /// their ack; `per_second` limits chunk publishes.
    pub fn new(
        nats: Nats,
        subject: &str,
        window: usize,
        per_second: Option<u32>,
        ack_timeout: Duration,
    ) -> Self {
        ChunkPublisher {
            nats,
            subject: subject.to_owned(),
            in_flight: FuturesUnordered::new(),
            window: window.max(1),
            limiter: per_second
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            rate_wait: None,
            permitted: false,
            ready_waker: None,
            next_waker: None,
            ack_timeout,
        }
    }

    /// Whether the rate limit lets one more chunk go now; if not, arranges
    /// to be woken when it will.
    fn poll_rate(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(limiter) = &self.limiter else {
            return Poll::Ready(());
        };
        loop {
            if let Some(wait) = self.rate_wait.as_mut() {
                if wait.poll_unpin(cx).is_pending() {
                    return Poll::Pending;
                }
                self.rate_wait = None;
            }
            match limiter.check() {
                Ok(()) => return Poll::Ready(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    self.rate_wait = Some(Box::pin(tokio::time::sleep(wait)));
                }
            }
        }
    }
}

impl Sink<ChunkOut> for ChunkPublisher {
    type Error = PublishFailure;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.in_flight.len() >= self.window {
            self.ready_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if !self.permitted {
            if self.poll_rate(cx).is_pending() {
                return Poll::Pending;
            }
            self.permitted = true;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, chunk: ChunkOut) -> Result<(), Self::Error> {
        self.permitted = false;
        let encoded = Encoded {
            msg_id: format!("{}:{}", chunk.execution_hash, chunk.chunk_id),
            payload: encode_chunk(&chunk.execution_hash, &chunk.chunk_id, &chunk.entities),
            chunk_id: chunk.chunk_id,
        };
        let publishing = Publishing {
            js: self.nats.jetstream.clone(),
            subject: self.subject.clone(),
            timeout: self.ack_timeout,
            resend: self.nats.resend.clone(),
            outage: self.nats.publishing.clone(),
        };
        self.in_flight
            .push(Box::pin(publish_with_retries(publishing, encoded)));
        if let Some(waker) = self.next_waker.take() {
            waker.wake();
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A started publish is under way: its outcome comes from the stream.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl Stream for ChunkPublisher {
    type Item = Result<Published, PublishFailure>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.in_flight.poll_next_unpin(cx) {
            Poll::Ready(Some(outcome)) => {
                if let Some(waker) = self.ready_waker.take() {
                    waker.wake();
                }
                Poll::Ready(Some(outcome))
            }
            // Nothing under way: wait for the next publish, never end.
            Poll::Ready(None) => {
                self.next_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What one publish needs besides its chunk.
struct Publishing {
    js: async_nats::jetstream::Context,
    subject: String,
    timeout: Duration,
    /// Changes when the client has connected again after a drop, or the
    /// stream has elected a leader.
    resend: tokio::sync::watch::Receiver<u64>,
    /// Publishing's outage: begun by a failed publish, ended by the next
    /// acknowledged one, so a stall is two log lines, not one per chunk.
    outage: std::sync::Arc<crate::outage::Outage>,
}

/// How one send of a chunk ended.
enum Sent {
    Acked(async_nats::jetstream::publish::PublishAck),
    Failed {
        error: String,
        permanent: bool,
    },
    /// The connection dropped and came back, or the stream elected a
    /// leader, while the ack was awaited: an ack that died with the old
    /// connection, or of a publish that reached no leader, never comes, so
    /// the chunk is sent again at once (JetStream stores it once, by its
    /// `Nats-Msg-Id`) instead of waiting out the ack timeout.
    Again,
}

async fn publish_with_retries(
    mut p: Publishing,
    chunk: Encoded,
) -> Result<Published, PublishFailure> {
    let mut retry = PUBLISH_RETRY.start();
    // Connections and elections before this publish began are no news to it.
    p.resend.borrow_and_update();
    loop {
        let mark = p.outage.mark();
        match send_once(&mut p, &chunk).await {
            Sent::Acked(ack) => {
                p.outage.succeeded();
                return Ok(Published {
                    chunk_id: chunk.chunk_id,
                    stream_seq: ack.sequence,
                });
            }
            Sent::Again => {
                crate::metrics::publish_resent_on_reconnect();
                tracing::debug!(chunk_id = %chunk.chunk_id, "NATS connected again or the stream elected a leader while the publish ack was awaited; sending again with the same Nats-Msg-Id");
            }
            Sent::Failed { error, permanent } => {
                let attempts = retry.attempt();
                let wait = retry.failed().filter(|_| !permanent);
                let Some(wait) = wait else {
                    return Err(PublishFailure {
                        chunk_id: chunk.chunk_id,
                        subject: p.subject,
                        attempts,
                        message: error,
                    });
                };
                p.outage.failed_since(mark, &error);
                tracing::debug!(chunk_id = %chunk.chunk_id, subject = %p.subject, attempts, error = %error, "publish failed, retrying with the same Nats-Msg-Id");
                // A reconnect or an election during the wait cuts it short.
                let _ = tokio::time::timeout(wait, p.resend.changed()).await;
            }
        }
    }
}

/// Sends `chunk` once and awaits its ack, its failure, or a new connection.
async fn send_once(p: &mut Publishing, chunk: &Encoded) -> Sent {
    let message = Publish::build()
        .payload(chunk.payload.clone())
        .message_id(&chunk.msg_id);
    let timeout = p.timeout;
    let send = tokio::time::timeout(timeout * 2, async {
        let ack = p.js.send_publish(p.subject.clone(), message).await?;
        ack.await
    });
    tokio::select! {
        outcome = send => match outcome {
            Ok(Ok(ack)) => Sent::Acked(ack),
            Ok(Err(e)) => Sent::Failed {
                error: e.to_string(),
                permanent: is_permanent(e.kind()),
            },
            Err(_) => Sent::Failed {
                error: format!("no publish ack within {timeout:?}"),
                permanent: false,
            },
        },
        Ok(()) = p.resend.changed() => Sent::Again,
    }
}

/// Failures that the same message cannot outgrow by waiting.
fn is_permanent(kind: PublishErrorKind) -> bool {
    matches!(kind, PublishErrorKind::MaxPayloadExceeded)
}
