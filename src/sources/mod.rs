//! Sources: everything that knows Sisu. A source turns a service and a
//! committed ordinal into a stream of [`Batch`]es; it speaks HTTP and JSON,
//! and knows nothing of NATS.
//!
//! - `client`: the HTTP client (auth, TLS, timeouts, retries with backoff,
//!   `Retry-After`, rate limit, 403 = forbidden).
//! - `export`: the paged `since`/`limit` export kinds (ORI, KORI, ILMO, OSUVA).
//! - `whole_set`: URN code books, GraphQL grade scales, KORI public
//!   curriculum periods: the whole set as one batch.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};

use crate::catalogue::Service;
pub use crate::pipeline::vocabulary::Batch;
use crate::pipeline::vocabulary::FetchError;

pub mod client;
pub mod export;
pub(crate) mod page_head;
pub mod page_scan;
pub mod whole_set;

pub use client::SisuClient;

/// Why fetching from Sisu failed. URLs never carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// HTTP 403: the service is skipped for the rest of the process.
    #[error(
        "{service}: Sisu answered 403 Forbidden for {url}; the service is skipped until restart"
    )]
    Forbidden {
        /// Service id.
        service: String,
        /// The URL asked.
        url: String,
    },
    /// A 4xx (other than 403/429) or an unexpected status.
    #[error("{service}: Sisu answered HTTP {status} for {url}: {body}")]
    Status {
        /// Service id.
        service: String,
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// Retries exhausted on 5xx, timeouts or connection errors.
    #[error("{service}: {url} still failing after {attempts} attempts: {last}")]
    Exhausted {
        /// Service id.
        service: String,
        /// The URL asked.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The answer is not what the API promises.
    #[error("{service}: malformed answer from {url}: {reason}")]
    Malformed {
        /// Service id.
        service: String,
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `hasMore` without progress: stop rather than loop forever.
    #[error("{service}: Sisu makes no progress at {url}: hasMore={has_more}, {entities} entities, greatestOrdinal {greatest} after since={since}")]
    NoProgress {
        /// Service id.
        service: String,
        /// The URL asked.
        url: String,
        /// The `since` asked.
        since: i64,
        /// The `greatestOrdinal` answered.
        greatest: i64,
        /// The `hasMore` answered.
        has_more: bool,
        /// How many entities came.
        entities: usize,
    },
    /// TLS to Sisu failed in a way retrying does not mend (certificates).
    #[error("{service}: TLS to {url} failed: {problem}")]
    Tls {
        /// Service id.
        service: String,
        /// The URL asked.
        url: String,
        /// What is wrong and what to set.
        problem: String,
    },
    /// The client could not be built (bad certificate files).
    #[error("cannot set up the Sisu client: {0}")]
    Setup(String),
    /// The URN cache could not be read or written.
    #[error("URN cache: {0}")]
    Cache(String),
}

impl SourceError {
    /// True for the 403 case.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, SourceError::Forbidden { .. })
    }
}

/// Where URN code-book answers are kept between requests (SPEC §3: for
/// 3600 s); the store implements it (in Redis, under the URL).
pub trait AnswerCache: Send + Sync {
    /// The answer kept for `url`, if any.
    fn cached(&self, url: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>>;
    /// Keeps `body` for `url` for `ttl`.
    fn cache<'a>(
        &'a self,
        url: &'a str,
        body: &'a [u8],
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The pipeline's [`BatchSource`](crate::pipeline::ports::BatchSource):
/// Sisu through `client`, with URN answers cached in `cache`.
#[derive(Clone)]
pub struct SisuSource {
    /// The HTTP client.
    pub client: SisuClient,
    /// The URN answers' cache.
    pub cache: Arc<dyn AnswerCache>,
}

impl crate::pipeline::ports::BatchSource for SisuSource {
    fn batches(
        &self,
        service: &Service,
        since: i64,
        fetch_amount: u32,
    ) -> BoxStream<'static, Result<Batch, FetchError>> {
        batches(
            self.client.clone(),
            self.cache.clone(),
            service.clone(),
            since,
            fetch_amount,
        )
        .map(|batch| {
            batch.map_err(|e| FetchError {
                forbidden: e.is_forbidden(),
                message: e.to_string(),
            })
        })
        .boxed()
    }
}

/// The batches of one service after `since`, fetched lazily: at most one
/// page ahead of the batch not yet taken (see [`export::pages`]).
pub fn batches(
    client: SisuClient,
    cache: Arc<dyn AnswerCache>,
    service: Service,
    since: i64,
    fetch_amount: u32,
) -> BoxStream<'static, Result<Batch, SourceError>> {
    if service.source.is_export() {
        export::pages(client, service, since, fetch_amount).boxed()
    } else {
        stream::once(async move { whole_set::fetch(&client, &*cache, &service).await }).boxed()
    }
}

/// One cheap request to Sisu for `service`, as `sis-importer check` makes
/// it: an export's first entity (`since=0&limit=1`), or a whole-set kind's
/// answer, never cached. Returns how many entities came.
pub async fn probe(client: &SisuClient, service: &Service) -> Result<usize, SourceError> {
    if service.source.is_export() {
        let url = export::export_url(client, service, 0, 1);
        let body = client
            .get(&service.id, &url, client::Auth::Credentials)
            .await?;
        Ok(export::parse_page(service, &url, 0, &body)?.entities.len())
    } else {
        Ok(whole_set::request(client, service).await?.1.len())
    }
}
