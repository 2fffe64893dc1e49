//! Connecting to NATS and keeping the JetStream stream of SPEC §4.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::catalogue::{
    Service, FEEDBACK_SUBJECT, POST_UPDATE_FINISH_SUBJECT, POST_UPDATE_SUBJECT,
};
pub use crate::config::nats_url::server_addrs;
use crate::config::nats_url::url_credentials;
use crate::config::{Config, Secret};
use crate::redact::UrlCredentials;
use std::path::PathBuf;

/// Errors towards NATS; they name the operation and never the token.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Could not connect at start.
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The server URL.
        url: String,
        /// The cause.
        message: String,
    },
    /// The server answers, but JetStream is not enabled on it (Debian's
    /// default configuration) or not for this client's account.
    #[error(
        "JetStream is not enabled on {url}{}",
        if *account {
            " for this account: enable it for the account (`jetstream: enabled` in its \
             `accounts` entry) or connect as an account that has it"
        } else {
            ": run nats-server -js or add `jetstream {}` to its configuration"
        }
    )]
    JetStreamDisabled {
        /// The server URL, without credentials.
        url: String,
        /// Enabled on the server, but not for the account.
        account: bool,
    },
    /// The stream exists but misses subjects the importer needs: messages
    /// on them would not be stored (chunks, feedback or `POST_UPDATE`).
    #[error(
        "stream {stream} does not capture {}: messages on them would not be stored; add \
         them to the stream's subjects (nats stream edit {stream} --subjects ...)",
        missing.join(", ")
    )]
    MissingSubjects {
        /// Stream name.
        stream: String,
        /// The subjects it does not capture.
        missing: Vec<String>,
    },
    /// A JetStream stream operation failed.
    #[error("JetStream stream {stream}: {operation} failed: {message}")]
    Stream {
        /// Stream name.
        stream: String,
        /// What was being done.
        operation: &'static str,
        /// The cause.
        message: String,
    },
}

/// How a client authenticates to NATS and secures the connection: token,
/// user and password, TLS with extra CAs and a client certificate. Used by
/// the importer and, in tests, by the reference consumer and the harness.
#[derive(Clone, Default)]
pub struct NatsAuth {
    /// Token authentication.
    pub token: Option<Secret>,
    /// User and password.
    pub user_password: Option<(String, Secret)>,
    /// Require TLS.
    pub require_tls: bool,
    /// Extra trusted CAs (PEM).
    pub ca_path: Option<PathBuf>,
    /// Client certificate and key (PEM).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAuth")
            .field("token", &self.token)
            .field("user", &self.user_password.as_ref().map(|(u, _)| u))
            .field("require_tls", &self.require_tls)
            .field("ca_path", &self.ca_path)
            .field("client_cert", &self.client_cert)
            .finish()
    }
}

impl NatsAuth {
    /// The settings `NATS_TOKEN`, `NATS_USER`/`NATS_PASSWORD`, `NATS_TLS`,
    /// `NATS_CA_PATH`, `NATS_CERT_PATH`/`NATS_KEY_PATH`. Without a token
    /// or user, the credentials written in `NATS_URL` (the first entry
    /// that has any; [`server_addrs`] leaves them out of the URLs).
    pub fn from_config(config: &Config) -> NatsAuth {
        let mut token = config.nats_token.clone();
        let mut user_password = config.nats_user.clone().zip(config.nats_password.clone());
        if token.is_none() && user_password.is_none() {
            match url_credentials(&config.nats_url) {
                Some(UrlCredentials::Token(t)) => token = Some(t),
                Some(UrlCredentials::UserPassword(u, p)) => user_password = Some((u, p)),
                None => {}
            }
        }
        NatsAuth {
            token,
            user_password,
            require_tls: config.nats_tls,
            ca_path: config.nats_ca_path.clone(),
            client_cert: config
                .nats_cert_path
                .clone()
                .zip(config.nats_key_path.clone()),
        }
    }

    /// `options` with these credentials and TLS settings. Certificate
    /// settings imply TLS.
    pub fn apply(&self, mut options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        if let Some(token) = &self.token {
            options = options.token(token.expose().to_owned());
        }
        if let Some((user, password)) = &self.user_password {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        }
        if let Some(ca) = &self.ca_path {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.require_tls || self.ca_path.is_some() || self.client_cert.is_some() {
            options = options.require_tls(true);
        }
        options
    }
}

/// A NATS connection with its JetStream context and the server's limits.
#[derive(Clone)]
pub struct Nats {
    /// The core client (feedback subscription).
    pub client: async_nats::Client,
    /// JetStream context (publishes).
    pub jetstream: jetstream::Context,
    /// Stream name (`NATS_STREAM`).
    pub stream: String,
    /// `NATS_URL` without credentials, for messages.
    url: String,
    /// Changes each time the client is connected again after a drop, and
    /// each time the stream elects a leader: an ack awaited across either
    /// never comes (it died with the old connection, or the publish reached
    /// a stream without a leader), so publishes awaiting one are sent again
    /// at once.
    pub(crate) resend: tokio::sync::watch::Receiver<u64>,
    /// JetStream publishes failing (no quorum, no stream, no ack): told
    /// once when it begins and once when it ends, not per chunk.
    pub(crate) publishing: std::sync::Arc<crate::outage::Outage>,
}

/// Bumps `resend` whenever JetStream announces a new leader for
/// `stream` (its advisory subject): a publish that reached the stream while
/// it had none is answered by nobody and would wait out its ack timeout.
/// The subscription lives as long as the client (it is renewed on every
/// reconnect); without it (no permission on the advisory subject) only
/// reconnects trigger a re-send.
async fn watch_leader_elections(
    client: &async_nats::Client,
    stream: &str,
    resend: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
) {
    use futures::StreamExt;
    let subject = format!("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.{stream}");
    match client.subscribe(subject).await {
        Ok(mut elections) => {
            tokio::spawn(async move {
                while elections.next().await.is_some() {
                    tracing::debug!(
                        "the stream elected a leader; publishes awaiting an ack are sent again"
                    );
                    resend.send_modify(|n| *n += 1);
                }
            });
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot follow the stream's leader elections");
        }
    }
}

impl Nats {
    /// Connects; an unreachable server fails here, at start, within ~10 s.
    pub async fn connect(config: &Config) -> Result<Nats, SinkError> {
        let outage = std::sync::Arc::new(crate::outage::Outage::new("nats"));
        let (connected_tx, resend) = tokio::sync::watch::channel(0u64);
        let connected_tx = std::sync::Arc::new(connected_tx);
        let elected_tx = connected_tx.clone();
        let options = async_nats::ConnectOptions::new()
            .name("sis-importer")
            .event_callback(move |event| {
                let (outage, connected_tx) = (outage.clone(), connected_tx.clone());
                async move {
                    match event {
                        async_nats::Event::Disconnected => outage.failed("disconnected"),
                        async_nats::Event::Connected => {
                            outage.succeeded();
                            connected_tx.send_modify(|n| *n += 1);
                        }
                        _ => {}
                    }
                }
            })
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10)))
            // Feedback for a whole window must fit while a batch commits.
            .subscription_capacity(65_536);
        let client = NatsAuth::from_config(config)
            .apply(options)
            .connect(
                server_addrs(&config.nats_url).map_err(|message| SinkError::Connect {
                    url: crate::redact::url(&config.nats_url),
                    message,
                })?,
            )
            .await
            .map_err(|e| SinkError::Connect {
                url: crate::redact::url(&config.nats_url),
                message: e.to_string(),
            })?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            .build(client.clone());
        watch_leader_elections(&client, &config.nats_stream, elected_tx).await;
        Ok(Nats {
            client,
            jetstream,
            stream: config.nats_stream.clone(),
            url: crate::redact::url(&config.nats_url),
            resend,
            publishing: std::sync::Arc::new(crate::outage::Outage::new("jetstream")),
        })
    }

    /// The server's `max_payload` as last announced (chunk limits are
    /// computed from it once, at connect).
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// When `MAX_CHUNK_BYTES` is above the server's `max_payload`: what
    /// that means and what to do, on one line (a warning at start, and
    /// `check`'s `payload` line).
    pub fn payload_cap(&self, max_chunk_bytes: usize) -> Option<String> {
        let max_payload = self.max_payload();
        (max_chunk_bytes > max_payload).then(|| {
            format!(
                "MAX_CHUNK_BYTES ({max_chunk_bytes}) is above the NATS server's max_payload \
                 ({max_payload}): chunks are capped at {max_payload} bytes; lower \
                 MAX_CHUNK_BYTES to at most {max_payload}, or raise max_payload in the \
                 nats-server configuration"
            )
        })
    }

    /// Publishes the run summary on `POST_UPDATE` through JetStream and
    /// awaits the publish ack, within `timeout`.
    pub(crate) async fn announce(&self, body: Vec<u8>, timeout: Duration) -> Result<(), SinkError> {
        let err = |message: String| SinkError::Stream {
            stream: self.stream.clone(),
            operation: "publish POST_UPDATE",
            message,
        };
        let publish = async {
            let message = jetstream::message::PublishMessage::build().payload(body.into());
            self.jetstream
                .send_publish(POST_UPDATE_SUBJECT, message)
                .await?
                .await
        };
        match tokio::time::timeout(timeout, publish).await {
            Ok(Ok(_ack)) => Ok(()),
            Ok(Err(e)) => Err(err(e.to_string())),
            Err(_) => Err(err(format!("no publish ack within {timeout:?}"))),
        }
    }

    /// Every subject the stream must capture.
    pub(crate) fn required_subjects(services: &[Service]) -> Vec<String> {
        let mut subjects: Vec<String> = services.iter().map(|s| s.subject.clone()).collect();
        for s in [
            FEEDBACK_SUBJECT,
            POST_UPDATE_SUBJECT,
            POST_UPDATE_FINISH_SUBJECT,
        ] {
            subjects.push(s.to_owned());
        }
        subjects.dedup();
        subjects
    }

    /// Creates the stream if missing (file storage), capturing every
    /// subject of `catalogue`; an existing stream is used as is, and
    /// refused when it misses a subject `services` need
    /// ([`SinkError::MissingSubjects`], as `check` says it).
    pub(crate) async fn ensure_stream(
        &self,
        catalogue: &[Service],
        services: &[Service],
        max_age: Duration,
        replicas: usize,
    ) -> Result<(), SinkError> {
        match self.stream_state(services).await? {
            StreamState::Exists { missing, .. } if !missing.is_empty() => {
                Err(SinkError::MissingSubjects {
                    stream: self.stream.clone(),
                    missing,
                })
            }
            StreamState::Exists {
                replicas: had,
                missing: _,
            } => {
                if had < replicas {
                    tracing::warn!(stream = %self.stream, replicas = had, asked = replicas, "existing stream has fewer replicas than NATS_STREAM_REPLICAS asks; the importer does not change it (nats stream edit --replicas does)");
                }
                Ok(())
            }
            StreamState::Absent => {
                self.jetstream
                    .create_stream(stream::Config {
                        name: self.stream.clone(),
                        subjects: Self::required_subjects(catalogue),
                        storage: stream::StorageType::File,
                        max_age,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| self.stream_error("create", &e))?;
                tracing::info!(stream = %self.stream, replicas, "created JetStream stream");
                Ok(())
            }
        }
    }

    /// The stream as the importer needs it, without changing anything:
    /// absent, or present with the subjects it misses and its replicas. A
    /// server without JetStream is told as such.
    pub async fn stream_state(&self, services: &[Service]) -> Result<StreamState, SinkError> {
        match self.jetstream.get_stream(&self.stream).await {
            Ok(mut existing) => {
                let info = existing
                    .info()
                    .await
                    .map_err(|e| self.stream_error("read info", &e))?;
                let captured = &info.config.subjects;
                let missing = Self::required_subjects(services)
                    .into_iter()
                    .filter(|s| !captured.iter().any(|c| subject_matches(c, s)))
                    .collect();
                Ok(StreamState::Exists {
                    missing,
                    replicas: info.config.num_replicas,
                })
            }
            Err(e) if is_not_found(&e) => Ok(StreamState::Absent),
            Err(e) => Err(self
                .jetstream_disabled()
                .await
                .unwrap_or_else(|| self.stream_error("look up", &e))),
        }
    }

    /// Whether JetStream is off, asked when a stream look-up failed: with
    /// it off nothing answers its API (no responders, which the client
    /// reports as "requested JetStream resource does not exist"), or it
    /// answers that the account has none. `None` when it is on, or when
    /// that cannot be told.
    async fn jetstream_disabled(&self) -> Option<SinkError> {
        let disabled = |account| {
            Some(SinkError::JetStreamDisabled {
                url: self.url.clone(),
                account,
            })
        };
        // A raw request: async-nats 0.51's `query_account()` cannot parse
        // nats-server 2.9's answer.
        let ask = self.client.request("$JS.API.INFO", "".into());
        match tokio::time::timeout(Duration::from_secs(5), ask).await {
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => disabled(false),
            Ok(Ok(answer)) => {
                let info: serde_json::Value = serde_json::from_slice(&answer.payload).ok()?;
                let code = info.pointer("/error/err_code")?.as_u64()?;
                let not_enabled = [
                    jetstream::ErrorCode::JETSTREAM_NOT_ENABLED,
                    jetstream::ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT,
                ];
                let hit = not_enabled.iter().find(|c| c.0 == code)?;
                disabled(*hit == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT)
            }
            _ => None,
        }
    }

    fn stream_error(&self, operation: &'static str, e: &dyn std::fmt::Display) -> SinkError {
        SinkError::Stream {
            stream: self.stream.clone(),
            operation,
            message: e.to_string(),
        }
    }
}

/// What [`Nats::stream_state`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// No such stream: the importer creates it at start.
    Absent,
    /// The stream exists; `missing` are needed subjects it does not capture.
    Exists {
        missing: Vec<String>,
        replicas: usize,
    },
}

fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(js)
        if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// NATS subject wildcard matching (`*` one token, `>` the rest).
pub(crate) fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{server_addrs, subject_matches, Config, NatsAuth, Secret};

    #[test]
    fn credentials_in_nats_url_go_to_the_options_not_the_urls() {
        let urls = "nats://importer:pw@n1:4222, nats://n2:4222";
        let addrs = server_addrs(urls).unwrap();
        let shown: Vec<&str> = addrs.iter().map(|a| a.as_url_str()).collect();
        assert_eq!(shown, ["nats://n1:4222", "nats://n2:4222"]);
        let mut config = Config {
            nats_url: urls.into(),
            ..Config::default()
        };
        let auth = NatsAuth::from_config(&config);
        assert_eq!(
            auth.user_password,
            Some(("importer".into(), Secret::new("pw")))
        );
        config.nats_url = "nats://t0ken@n1".into();
        assert_eq!(
            NatsAuth::from_config(&config).token,
            Some(Secret::new("t0ken"))
        );
        config.nats_token = Some(Secret::new("set"));
        let auth = NatsAuth::from_config(&config);
        assert_eq!(auth.token, Some(Secret::new("set")), "NATS_TOKEN wins");
    }

    #[test]
    fn wildcards() {
        assert!(subject_matches("ORI_PERSON_CHANNEL", "ORI_PERSON_CHANNEL"));
        assert!(subject_matches(">", "POST_UPDATE"));
        assert!(subject_matches("a.*", "a.b"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(!subject_matches("POST_UPDATE", "POST_UPDATE_FINISH"));
    }
}
