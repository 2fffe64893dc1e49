//! Sources: everything that knows Sisu. A source turns a service and a
//! committed ordinal into a stream of [`Batch`]es; it speaks HTTP and JSON,
//! and knows nothing of NATS.
//!
//! - `client`: the HTTP client (auth, TLS, timeouts, retries with backoff,
//!   `Retry-After`, rate limit, 403 = forbidden).
//! - `export`: the paged `since`/`limit` export kinds (ORI, KORI, ILMO, OSUVA).
//! - `whole_set`: URN code books, GraphQL grade scales, KORI public
//!   curriculum periods: the whole set as one batch.

use futures::stream::{self, BoxStream, StreamExt};

use crate::catalogue::Service;
use crate::entity::Entity;
use crate::store::{OrdinalStore, StoreError};

pub mod client;
pub mod export;
pub mod page_scan;
pub mod whole_set;

pub use client::SisuClient;

/// One answer of Sisu, ready to be chunked: the entities exactly as Sisu
/// sent them, and the ordinal to commit once all are acknowledged.
#[derive(Debug)]
pub struct Batch {
    /// The (exclusive) ordinal this batch was fetched after.
    pub since: i64,
    /// The ordinal to commit when every entity is acknowledged.
    pub greatest_ordinal: i64,
    /// Whether Sisu has more after this batch.
    pub has_more: bool,
    /// The entities, raw JSON, in Sisu's order.
    pub entities: Vec<Entity>,
    /// Time spent fetching and parsing it (retries and waits included).
    pub fetched_in: std::time::Duration,
}

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
    Cache(#[from] StoreError),
}

impl SourceError {
    /// True for the 403 case.
    pub(crate) fn is_forbidden(&self) -> bool {
        matches!(self, SourceError::Forbidden { .. })
    }
}

/// The pipeline's [`BatchSource`](crate::pipeline::ports::BatchSource):
/// Sisu through `client`, with URN answers cached in `store`.
#[derive(Clone)]
pub struct SisuSource {
    /// The HTTP client.
    pub client: SisuClient,
    /// Redis, for the URN cache.
    pub store: OrdinalStore,
}

impl crate::pipeline::ports::BatchSource for SisuSource {
    fn batches(
        &self,
        service: &Service,
        since: i64,
        fetch_amount: u32,
    ) -> BoxStream<'static, Result<Batch, SourceError>> {
        batches(
            self.client.clone(),
            self.store.clone(),
            service.clone(),
            since,
            fetch_amount,
        )
    }
}

/// The batches of one service after `since`, fetched lazily: the next
/// request is made only when the previous batch has been taken.
pub fn batches(
    client: SisuClient,
    store: OrdinalStore,
    service: Service,
    since: i64,
    fetch_amount: u32,
) -> BoxStream<'static, Result<Batch, SourceError>> {
    if service.source.is_export() {
        export::pages(client, service, since, fetch_amount).boxed()
    } else {
        stream::once(async move { whole_set::fetch(&client, &store, &service).await }).boxed()
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
        Ok(export::parse_page(&service.id, &url, 0, &body)?
            .entities
            .len())
    } else {
        Ok(whole_set::request(client, service).await?.1.len())
    }
}
