//! `sis-importer check`: one line per check, exit 1 at the first failure,
//! nothing checked after it.

mod common;

use common::*;

/// Runs `check` with extra settings; its exit code and its lines.
fn check(env: &Env, settings: &[(&str, &str)]) -> (Option<i32>, Vec<String>) {
    let out = env
        .command(&["check"])
        .envs(settings.iter().copied())
        .output()
        .expect("the importer runs");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.code(), lines)
}

fn names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_against_a_working_setup_with_one_sisu_request_per_source_kind() {
    let env = Env::start(30).await;
    let (code, lines) = check(&env, &[]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let names = names(&lines);
    assert_eq!(
        &names[..4],
        ["ok config", "ok nats", "ok redis", "ok consumers"],
        "{lines:#?}"
    );
    // ORI, KORI, ILMO, OSUVA, URN, GraphQL, KORI public: seven kinds.
    assert_eq!(names[4..], vec!["ok sisu"; 7], "{lines:#?}");
    for kind in [
        "Ori",
        "Kori",
        "Ilmo",
        "Osuva",
        "Urn",
        "Graphql",
        "KoriPublic",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("{kind} answers"))),
            "{kind}: {lines:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_fails_the_config_check_by_name_and_nothing_else_is_tried() {
    let env = Env::start(5).await;
    let (code, lines) = check(&env, &[("FETCH_AMOUNT", "0")]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with("FAIL  config "), "{lines:#?}");
    assert!(lines[0].contains("FETCH_AMOUNT"), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_that_does_not_parse_is_a_failed_config_line_too() {
    let env = Env::start(5).await;
    let (code, lines) = check(&env, &[("FETCH_AMOUNT", "abc")]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with("FAIL  config "), "{lines:#?}");
    assert!(lines[0].contains("FETCH_AMOUNT"), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_missing_a_needed_subject_fails_the_nats_check_naming_it() {
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
    let (code, lines) = check(&env, &[("NATS_STREAM", "NARROW")]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(names(&lines), ["ok config", "FAIL nats"], "{lines:#?}");
    let missing = lines[1]
        .split("does not capture ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default();
    let missing: Vec<&str> = missing.split(", ").collect();
    for needed in [
        "ORI_PERSON_GROUP_CHANNEL",
        "SCHEDULER_STATUS_CHANNEL",
        "POST_UPDATE",
    ] {
        assert!(missing.contains(&needed), "{needed}: {lines:#?}");
    }
    assert!(
        !missing.contains(&"ORI_PERSON_CHANNEL"),
        "not the subject it has: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_the_redis_check_and_sisu_is_not_asked() {
    let mut env = Env::start(5).await;
    env.redis.kill();
    let (code, lines) = check(&env, &[]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(
        names(&lines),
        ["ok config", "ok nats", "FAIL redis"],
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_sisu_fails_the_first_sisu_check() {
    let env = Env::start(5).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, lines) = check(&env, &[("SIS_API_URL", &url)]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(
        names(&lines),
        [
            "ok config",
            "ok nats",
            "ok redis",
            "ok consumers",
            "FAIL sisu"
        ],
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_fails_the_nats_check_and_redis_is_not_asked() {
    let mut env = Env::start(5).await;
    env.nats.kill();
    let (code, lines) = check(&env, &[]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(names(&lines), ["ok config", "FAIL nats"], "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_redelivers_later_than_the_importer_waits_is_a_warning() {
    let env = Env::start(5).await;
    // The importer creates the stream; the reference consumer's durables
    // (ack wait 30 s) then read every subject.
    let out = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (code, lines) = check(&env, &[]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let line = lines.iter().find(|l| l.contains("consumers")).unwrap();
    assert!(
        line.starts_with(
            "ok    consumers 26 of 26 services have a durable consumer; longest ack wait 30 s"
        ),
        "PANIC_TIMEOUT 5 s × UPDATE_RETRY_LIMIT 6 is enough: {lines:#?}"
    );
    let (code, lines) = check(&env, &[("PANIC_TIMEOUT", "2"), ("UPDATE_RETRY_LIMIT", "3")]);
    assert_eq!(
        code,
        Some(0),
        "a warning does not fail the check: {lines:#?}"
    );
    let line = lines.iter().find(|l| l.contains("consumers")).unwrap();
    assert!(line.starts_with("warn  consumers "), "{lines:#?}");
    assert!(
        line.contains("PERSON: reference_PERSON (ack wait 30 s)") && line.contains("(6 s)"),
        "{line}"
    );
}
