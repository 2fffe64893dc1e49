//! `ChunkPublisher`: the pipeline's `ChunkSink` on JetStream. It
//! encodes the envelope (SPEC §4), waits for the optional rate limit inside
//! the publish, awaits the publish ack and retries under the same
//! `Nats-Msg-Id`, so that a publish retried after a lost ack is stored once.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage as Publish;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::wire::encode_chunk;
use super::Nats;
use crate::pipeline::core::ChunkOut;
use crate::pipeline::ports::{ChunkSink, Published};
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

/// A chunk that could not be published within the retry window.
#[derive(Debug, Clone, thiserror::Error)]
#[error("publishing chunk {chunk_id} on {subject} failed after {attempts} attempts: {message}")]
pub struct PublishFailure {
    /// The chunk.
    pub chunk_id: String,
    /// The subject.
    pub subject: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last cause.
    pub message: String,
}

/// Publishes chunks on one subject. How many are under way at once is the
/// caller's window (`max_publishes_in_flight`): a slow broker holds acks
/// back, and that is what slows the fetcher.
pub(crate) struct ChunkPublisher {
    nats: Nats,
    subject: String,
    /// Each future publishes one chunk (with its retries) and resolves to
    /// its outcome; pushed by `publish`, drained by `next_ack`.
    in_flight: FuturesUnordered<BoxFuture<'static, Result<Published, PublishFailure>>>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    ack_timeout: Duration,
}

impl ChunkPublisher {
    /// A publisher for `subject`; `per_second` limits chunk publishes.
    pub fn new(nats: Nats, subject: &str, per_second: Option<u32>, ack_timeout: Duration) -> Self {
        ChunkPublisher {
            nats,
            subject: subject.to_owned(),
            in_flight: FuturesUnordered::new(),
            limiter: per_second
                .and_then(NonZeroU32::new)
                .map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n)))),
            ack_timeout,
        }
    }

    /// Starts publishing `chunk`: the rate limit is waited for inside the
    /// publish, so the caller never waits here.
    pub fn publish(&mut self, chunk: ChunkOut) {
        let encoded = Encoded {
            msg_id: format!("{}:{}", chunk.execution_hash, chunk.chunk_id),
            payload: encode_chunk(&chunk.execution_hash, &chunk.chunk_id, &chunk.entities),
            chunk_id: chunk.chunk_id,
        };
        let (js, subject, timeout, limiter) = (
            self.nats.jetstream.clone(),
            self.subject.clone(),
            self.ack_timeout,
            self.limiter.clone(),
        );
        self.in_flight.push(Box::pin(async move {
            if let Some(limiter) = limiter {
                limiter.until_ready().await;
            }
            publish_with_retries(js, subject, encoded, timeout).await
        }));
    }

    /// The next finished publish; pending forever when none is in flight
    /// (so it can sit in a `select!`).
    pub(crate) async fn next_ack(&mut self) -> Result<Published, PublishFailure> {
        match self.in_flight.next().await {
            Some(outcome) => outcome,
            None => std::future::pending().await,
        }
    }
}

impl ChunkSink for ChunkPublisher {
    fn publish(&mut self, chunk: ChunkOut) {
        ChunkPublisher::publish(self, chunk)
    }

    fn next_ack(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Published, PublishFailure>> + Send + '_ {
        ChunkPublisher::next_ack(self)
    }
}

async fn publish_with_retries(
    js: async_nats::jetstream::Context,
    subject: String,
    chunk: Encoded,
    timeout: Duration,
) -> Result<Published, PublishFailure> {
    let mut retry = PUBLISH_RETRY.start();
    loop {
        let message = Publish::build()
            .payload(chunk.payload.clone())
            .message_id(&chunk.msg_id);
        let outcome = tokio::time::timeout(timeout * 2, async {
            let ack = js.send_publish(subject.clone(), message).await?;
            ack.await
        })
        .await;
        let (error, permanent) = match outcome {
            Ok(Ok(ack)) => {
                return Ok(Published {
                    chunk_id: chunk.chunk_id,
                    stream_seq: ack.sequence,
                })
            }
            Ok(Err(e)) => (e.to_string(), is_permanent(e.kind())),
            Err(_) => (format!("no publish ack within {timeout:?}"), false),
        };
        let attempts = retry.attempt();
        let wait = retry.failed().filter(|_| !permanent);
        let Some(wait) = wait else {
            return Err(PublishFailure {
                chunk_id: chunk.chunk_id,
                subject,
                attempts,
                message: error,
            });
        };
        tracing::warn!(chunk_id = %chunk.chunk_id, subject = %subject, attempts, error = %error, "publish failed, retrying with the same Nats-Msg-Id");
        tokio::time::sleep(wait).await;
    }
}

/// Failures that the same message cannot outgrow by waiting.
fn is_permanent(kind: PublishErrorKind) -> bool {
    matches!(kind, PublishErrorKind::MaxPayloadExceeded)
}
