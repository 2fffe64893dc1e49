//! [`ConsumerConfig`]: what a [`ReferenceConsumer`](super::ReferenceConsumer)
//! connects to and consumes, and how it behaves, with the defaults.

use std::time::Duration;

use sis_importer::catalogue::{self, Service};

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
    /// An entity whose field of this name is truthy (in the JavaScript
    /// sense) makes its chunk FAIL; default `testError`.
    pub fail_field: String,
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
            fail_field: "testError".to_owned(),
        }
    }
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
            .field("fail_field", &self.fail_field)
            .finish()
    }
}
