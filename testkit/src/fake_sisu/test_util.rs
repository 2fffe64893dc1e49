//! Helpers the fake's HTTP tests share: URLs, requests, a started fake.

use super::{FakeSisu, FakeSisuConfig};
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
