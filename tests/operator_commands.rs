//! The operator's commands as processes: `status` (header, table and
//! JSON), `reset` (named, all after a confirmation, set to an ordinal,
//! refused under a held lease unless forced) and `forbidden clear`.

mod common;

use std::time::Duration;

use common::*;

/// PERSON (with one poison entity), LOCATION and a forbidden ORGANISATION
/// imported by `once`, which exits 1 for the forbidden one.
async fn imported(entities: u64) -> Env {
    let env = Env::start(entities).await;
    env.fake.faults().poison("PERSON", 5);
    env.fake.faults().forbid("ORGANISATION");
    let out = env
        .command(&[
            "once",
            "--service",
            "PERSON",
            "--service",
            "LOCATION",
            "--service",
            "ORGANISATION",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "ORGANISATION is forbidden");
    env.fake.faults().clear();
    env
}

/// Sets the import lease as another instance would hold it.
async fn hold_lease(env: &Env, holder: Option<&str>) {
    let redis = redis::Client::open(env.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = match holder {
        Some(_) => redis::cmd("SET"),
        None => redis::cmd("DEL"),
    };
    cmd.arg(sis_importer::lease::lease_key());
    if let Some(holder) = holder {
        cmd.arg(holder);
    }
    let _: () = cmd.query_async(&mut conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_table_shows_ordinal_window_result_forbidden_and_dead_letters() {
    let env = imported(20).await;
    let out = env.command(&["status"]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let mut lines = table.lines();
    assert_eq!(
        lines.next(),
        Some("run:       none under way (import lease free)"),
        "{table}"
    );
    let next = lines.next().unwrap();
    assert!(
        next.starts_with("next tick: ") && next.contains("Europe/Helsinki"),
        "{next}"
    );
    let header = table.lines().find(|l| l.starts_with("SERVICE")).unwrap();
    for column in [
        "SERVICE",
        "ORDINAL",
        "SCHEDULED/UPDATED",
        "LAST RUN",
        "DURATION",
        "RESULT",
        "LAST SUCCESS",
        "FORBIDDEN",
        "FEEDBACK",
        "DEAD",
        "ERROR",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = |id: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} in {table}"));
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let person = row("PERSON");
    let greatest = env.fake.greatest_ordinal("PERSON").unwrap().to_string();
    assert!(person.contains(&greatest), "{person:?}");
    // Nothing published and uncommitted is left in the window (SPEC §5).
    assert!(
        person.contains(&"0/0".to_owned()),
        "window counters: {person:?}"
    );
    assert!(person.contains(&"ok".to_owned()), "{person:?}");
    assert!(
        person.contains(&"precise".to_owned()),
        "the reference consumer names its chunks: {person:?}"
    );
    assert_eq!(
        person.last().map(String::as_str),
        Some("1"),
        "dead letters: {person:?}"
    );
    let organisation = row("ORGANISATION");
    assert!(
        organisation.contains(&"forbidden".to_owned()),
        "{organisation:?}"
    );
    assert!(organisation.contains(&"yes".to_owned()), "{organisation:?}");
    assert!(
        organisation.last().is_some_and(|e| e.contains("403")),
        "the error, shortened: {organisation:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_has_a_row_per_service_with_its_last_run() {
    let env = imported(20).await;
    let out = env.command(&["status", "--json"]).output().unwrap();
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 26);
    let person = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "PERSON")
        .unwrap();
    assert_eq!(person["dead_letters"], 1, "{person}");
    assert_eq!(person["last_run"]["result"], "ok", "{person}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_deletes_the_named_ordinals_and_reset_all_the_rest() {
    let env = imported(20).await;
    let store = env.store().await;
    let out = env.command(&["reset", "PERSON"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(store.ordinal(&service("PERSON")).await.unwrap(), None);
    assert!(store.ordinal(&service("LOCATION")).await.unwrap().is_some());
    // No terminal to ask on: --all needs --yes.
    let out = env.command(&["reset", "--all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(store.ordinal(&service("LOCATION")).await.unwrap().is_some());
    let out = env.command(&["reset", "--all", "--yes"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(store.ordinal(&service("LOCATION")).await.unwrap(), None);
}

/// On a terminal (a pty from util-linux `script`) `reset --all` asks, and
/// only `y` resets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_all_on_a_terminal_asks_first() {
    let env = imported(20).await;
    let store = env.store().await;
    // `script` runs the command on a pty and hands what it reads from its
    // own stdin to it: the question is asked on a terminal.
    let on_a_terminal = |answer: &str| {
        let inner = format!("{BIN} reset --all");
        let mut child = env
            .env_command("script", &["-qec", &inner, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{answer}").unwrap();
        child.wait_with_output().unwrap()
    };
    let _ = on_a_terminal("n");
    assert!(
        store.ordinal(&service("LOCATION")).await.unwrap().is_some(),
        "answered no"
    );
    let out = on_a_terminal("y");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("the ordinals of all 26 services"), "{said}");
    assert_eq!(
        store.ordinal(&service("LOCATION")).await.unwrap(),
        None,
        "{said}"
    );
}

/// `status --json` gives the ordinal, `reset --to` sets it back: the next
/// run fetches only what comes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_to_an_ordinal_from_status_json_round_trips() {
    let env = imported(20).await;
    let ordinal_in_status = || {
        let out = env.command(&["status", "--json"]).output().unwrap();
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == "PERSON")
            .unwrap()["ordinal"]
            .as_i64()
    };
    let committed = ordinal_in_status().expect("PERSON has an ordinal");
    let tenth = env.fake.expected("PERSON")[9].ordinal.unwrap();
    let out = env
        .command(&["reset", "PERSON", "--to", &tenth.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(&format!("set PERSON (LATEST_PERSON_ORDINAL) to {tenth}")));
    assert_eq!(ordinal_in_status(), Some(tenth));
    let before = entities_of(&env.consumer.received(), "PERSON");
    let out = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(10), |r| entities_of(r, "PERSON")
                >= before + 9)
            .await
    );
    assert_eq!(ordinal_in_status(), Some(committed));
    // ... and back to where it was: nothing is fetched again.
    let out = env
        .command(&["reset", "PERSON", "--to", &committed.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(ordinal_in_status(), Some(committed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_clear_lets_the_next_run_try_the_service_again() {
    let env = imported(20).await;
    let forbidden_in_status = || {
        let out = env.command(&["status", "--json"]).output().unwrap();
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == "ORGANISATION")
            .unwrap()["forbidden"]
            .as_bool()
    };
    assert_eq!(forbidden_in_status(), Some(true));
    let out = env
        .command(&["forbidden", "clear", "ORGANISATION"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cleared the forbidden mark of ORGANISATION")
    );
    assert_eq!(forbidden_in_status(), Some(false));
    let out = env.command(&["forbidden", "clear"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no forbidden mark to clear"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_refuses_while_another_instance_holds_the_lease_unless_forced() {
    let env = imported(20).await;
    let store = env.store().await;
    hold_lease(&env, Some("pod-b:7:0badf00d")).await;
    let out = env.command(&["reset", "PERSON"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pod-b:7:0badf00d") && err.contains("--force"),
        "names the holder and the way out: {err}"
    );
    assert!(store.ordinal(&service("PERSON")).await.unwrap().is_some());
    let out = env
        .command(&["reset", "PERSON", "--to", "7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--to too");
    let out = env
        .command(&["reset", "--force", "PERSON"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(store.ordinal(&service("PERSON")).await.unwrap(), None);
    hold_lease(&env, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_of_an_unknown_service_fails_naming_it() {
    let env = Env::start(5).await;
    let out = env.command(&["reset", "NOPE"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOPE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reimport_right_after_reset_arrives_again() {
    let env = imported(20).await;
    let before = entities_of(&env.consumer.received(), "PERSON");
    assert!(env
        .command(&["reset", "PERSON"])
        .status()
        .unwrap()
        .success());
    let out = env
        .command(&["once", "--service", "PERSON"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Fresh Nats-Msg-Ids: the stream's duplicate window does not drop them.
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(10), |r| entities_of(r, "PERSON")
                >= before + 20)
            .await
    );
}
