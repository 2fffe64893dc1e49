//! `sis-importer check`: one line per check, exit 1 at the first failure
//! of configuration, NATS or Redis (nothing checked after it); a Sisu line
//! per service, every one reported.

mod common;

use common::*;
use sis_testkit::servers::NatsOptions;

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

/// The lines before Sisu's when all pass.
const BEFORE_SISU: [&str; 6] = [
    "ok config",
    "ok cron",
    "ok nats",
    "ok payload",
    "ok redis",
    "ok consumers",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_with_one_sisu_request_per_export_service() {
    let env = Env::start(30).await;
    let (code, lines) = check(&env, &[]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let names = names(&lines);
    assert_eq!(names[..6], BEFORE_SISU, "{lines:#?}");
    let catalogue = sis_importer::catalogue::builtin();
    assert_eq!(names[6..], vec!["ok sisu"; catalogue.len()], "{lines:#?}");
    for (service, line) in catalogue.iter().zip(&lines[6..]) {
        assert!(
            line.starts_with(&format!("ok    sisu      {}: ", service.id)),
            "catalogue order: {line}"
        );
        // No stream yet: the importer creates it; nobody reads it yet.
        assert!(
            line.ends_with(&format!(
                "; {}: captured once the importer creates stream SIS_IMPORTER, no durable consumer reads it",
                service.subject
            )),
            "{line}"
        );
        let asked = env.fake.requests(&service.id);
        match service.source.is_export() {
            true => assert_eq!(asked, 1, "{}: one request", service.id),
            false => assert!(asked <= 1, "{}: {asked} requests", service.id),
        }
    }
    assert!(
        lines[6].starts_with("ok    sisu      PERSON: 1 entity; "),
        "{lines:#?}"
    );
    let country = lines.iter().find(|l| l.contains(" COUNTRY: ")).unwrap();
    assert!(
        country.contains("Urn answers (asked once per kind, for STUDY_LEVEL)"),
        "{country}"
    );
    assert_eq!(
        env.fake.requests("COUNTRY"),
        0,
        "a whole-set kind is asked once"
    );
    let cron = &lines[1];
    assert!(
        cron.starts_with("ok    cron      \"0 0 * * * *\" in Europe/Helsinki: next runs "),
        "{cron}"
    );
    assert_eq!(
        cron.matches(":00:00 EE").count(),
        3,
        "three runs, at the hour: {cron}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_service_fails_its_own_line_and_every_other_service_is_still_asked() {
    let env = Env::start(5).await;
    env.fake.faults().forbid("PLAN");
    env.fake.faults().fail_next("ATTAINMENT", 404, 1);
    let (code, lines) = check(&env, &[]);
    assert_eq!(code, Some(1), "{lines:#?}");
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 2, "{lines:#?}");
    assert!(
        failed[0].starts_with("FAIL  sisu      ATTAINMENT: Sisu answered HTTP 404"),
        "{lines:#?}"
    );
    assert!(
        failed[1].starts_with("FAIL  sisu      PLAN: Sisu answered 403 Forbidden for http://")
            && failed[1].ends_with(
                "the credentials lack this API; ask Sisu's administrators for access, or add \
                 PLAN to disabled_services"
            ),
        "{lines:#?}"
    );
    // Services after the failures were asked and reported.
    for after in ["PERSON_GROUP", "DISCLOSURE", "CURRICULUM_PERIOD"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("ok    sisu      {after}: "))),
            "{after}: {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 6 + 26, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_line_names_the_durable_consumers_reading_its_subject() {
    let env = Env::start(5).await;
    // The importer creates the stream; the reference consumer's durables
    // then read every subject.
    let out = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (code, lines) = check(&env, &[("SERVICES", "PERSON,ORGANISATION")]);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(
        lines[6..],
        [
            "ok    sisu      PERSON: 1 entity; ORI_PERSON_CHANNEL captured by SIS_IMPORTER, \
             read by reference_PERSON",
            "ok    sisu      ORGANISATION: 1 entity; KORI_ORGANISATION_CHANNEL captured by \
             SIS_IMPORTER, read by reference_ORGANISATION",
        ],
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_payload_below_max_chunk_bytes_is_a_warning_naming_both() {
    let env = Env::start_with(
        5,
        NatsOptions {
            max_payload: Some(64 * 1024),
            ..Default::default()
        },
    )
    .await;
    let (code, lines) = check(&env, &[("SERVICES", "PERSON")]);
    assert_eq!(
        code,
        Some(0),
        "a warning does not fail the check: {lines:#?}"
    );
    assert_eq!(
        lines[3],
        "warn  payload   MAX_CHUNK_BYTES (900000) is above the NATS server's max_payload \
         (65536): chunks are capped at 65536 bytes; lower MAX_CHUNK_BYTES to at most 65536, \
         or raise max_payload in the nats-server configuration",
        "{lines:#?}"
    );
    let (_, lines) = check(
        &env,
        &[("SERVICES", "PERSON"), ("MAX_CHUNK_BYTES", "60000")],
    );
    assert_eq!(
        lines[3],
        "ok    payload   chunks of at most 60000 bytes (MAX_CHUNK_BYTES) fit the server's \
         max_payload (65536)",
        "{lines:#?}"
    );
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
    assert_eq!(
        names(&lines),
        ["ok config", "ok cron", "FAIL nats"],
        "{lines:#?}"
    );
    let missing = lines[2]
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
        [
            "ok config",
            "ok cron",
            "ok nats",
            "ok payload",
            "FAIL redis"
        ],
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_sisu_fails_every_line_under_its_url_and_says_which_setting() {
    let env = Env::start(5).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, lines) = check(&env, &[("SIS_API_URL", &url)]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(names(&lines)[..6], BEFORE_SISU, "{lines:#?}");
    for line in &lines[6..] {
        // URN code books and KORI public live under KORI_PUBLIC_API_URL.
        let elsewhere = [
            "STUDY_LEVEL",
            "COUNTRY",
            "CURRICULUM_PERIOD",
            "DEGREE_TITLE",
        ]
        .iter()
        .any(|id| line.contains(&format!(" {id}: ")));
        if line.contains("Urn answers") || elsewhere {
            assert!(line.starts_with("ok    sisu "), "{line}");
            continue;
        }
        assert!(line.starts_with("FAIL  sisu "), "{line}");
        assert!(line.contains(&url), "{line}");
        assert!(
            line.ends_with("; check SIS_API_URL and that this host may reach it"),
            "{line}"
        );
        assert!(
            !line.contains("attempts"),
            "one attempt, not 'still failing': {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_fails_the_nats_check_and_redis_is_not_asked() {
    let mut env = Env::start(5).await;
    env.nats.kill();
    let (code, lines) = check(&env, &[]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(
        names(&lines),
        ["ok config", "ok cron", "FAIL nats"],
        "{lines:#?}"
    );
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
