//! The HTTP side: one axum fallback handler routes a request to its service,
//! asks the faults what to do, and renders the answer. (~450 lines: the
//! renderers of the three answer kinds share the routing state and the
//! fault verdicts; apart, each would need most of the others.)

use super::changelog::{FieldOrder, Log};
use super::faults::{Faults, Hostile, OneShot, Verdict};
use super::shapes::{Shape, ROOT_ORG};
use super::wholeset;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sis_importer::catalogue::{self, Service, SourceKind};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Everything the handler shares: the catalogue as served, the number of
/// later changes, counters and faults.
pub struct Shared {
    /// The fake's seed.
    pub seed: u64,
    /// Generation-0 size of every export service.
    pub initial: u64,
    /// Where export pages put their paging fields.
    pub order: FieldOrder,
    /// The catalogue services, in catalogue order.
    pub services: Vec<Served>,
    /// GET path (percent-decoded) → index into `services`.
    by_path: HashMap<String, usize>,
    graphql: Option<usize>,
    /// Changes per export service added by later generations.
    pub later: AtomicU64,
    /// Requests seen per service (same index as `services`).
    pub requests: Vec<AtomicU64>,
    /// Fault control, shared with the test through `FakeSisu::faults`.
    pub faults: Faults,
}

/// A service and where its answers come from.
pub struct Served {
    /// The catalogue entry.
    pub service: Service,
    /// How its answers are made.
    pub source: Source,
}

/// How a service's answers are made.
pub enum Source {
    /// A paged export with a change log.
    Export(Log),
    /// A URN code book (name = last path segment).
    Urn(String),
    /// KORI public curriculum periods.
    CurriculumPeriods,
    /// GraphQL `grade_scales`.
    GradeScales,
}

impl Shared {
    /// The built-in catalogue served with `seed` and `initial` entities per
    /// export service, pages in `order`.
    pub fn new(seed: u64, initial: u64, order: FieldOrder) -> Shared {
        let mut by_path = HashMap::new();
        let mut graphql = None;
        let mut services = Vec::new();
        for (position, service) in catalogue::builtin().into_iter().enumerate() {
            let source = match service.source {
                kind if kind.is_export() => {
                    by_path.insert(format!("{}{}", kind.api_prefix(), service.path), position);
                    let shape =
                        Shape::of(&service.id).expect("every built-in export service has a shape");
                    Source::Export(Log::new(seed, shape, position, initial))
                }
                SourceKind::Urn => {
                    by_path.insert(format!("/kori/api{}", service.path), position);
                    Source::Urn(
                        service
                            .path
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                }
                SourceKind::KoriPublic => {
                    by_path.insert(format!("/kori/api{}", service.path), position);
                    Source::CurriculumPeriods
                }
                _ => {
                    graphql = Some(position);
                    Source::GradeScales
                }
            };
            services.push(Served { service, source });
        }
        let requests = services.iter().map(|_| AtomicU64::new(0)).collect();
        Shared {
            seed,
            initial,
            order,
            services,
            by_path,
            graphql,
            later: AtomicU64::new(0),
            requests,
            faults: Faults::default(),
        }
    }

    /// Index of a service id in `services`.
    pub fn index(&self, service_id: &str) -> Option<usize> {
        self.services
            .iter()
            .position(|s| s.service.id == service_id)
    }

    /// Changes currently in every export service's log.
    pub fn total(&self) -> u64 {
        self.initial + self.later.load(Ordering::Acquire)
    }

    /// The whole-set answer of a non-export service, as served.
    pub fn whole_set(&self, source: &Source, university_org_id: &str) -> Option<String> {
        match source {
            Source::Urn(book) => wholeset::urn_book(self.seed, book),
            Source::CurriculumPeriods => {
                Some(wholeset::curriculum_periods(self.seed, university_org_id))
            }
            Source::GradeScales => Some(wholeset::grade_scales(self.seed)),
            Source::Export(_) => None,
        }
    }
}

/// The fake's router: every request goes through [`handle`].
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = percent_decode(uri.path());
    let index = match method {
        Method::POST if path == "/graphql" => shared.graphql,
        Method::GET => shared.by_path.get(path.as_ref()).copied(),
        _ => None,
    };
    let Some(index) = index else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no such endpoint: {method} {path}"),
        );
    };
    shared.requests[index].fetch_add(1, Ordering::Relaxed);
    let served = &shared.services[index];
    let authenticated = matches!(served.source, Source::Export(_) | Source::GradeScales);
    let (delay, verdict) = shared
        .faults
        .decide(&served.service.id, authenticated, &headers);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let query = uri.query().unwrap_or("");
    match verdict {
        Verdict::Unauthorized { basic } => {
            let mut response = text(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
            if basic {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sisu\""),
                );
            }
            response
        }
        Verdict::Forbidden => text(StatusCode::FORBIDDEN, "access to this export is forbidden"),
        Verdict::OneShot(OneShot::Status(status)) => text(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "injected failure",
        ),
        Verdict::OneShot(OneShot::RateLimit(status, secs)) => {
            let mut response = text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
                "slow down",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
        // A proxy's error page behind a JSON content type: only parsing
        // can tell that it is wrong.
        Verdict::OneShot(OneShot::Malformed) => {
            json("<html><body><h1>502 Bad Gateway</h1></body></html>".into())
        }
        Verdict::OneShot(OneShot::MissingEntities) => {
            json(r#"{"hasMore":false,"greatestOrdinal":1}"#.into())
        }
        Verdict::OneShot(OneShot::Truncated) => match answer(&shared, index, query, &body).await {
            Ok(full) => {
                let mut bytes = Bytes::from(full);
                bytes.truncate(bytes.len() / 2);
                match shared.faults.rate() {
                    0 => json(bytes),
                    rate => json_stream(paced(bytes, rate)),
                }
            }
            Err(response) => response,
        },
        Verdict::OneShot(OneShot::Hostile(hostile)) => {
            let since = page_params(query).map(|(since, _)| since).unwrap_or(0);
            match answer(&shared, index, query, &body).await {
                Ok(full) => hostile_answer(hostile, full, since, shared.order),
                Err(response) => response,
            }
        }
        Verdict::Stuck if matches!(served.source, Source::Export(_)) => match page_params(query) {
            Ok((since, _)) => json(shared.order.empty_page(since, true).into()),
            Err(msg) => bad_request(msg),
        },
        Verdict::Stuck | Verdict::Serve => match answer(&shared, index, query, &body).await {
            Ok(full) => match shared.faults.rate() {
                0 => json(full.into()),
                rate => json_stream(paced(full.into(), rate)),
            },
            Err(response) => response,
        },
    }
}

/// The real answer of service `index`, or a 400 for a bad request.
async fn answer(
    shared: &Arc<Shared>,
    index: usize,
    query: &str,
    body: &Bytes,
) -> Result<String, Response> {
    let served = &shared.services[index];
    match &served.source {
        Source::Export(log) => {
            let (since, limit) = page_params(query).map_err(bad_request)?;
            let total = shared.total();
            let first = log.first_after(since);
            let extras = shared.faults.extras(
                &served.service.id,
                first,
                total.min(first.saturating_add(limit)),
            );
            let (log, order) = (*log, shared.order);
            // Rendering a page is CPU work of a few milliseconds (more for
            // big limits); keep it off the async workers.
            tokio::task::spawn_blocking(move || log.page(total, since, limit, &extras, order))
                .await
                .map_err(|e| {
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("page rendering failed: {e}"),
                    )
                })
        }
        Source::CurriculumPeriods => {
            let org = param(query, "universityOrgId").ok_or_else(|| {
                text(
                    StatusCode::BAD_REQUEST,
                    "query parameter universityOrgId is required",
                )
            })?;
            Ok(wholeset::curriculum_periods(shared.seed, &org))
        }
        Source::GradeScales => {
            let query = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("query").and_then(|q| q.as_str()).map(str::to_owned));
            match query {
                Some(q) if q.contains("grade_scales") => Ok(wholeset::grade_scales(shared.seed)),
                Some(_) => Err(graphql_error(
                    "the fake Sisu only answers grade_scales queries",
                )),
                None => Err(graphql_error("expected a JSON body {\"query\": \"...\"}")),
            }
        }
        Source::Urn(_) => shared
            .whole_set(&served.source, ROOT_ORG)
            .ok_or_else(|| text(StatusCode::NOT_FOUND, "no such code book")),
    }
}

/// `since` (i64) and `limit` (u32, at least 1) of an export request, or
/// what is wrong with them.
fn page_params(query: &str) -> Result<(i64, u64), &'static str> {
    let since = param(query, "since")
        .ok_or("query parameter since is required")?
        .parse::<i64>()
        .map_err(|_| "query parameter since must be an integer")?;
    let limit = param(query, "limit")
        .ok_or("query parameter limit is required")?
        .parse::<u32>()
        .map_err(|_| "query parameter limit must be a non-negative integer")?;
    if limit == 0 {
        return Err("query parameter limit must be at least 1");
    }
    Ok((since, u64::from(limit)))
}

/// The percent-decoded value of query parameter `name`.
fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(&value.replace('+', " ")).into_owned())
}

/// Decodes `%XX` escapes (clients may escape the colons of URN paths).
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The real answer `full` (to a request after `since`, its fields in
/// `order`) spoiled as `hostile` says.
fn hostile_answer(hostile: Hostile, full: String, since: i64, order: FieldOrder) -> Response {
    match hostile {
        Hostile::Empty => json(Bytes::new()),
        Hostile::InvalidUtf8 => {
            let mut bytes = full.into_bytes();
            // Inside the first string after `entities` (or anywhere).
            let at = find(&bytes, b"\"entities\"")
                .and_then(|e| find(&bytes[e + 12..], b"\":\"").map(|q| e + 12 + q + 3))
                .unwrap_or(bytes.len() / 2);
            if let Some(b) = bytes.get_mut(at) {
                *b = 0xFF;
            }
            json(bytes.into())
        }
        Hostile::WrongTypes => {
            json(r#"{"hasMore":"yes","greatestOrdinal":"many","entities":{}}"#.into())
        }
        Hostile::NoGreatestOrdinal => json(
            full.replacen("\"greatestOrdinal\"", "\"greatest\"", 1)
                .into(),
        ),
        Hostile::GreatestNotAboveSince => {
            let key = "\"greatestOrdinal\":";
            let Some(at) = full.find(key).map(|i| i + key.len()) else {
                return json(full.into());
            };
            let end = at
                + full[at..]
                    .find(|c: char| !c.is_ascii_digit() && c != '-')
                    .unwrap_or(0);
            json(format!("{}{since}{}", &full[..at], &full[end..]).into())
        }
        Hostile::HasMoreWithoutEntities => json(order.empty_page(since + 1000, true).into()),
        Hostile::ResetMidBody => {
            let mut bytes = Bytes::from(full);
            let half = bytes.split_to(bytes.len() / 2);
            let pieces = futures::stream::iter([
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                )),
            ]);
            json_stream(Body::from_stream(pieces))
        }
        Hostile::Trickle(total_ms) => {
            let bytes = Bytes::from(full);
            let step = bytes.len().div_ceil(20).max(1);
            let pause = std::time::Duration::from_millis(total_ms / 20);
            let pieces = async_stream::stream! {
                let mut rest = bytes;
                while !rest.is_empty() {
                    tokio::time::sleep(pause).await;
                    let piece = rest.split_to(step.min(rest.len()));
                    yield Ok::<_, std::io::Error>(piece);
                }
            };
            json_stream(Body::from_stream(pieces))
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn json_stream(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `body` sent at `rate` bytes per second, in pieces of 16 KiB.
fn paced(body: Bytes, rate: u64) -> Body {
    const PIECE: usize = 16 << 10;
    Body::from_stream(async_stream::stream! {
        let started = tokio::time::Instant::now();
        let mut sent = 0;
        while sent < body.len() {
            let due = started + std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
            let end = (sent + PIECE).min(body.len());
            yield Ok::<_, std::convert::Infallible>(body.slice(sent..end));
            sent = end;
        }
    })
}

fn json(body: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    text(StatusCode::BAD_REQUEST, message)
}

fn graphql_error(message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message }] }).to_string();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
