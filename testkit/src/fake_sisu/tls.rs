//! HTTPS for the fake Sisu, optionally demanding a client certificate, as
//! the real Sisu's API gateway does for `KEY_PATH`/`CERT_PATH` clients.

use std::io;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// PEM material for serving HTTPS.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsServerConfig {
    /// The server's certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// The server's private key (PEM).
    pub key_pem: Vec<u8>,
    /// When set, clients must present a certificate issued by one of these
    /// CAs (PEM bundle); the handshake fails without one.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsServerConfig {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field(
                "client_certificates_required",
                &self.client_ca_pem.is_some(),
            )
            .finish_non_exhaustive()
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
}

/// The rustls acceptor for `config`.
pub fn acceptor(config: &TlsServerConfig) -> io::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_slice_iter(&config.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("server certificate", e))?;
    let key =
        PrivateKeyDer::from_pem_slice(&config.key_pem).map_err(|e| invalid("server key", e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", e))?;
    let builder = match &config.client_ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|e| invalid("client CA", e))?)
                    .map_err(|e| invalid("client CA", e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid("client CA", e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid("server certificate and key", e))?;
    // HTTP/1.1 only: over HTTP/2 a request already sent when the server's
    // certificate alert arrives fails as a bare "connection closed" (h2
    // drops the cause), so the refusal could not be told apart. HTTP/1.1
    // reads the alert as the response and reports it.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Closes a connection whose handshake failed the way a careful gateway
/// does: rustls has written its alert (e.g. `CertificateRequired`); with
/// TLS 1.3 the client has already sent its request, and closing with that
/// unread would make the kernel send a reset that can overtake the alert.
/// So: send FIN, read what the client still sends, then close.
async fn linger(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
}

/// Serves `app` over TLS on `listener` until `shutdown` fires. Failed
/// handshakes (e.g. no client certificate) close that connection only.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    mut shutdown: oneshot::Receiver<()>,
) -> io::Result<()> {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // E.g. too many open files: that connection is lost, not the server.
                Err(e) => {
                    tracing::warn!(error = %e, "fake Sisu: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).into_fallible().await {
                Ok(tls) => tls,
                Err((e, tcp)) => {
                    tracing::debug!(%peer, error = %e, "fake Sisu: TLS handshake failed");
                    linger(tcp).await;
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "fake Sisu: HTTPS connection ended with an error");
            }
        });
    }
}
