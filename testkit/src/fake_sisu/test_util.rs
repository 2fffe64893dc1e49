//! Helpers the fake's HTTP tests share: URLs, requests, a started fake.

use super::{ExpectedEntity, FakeSisu, FakeSisuConfig};
use serde_json::Value;
use sis_importer::catalogue::{self, Service};

/// The catalogue entry of `id`.
pub fn service(id: &str) -> Service {
    catalogue::builtin()
        .into_iter()
        .find(|s| s.id == id)
        .expect("known service")
}

/// The export URL of `id` for one page.
pub fn export_url(fake: &FakeSisu, id: &str, since: i64, limit: u32) -> String {
    let s = service(id);
    format!(
        "{}{}{}?since={since}&limit={limit}",
        fake.base_url(),
        s.source.api_prefix(),
        s.path
    )
}

/// GET `url`: status, headers and body.
pub async fn get(url: impl AsRef<str>) -> (u16, reqwest::header::HeaderMap, bytes::Bytes) {
    let response = reqwest::get(url.as_ref())
        .await
        .expect("request reaches the fake");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.expect("body"))
}

/// GET `url` expecting a 200 JSON answer.
pub async fn get_json(url: &str) -> Value {
    let (status, _, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("valid JSON")
}

/// Starts a fake with `entities` per service and seed 7.
pub async fn start_fake(entities: u64) -> FakeSisu {
    FakeSisu::start(FakeSisuConfig {
        seed: 7,
        entities_per_service: entities,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Ids of the catalogue's export services.
pub fn export_ids() -> Vec<String> {
    catalogue::builtin()
        .into_iter()
        .filter(|s| s.source.is_export())
        .map(|s| s.id)
        .collect()
}

/// Pages through `id` from `since` with `limit`, checking the paging
/// contract on every page; returns the entities in order.
pub async fn drain(fake: &FakeSisu, id: &str, mut since: i64, limit: u32) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let page = get_json(&export_url(fake, id, since, limit)).await;
        let entities = page["entities"].as_array().unwrap().clone();
        let greatest = page["greatestOrdinal"].as_i64().unwrap();
        assert!(entities.len() <= limit as usize);
        let ordinals: Vec<i64> = entities
            .iter()
            .map(|e| e["metadata"]["modificationOrdinal"].as_i64().unwrap())
            .collect();
        assert!(
            ordinals.iter().all(|o| *o > since),
            "{id}: since is exclusive"
        );
        assert!(
            ordinals.windows(2).all(|w| w[0] < w[1]),
            "{id}: ascending ordinals"
        );
        assert_eq!(
            greatest,
            ordinals.last().copied().unwrap_or(since),
            "{id}: greatestOrdinal"
        );
        let empty = entities.is_empty();
        all.extend(entities);
        if !page["hasMore"].as_bool().unwrap() {
            if !empty {
                assert_eq!(
                    Some(greatest),
                    fake.greatest_ordinal(id),
                    "{id}: last page ends the log"
                );
            }
            return all;
        }
        assert!(greatest > since, "{id}: hasMore pages make progress");
        since = greatest;
    }
}

/// The test view of one served entity.
pub fn as_expected(service: &Service, entity: &Value) -> ExpectedEntity {
    let raw = serde_json::value::RawValue::from_string(entity.to_string()).unwrap();
    ExpectedEntity {
        identity: service
            .identity_of(raw.get())
            .expect("entity has an identity"),
        ordinal: entity["metadata"]["modificationOrdinal"].as_i64(),
        document_state: entity["documentState"].as_str().unwrap().to_owned(),
    }
}
