//! The admin API's dead-letter routes, behind the admin token like every
//! operator route: the same as `sis-importer dead-letters list | replay |
//! clear`.
//!
//! - `GET /dead-letters[?limit=N]`: every service that has dead letters;
//!   `GET /dead-letters/{service}`: that one. JSON as `list --json`.
//! - `POST /dead-letters/{service}/replay` with `id=<identity>` or
//!   `all=true` in the query or a JSON body: replays and answers with the
//!   report when the replay is over (it runs on even if the client goes).
//!   409 while a run is in progress here or another instance holds the
//!   import lease.
//! - `DELETE /dead-letters/{service}[?id=<identity>]`: clears.
//!
//! An unknown service or identity is 404, naming what there is.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::AdminState;
use crate::catalogue::Service;
use crate::dead_letters::{self as letters, ClearError};
use crate::importer::replay::{Pick, ReplayError};

/// What to replay, from the query or a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayAsk {
    id: Option<String>,
    all: Option<bool>,
}

/// A refusal: its status and text.
type Refusal = (StatusCode, String);

/// The service named in the path, or a 404 naming the known ones.
fn find(state: &AdminState, id: &str) -> Result<Service, Refusal> {
    let catalogue = state
        .daemon
        .importer()
        .config
        .catalogue()
        .unwrap_or_default();
    if let Some(found) = catalogue.iter().find(|s| s.id == id) {
        return Ok(found.clone());
    }
    let known: Vec<&str> = catalogue.iter().map(|s| s.id.as_str()).collect();
    let text = format!("unknown service {id:?}; known ids: {}", known.join(", "));
    Err((StatusCode::NOT_FOUND, text))
}

/// `?limit=`, default [`letters::DEFAULT_LIMIT`].
fn limit(query: &HashMap<String, String>) -> Result<usize, Refusal> {
    match query.get("limit") {
        None => Ok(letters::DEFAULT_LIMIT),
        Some(n) => n.parse().map_err(|_| {
            let text = format!("limit must be a whole number, not {n:?}");
            (StatusCode::BAD_REQUEST, text)
        }),
    }
}

/// `GET /dead-letters`: every service that has dead letters.
pub(super) async fn list_all(
    State(state): State<AdminState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit = match limit(&query) {
        Ok(limit) => limit,
        Err(refused) => return refused.into_response(),
    };
    let importer = state.daemon.importer();
    let catalogue = importer.config.catalogue().unwrap_or_default();
    match letters::collect(&importer.io.store, &catalogue, limit, false).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `GET /dead-letters/{service}`.
pub(super) async fn list(
    State(state): State<AdminState>,
    Path(service): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (service, limit) = match (find(&state, &service), limit(&query)) {
        (Ok(service), Ok(limit)) => (service, limit),
        (Err(refused), _) | (_, Err(refused)) => return refused.into_response(),
    };
    let store = &state.daemon.importer().io.store;
    match letters::collect(store, &[service], limit, true).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `DELETE /dead-letters/{service}[?id=]`.
pub(super) async fn clear(
    State(state): State<AdminState>,
    Path(service): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let service = match find(&state, &service) {
        Ok(service) => service,
        Err(refused) => return refused.into_response(),
    };
    let store = &state.daemon.importer().io.store;
    let id = query.get("id").map(String::as_str);
    match letters::clear(store, &service.id, id).await {
        Ok(removed) => {
            tracing::info!(service = %service.id, identity = id.unwrap_or("(all)"), removed, "dead letters cleared through the admin API");
            Json(json!({"service": service.id, "removed": removed})).into_response()
        }
        Err(e @ ClearError::NoSuchIdentity { .. }) => {
            (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `POST /dead-letters/{service}/replay`.
pub(super) async fn replay(
    State(state): State<AdminState>,
    Path(service): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let service = match find(&state, &service) {
        Ok(service) => service,
        Err(refused) => return refused.into_response(),
    };
    let pick = match pick(&query, &body) {
        Ok(pick) => pick,
        Err(text) => return (StatusCode::BAD_REQUEST, text).into_response(),
    };
    if state.daemon.is_busy() {
        let text = "a run is in progress; replay the dead letters after it ends";
        return (StatusCode::CONFLICT, text).into_response();
    }
    let importer = state.daemon.importer().clone();
    let lease = state.daemon.lease().cloned();
    let shutdown = state.shutdown.clone();
    // A task of its own: a client that gives up does not cut the replay
    // short (it would only leave the letters to be replayed again).
    let replay = tokio::spawn(async move {
        importer
            .replay_dead_letters(&service, &pick, lease.as_ref(), shutdown)
            .await
    });
    match replay.await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e @ (ReplayError::RunInProgress | ReplayError::LeaseHeld { .. }))) => {
            (StatusCode::CONFLICT, e.to_string()).into_response()
        }
        Ok(Err(e @ ReplayError::NoSuchIdentity { .. })) => {
            (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Ok(Err(e @ ReplayError::Store(_))) => {
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The letters to replay: `id=` or `all=true`, in the query or the body.
fn pick(query: &HashMap<String, String>, body: &[u8]) -> Result<Pick, String> {
    let mut ask: ReplayAsk = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayAsk::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            format!("the body must be {{\"id\": \"<identity>\"}} or {{\"all\": true}}: {e}")
        })?
    };
    if let Some(id) = query.get("id") {
        ask.id = Some(id.clone());
    }
    if let Some(all) = query.get("all") {
        ask.all = Some(all == "true");
    }
    match (ask.id, ask.all.unwrap_or(false)) {
        (Some(_), true) => Err("give id or all=true, not both".into()),
        (Some(id), false) => Ok(Pick::Identity(id)),
        (None, true) => Ok(Pick::All),
        (None, false) => Err("name the letters to replay: id=<identity> or all=true".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_takes_id_or_all_from_the_query_or_the_body() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            pick(&query(&[("id", "hy-1")]), b""),
            Ok(Pick::Identity("hy-1".into()))
        );
        assert_eq!(pick(&query(&[("all", "true")]), b""), Ok(Pick::All));
        assert_eq!(pick(&query(&[]), br#"{"all": true}"#), Ok(Pick::All));
        assert_eq!(
            pick(&query(&[]), br#"{"id": "hy-2"}"#),
            Ok(Pick::Identity("hy-2".into()))
        );
        assert!(pick(&query(&[]), b"").is_err(), "nothing named");
        assert!(pick(&query(&[("all", "false")]), b"").is_err());
        assert!(pick(&query(&[("id", "a"), ("all", "true")]), b"").is_err());
        assert!(pick(&query(&[]), br#"{"ids": ["a"]}"#).is_err());
    }
}
