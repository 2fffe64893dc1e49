//! The daemon (`sis-importer run`) as a process: start-up run, one-time
//! services re-armed, cron runs that never overlap, SIGTERM. (The `demo`
//! and `fake-sisu` commands are tested in testkit/tests/commands.rs.)

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use sis_importer::config::Secret;
use sis_importer::store::OrdinalStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_runs_at_start_and_on_schedule_rearms_one_time_services_and_stops_on_sigterm() {
    let env = Env::start(400).await;
    let store = OrdinalStore::connect(&Secret::new(env.redis.url()))
        .await
        .unwrap();
    // COUNTRY was fetched by an earlier process: the daemon must re-arm it.
    store.commit(&service("COUNTRY"), 1, 0, None).await.unwrap();
    store.set_forbidden("PERSON", true).await.unwrap();
    env.consumer.set_latency(Duration::from_millis(40));

    let mut child = env
        .command(&["run"])
        .env("SERVICES", "PERSON,COUNTRY")
        .env("CRON", "* * * * * *")
        .env("PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let all_person = |r: &sis_testkit::consumer::Received| {
        entities_of(r, "PERSON") >= 400 && entities_of(r, "COUNTRY") > 0
    };
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), all_person)
            .await,
        "start-up run imports, COUNTRY re-armed, PERSON no longer forbidden"
    );
    env.consumer.set_latency(Duration::ZERO);
    env.fake.add_generation(25);
    assert!(
        env.wait_until_imported("PERSON", Duration::from_secs(10))
            .await,
        "a scheduled run imported the new generation"
    );

    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut logs = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status, logs)
    })
    .await
    .unwrap();
    let (status, logs) = status;
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(logs.contains("one-time services re-armed"), "{logs}");
    assert!(
        logs.contains("run skipped"),
        "the slow first run overlapped cron ticks, which were skipped: {logs}"
    );
    env.assert_delivered("PERSON", &[]);
}
