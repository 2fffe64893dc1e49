//! The admin HTTP API (axum, on `PORT`): health and readiness, Prometheus
//! metrics, and the token-guarded operator routes — the successor of the
//! Node importer's "explorer".
//!
//! Open: `GET /healthz`, `GET /readyz`, `GET /metrics`.
//! Guarded by `ADMIN_TOKEN` (header `token` or `Authorization: Bearer`):
//! `GET /`, the status page for a browser (in `admin/page.rs`, which says
//! why it is guarded), `POST /force_update`, `POST /reset/{service}[?to=ORDINAL]`, `GET /status`,
//! `DELETE /forbidden[/{service}]`, and the dead letters:
//! `GET /dead-letters[/{service}]`, `POST /dead-letters/{service}/replay`,
//! `DELETE /dead-letters/{service}` (in `admin/dead_letters.rs`); the old
//! `GET /force_update?token=` and `GET /reset/{service}?token=` forms are
//! accepted for compatibility. Without `ADMIN_TOKEN` the guarded routes
//! answer 401, so they are never open by accident.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::importer::daemon::Daemon;
use crate::shutdown::Shutdown;

mod dead_letters;
pub mod page;

#[derive(Clone)]
struct AdminState {
    daemon: Arc<Daemon>,
    /// The process's stop signal (a replay stops with it).
    shutdown: Shutdown,
}

/// The admin routes over `daemon`.
pub fn router(daemon: Arc<Daemon>) -> Router {
    router_until(daemon, Shutdown::never())
}

/// The admin routes over `daemon`; work they start stops at `shutdown`.
fn router_until(daemon: Arc<Daemon>, shutdown: Shutdown) -> Router {
    let state = AdminState { daemon, shutdown };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(
            // The operator's routes: every one behind the admin token.
            Router::new()
                .route("/", get(page::page))
                .route("/status", get(status))
                .route("/force_update", post(force_update).get(force_update))
                .route("/reset/{service}", post(reset).get(reset))
                .route("/forbidden", axum::routing::delete(clear_forbidden))
                .route(
                    "/forbidden/{service}",
                    axum::routing::delete(clear_forbidden),
                )
                .route("/dead-letters", get(dead_letters::list_all))
                .route(
                    "/dead-letters/{service}",
                    get(dead_letters::list).delete(dead_letters::clear),
                )
                .route("/dead-letters/{service}/replay", post(dead_letters::replay))
                .route_layer(middleware::from_fn_with_state(state.clone(), guard)),
        )
        .with_state(state)
}

/// Serves the admin API on `addr` until shutdown; returns the bound address
/// (useful with port 0) and the server task.
pub async fn serve(
    daemon: Arc<Daemon>,
    addr: SocketAddr,
    mut shutdown: Shutdown,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "admin API listening");
    let app = router_until(daemon, shutdown.clone());
    let handle = tokio::spawn(async move {
        let server =
            axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.recv().await });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    Ok((bound, handle))
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lets a request to an operator route through only with the admin token.
async fn guard(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    match authorized(&state, &headers, &query) {
        Ok(()) => next.run(request).await,
        Err(denied) => denied.into_response(),
    }
}

/// Checks the admin token from the headers or (compatibility) the query.
fn authorized(
    state: &AdminState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), (StatusCode, &'static str)> {
    // An empty token would match an empty header: treat it as unset.
    let configured = state.daemon.importer().config.admin_token.as_ref();
    let Some(expected) = configured.filter(|t| !t.expose().trim().is_empty()) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "admin routes are disabled: set ADMIN_TOKEN",
        ));
    };
    let given = headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .or_else(|| query.get("token").map(String::as_str));
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.expose().as_bytes()) => Ok(()),
        _ => Err((StatusCode::UNAUTHORIZED, "missing or wrong admin token")),
    }
}

/// `/readyz`: the NATS and Redis checks of `sis-importer check` on the
/// importer's own connections (Redis: one `PING`), one line each, and a
/// line about the lease (shown, not required: a standby replica is ready
/// to take over). 200 when both pass, 503 otherwise. The three run side by
/// side, each within 0.8 s, so a probe gets an answer, not a timeout.
async fn readyz(State(state): State<AdminState>) -> Response {
    use crate::check::{self, Check};
    let importer = state.daemon.importer();
    let services = state.daemon.services();
    let quick = std::time::Duration::from_millis(800);
    let timed_out = |name| Check::failed(name, format!("no answer within {quick:?}"));
    let nats = async {
        match importer.io.nats.client.connection_state() {
            async_nats::connection::State::Connected => tokio::time::timeout(
                quick,
                check::stream(&importer.io.nats, &importer.config, services, true),
            )
            .await
            .unwrap_or_else(|_| timed_out("nats")),
            state => Check::failed(
                "nats",
                format!("connection {state}; the client reconnects by itself"),
            ),
        }
    };
    let redis = async {
        tokio::time::timeout(quick, check::redis_ping(&importer.io.store))
            .await
            .unwrap_or_else(|_| timed_out("redis"))
    };
    let lease = async {
        let lease = state.daemon.lease()?;
        let holder = tokio::time::timeout(quick, crate::lease::holder(&importer.io.store)).await;
        let held = match holder {
            Ok(Ok(Some(h))) if h == lease.owner() => "held here".to_owned(),
            Ok(Ok(Some(h))) => format!("held by {h}"),
            Ok(Ok(None)) => "not held".to_owned(),
            Ok(Err(_)) | Err(_) => "holder unknown (Redis did not answer)".to_owned(),
        };
        Some(format!(
            "ok    lease     this instance {}; lease {held}\n",
            lease.owner()
        ))
    };
    let (nats, redis, lease) = tokio::join!(nats, redis, lease);
    let body = format!("{nats}\n{redis}\n{}", lease.unwrap_or_default());
    let code = if nats.ok() && redis.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, [("content-type", "text/plain; charset=utf-8")], body).into_response()
}

async fn metrics() -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}

async fn status(State(state): State<AdminState>) -> Response {
    let importer = state.daemon.importer();
    let services = state.daemon.services();
    match crate::status::collect(&importer.io.store, services).await {
        Ok(rows) => Json(json!({
            "running": importer.is_running(),
            "forbidden": importer.forbidden(),
            "services": rows,
            "live": importer.live(),
        }))
        .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn force_update(State(state): State<AdminState>) -> Response {
    if state.daemon.start_run("admin API") {
        (StatusCode::ACCEPTED, "run started").into_response()
    } else {
        (StatusCode::CONFLICT, "a run is in progress").into_response()
    }
}

async fn reset(
    State(state): State<AdminState>,
    Path(service): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let to = match query.get("to").map(|t| t.parse::<i64>()) {
        None => None,
        Some(Ok(ordinal)) => Some(ordinal),
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                "to= must be an ordinal (a whole number)",
            )
                .into_response()
        }
    };
    let catalogue = state
        .daemon
        .importer()
        .config
        .catalogue()
        .unwrap_or_default();
    let Some(found) = catalogue.iter().find(|s| s.id == service) else {
        // The configuration's own words, with the id likely meant.
        let config = &state.daemon.importer().config;
        let unknown = config
            .pick(
                catalogue.clone(),
                Some(std::slice::from_ref(&service)),
                "reset",
            )
            .err()
            .map_or(format!("unknown service {service:?}"), |e| e.to_string());
        return (StatusCode::NOT_FOUND, unknown).into_response();
    };
    // A run in progress would commit over the reset: refuse, and say why.
    // This process's own run may hold no lease (without replicas).
    let busy = |by: String| {
        (
            StatusCode::CONFLICT,
            format!("a run is in progress{by}; reset {} after it ends", found.id),
        )
            .into_response()
    };
    if state.daemon.is_busy() {
        return busy(String::new());
    }
    let importer = state.daemon.importer();
    match importer
        .io
        .store
        .reset_unless_leased(found, &crate::lease::lease_key(), to)
        .await
    {
        Ok(Some(holder)) => busy(format!(" (import lease held by {holder})")),
        Ok(None) => {
            tracing::info!(service = %found.id, to, "ordinal reset through the admin API");
            let next = to.map_or("from 0".to_owned(), |o| format!("after {o}"));
            (
                StatusCode::OK,
                format!("{} reset; it imports {next} on the next run", found.id),
            )
                .into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `DELETE /forbidden[/{service}]`: clears the forbidden mark of one
/// service (or of all), so the next run tries it again.
async fn clear_forbidden(
    State(state): State<AdminState>,
    service: Option<Path<String>>,
) -> Response {
    let importer = state.daemon.importer();
    let ids = match service {
        Some(Path(id)) => {
            let known = importer.config.catalogue().unwrap_or_default();
            if !known.iter().any(|s| s.id == id) {
                return (StatusCode::NOT_FOUND, format!("unknown service {id}")).into_response();
            }
            vec![id]
        }
        None => Vec::new(),
    };
    match importer.clear_forbidden(&ids).await {
        Ok(cleared) => Json(json!({ "cleared": cleared })).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
