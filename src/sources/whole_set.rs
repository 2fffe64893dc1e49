//! Sources that answer the whole set at once: URN code books (cached in
//! Redis under their URL for an hour), GraphQL `grade_scales`, and KORI
//! public curriculum periods. Each becomes one batch with ordinal 1.

use std::time::Duration;

use serde_json::value::RawValue;

use crate::entity::Entity;
use serde_json::{Map, Value};

use super::client::Auth;
use crate::redact;
use super::{Batch, SisuClient, SourceError};
use crate::catalogue::{Service, SourceKind};
use crate::store::OrdinalStore;

/// How long a URN code-book answer is cached (SPEC §3).
pub(crate) const URN_CACHE_TTL: Duration = Duration::from_secs(3600);

/// The ordinal stored for a fetched one-time service.
pub(crate) const ONE_TIME_ORDINAL: i64 = 1;

/// GraphQL query for the grade scales, as the consumers read them.
pub(crate) const GRADE_SCALES_QUERY: &str = "query { grade_scales { id name { fi en sv } abbreviation { fi en sv } grades { localId name { fi en sv } abbreviation { fi en sv } passed numericCorrespondence } } }";

/// Fetches a whole-set service as one batch.
pub async fn fetch(
    client: &SisuClient,
    store: &OrdinalStore,
    service: &Service,
) -> Result<Batch, SourceError> {
    let started = std::time::Instant::now();
    let (url, entities) = match service.source {
        SourceKind::Urn => {
            let url = format!("{}{}", client.kori_public_api_url(), service.path);
            let body = match store.cached(&url).await? {
                Some(body) => body,
                None => {
                    let body = client.get(&service.id, &url, Auth::Public).await?;
                    // Validate before caching so a bad answer is not kept for an hour.
                    urn_entities(&body).map_err(|reason| malformed(service, &url, reason))?;
                    store.cache(&url, &body, URN_CACHE_TTL).await?;
                    body.to_vec()
                }
            };
            let entities =
                urn_entities(&body).map_err(|reason| malformed(service, &url, reason))?;
            (url, entities)
        }
        SourceKind::Graphql => {
            let url = format!("{}/graphql", client.sis_api_url());
            let query = serde_json::json!({ "query": GRADE_SCALES_QUERY });
            let body = client.post_json(&service.id, &url, &query).await?;
            let entities = graphql_entities(&body, &service.path)
                .map_err(|reason| malformed(service, &url, reason))?;
            (url, entities)
        }
        SourceKind::KoriPublic => {
            let url = format!(
                "{}{}?universityOrgId={}",
                client.kori_public_api_url(),
                service.path,
                client.root_org_id()
            );
            let body = client.get(&service.id, &url, Auth::Public).await?;
            let entities: Vec<Box<RawValue>> = serde_json::from_slice(&body)
                .map_err(|e| malformed(service, &url, format!("expected a JSON array: {e}")))?;
            (url, entities)
        }
        _ => unreachable!("export kinds are paged, not whole-set"),
    };
    tracing::debug!(service = %service.id, url = %redact::url(&url), entities = entities.len(), "whole set fetched");
    Ok(Batch {
        since: 0,
        greatest_ordinal: ONE_TIME_ORDINAL,
        has_more: false,
        // Small sets: copied out of the answer (URN items are rebuilt anyway).
        entities: entities
            .into_iter()
            .map(|e| Entity::from_json(e.get().to_owned()))
            .collect(),
        fetched_in: started.elapsed(),
    })
}

fn malformed(service: &Service, url: &str, reason: String) -> SourceError {
    SourceError::Malformed {
        service: service.id.clone(),
        url: redact::url(url),
        reason,
    }
}

/// A URN code book (`{urn: item}`) as entities: each item gains
/// `id = urn` and `documentState = "ACTIVE"` (SPEC §3), its own fields
/// kept in order.
pub(crate) fn urn_entities(body: &[u8]) -> Result<Vec<Box<RawValue>>, String> {
    let book: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| format!("expected an object keyed by URN: {e}"))?;
    book.into_iter()
        .map(|(urn, item)| {
            let Value::Object(fields) = item else {
                return Err(format!("{urn}: expected an object"));
            };
            let mut entity = Map::with_capacity(fields.len() + 2);
            entity.insert("id".into(), Value::String(urn));
            entity.insert("documentState".into(), Value::String("ACTIVE".into()));
            for (k, v) in fields {
                if k != "id" && k != "documentState" {
                    entity.insert(k, v);
                }
            }
            serde_json::value::to_raw_value(&entity).map_err(|e| e.to_string())
        })
        .collect()
}

/// `{"data": {<field>: [...]}}` as entities; GraphQL errors are reported.
pub(crate) fn graphql_entities(body: &[u8], field: &str) -> Result<Vec<Box<RawValue>>, String> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        data: Option<std::collections::HashMap<String, &'a RawValue>>,
        errors: Option<Value>,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("not a GraphQL answer: {e}"))?;
    if let Some(errors) = answer.errors {
        return Err(format!("GraphQL errors: {errors}"));
    }
    let list = answer
        .data
        .as_ref()
        .and_then(|d| d.get(field))
        .ok_or_else(|| format!("no data.{field} in the answer"))?;
    serde_json::from_str(list.get()).map_err(|e| format!("data.{field} is not a list: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_items_gain_id_and_state() {
        let body = br#"{"urn:code:country:246":{"urn":"urn:code:country:246","name":{"fi":"Suomi"},"numeric":"246"}}"#;
        let e = urn_entities(body).unwrap();
        assert_eq!(
            e[0].get(),
            r#"{"id":"urn:code:country:246","documentState":"ACTIVE","urn":"urn:code:country:246","name":{"fi":"Suomi"},"numeric":"246"}"#
        );
        assert!(urn_entities(b"[1]").is_err());
    }

    #[test]
    fn graphql_list_and_errors() {
        let e = graphql_entities(
            br#"{"data":{"grade_scales":[{"id":"sis-0-5"}]}}"#,
            "grade_scales",
        )
        .unwrap();
        assert_eq!(e[0].get(), r#"{"id":"sis-0-5"}"#);
        assert!(graphql_entities(br#"{"errors":[{"message":"no"}]}"#, "grade_scales").is_err());
        assert!(graphql_entities(br#"{"data":{}}"#, "grade_scales").is_err());
    }
}
