//! The URN code-book cache: each answer kept under its URL (SPEC §5), as
//! the sources' [`AnswerCache`](crate::sources::AnswerCache).

use std::time::Duration;

use redis::Cmd;

use super::keys::urn_cache_key;
use super::{OrdinalStore, StoreError};

impl OrdinalStore {
    /// A cached URN code-book answer.
    pub(crate) async fn cached(&self, url: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query("read URN cache", &Cmd::get(urn_cache_key(url)))
            .await
    }

    /// Caches a URN code-book answer under its URL for `ttl`.
    pub(crate) async fn cache(
        &self,
        url: &str,
        body: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let write = Cmd::set_ex(urn_cache_key(url), body, ttl.as_secs());
        self.query("write URN cache", &write).await
    }
}

impl crate::sources::AnswerCache for OrdinalStore {
    fn cached(&self, url: &str) -> futures::future::BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        let url = url.to_owned();
        Box::pin(async move {
            OrdinalStore::cached(self, &url)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn cache<'a>(
        &'a self,
        url: &'a str,
        body: &'a [u8],
        ttl: Duration,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            OrdinalStore::cache(self, url, body, ttl)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
