//! A fake Sisu: an HTTP server answering all 26 catalogue services the way
//! Sisu does (SPEC §3, SISU-SHAPES.md), for tests, benchmarks and the demo.
//!
//! Export data is generated, never stored: change `k` of a service is a pure
//! function of (seed, service, `k`), and its ordinal is arithmetic in `k`,
//! so a fake with millions of entities per service starts at once, uses
//! little memory and answers the same bytes for the same seed every time.
//! Later generations ([`FakeSisu::add_generation`]) append changes on top:
//! new versions and deletions of existing identities, and new identities;
//! [`Faults`] make chosen requests fail.
//!
//! # Layout
//! - `server`: routing, request parsing, applying faults to answers.
//! - `changelog`: ordinals, identities and pages of one export service.
//! - `shapes/`: what each export service's entities look like.
//! - `wholeset`: URN code books, curriculum periods, grade scales.
//! - `faults`: the [`Faults`] control handle.
//! - `json`, `words`: the JSON writer, PRNG, dates and word lists.

mod changelog;
mod faults;
mod json;
mod server;
mod shapes;
mod tls;
mod wholeset;
mod words;

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod field_tests;
#[cfg(test)]
mod generation_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use changelog::{FieldOrder, MAX_LIMIT};
pub use faults::{Faults, Hostile};
pub use tls::TlsServerConfig;

use changelog::Extra;
use server::{Shared, Source};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How to start a [`FakeSisu`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSisuConfig {
    /// Seed of all generated data; same seed, same bytes. Default 1.
    pub seed: u64,
    /// Generation-0 entities of every export service. Default 1000.
    pub entities_per_service: u64,
    /// Address to listen on; port 0 picks a free one. Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Serve HTTPS (optionally demanding client certificates); default HTTP.
    pub tls: Option<TlsServerConfig>,
    /// Where export pages put `greatestOrdinal` and `hasMore`; default
    /// [`FieldOrder::Sisu`], before `entities` as real Sisu does.
    pub field_order: FieldOrder,
}

impl Default for FakeSisuConfig {
    fn default() -> Self {
        FakeSisuConfig {
            seed: 1,
            entities_per_service: 1000,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            field_order: FieldOrder::default(),
        }
    }
}

/// One change as served, for test assertions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExpectedEntity {
    /// `catalogue::Service::identity_of` of the served JSON; for URN code
    /// books the URN (the importer sets `id = urn`).
    pub identity: String,
    /// `metadata.modificationOrdinal`; `None` for whole-set services.
    pub ordinal: Option<i64>,
    /// `documentState`; `ACTIVE` where the source sends none (URN code
    /// books, grade scales), as the importer and consumers read it.
    pub document_state: String,
}

/// A running fake Sisu. Dropping it (or [`FakeSisu::shutdown`]) stops it.
pub struct FakeSisu {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    /// Sent (or dropped) to start the server's graceful shutdown.
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl FakeSisu {
    /// Binds `config.bind` and starts serving in the background.
    pub async fn start(config: FakeSisuConfig) -> std::io::Result<FakeSisu> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(
            config.seed,
            config.entities_per_service,
            config.field_order,
        ));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let (scheme, task) = match &config.tls {
            Some(tls) => {
                let acceptor = tls::acceptor(tls)?;
                (
                    "https",
                    tokio::spawn(tls::serve(listener, acceptor, app, shutdown_rx)),
                )
            }
            None => (
                "http",
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = shutdown_rx.await;
                        })
                        .await
                }),
            ),
        };
        tracing::debug!(%addr, seed = config.seed, entities = config.entities_per_service, "fake Sisu started");
        Ok(FakeSisu {
            shared,
            addr,
            scheme,
            shutdown_tx: Some(shutdown_tx),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `SIS_API_URL` for the importer: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` over TLS (the name test certificates carry).
    pub fn base_url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// `KORI_PUBLIC_API_URL` for the importer: `base_url() + "/kori/api"`.
    pub fn kori_public_url(&self) -> String {
        format!("{}/kori/api", self.base_url())
    }

    /// The fault control shared with the running server.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Appends `changes_per_service` changes to every export service, with
    /// higher ordinals than all before: ~70% new versions of existing
    /// identities, ~15% deletions of existing ones, ~15% first versions of
    /// new identities (new ids; for term registrations and primalities new
    /// study rights).
    pub fn add_generation(&self, changes_per_service: u64) {
        self.shared
            .later
            .fetch_add(changes_per_service, Ordering::AcqRel);
    }

    /// Every change `service_id` currently serves, in order (whole-set
    /// services: every item). Renders everything: for tests only.
    pub fn expected(&self, service_id: &str) -> Vec<ExpectedEntity> {
        let Some(served) = self
            .shared
            .index(service_id)
            .map(|i| &self.shared.services[i])
        else {
            return Vec::new();
        };
        let identity = |text: &str| served.service.identity_of(text).unwrap_or_default();
        let Source::Export(log) = &served.source else {
            return self.expected_whole_set(served, identity);
        };
        let total = self.shared.total();
        let extras = self.shared.faults.extras(service_id, 0, total);
        let mut extras = extras.iter().peekable();
        (0..total)
            .map(|k| {
                let extra = extras
                    .next_if(|(at, _)| *at == k)
                    .map_or(Extra::default(), |(_, e)| *e);
                ExpectedEntity {
                    identity: identity(&log.entity(k, extra)),
                    ordinal: Some(log.ordinal(k)),
                    document_state: log.state(k).to_owned(),
                }
            })
            .collect()
    }

    fn expected_whole_set(
        &self,
        served: &server::Served,
        identity: impl Fn(&str) -> String,
    ) -> Vec<ExpectedEntity> {
        let body = self
            .shared
            .whole_set(&served.source, shapes::ROOT_ORG)
            .unwrap_or_default();
        let value: serde_json::Value =
            serde_json::from_str(&body).expect("the fake serves valid JSON");
        let entity = |identity: String, item: &serde_json::Value| ExpectedEntity {
            identity,
            ordinal: None,
            document_state: item
                .get("documentState")
                .and_then(|s| s.as_str())
                .unwrap_or("ACTIVE")
                .to_owned(),
        };
        match (&served.source, value) {
            (Source::Urn(_), serde_json::Value::Object(book)) => book
                .iter()
                .map(|(urn, item)| entity(urn.clone(), item))
                .collect(),
            (_, serde_json::Value::Array(items)) => items
                .iter()
                .map(|item| entity(identity(&item.to_string()), item))
                .collect(),
            (_, value) => value["data"]["grade_scales"]
                .as_array()
                .map(|scales| {
                    scales
                        .iter()
                        .map(|s| entity(identity(&s.to_string()), s))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The last ordinal `service_id` currently serves; `None` for whole-set
    /// services and empty logs.
    pub fn greatest_ordinal(&self, service_id: &str) -> Option<i64> {
        let served = &self.shared.services[self.shared.index(service_id)?];
        match (&served.source, self.shared.total()) {
            (Source::Export(log), total) if total > 0 => Some(log.ordinal(total - 1)),
            _ => None,
        }
    }

    /// Requests seen for `service_id`, faulted and unauthorised ones included.
    pub fn requests(&self, service_id: &str) -> u64 {
        self.shared
            .index(service_id)
            .map_or(0, |i| self.shared.requests[i].load(Ordering::Relaxed))
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), and
    /// waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for FakeSisu {
    fn drop(&mut self) {
        // Dropping the sender wakes the server's shutdown future too; sending
        // makes the intent explicit.
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
    }
}
