//! [`ChunkPublisher`]: JetStream publishes with a bounded number of acks in
//! flight, an optional rate limit, and retries under the same `Nats-Msg-Id`
//! so that a publish retried after a lost ack is stored once.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage as Publish;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::Nats;

/// How long one chunk keeps being retried (a NATS restart fits in it).
const RETRY_FOR: Duration = Duration::from_secs(60);

/// A chunk ready to go: its id, encoded payload and message id.
#[derive(Debug, Clone)]
pub struct OutgoingChunk {
    /// `chunkId` of the envelope.
    pub chunk_id: String,
    /// `Nats-Msg-Id`: unique per attempt and chunk, stable across retries.
    pub msg_id: String,
    /// The encoded envelope.
    pub payload: Bytes,
    /// Entities in it.
    pub entities: usize,
    /// A half of a failed chunk (its entities were published before).
    pub half: bool,
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

/// Publishes chunks on one subject; at most `max_in_flight` publish acks
/// are awaited at once, which is what slows the fetcher when the broker is
/// slow.
pub struct ChunkPublisher {
    nats: Nats,
    subject: String,
    /// Each future publishes one chunk (with its retries) and resolves to
    /// its outcome; pushed by `publish`, drained by `next_ack`.
    in_flight: FuturesUnordered<BoxFuture<'static, Result<OutgoingChunk, PublishFailure>>>,
    max_in_flight: usize,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    ack_timeout: Duration,
}

impl ChunkPublisher {
    /// A publisher for `subject`; `per_second` limits chunk publishes.
    pub fn new(
        nats: Nats,
        subject: &str,
        max_in_flight: usize,
        per_second: Option<u32>,
        ack_timeout: Duration,
    ) -> Self {
        ChunkPublisher {
            nats,
            subject: subject.to_owned(),
            in_flight: FuturesUnordered::new(),
            max_in_flight,
            limiter: per_second
                .and_then(NonZeroU32::new)
                .map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n)))),
            ack_timeout,
        }
    }

    /// Room for another publish.
    pub fn has_capacity(&self) -> bool {
        self.in_flight.len() < self.max_in_flight
    }

    /// Publishes awaiting their JetStream ack.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Waits for the rate limit, then starts publishing `chunk`; its
    /// outcome comes from [`next_ack`](Self::next_ack).
    pub async fn publish(&mut self, chunk: OutgoingChunk) {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let (js, subject, timeout) = (
            self.nats.jetstream.clone(),
            self.subject.clone(),
            self.ack_timeout,
        );
        self.in_flight
            .push(Box::pin(publish_with_retries(js, subject, chunk, timeout)));
    }

    /// The next finished publish; pending forever when none is in flight
    /// (so it can sit in a `select!`).
    pub async fn next_ack(&mut self) -> Result<OutgoingChunk, PublishFailure> {
        match self.in_flight.next().await {
            Some(outcome) => outcome,
            None => std::future::pending().await,
        }
    }
}

async fn publish_with_retries(
    js: async_nats::jetstream::Context,
    subject: String,
    chunk: OutgoingChunk,
    timeout: Duration,
) -> Result<OutgoingChunk, PublishFailure> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let message = Publish::build()
            .payload(chunk.payload.clone())
            .message_id(&chunk.msg_id);
        let outcome = tokio::time::timeout(timeout * 2, async {
            let ack = js.send_publish(subject.clone(), message).await?;
            ack.await
        })
        .await;
        let error = match outcome {
            Ok(Ok(_ack)) => return Ok(chunk),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no publish ack within {timeout:?}"),
        };
        if started.elapsed() + delay > RETRY_FOR || is_permanent(&error) {
            return Err(PublishFailure {
                chunk_id: chunk.chunk_id,
                subject,
                attempts,
                message: error,
            });
        }
        tracing::warn!(chunk_id = %chunk.chunk_id, subject = %subject, attempts, error = %error, "publish failed, retrying with the same Nats-Msg-Id");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn is_permanent(error: &str) -> bool {
    error.contains("Payload size limit")
}
