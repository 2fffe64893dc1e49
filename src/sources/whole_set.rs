//! Sources that answer the whole set at once: URN code books (cached in
//! Redis under their URL for an hour), GraphQL `grade_scales`, and KORI
//! public curriculum periods. Each becomes one batch with ordinal 1.

use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::entity::Entity;
use serde_json::{Map, Value};

use super::client::Auth;
use super::AnswerCache;
use super::{Batch, SisuClient, SourceError};
use crate::catalogue::{Service, SourceKind};
use crate::redact;

/// How long a URN code-book answer is cached (SPEC §3).
pub(crate) const URN_CACHE_TTL: Duration = Duration::from_secs(3600);

/// The ordinal stored for a fetched one-time service.
pub(crate) const ONE_TIME_ORDINAL: i64 = 1;

/// GraphQL query for the grade scales, as the consumers read them.
pub(crate) const GRADE_SCALES_QUERY: &str = "query { grade_scales { id name { fi en sv } abbreviation { fi en sv } grades { localId name { fi en sv } abbreviation { fi en sv } passed numericCorrespondence } } }";

/// Fetches a whole-set service as one batch (URN code books through
/// `cache`).
pub async fn fetch(
    client: &SisuClient,
    cache: &dyn AnswerCache,
    service: &Service,
) -> Result<Batch, SourceError> {
    let started = std::time::Instant::now();
    let entities = if service.source == SourceKind::Urn {
        let url = url_of(client, service);
        match cache.cached(&url).await.map_err(SourceError::Cache)? {
            Some(body) => urn_entities(&body).map_err(|reason| malformed(service, &url, reason))?,
            None => {
                // Checked by `request` before caching, so a bad answer is
                // not kept for an hour.
                let (body, entities) = request(client, service).await?;
                cache
                    .cache(&url, &body, URN_CACHE_TTL)
                    .await
                    .map_err(SourceError::Cache)?;
                entities
            }
        }
    } else {
        request(client, service).await?.1
    };
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

/// The URL of a whole-set service.
fn url_of(client: &SisuClient, service: &Service) -> String {
    match service.source {
        SourceKind::Urn => format!("{}{}", client.kori_public_api_url(), service.path),
        SourceKind::Graphql => format!("{}/graphql", client.sis_api_url()),
        SourceKind::KoriPublic => format!(
            "{}{}?universityOrgId={}",
            client.kori_public_api_url(),
            service.path,
            client.root_org_id()
        ),
        _ => unreachable!("export kinds are paged, not whole-set"),
    }
}

/// One request for a whole-set service, never cached: the body as
/// received and its entities, checked.
pub(crate) async fn request(
    client: &SisuClient,
    service: &Service,
) -> Result<(Bytes, Vec<Box<RawValue>>), SourceError> {
    let url = url_of(client, service);
    let body = match service.source {
        SourceKind::Graphql => {
            let query = serde_json::json!({ "query": GRADE_SCALES_QUERY });
            client.post_json(&service.id, &url, &query).await?
        }
        _ => client.get(&service.id, &url, Auth::Public).await?,
    };
    let entities = match service.source {
        SourceKind::Urn => urn_entities(&body),
        SourceKind::Graphql => graphql_entities(&body, &service.path),
        _ => serde_json::from_slice(&body).map_err(|e| format!("expected a JSON array: {e}")),
    }
    .map_err(|reason| malformed(service, &url, reason))?;
    tracing::debug!(service = %service.id, url = %redact::url(&url), entities = entities.len(), "whole set fetched");
    Ok((body, entities))
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
