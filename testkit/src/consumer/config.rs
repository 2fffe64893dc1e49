//! [`ConsumerConfig`]: what a [`ReferenceConsumer`](super::ReferenceConsumer)
//! connects to and consumes, and how it behaves, with the defaults; the
//! [`FeedbackForm`] it answers in, and [`ConfigError`] for a configuration
//! that cannot work.

use std::sync::Arc;
use std::time::Duration;

use sis_importer::catalogue::{self, Service};
use sis_importer::redact;

use super::store::StoreSink;

/// The form of the feedback a consumer sends (SPEC §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FeedbackForm {
    /// The precise form: OK and FAIL both carry `chunkId`; every chunk is
    /// processed whatever its execution hash. The default.
    #[default]
    Precise,
    /// The seed's form, as importer-mankeli speaks it: OK without
    /// `chunkId`, FAIL as an echo of the chunk message; one current
    /// execution hash learned from Redis (`CURRENT_EXECUTION_HASH`, key and
    /// channel), chunks of any other hash acked unprocessed and unanswered.
    /// Needs [`ConsumerConfig::redis_url`].
    Seed,
}

impl std::fmt::Display for FeedbackForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FeedbackForm::Precise => "precise",
            FeedbackForm::Seed => "seed",
        })
    }
}

/// Configuration of a [`ReferenceConsumer`](super::ReferenceConsumer).
#[derive(Clone)]
pub struct ConsumerConfig {
    /// NATS server URL.
    pub nats_url: String,
    /// NATS credentials and TLS, as the server wants them.
    pub nats_auth: sis_importer::sinks::NatsAuth,
    /// Stream to consume from; default `SIS_IMPORTER`.
    pub stream: String,
    /// Services to consume; default: the built-in catalogue.
    pub services: Vec<Service>,
    /// Durable consumer names are `<prefix>_<service id>`; default `reference`.
    pub durable_prefix: String,
    /// Instances sharing each durable consumer; default 2.
    pub instances: usize,
    /// Processing delay per chunk; default 0. The actual delay of a chunk
    /// is `latency` plus a uniform random part in `[0, latency_jitter]`.
    pub latency: Duration,
    /// Upper bound of the random extra delay per chunk (uniform, inclusive);
    /// default 0 (no jitter: every chunk waits exactly `latency`).
    pub latency_jitter: Duration,
    /// Seed of the jitter; default 0. Each chunk's draw comes from a
    /// `StdRng` seeded with this seed, the instance index and a per-instance
    /// chunk counter, so a test varies the delays by varying the seed.
    pub jitter_seed: u64,
    /// Keep every received (identity, ordinal) and chunk id; default true.
    pub record: bool,
    /// `ack_wait` of the durable consumers (redelivery of unacked chunks);
    /// default 30 s.
    pub ack_wait: Duration,
    /// The feedback form; default [`FeedbackForm::Precise`].
    pub form: FeedbackForm,
    /// Redis URL the [`FeedbackForm::Seed`] form learns the current
    /// execution hash from; default none (required by that form, unused by
    /// the precise one).
    pub redis_url: Option<String>,
    /// An entity whose field of this name is truthy (in the JavaScript
    /// sense) makes its chunk FAIL; default `testError`.
    pub fail_field: String,
    /// Where the entities of every OK chunk are written before its feedback
    /// is sent (a stand-in for the consumer's database); default none.
    pub store_sink: Option<Arc<dyn StoreSink>>,
}

impl ConsumerConfig {
    /// The defaults above, against `nats_url`.
    pub fn new(nats_url: impl Into<String>) -> Self {
        ConsumerConfig {
            nats_url: nats_url.into(),
            nats_auth: Default::default(),
            stream: "SIS_IMPORTER".to_owned(),
            services: catalogue::builtin(),
            durable_prefix: "reference".to_owned(),
            instances: 2,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            jitter_seed: 0,
            record: true,
            ack_wait: Duration::from_secs(30),
            form: FeedbackForm::Precise,
            redis_url: None,
            fail_field: "testError".to_owned(),
            store_sink: None,
        }
    }

    /// A consumer of the seed's form ([`FeedbackForm::Seed`]) as
    /// importer-mankeli runs: one instance and `ack_wait` 60 s (its
    /// settings), the other defaults as in [`ConsumerConfig::new`].
    pub fn seed(nats_url: impl Into<String>, redis_url: impl Into<String>) -> Self {
        ConsumerConfig {
            form: FeedbackForm::Seed,
            redis_url: Some(redis_url.into()),
            instances: 1,
            ack_wait: Duration::from_secs(60),
            ..ConsumerConfig::new(nats_url)
        }
    }

    /// Checks what `start` cannot work without: a NATS URL, and for the
    /// seed's form a Redis URL that parses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nats_url.is_empty() {
            return Err(ConfigError::EmptyNatsUrl);
        }
        if self.form == FeedbackForm::Seed {
            let url = self
                .redis_url
                .as_deref()
                .filter(|url| !url.is_empty())
                .ok_or(ConfigError::SeedWithoutRedis)?;
            redis::Client::open(url).map_err(|source| ConfigError::RedisUrl {
                url: redact::url(url),
                source,
            })?;
        }
        Ok(())
    }
}

/// A [`ConsumerConfig`] that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `nats_url` is empty (a silent fallback to port 4222 would reach the
    /// machine's own NATS, which tests must never touch).
    #[error("ConsumerConfig::nats_url is empty")]
    EmptyNatsUrl,
    /// The seed's form without a Redis URL to learn the hash from.
    #[error("the seed's feedback form needs ConsumerConfig::redis_url (the current execution hash lives in Redis)")]
    SeedWithoutRedis,
    /// `redis_url` does not parse.
    #[error("ConsumerConfig::redis_url {url} is not a Redis URL: {source}")]
    RedisUrl {
        /// The URL without its credentials.
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
}

/// The defaults above with an empty `nats_url`, for
/// `ConsumerConfig { nats_url, ..Default::default() }`; `start` refuses an
/// empty URL (a silent fallback to port 4222 would reach the machine's own
/// NATS, which tests must never touch).
impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig::new("")
    }
}

impl std::fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field("nats_url", &self.nats_url)
            .field("nats_auth", &self.nats_auth)
            .field("stream", &self.stream)
            .field("services", &self.services.len())
            .field("durable_prefix", &self.durable_prefix)
            .field("instances", &self.instances)
            .field("latency", &self.latency)
            .field("latency_jitter", &self.latency_jitter)
            .field("jitter_seed", &self.jitter_seed)
            .field("record", &self.record)
            .field("ack_wait", &self.ack_wait)
            .field("form", &self.form)
            .field("redis_url", &self.redis_url.as_deref().map(redact::url))
            .field("fail_field", &self.fail_field)
            .field("store_sink", &self.store_sink.as_ref().map(|_| "set"))
            .finish()
    }
}
