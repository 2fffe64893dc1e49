//! The daemon (`sis-importer run`) as a process: the start-up run re-arms
//! one-time services and clears the forbidden set, cron runs import what is
//! new and never overlap, and SIGTERM ends it with 0. (The `demo` and
//! `fake-sisu` commands are tested in testkit/tests/commands.rs.)

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use sis_testkit::consumer::Received;

/// `run` for PERSON and COUNTRY with a tick every second.
fn daemon(env: &Env) -> Child {
    env.command(&["run"])
        .env("SERVICES", "PERSON,COUNTRY")
        .env("CRON", "* * * * * *")
        .env("PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGTERM, then the exit code and everything the daemon logged.
async fn terminate(child: Child) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || common::terminate(child))
        .await
        .unwrap()
}

fn all_imported(r: &Received) -> bool {
    entities_of(r, "PERSON") >= 400 && entities_of(r, "COUNTRY") > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_run_rearms_one_time_services_and_clears_forbidden() {
    let env = Env::start(400).await;
    let store = env.store().await;
    // COUNTRY was fetched by an earlier process: the daemon must re-arm it.
    store.commit(&service("COUNTRY"), 1, 0, None).await.unwrap();
    store.set_forbidden("PERSON", true).await.unwrap();
    let child = daemon(&env);
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), all_imported)
            .await,
        "start-up run imports COUNTRY again and PERSON, no longer forbidden"
    );
    let (code, logs) = terminate(child).await;
    assert_eq!(code, Some(0), "SIGTERM ends the daemon with 0: {logs}");
    assert!(logs.contains("one-time services re-armed"), "{logs}");
    env.assert_delivered("PERSON", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_runs_import_what_is_new_and_a_tick_during_a_run_is_skipped() {
    let env = Env::start(400).await;
    // A slow first run, so that ticks come while it is under way.
    env.consumer.set_latency(Duration::from_millis(40));
    let child = daemon(&env);
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), all_imported)
            .await
    );
    env.consumer.set_latency(Duration::ZERO);
    env.fake.add_generation(25);
    assert!(
        env.wait_until_imported("PERSON", Duration::from_secs(10))
            .await,
        "a scheduled run imported the new generation"
    );
    let (code, logs) = terminate(child).await;
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("run skipped"),
        "the slow first run overlapped cron ticks, which were skipped: {logs}"
    );
    env.assert_delivered("PERSON", &[]);
}
