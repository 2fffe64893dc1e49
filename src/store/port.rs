//! [`OrdinalStore`] as the pipeline's
//! [`CursorStore`](crate::pipeline::ports::CursorStore) port.

use futures::future::BoxFuture;

use super::{DeadLetter, OrdinalStore, Recorded, StoreError};
use crate::catalogue::Service;

impl crate::pipeline::ports::CursorStore for OrdinalStore {
    fn add_window(
        &self,
        service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let (store, service) = (self.clone(), service.clone());
        Box::pin(async move { store.add_window(&service, scheduled, updated).await })
    }

    fn dead_letter(
        &self,
        letter: DeadLetter,
        entity_budget: u64,
    ) -> BoxFuture<'static, Result<Recorded, StoreError>> {
        let store = self.clone();
        Box::pin(async move { store.dead_letter(&letter, entity_budget).await })
    }

    fn commit(
        &self,
        service: &Service,
        ordinal: i64,
        entities: u64,
        lease: Option<(String, String)>,
    ) -> BoxFuture<'static, Result<i64, StoreError>> {
        let (store, service) = (self.clone(), service.clone());
        Box::pin(async move {
            let lease = lease.as_ref().map(|(k, o)| (k.as_str(), o.as_str()));
            store.commit(&service, ordinal, entities, lease).await
        })
    }
}
