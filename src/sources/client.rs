//! The HTTP client towards Sisu: authentication, TLS, per-request timeouts,
//! retries with exponential backoff and jitter (`crate::retry`), `Retry-After`, a
//! `governor` rate limit, and 403 as "forbidden".

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};

use super::SourceError;
use crate::config::{Config, Secret};
use crate::retry::{Budget, RetryPolicy};

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Shared HTTP client for every service; cheap to clone.
#[derive(Clone)]
pub struct SisuClient {
    inner: Arc<Inner>,
}

struct Inner {
    sis_api_url: String,
    kori_public_api_url: String,
    root_org_id: String,
    /// Client for the export and GraphQL APIs: credentials go with it.
    authenticated: reqwest::Client,
    /// Client for URN code books and KORI public: no credential headers.
    /// Both trust `CA_PATH` and present the client certificate, which a TLS
    /// server receives only when it asks for one (a gateway in front of
    /// every Sisu path does).
    public: reqwest::Client,
    /// Whether `KEY_PATH`/`CERT_PATH` are configured (for TLS error hints).
    client_certificate: bool,
    basic: Option<(String, Option<Secret>)>,
    proxy_token: Option<Secret>,
    api_key: Option<Secret>,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Sisu's retry policy: TOML `sis_retry_base_ms` doubling with jitter
    /// up to `sis_retry_max_ms`, `SIS_RETRY_LIMIT` attempts in all.
    retry: RetryPolicy,
    timeout: Duration,
}

/// Whether a request carries the configured credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Basic auth / proxy token / API key / client certificate.
    Credentials,
    /// Nothing (URN code books, KORI public).
    Public,
}

impl SisuClient {
    /// Builds the client from configuration; certificate files are read here.
    pub fn new(config: &Config) -> Result<SisuClient, SourceError> {
        let timeout = config.sis_request_timeout;
        let base = || {
            reqwest::Client::builder()
                .user_agent(concat!("sis-importer/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10).min(timeout))
                .timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(30))
        };
        let mut authenticated = base();
        let mut public = base();
        if let Some(ca) = &config.ca_path {
            let pem = std::fs::read(ca)
                .map_err(|e| SourceError::Setup(format!("CA_PATH {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                SourceError::Setup(format!("CA_PATH {}: not a PEM bundle ({e})", ca.display()))
            })?;
            // Without this check a file of anything else (a key, DER, an
            // empty file) adds nothing and passes unnoticed.
            if certs.is_empty() {
                return Err(SourceError::Setup(format!(
                    "CA_PATH {} holds no PEM certificate (no -----BEGIN CERTIFICATE----- \
                     block): point it at the PEM bundle of the CA that issued Sisu's \
                     certificate, or unset it",
                    ca.display()
                )));
            }
            for cert in certs {
                authenticated = authenticated.add_root_certificate(cert.clone());
                public = public.add_root_certificate(cert);
            }
        }
        if let (Some(key), Some(cert)) = (&config.key_path, &config.cert_path) {
            let mut pem = std::fs::read(cert)
                .map_err(|e| SourceError::Setup(format!("CERT_PATH {}: {e}", cert.display())))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| SourceError::Setup(format!("KEY_PATH {}: {e}", key.display())))?,
            );
            // The error text of a bad key could quote key material: say only
            // which files did not parse.
            let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
                SourceError::Setup(format!(
                    "KEY_PATH {} / CERT_PATH {}: not a PEM private key and certificate",
                    key.display(),
                    cert.display()
                ))
            })?;
            authenticated = authenticated.identity(identity.clone());
            public = public.identity(identity);
        }
        let build = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| SourceError::Setup(format!("HTTP client: {e}")))
        };
        let limiter = config.sis_requests_per_second.map(|rps| {
            let rps = NonZeroU32::new(rps).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_second(rps))
        });
        Ok(SisuClient {
            inner: Arc::new(Inner {
                sis_api_url: config
                    .sis_api_url
                    .as_deref()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned(),
                kori_public_api_url: config.kori_public_api_url.trim_end_matches('/').to_owned(),
                root_org_id: config.root_org_id.clone(),
                authenticated: build(authenticated)?,
                public: build(public)?,
                basic: config
                    .sis_api_user
                    .clone()
                    .map(|u| (u, config.sis_api_password.clone())),
                proxy_token: config.proxy_token.clone(),
                api_key: config.api_key.clone(),
                client_certificate: config.cert_path.is_some(),
                limiter,
                retry: RetryPolicy {
                    first: config.sis_retry_base,
                    max: config.sis_retry_max,
                    jitter: true,
                    budget: Budget::Attempts(config.sis_retry_limit),
                },
                timeout,
            }),
        })
    }

    /// `GET url`, retried as SPEC §2 says; the body on 2xx.
    pub async fn get(&self, service: &str, url: &str, auth: Auth) -> Result<Bytes, SourceError> {
        self.send(service, url, auth, |c| c.get(url), &mut |_| {})
            .await
    }

    /// `GET url` like [`get`](Self::get), showing `peek` the body received
    /// so far each time more of it arrives (the export reads the paging
    /// fields from the head of a page this way).
    pub(crate) async fn get_peeking(
        &self,
        service: &str,
        url: &str,
        peek: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Bytes, SourceError> {
        self.send(service, url, Auth::Credentials, |c| c.get(url), peek)
            .await
    }

    /// `POST url` with a JSON body, retried like `get`.
    pub(crate) async fn post_json(
        &self,
        service: &str,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Bytes, SourceError> {
        self.send(
            service,
            url,
            Auth::Credentials,
            |c| c.post(url).json(body),
            &mut |_| {},
        )
        .await
    }

    fn client(&self, auth: Auth) -> &reqwest::Client {
        match auth {
            Auth::Credentials => &self.inner.authenticated,
            Auth::Public => &self.inner.public,
        }
    }

    fn with_credentials(&self, mut req: RequestBuilder) -> RequestBuilder {
        let inner = &self.inner;
        if let Some((user, password)) = &inner.basic {
            req = req.basic_auth(user, password.as_ref().map(Secret::expose));
        }
        let mut headers = HeaderMap::new();
        for (name, secret) in [("token", &inner.proxy_token), ("x-api-key", &inner.api_key)] {
            if let Some(secret) = secret {
                if let Ok(mut value) = HeaderValue::from_str(secret.expose()) {
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
            }
        }
        req.headers(headers)
    }

    async fn send(
        &self,
        service: &str,
        url: &str,
        auth: Auth,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
        peek: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Bytes, SourceError> {
        let shown = crate::redact::url(url);
        let mut retry = self.inner.retry.start();
        let mut last: String;
        loop {
            if let Some(limiter) = &self.inner.limiter {
                limiter.until_ready().await;
            }
            let mut req = build(self.client(auth));
            if auth == Auth::Credentials {
                req = self.with_credentials(req);
            }
            let started = std::time::Instant::now();
            let told = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    crate::metrics::sisu_request(service, status.as_u16(), started.elapsed());
                    if status.is_success() {
                        let expected = resp.content_length();
                        match read_body(resp, peek).await {
                            Ok(body) => return Ok(body),
                            Err((received, e)) => {
                                let of = expected.map_or_else(String::new, |m| {
                                    format!(" of {m} expected (Content-Length)")
                                });
                                last = format!(
                                    "the answer was cut off at byte {received}{of}: {}",
                                    describe(&e)
                                );
                                None
                            }
                        }
                    } else if status == StatusCode::FORBIDDEN {
                        return Err(SourceError::Forbidden {
                            service: service.into(),
                            url: shown,
                        });
                    } else if let Some(wait) = retry_after(&resp) {
                        last = format!("HTTP {status} with Retry-After {}s", wait.as_secs());
                        // Waited as told, within reason: a broken header must
                        // not park the importer for days.
                        Some(wait.min(MAX_RETRY_AFTER))
                    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        last = format!("HTTP {status}");
                        None
                    } else {
                        let body = resp.text().await.unwrap_or_default();
                        return Err(SourceError::Status {
                            service: service.into(),
                            url: shown,
                            status: status.as_u16(),
                            body: excerpt(&body),
                        });
                    }
                }
                Err(e) => {
                    crate::metrics::sisu_request(service, 0, started.elapsed());
                    // Retrying does not mend a certificate: say what is
                    // wrong and what to set, at once.
                    if let Some(problem) = tls_problem(&e, self.inner.client_certificate) {
                        return Err(SourceError::Tls {
                            service: service.into(),
                            url: shown,
                            problem,
                        });
                    }
                    last = describe(&e);
                    None
                }
            };
            let attempt = retry.attempt();
            // A Retry-After wait replaces the policy's, but counts as an
            // attempt all the same.
            let Some(backoff) = retry.failed() else {
                return Err(SourceError::Exhausted {
                    service: service.into(),
                    url: shown,
                    attempts: retry.failures(),
                    last,
                });
            };
            let wait = told.unwrap_or(backoff);
            tracing::warn!(service, url = %shown, attempt, error = %last, wait_ms = wait.as_millis() as u64, "Sisu request failed, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// `SIS_API_URL` without a trailing slash.
    pub fn sis_api_url(&self) -> &str {
        &self.inner.sis_api_url
    }

    /// `KORI_PUBLIC_API_URL` without a trailing slash.
    pub fn kori_public_api_url(&self) -> &str {
        &self.inner.kori_public_api_url
    }

    /// `ROOT_ORG_ID`.
    pub(crate) fn root_org_id(&self) -> &str {
        &self.inner.root_org_id
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }
}

/// The most a body's `Content-Length` makes [`read_body`] reserve ahead:
/// a header is no reason to take gigabytes.
const MAX_RESERVE: u64 = 64 << 20;

/// The whole body, or how many bytes came before reading it failed (a
/// connection cut in the middle of a page); `peek` sees what has come
/// each time more comes.
async fn read_body(
    mut resp: reqwest::Response,
    peek: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<Bytes, (usize, reqwest::Error)> {
    let reserve = resp.content_length().unwrap_or(0).min(MAX_RESERVE) as usize;
    let mut body = bytes::BytesMut::with_capacity(reserve);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                peek(&body);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) => return Err((body.len(), e)),
        }
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let status = resp.status();
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = resp.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The error's kind and cause chain, without the URL (which may not be
/// redacted in reqwest's own message).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "body interrupted"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// A TLS failure in `e`'s cause chain, explained for the operator; `None`
/// when the failure is not about certificates. Read from the messages: over
/// HTTP/2 the rustls error reaches us only as text (h2 keeps an I/O error's
/// kind and message, not the error).
fn tls_problem(e: &reqwest::Error, client_certificate: bool) -> Option<String> {
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        chain.push_str(&s.to_string());
        chain.push('\n');
        source = s.source();
    }
    const REFUSALS: [&str; 8] = [
        "CertificateRequired",
        "HandshakeFailure",
        "BadCertificate",
        "UnknownCA",
        "CertificateUnknown",
        "CertificateExpired",
        "CertificateRevoked",
        "AccessDenied",
    ];
    if let Some(alert) = REFUSALS
        .iter()
        .find(|a| chain.contains(&format!("received fatal alert: {a}")))
    {
        return Some(if client_certificate {
            format!(
                "Sisu rejected the client certificate (TLS alert {alert}): check that \
                 CERT_PATH holds the certificate Sisu issued, unexpired, and KEY_PATH its key"
            )
        } else {
            format!(
                "Sisu requires a client certificate and none is configured (TLS alert \
                 {alert}): set KEY_PATH and CERT_PATH (PEM) and API_KEY"
            )
        });
    }
    let why = chain.split("invalid peer certificate: ").nth(1)?;
    let why = why.lines().next().unwrap_or_default();
    Some(format!(
        "Sisu's server certificate is not trusted ({why}): add the CA that issued it to \
         CA_PATH (PEM bundle), or fix the host name in SIS_API_URL"
    ))
}

fn excerpt(body: &str) -> String {
    let mut end = body.len().min(200);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].trim().to_owned()
}
