//! What the operator reads when something is wrong: each message is one
//! line naming the cause and what to do, seen where it is seen (the
//! command's stderr, `check`'s stdout, the JSON log), never with a secret.
//! Real servers throughout: a `redis-server` with a password, a closed
//! port, a `nats-server` without JetStream, the fake Sisu's faults.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sis_testkit::fake_sisu::{FakeSisuConfig, Hostile};
use sis_testkit::servers::{NatsOptions, RedisOptions};

/// The lines of `output`'s stderr that start with `sis-importer:` (the
/// one-line start-up failures; the rest is the JSON log).
fn failure_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("sis-importer: "))
        .map(str::to_owned)
        .collect()
}

/// The one start-up failure line, without its `sis-importer: ` prefix;
/// asserts exit code 2 and that there is exactly one.
fn start_failure(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let lines = failure_lines(output);
    assert_eq!(lines.len(), 1, "one line: {output:?}");
    lines[0]["sis-importer: ".len()..].to_owned()
}

/// `check`'s stdout lines.
fn check_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The line of `check` named `name` (`FAIL  redis     …`).
fn check_line(output: &Output, name: &str) -> String {
    check_lines(output)
        .into_iter()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} line: {output:?}"))
}

/// The JSON log events of `output` with `message`.
fn events(output: &Output, message: &str) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .collect()
}

/// The `error` of the `service did not finish` event of `output`.
fn service_error(output: &Output) -> String {
    let failed = events(output, "service did not finish");
    assert_eq!(failed.len(), 1, "{output:?}");
    failed[0]["error"].as_str().unwrap_or_default().to_owned()
}

/// A free port of 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_credentials_and_a_closed_port_are_told_apart_and_credentials_are_not_retried() {
    let env = Env::start_custom(
        FakeSisuConfig::default(),
        NatsOptions::default(),
        RedisOptions {
            password: Some("right-pass".into()),
            ..Default::default()
        },
    )
    .await;
    let port = env.redis.port();
    let closed = closed_port();
    let cases = [
        (
            format!("redis://:wrong-pass@127.0.0.1:{port}/"),
            "Redis refused the password (WRONGPASS): fix the password in REDIS_URL \
             (redis://:PASSWORD@host:port/, or redis://USER:PASSWORD@… for an ACL user)",
        ),
        (
            format!("redis://127.0.0.1:{port}/"),
            "Redis requires a password (NOAUTH) and REDIS_URL gives none: put it in REDIS_URL \
             as redis://:PASSWORD@host:port/",
        ),
        (
            format!("redis://127.0.0.1:{closed}/"),
            "nothing listens at 127.0.0.1:{closed} (connection refused): is redis-server \
             running, and are REDIS_URL's host and port right?",
        ),
    ];
    for (url, cause) in cases {
        let cause = cause.replace("{closed}", &closed.to_string());
        let started = Instant::now();
        let once = env
            .command(&["once", "--service", "PERSON"])
            .env("REDIS_URL", &url)
            .output()
            .unwrap();
        let took = started.elapsed();
        let message = start_failure(&once);
        assert!(
            message.starts_with("cannot connect to Redis at redis://")
                && message.ends_with(&format!(": {cause}")),
            "{url}: {message}"
        );
        assert!(!message.contains("pass@"), "no password: {message}");
        if !url.contains(&closed.to_string()) {
            // bb8's timeout made every one of these wait 5 s.
            assert!(
                took < Duration::from_secs(3),
                "{url}: not retried: {took:?}"
            );
        }
        let check = env
            .command(&["check"])
            .env("REDIS_URL", &url)
            .output()
            .unwrap();
        assert_eq!(check.status.code(), Some(1), "{check:?}");
        assert_eq!(
            check_line(&check, "redis"),
            format!("FAIL  redis     {message}"),
            "check says what the command says"
        );
        assert!(!String::from_utf8_lossy(&check.stdout).contains("wrong-pass"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_under_a_running_importer_fails_its_next_operation_at_once() {
    let redis = sis_testkit::servers::RedisServer::start_with(RedisOptions {
        password: Some("first-pass".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let url = sis_importer::config::Secret::new(redis.url());
    let store = sis_importer::store::OrdinalStore::connect(&url)
        .await
        .unwrap();
    store.ordinal(&service("PERSON")).await.unwrap();
    // The password changes and every connection is closed: the pool
    // reconnects with the old one.
    let admin = redis::Client::open(redis.url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "second-pass"][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: redis::RedisResult<()> = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal"][..])
        .query_async(&mut admin)
        .await;
    let started = Instant::now();
    let error = store
        .ordinal(&service("PERSON"))
        .await
        .expect_err("the old password is refused")
        .to_string();
    assert!(
        error.contains("Redis refused the password (WRONGPASS): fix the password in REDIS_URL"),
        "{error}"
    );
    assert!(!error.contains("first-pass"), "{error}");
    // Not the 30 s a lost connection is retried for: the pool's own 5 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// A `nats-server` without JetStream (Debian's default configuration), or
/// with the configuration given, on a free port; killed when dropped.
struct PlainNats {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PlainNats {
    /// `config` is the server's configuration file but for `listen`
    /// (`STORE` in it becomes a directory of its own).
    fn start(config: &str) -> PlainNats {
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let port = closed_port();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nats.conf");
        let store = dir.path().join("jetstream");
        let text = config.replace("STORE", &store.display().to_string());
        std::fs::write(&file, format!("listen: \"127.0.0.1:{port}\"\n{text}")).unwrap();
        let child = std::process::Command::new(binary)
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server listens");
            std::thread::sleep(Duration::from_millis(50));
        }
        PlainNats {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for PlainNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_without_jetstream_is_told_with_the_fix() {
    let env = Env::start(5).await;
    let plain = PlainNats::start("");
    let expected = format!(
        "JetStream is not enabled on {}: run nats-server -js or add `jetstream {{}}` to its \
         configuration",
        plain.url()
    );
    let once = env
        .command(&["once", "--service", "PERSON"])
        .env("NATS_URL", plain.url())
        .output()
        .unwrap();
    assert_eq!(start_failure(&once), expected);
    let check = env
        .command(&["check"])
        .env("NATS_URL", plain.url())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert_eq!(
        check_line(&check, "nats"),
        format!("FAIL  nats      {expected}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_jetstream_is_told_apart_from_a_server_without() {
    let env = Env::start(5).await;
    let nats = PlainNats::start(
        "jetstream { store_dir: \"STORE\" }\naccounts {\n  NOJS: { users: [ { user: \"importer\", \
         password: \"s3cret\" } ] }\n}\n",
    );
    let once = env
        .command(&["once", "--service", "PERSON"])
        .env("NATS_URL", nats.url())
        .env("NATS_USER", "importer")
        .env("NATS_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert_eq!(
        start_failure(&once),
        format!(
            "JetStream is not enabled on {} for this account: enable it for the account \
             (`jetstream: enabled` in its `accounts` entry) or connect as an account that has it",
            nats.url()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_toml_value_names_file_line_column_and_key() {
    let env = Env::start(5).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("importer.toml");
    for (text, expected) in [
        (
            "# the importer\nmax_chunk_size = 10\nfetch_amount = \"ten\"\n",
            ":3:16: key fetch_amount: invalid type: string \"ten\", expected u32",
        ),
        (
            "lease_ttl_secs = -1\n",
            ":1:18: key lease_ttl_secs: invalid value: integer `-1`, expected a whole, \
             non-negative number of seconds",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let expected = format!("{}{expected}", file.display());
        let config = file.to_str().unwrap();
        let once = env
            .command(&["--config", config, "once", "--service", "PERSON"])
            .output()
            .unwrap();
        assert_eq!(start_failure(&once), expected);
        let check = env
            .command(&["--config", config, "check"])
            .output()
            .unwrap();
        assert_eq!(check.status.code(), Some(1), "{check:?}");
        assert_eq!(
            check_lines(&check),
            [format!("FAIL  config    {expected}")],
            "{check:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_error_is_one_line_with_a_hint() {
    let env = Env::start(5).await;
    let hint = "CRON has six fields: sec min hour day month weekday, e.g. `0 0 * * * *` (a \
                classic five-field one gets `0` seconds in front)";
    for (cron, problem) in [
        ("every hour", "\"every hour\" has 2 field(s)"),
        (
            "0 61 * * * *",
            "\"0 61 * * * *\" does not parse at column 3: Minutes must be less than 59. ('61' \
             specified.)",
        ),
    ] {
        let expected = format!("CRON is invalid: {problem}; {hint}");
        let once = env
            .command(&["once", "--service", "PERSON"])
            .env("CRON", cron)
            .output()
            .unwrap();
        assert_eq!(start_failure(&once), expected);
        let check = env.command(&["check"]).env("CRON", cron).output().unwrap();
        assert_eq!(
            check_lines(&check),
            [format!("FAIL  config    {expected}")],
            "{check:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_page_says_where_it_ends_and_a_wrong_type_names_the_field() {
    let env = Env::start(30).await;
    env.fake.faults().truncated_next("PERSON", 1);
    let once = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert_eq!(once.status.code(), Some(1), "{once:?}");
    let error = service_error(&once);
    assert!(
        error.contains(": truncated: the page ends at byte ")
            && error.contains(" in the middle of ")
            && error.contains("of `entities`")
            && error.ends_with(
                "the answer was cut short (by Sisu or a proxy in between); the next run asks \
                 again, and if this repeats, check the proxy's limits on answer size and time"
            ),
        "{error}"
    );
    env.fake
        .faults()
        .hostile_next("PERSON", Hostile::WrongTypes, 1);
    let once = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert_eq!(once.status.code(), Some(1), "{once:?}");
    let error = service_error(&once);
    assert!(
        error.ends_with(
            ": not an export page: `hasMore` must be true or false, found a string at byte 11"
        ),
        "{error}"
    );
}

/// Serves one HTTP answer to every connection: headers promising
/// `promised` bytes, then `sent` of them, then closes.
fn cut_server(promised: usize, sent: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {promised}\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(sent);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_by_the_connection_says_how_much_of_it_came() {
    let env = Env::start(5).await;
    let sent = br#"{"hasMore":true,"greatestOrdinal":5,"entities":[{"id":"a"#;
    let url = cut_server(1000, sent);
    let once = env
        .command(&["once", "--service", "PERSON"])
        .env("SIS_API_URL", &url)
        .env("SIS_RETRY_LIMIT", "1")
        .output()
        .unwrap();
    assert_eq!(once.status.code(), Some(1), "{once:?}");
    let error = service_error(&once);
    assert!(
        error.contains(&format!(
            "the answer was cut off at byte {} of 1000 expected (Content-Length): ",
            sent.len()
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_path_without_a_certificate_is_refused_at_start_and_by_check() {
    let env = Env::start(5).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "this is not a certificate\n").unwrap();
    let expected = format!(
        "cannot set up the Sisu client: CA_PATH {} holds no PEM certificate (no -----BEGIN \
         CERTIFICATE----- block): point it at the PEM bundle of the CA that issued Sisu's \
         certificate, or unset it",
        ca.display()
    );
    let once = env
        .command(&["once", "--service", "PERSON"])
        .env("CA_PATH", &ca)
        .output()
        .unwrap();
    assert_eq!(start_failure(&once), expected);
    let check = env
        .command(&["check"])
        .env("CA_PATH", &ca)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert_eq!(
        check_line(&check, "sisu"),
        format!("FAIL  sisu      {expected}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_chunk_bytes_above_max_payload_is_warned_about_at_start_naming_both() {
    let env = Env::start_with(
        5,
        NatsOptions {
            max_payload: Some(64 * 1024),
            ..Default::default()
        },
    )
    .await;
    let once = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(once.status.success(), "{once:?}");
    let warned = events(&once, "MAX_CHUNK_BYTES (900000) is above");
    assert_eq!(warned.len(), 1, "{once:?}");
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(
        warned[0]["message"],
        "MAX_CHUNK_BYTES (900000) is above the NATS server's max_payload (65536): chunks are \
         capped at 65536 bytes; lower MAX_CHUNK_BYTES to at most 65536, or raise max_payload \
         in the nats-server configuration"
    );
    let once = env
        .command(&["once", "--service", "PERSON"])
        .env("MAX_CHUNK_BYTES", "65536")
        .output()
        .unwrap();
    assert!(events(&once, "MAX_CHUNK_BYTES").is_empty(), "{once:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_missing_a_subject_stops_once_and_run_as_check_says() {
    let env = Env::start(5).await;
    let client = async_nats::connect(env.nats.url()).await.unwrap();
    async_nats::jetstream::new(client)
        .create_stream(async_nats::jetstream::stream::Config {
            name: "NARROW".into(),
            subjects: vec!["ORI_PERSON_CHANNEL".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let check = env
        .command(&["check"])
        .env("NATS_STREAM", "NARROW")
        .output()
        .unwrap();
    let said = check_line(&check, "nats");
    let said = said
        .strip_prefix("FAIL  nats      ")
        .expect("a failed nats line");
    assert!(
        said.starts_with("stream NARROW does not capture "),
        "{said}"
    );
    for command in [&["once", "--service", "PERSON"][..], &["run"]] {
        let started = env
            .command(command)
            .env("NATS_STREAM", "NARROW")
            .env("PORT", closed_port().to_string())
            .output()
            .unwrap();
        assert_eq!(start_failure(&started), said, "{command:?}");
    }
    assert_eq!(env.fake.requests("PERSON"), 0, "nothing fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_1_when_post_update_could_not_be_published() {
    let env = Env::start(5).await;
    let first = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{first:?}");
    // The second run is held at its first request while the stream loses
    // POST_UPDATE (after the start-up check passed).
    env.fake
        .faults()
        .latency(Some("PERSON"), Duration::from_secs(2));
    let mut child = env
        .command(&["once", "--service", "PERSON"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{log}");
        log.push_str(&line);
        if line.contains(r#""message":"importing""#) {
            break;
        }
    }
    let js = async_nats::jetstream::new(async_nats::connect(env.nats.url()).await.unwrap());
    let mut stream = js.get_stream("SIS_IMPORTER").await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.subjects.retain(|s| s != "POST_UPDATE");
    js.update_stream(config).await.unwrap();
    stderr.read_to_string(&mut log).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not publish POST_UPDATE"))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains(
            "consumers that wait for it do not hear of this run; check that NATS \
                            answers and that the stream captures POST_UPDATE"
        ),
        "{log}"
    );
    assert!(
        log.contains(r#""message":"service finished""#),
        "the service itself finished: {log}"
    );
}
