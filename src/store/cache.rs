//! The URN code-book cache: each answer kept under its URL (SPEC §5).

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
