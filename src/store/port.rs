//! [`OrdinalStore`] as the pipeline's
//! [`CursorStore`](crate::pipeline::ports::CursorStore) port: the
//! pipeline's dead-letter records become stored [`DeadLetter`]s (with the
//! time they were written), and Redis errors become the port's
//! [`StoreFailure`].

use futures::future::BoxFuture;

use super::{DeadLetter, EntityJson, OrdinalStore, Recorded, StoreError};
use crate::catalogue::Service;
use crate::pipeline::vocabulary::{DeadLetterRecord, StoreFailure};

impl From<StoreError> for StoreFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost { operation } => StoreFailure::LeaseLost { operation },
            other => StoreFailure::Failed(other.to_string()),
        }
    }
}

impl DeadLetter {
    /// The stored form of the pipeline's `record`, written now.
    pub fn from_record(record: DeadLetterRecord) -> DeadLetter {
        let entity = EntityJson::new(&record.entity);
        DeadLetter {
            service: record.service,
            identity: record.identity,
            modification_ordinal: record.modification_ordinal,
            reason: record.reason.into(),
            detail: record.detail,
            time: chrono::Utc::now().to_rfc3339(),
            execution_hash: record.execution_hash,
            chunk_id: record.chunk_id,
            entity_bytes: Some(record.entity.len() as u64),
            entity_omitted: entity
                .is_none()
                .then(|| "entity not kept: it is not JSON text".to_owned()),
            entity,
        }
    }
}

impl crate::pipeline::ports::CursorStore for OrdinalStore {
    fn add_window(
        &self,
        service: &Service,
        scheduled: u64,
        updated: u64,
    ) -> BoxFuture<'static, Result<(), StoreFailure>> {
        let (store, service) = (self.clone(), service.clone());
        Box::pin(async move { Ok(store.add_window(&service, scheduled, updated).await?) })
    }

    fn dead_letter(
        &self,
        letter: DeadLetterRecord,
        entity_budget: u64,
    ) -> BoxFuture<'static, Result<Recorded, StoreFailure>> {
        let store = self.clone();
        Box::pin(async move {
            let letter = DeadLetter::from_record(letter);
            Ok(store.dead_letter(&letter, entity_budget).await?)
        })
    }

    fn commit(
        &self,
        service: &Service,
        ordinal: i64,
        entities: u64,
        lease: Option<(String, String)>,
    ) -> BoxFuture<'static, Result<i64, StoreFailure>> {
        let (store, service) = (self.clone(), service.clone());
        Box::pin(async move {
            let lease = lease.as_ref().map(|(k, o)| (k.as_str(), o.as_str()));
            Ok(store.commit(&service, ordinal, entities, lease).await?)
        })
    }
}
