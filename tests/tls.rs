//! TLS and credentials towards every party: the fake Sisu over HTTPS
//! demanding a client certificate (`KEY_PATH`, `CERT_PATH`, `API_KEY`,
//! `CA_PATH`), NATS with user/password over TLS with client certificates,
//! and Redis with a password over TLS, all given by URL or settings.
//! Certificates are made here with `rcgen`.

mod common;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use sis_importer::config::Secret;
use sis_importer::importer::{Importer, ServiceOutcome};
use sis_importer::shutdown::Shutdown;
use sis_testkit::fake_sisu::{FakeSisuConfig, TlsServerConfig};
use sis_testkit::servers::{NatsOptions, NatsServerTls, RedisOptions};

use common::*;

/// A certificate authority that issues server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// PEM files of one issued certificate.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }

    /// A server certificate for localhost / 127.0.0.1, or a client one.
    fn issue(&self, dir: &Path, name: &str, server: bool) -> Issued {
        let key = KeyPair::generate().unwrap();
        let names = if server {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        } else {
            vec![format!("{name}.example")]
        };
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let issued = Issued {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

/// Export (credentials), GraphQL (credentials) and a URN code book
/// (public) all go through the gateway.
const SERVICES: &[&str] = &["PERSON", "COUNTRY", "GRAPHQL_GRADE_SCALES"];

struct SisuTls {
    dir: tempfile::TempDir,
    ca: PathBuf,
    client: Issued,
    env: Env,
}

/// The fake Sisu over HTTPS, demanding a client certificate from `ca`
/// and `X-Api-Key: k3y`.
async fn sisu_over_tls() -> SisuTls {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let server = ca.issue(dir.path(), "sisu", true);
    let client = ca.issue(dir.path(), "importer", false);
    let fake = FakeSisuConfig {
        seed: 7,
        entities_per_service: 60,
        tls: Some(TlsServerConfig {
            cert_pem: std::fs::read(&server.cert).unwrap(),
            key_pem: std::fs::read(&server.key).unwrap(),
            client_ca_pem: Some(ca.cert.pem().into_bytes()),
        }),
        ..FakeSisuConfig::default()
    };
    let env = Env::start_custom(fake, NatsOptions::default(), RedisOptions::default()).await;
    env.fake.faults().require_api_key("k3y");
    let ca = ca.write(dir.path(), "ca");
    SisuTls {
        dir,
        ca,
        client,
        env,
    }
}

/// Services that ask Sisu every time (URN code books may come from the
/// Redis cache after the first import).
const UNCACHED: &[&str] = &["PERSON", "GRAPHQL_GRADE_SCALES"];

async fn import(importer: &Importer, ids: &[&str]) -> Vec<(ServiceOutcome, String)> {
    let summary = importer
        .run(&services(ids), Shutdown::never())
        .await
        .unwrap();
    summary
        .services
        .into_iter()
        .map(|r| (r.result, r.error.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sisu_over_https_with_a_client_certificate() {
    let t = sisu_over_tls().await;
    assert!(t.env.fake.base_url().starts_with("https://"));

    // With the certificate, the key and the API key: everything imports.
    let mut config = t.env.config();
    config.ca_path = Some(t.ca.clone());
    config.cert_path = Some(t.client.cert.clone());
    config.key_path = Some(t.client.key.clone());
    config.api_key = Some(Secret::new("k3y"));
    let importer = t.env.importer(config.clone()).await;
    for (outcome, error) in import(&importer, SERVICES).await {
        assert_eq!(outcome, ServiceOutcome::Ok, "{error}");
    }
    for id in SERVICES {
        t.env.assert_delivered(id, &[]);
        importer.io.store.reset(&service(id)).await.unwrap();
    }
    drop(importer);

    // Without a client certificate: the error says so and names the
    // settings, at once (a certificate is not retried into existence).
    let mut without = config.clone();
    without.cert_path = None;
    without.key_path = None;
    without.sis_retry_limit = 50;
    without.sis_retry_base = std::time::Duration::from_secs(1);
    let importer = t.env.importer(without).await;
    let started = std::time::Instant::now();
    for (outcome, error) in import(&importer, UNCACHED).await {
        assert_eq!(outcome, ServiceOutcome::Failed);
        assert!(
            error.contains("requires a client certificate") && error.contains("KEY_PATH"),
            "{error}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "not retried with backoff"
    );
    for id in UNCACHED {
        assert_eq!(t.env.ordinal(&importer, id).await, None, "{id} untouched");
    }
    drop(importer);

    // A certificate from another CA is rejected, and the error says that.
    let stranger = Ca::new("other CA").issue(t.dir.path(), "stranger", false);
    let mut wrong = config.clone();
    wrong.cert_path = Some(stranger.cert);
    wrong.key_path = Some(stranger.key);
    person_fails_with(
        &t.env,
        wrong,
        &["rejected the client certificate", "CERT_PATH"],
    )
    .await;

    // Without CA_PATH the server itself is not trusted; the error names CA_PATH.
    let mut untrusted = config.clone();
    untrusted.ca_path = None;
    person_fails_with(&t.env, untrusted, &["not trusted", "CA_PATH"]).await;
}

/// Importing PERSON with `config` fails, and the error says all of `words`.
async fn person_fails_with(env: &Env, config: sis_importer::config::Config, words: &[&str]) {
    let importer = env.importer(config).await;
    let (outcome, error) = import(&importer, &["PERSON"]).await.remove(0);
    assert_eq!(outcome, ServiceOutcome::Failed);
    for word in words {
        assert!(error.contains(word), "{word:?} in {error}");
    }
}

/// NATS demanding user/password over TLS with client certificates; Redis
/// demanding a password over TLS, given in `REDIS_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_and_redis_with_passwords_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("infra CA");
    let ca_file = ca.write(dir.path(), "ca");
    let nats_server = ca.issue(dir.path(), "nats", true);
    let nats_client = ca.issue(dir.path(), "nats-client", false);
    let redis_server = ca.issue(dir.path(), "redis", true);
    let nats_options = NatsOptions {
        user_password: Some(("importer".into(), "nats-pa55".into())),
        tls: Some(NatsServerTls {
            cert_file: nats_server.cert,
            key_file: nats_server.key,
            ca_file: ca_file.clone(),
            client_cert: Some((nats_client.cert, nats_client.key)),
        }),
        ..NatsOptions::default()
    };
    let redis_options = RedisOptions {
        password: Some("redis-pa55".into()),
        tls: Some((redis_server.cert, redis_server.key, ca_file)),
        ..RedisOptions::default()
    };
    let fake = FakeSisuConfig {
        seed: 7,
        entities_per_service: 60,
        ..FakeSisuConfig::default()
    };
    let env = Env::start_custom(fake, nats_options, redis_options).await;
    assert!(env.redis.url().starts_with("rediss://:redis-pa55@"));

    let config = env.config();
    assert!(config.nats_user.is_some() && config.nats_cert_path.is_some());
    let importer = env.importer(config.clone()).await;
    for (outcome, error) in import(&importer, SERVICES).await {
        assert_eq!(outcome, ServiceOutcome::Ok, "{error}");
    }
    for id in SERVICES {
        env.assert_delivered(id, &[]);
    }
    drop(importer);

    // Wrong NATS password: fails at start, names NATS, never the password.
    let mut wrong = config.clone();
    wrong.nats_password = Some(Secret::new("not-the-nats-pa55"));
    let error = Importer::connect(wrong)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("NATS"), "{error}");
    assert!(!error.contains("pa55"), "{error}");

    // Without the client certificate NATS refuses too.
    let mut no_cert = config.clone();
    no_cert.nats_cert_path = None;
    no_cert.nats_key_path = None;
    assert!(Importer::connect(no_cert).await.is_err());

    // Wrong Redis password: fails at start without showing either password.
    let mut wrong = config;
    wrong.redis_url = Secret::new(env.redis.url().replace("redis-pa55", "not-the-redis-pa55"));
    let error = Importer::connect(wrong)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.to_lowercase().contains("redis"), "{error}");
    assert!(!error.contains("pa55"), "{error}");
}
