//! What the importer says as a process: no secret in any log, error or
//! status, at any `RUST_LOG`, credentials inside URLs included; the id
//! meant for a mistyped service id; colours only on a terminal and never
//! with `NO_COLOR`; the progress line on a terminal and batch events in
//! JSON logs; a feedback storm summarised; each outage logged once at
//! each end; a warning for a stream with fewer replicas than asked.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use sis_testkit::fake_sisu::FakeSisuConfig;
use sis_testkit::servers::{NatsOptions, NatsServer, RedisOptions};

/// The JSON log lines of a run (other lines, such as panics, skipped).
fn json_events(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_errors_or_status() {
    let env = Env::start(30).await;
    env.fake
        .faults()
        .require_basic_auth("importer", "pw-SECRET-basic-1");
    env.fake.faults().fail_next("PERSON", 500, 2);
    let secrets = [
        ("SIS_API_PASSWORD", "pw-SECRET-wrong-2"),
        ("PROXY_TOKEN", "tok-SECRET-proxy-3"),
        ("API_KEY", "key-SECRET-api-4"),
        ("ADMIN_TOKEN", "adm-SECRET-admin-5"),
    ];
    let mut cmd = env.command(&["once", "--service", "PERSON", "--service", "COUNTRY"]);
    // The NATS credentials go to a real server (one without auth accepts
    // and ignores them), so they are really sent and could really leak.
    cmd.env("SIS_API_USER", "importer")
        .env("RUST_LOG", "trace")
        .env("NATS_TOKEN", "nats-SECRET-tok-9")
        .env("NATS_USER", "importer")
        .env("NATS_PASSWORD", "nats-SECRET-pw-10");
    for (k, v) in secrets {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the wrong password fails PERSON"
    );
    let status = env.command(&["status", "--json"]).output().unwrap();
    // A NATS token the server does not require still must not leak through
    // the connect error either.
    let nats = env
        .command(&["once"])
        .env("NATS_URL", "nats://127.0.0.1:1")
        .env("NATS_TOKEN", "nats-SECRET-6")
        .output()
        .unwrap();
    let nats_user = env
        .command(&["once"])
        .env("NATS_URL", "nats://127.0.0.1:1")
        .env("NATS_USER", "importer")
        .env("NATS_PASSWORD", "nats-SECRET-8")
        .output()
        .unwrap();
    let redis = env
        .command(&["status"])
        .env("REDIS_URL", "redis://:redis-SECRET-7@127.0.0.1:1/")
        .output()
        .unwrap();
    let everything = [
        out.stdout,
        out.stderr,
        status.stdout,
        status.stderr,
        nats.stderr,
        nats_user.stderr,
        redis.stderr,
    ]
    .iter()
    .map(|b| String::from_utf8_lossy(b).into_owned())
    .collect::<Vec<_>>()
    .join("\n");
    assert!(everything.contains("401"), "the failure itself is reported");
    assert!(
        !everything.contains("SECRET"),
        "a secret leaked:\n{everything}"
    );
}

/// Credentials written into the URLs themselves (`NATS_URL` with a user
/// and password or a token, `REDIS_URL` with a password, `SIS_API_URL`
/// with basic auth) are used, and printed at no `RUST_LOG` level in
/// either log format (async-nats logs the URLs it connects to at debug).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_inside_urls_work_and_never_print_even_at_trace() {
    let env = Env::start_custom(
        FakeSisuConfig {
            seed: 7,
            entities_per_service: 30,
            ..FakeSisuConfig::default()
        },
        NatsOptions {
            user_password: Some(("importer".into(), "nats-SECRET-url-1".into())),
            ..NatsOptions::default()
        },
        RedisOptions {
            password: Some("redis-SECRET-url-2".into()),
            ..RedisOptions::default()
        },
    )
    .await;
    env.fake
        .faults()
        .require_basic_auth("importer", "sisu-SECRET-url-3");
    let with_user_info =
        |url: &str, user_info: &str| url.replacen("://", &format!("://{user_info}@"), 1);
    let nats_url = with_user_info(&env.nats.url(), "importer:nats-SECRET-url-1");
    let sisu_url = with_user_info(&env.fake.base_url(), "importer:sisu-SECRET-url-3");
    assert!(env.redis.url().contains("redis-SECRET-url-2"));
    let store = env.store().await;
    for format in ["json", "text"] {
        let out = env
            .command(&["once", "--service", "PERSON", "--service", "COUNTRY"])
            .env("NATS_URL", &nats_url)
            .env("SIS_API_URL", &sisu_url)
            .env("RUST_LOG", "trace")
            .env("LOG_FORMAT", format)
            .output()
            .unwrap();
        let logs = String::from_utf8_lossy(&out.stderr);
        assert!(
            logs.contains("attempting connection"),
            "{format}: the NATS client's own debug lines are there: {logs}"
        );
        assert!(
            !logs.contains("SECRET"),
            "{format}: a secret leaked:\n{logs}"
        );
        assert!(
            out.status.success(),
            "{format}: the credentials in the URLs are used: {logs}"
        );
        store.reset(&service("PERSON")).await.unwrap();
        store.reset(&service("COUNTRY")).await.unwrap();
    }

    // A token as NATS_URL's user name, against a server that demands it.
    let token_nats = NatsServer::start_with(NatsOptions {
        token: Some("nats-SECRET-tok-4".into()),
        ..NatsOptions::default()
    })
    .await
    .unwrap();
    let out = env
        .command(&["check"])
        .env(
            "NATS_URL",
            with_user_info(&token_nats.url(), "nats-SECRET-tok-4"),
        )
        .env("SIS_API_URL", &sisu_url)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!said.contains("SECRET"), "a secret leaked:\n{said}");
    assert!(
        said.contains("ok    nats      nats://***@127.0.0.1:"),
        "{said}"
    );
    assert!(out.status.success(), "{said}");
}

/// A mistyped service id ends the command before anything is reached,
/// naming the id it most likely meant: `once --service person` and
/// `reset persn` suggest PERSON.
#[test]
fn an_unknown_service_id_is_answered_with_the_one_meant() {
    for args in [&["once", "--service", "person"][..], &["reset", "persn"]] {
        let out = bare_command(BIN, args)
            .env("SIS_API_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains("(did you mean PERSON?)"), "{args:?}: {said}");
    }
}

/// `once` on a terminal (a pty from util-linux `script`) draws a progress
/// line per service and leaves a summary line for each; piped, it is quiet
/// apart from JSON logs, which carry one event per committed batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_on_a_terminal_and_batch_events_in_json_logs() {
    let env = Env::start(250).await;
    let out = env
        .command(&["once", "--service", "PERSON", "--service", "COUNTRY"])
        .env("FETCH_AMOUNT", "100")
        // No LOG_FORMAT: piped stderr must choose JSON by itself.
        .env_remove("LOG_FORMAT")
        .output()
        .unwrap();
    assert!(out.status.success());
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(!logs.contains("\x1b["), "no drawing when piped: {logs}");
    let batches: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON log lines"))
        .filter(|v| v["message"] == "batch committed" && v["service"] == "PERSON")
        .collect();
    assert_eq!(batches.len(), 3, "250 entities in batches of 100: {logs}");
    let first = &batches[0];
    assert_eq!(first["since"], 0);
    assert_eq!(first["entities"], 100);
    for field in ["ordinal", "chunks", "fetch_ms", "ack_ms", "batch"] {
        assert!(first[field].is_u64(), "{field} in {first}");
    }
    assert_eq!(batches[1]["since"], first["ordinal"], "ranges follow on");
    assert_eq!(
        batches[2]["ordinal"].as_i64(),
        env.fake.greatest_ordinal("PERSON")
    );

    let store = env.store().await;
    store.reset(&service("PERSON")).await.unwrap();
    store.reset(&service("COUNTRY")).await.unwrap();
    // No LOG_FORMAT: on a terminal the logs are text, not JSON.
    let inner = format!("{BIN} once --service PERSON --service COUNTRY");
    let out = env
        .env_command("script", &["-qec", &inner, "/dev/null"])
        .env("FETCH_AMOUNT", "100")
        .env("TERM", "xterm")
        .env_remove("LOG_FORMAT")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("batch committed") && !screen.contains("\"message\":\"batch committed\""),
        "text logs on a terminal: {screen:?}"
    );
    assert!(
        screen.contains("\r\x1b[2K"),
        "the line is redrawn: {screen:?}"
    );
    let summary = |id: &str| {
        screen
            .split(['\r', '\n'])
            .map(|l| l.trim_start_matches("\x1b[2K"))
            .rfind(|l| l.starts_with(id) && l.contains(" ok "))
            .unwrap_or_else(|| panic!("no summary line for {id}: {screen:?}"))
            .to_owned()
    };
    let person = summary("PERSON");
    assert!(person.contains("250 entities"), "{person}");
    assert!(
        person.contains(&format!(
            "ordinal {}",
            env.fake.greatest_ordinal("PERSON").unwrap()
        )),
        "{person}"
    );
    assert!(person.contains("dead letters 0"), "{person}");
    assert!(person.contains("/s"), "{person}");
    summary("COUNTRY");
}

/// Whether `text` holds an ANSI colour sequence (`ESC [ 1;32 m`), as
/// opposed to the progress line's `ESC [2K`.
fn coloured(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|after| {
        after
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == ';')
            .starts_with('m')
    })
}

/// Text logs are coloured on a terminal only: a pty (util-linux `script`)
/// gets colours, unless `NO_COLOR` is set to something (empty counts as
/// unset, as no-color.org says); `LOG_FORMAT=text` into a pipe gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colours_only_on_a_terminal_and_never_with_no_color() {
    let env = Env::start(20).await;
    let inner = format!("{BIN} once --service COUNTRY --progress never");
    let on_a_pty = |no_color: Option<&str>| {
        let mut cmd = env.env_command("script", &["-qec", &inner, "/dev/null"]);
        cmd.env("TERM", "xterm").env_remove("LOG_FORMAT");
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        let out = cmd.output().unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{screen}");
        assert!(screen.contains("service finished"), "{screen:?}");
        screen
    };
    let screen = on_a_pty(None);
    assert!(coloured(&screen), "a terminal gets colours: {screen:?}");
    let screen = on_a_pty(Some(""));
    assert!(coloured(&screen), "an empty NO_COLOR is unset: {screen:?}");
    let screen = on_a_pty(Some("1"));
    assert!(!coloured(&screen), "NO_COLOR=1: {screen:?}");

    let out = env
        .command(&["once", "--service", "COUNTRY"])
        .env("LOG_FORMAT", "text")
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    assert!(logs.contains("service finished"), "{logs}");
    assert!(!coloured(&logs), "text into a pipe: {logs:?}");
}

/// A storm of garbage feedback during a run is told in summary lines (at
/// most one per 10 s per service, counts by reason) and on the service's
/// `service finished` line, not in a line per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feedback_storm_is_summarised_not_logged_per_message() {
    let env = Env::start(2000).await;
    env.consumer.set_latency(Duration::from_millis(10));
    let nats = async_nats::connect(env.nats.url()).await.unwrap();
    let noise = tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            for _ in 0..20 {
                let _ = nats
                    .publish("SCHEDULER_STATUS_CHANNEL", "not json".into())
                    .await;
                sent += 1;
            }
            let _ = nats.flush().await;
            if sent >= 100_000 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let started = std::time::Instant::now();
    let out = env
        .command(&["once", "--service", "PERSON"])
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap();
    let wall = started.elapsed();
    noise.abort();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    let events = json_events(&logs);
    let malformed_in = |text: &str| -> u64 {
        text.split(' ')
            .filter_map(|kv| kv.strip_prefix("malformed="))
            .map(|n| n.parse::<u64>().unwrap())
            .sum()
    };
    let summaries: Vec<&serde_json::Value> = events
        .iter()
        .filter(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("feedback ignored"))
        })
        .collect();
    let finished = events
        .iter()
        .find(|v| v["message"] == "service finished")
        .expect("a service finished line");
    let told: u64 = summaries
        .iter()
        .map(|v| malformed_in(v["ignored"].as_str().unwrap_or("")))
        .sum::<u64>()
        + malformed_in(finished["feedback_ignored"].as_str().unwrap_or(""));
    assert!(
        told >= 100,
        "the storm was counted: {told} in {summaries:?} and {finished}"
    );
    let allowed = 1 + (wall.as_secs() / 10) as usize;
    assert!(
        !summaries.is_empty() && summaries.len() <= allowed,
        "{} summary lines in {wall:?}",
        summaries.len()
    );
    assert_eq!(
        summaries[0]["level"], "WARN",
        "malformed feedback is a warning"
    );
    assert!(
        events.len() < 200,
        "no line per message: {} log lines for {told} messages",
        events.len()
    );
    env.assert_delivered("PERSON", &[]);
}

/// A NATS restart and a Redis restart during a run are each told in two
/// WARN lines, when the outage begins and when it ends (with how long it
/// lasted), however many operations failed in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outage_is_logged_once_when_it_begins_and_once_when_it_ends() {
    let mut env = Env::start(1500).await;
    env.consumer.set_latency(Duration::from_millis(5));
    let child = env
        .command(&["once", "--service", "PERSON", "--service", "ATTAINMENT"])
        .env("LOG_FORMAT", "json")
        .env("PANIC_TIMEOUT", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output());
    env.bounce_both_mid_import(Some(Duration::from_millis(30)))
        .await;
    let out = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    let events = json_events(&logs);
    for system in ["NATS", "Redis"] {
        let with = |prefix: &str| -> Vec<&serde_json::Value> {
            events
                .iter()
                .filter(|v| {
                    v["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with(&format!("{system} {prefix}")))
                })
                .collect()
        };
        let (began, ended) = (with("unreachable"), with("reachable again"));
        assert_eq!(
            began.len(),
            1,
            "{system}: one line when it went away: {logs}"
        );
        assert_eq!(
            ended.len(),
            1,
            "{system}: one line when it came back: {logs}"
        );
        assert_eq!(began[0]["level"], "WARN");
        let lasted = ended[0]["outage_ms"].as_u64().expect("outage_ms");
        // NATS tells of the dropped connection at once, so its outage spans
        // the server's whole absence. Redis is seen only when an operation
        // or a pooled connection fails, which may be late in the absence
        // (services side by side may have nothing to commit then).
        if system == "NATS" {
            assert!(
                lasted >= 250,
                "{system} was away at least the 300 ms sleep: {lasted}"
            );
        }
    }
    for id in ["PERSON", "ATTAINMENT"] {
        env.assert_delivered(id, &[]);
    }
}

/// NATS_STREAM_REPLICAS asks for more replicas than the existing stream
/// has: the importer uses the stream as it is and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_with_fewer_replicas_is_used_with_a_warning() {
    let env = Env::start(50).await;
    let first = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let store = env.store().await;
    store.reset(&service("PERSON")).await.unwrap();
    let out = env
        .command(&["once", "--service", "PERSON"])
        .env("NATS_STREAM_REPLICAS", "3")
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    let warned: Vec<serde_json::Value> = json_events(&logs)
        .into_iter()
        .filter(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("existing stream has fewer replicas"))
        })
        .collect();
    assert_eq!(warned.len(), 1, "{logs}");
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["replicas"], 1);
    assert_eq!(warned[0]["asked"], 3);
    env.assert_delivered("PERSON", &[]);
}
