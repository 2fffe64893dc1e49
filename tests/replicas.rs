//! Safe replicas: several `sis-importer run` processes against one Redis;
//! the lease lets exactly one import, and a survivor takes over from a
//! killed holder from the committed ordinals.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use sis_importer::config::Secret;
use sis_importer::store::OrdinalStore;

/// A `run` daemon of instance `instance` (`INSTANCE_ID`: the test's
/// daemons share one host, so the default, the host name, would make them
/// one instance).
fn daemon(env: &Env, config: &std::path::Path, instance: &str) -> Child {
    let mut cmd = env.command(&["run", "--config"]);
    cmd.arg(config)
        .env("SERVICES", "PERSON")
        .env("INSTANCE_ID", instance)
        .env("CRON", "0 0 0 1 1 *")
        .env("PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn lease_file() -> tempfile::NamedTempFile {
    lease_file_with_ttl(3)
}

fn lease_file_with_ttl(secs: u64) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("lease_ttl_secs = {secs}\n")).unwrap();
    file
}

/// Polls `check` every 100 ms for up to `limit`; whether it held.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_import_each_change_once() {
    two_daemons_on_one_host_import_each_change_once("a", "b").await;
}

/// Two replicas that share a host name share the default `INSTANCE_ID`:
/// neither may take the other's lease, both being alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_with_one_instance_id_import_each_change_once() {
    two_daemons_on_one_host_import_each_change_once("a", "a").await;
}

async fn two_daemons_on_one_host_import_each_change_once(first: &str, second: &str) {
    let env = Env::start(600).await;
    env.consumer.set_latency(Duration::from_millis(5));
    let config = lease_file();
    let mut a = daemon(&env, config.path(), first);
    let mut b = daemon(&env, config.path(), second);
    assert!(
        env.wait_until_imported("PERSON", Duration::from_secs(30))
            .await,
        "one of them imported everything"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    terminate(&mut a);
    terminate(&mut b);
    let received = env.consumer.received();
    assert_eq!(
        entities_of(&received, "PERSON"),
        600,
        "each change delivered once, not once per replica"
    );
    assert_eq!(received.per_service["PERSON"].execution_hashes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivor_takes_over_from_a_killed_lease_holder() {
    let env = Env::start(3000).await;
    env.consumer.set_latency(Duration::from_millis(10));
    let config = lease_file();
    let mut a = daemon(&env, config.path(), "a");
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), |r| entities_of(r, "PERSON") >= 300)
            .await
    );
    let mut b = daemon(&env, config.path(), "b");
    let store = OrdinalStore::connect(&Secret::new(env.redis.url()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let key = sis_importer::lease::lease_key();
    let holder_a = store.lease_holder(&key).await.unwrap();
    assert!(holder_a.is_some(), "a imports under the lease");
    a.kill().unwrap();
    a.wait().unwrap();
    // b takes over once the lease (3 s) has expired: it polls every ttl/3,
    // so within ~4 s; 10 s leaves room for a loaded CI machine.
    let killed = std::time::Instant::now();
    let mut holder = holder_a.clone();
    while killed.elapsed() < Duration::from_secs(10) && holder == holder_a {
        tokio::time::sleep(Duration::from_millis(100)).await;
        holder = store.lease_holder(&key).await.unwrap();
        if holder.is_none() {
            holder = holder_a.clone();
        }
    }
    assert_ne!(holder, holder_a, "b took the lease within the lease time");
    let killed_at = store.ordinal(&service("PERSON")).await.unwrap();
    assert!(
        killed_at < env.fake.greatest_ordinal("PERSON"),
        "killed mid-run"
    );
    env.consumer.set_latency(Duration::ZERO);
    let greatest = env.fake.greatest_ordinal("PERSON");
    let started = std::time::Instant::now();
    let mut done = false;
    while started.elapsed() < Duration::from_secs(60) {
        if store.ordinal(&service("PERSON")).await.unwrap() == greatest {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "the survivor finished the import");
    terminate(&mut b);
    env.assert_delivered("PERSON", &[]);
}

/// An instance whose lease was taken over commits nothing more and starts
/// no further service; it does not release the new holder's lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lease_commits_nothing_and_stops() {
    use sis_importer::importer::ServiceOutcome;
    use sis_importer::lease::{lease_key, Lease};
    use sis_importer::shutdown::Shutdown;

    let env = Env::start(120).await;
    let config = env.config();
    let side_by_side = config.service_concurrency > 1;
    let importer = env.importer(config).await;
    let lease = Lease::new(importer.io.store.clone(), Duration::from_secs(30), "test");
    assert!(lease.try_acquire().await.unwrap());
    // Another replica takes the lease (as after a long pause of this one).
    let redis = redis::Client::open(env.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(lease_key())
        .arg("thief")
        .arg("PX")
        .arg(30_000)
        .query_async(&mut conn)
        .await
        .unwrap();

    let summary = lease
        .while_held(
            &importer,
            importer.run(&services(&["PERSON", "ORGANISATION"]), Shutdown::never()),
        )
        .await
        .unwrap();
    let person = &summary.services[0];
    assert_eq!(person.result, ServiceOutcome::Failed, "{person:?}");
    assert!(
        person.error.as_deref().unwrap_or("").contains("lease"),
        "{person:?}"
    );
    let organisation = &summary.services[1];
    if side_by_side {
        // Already under way beside PERSON: refused at its first commit.
        assert_eq!(
            organisation.result,
            ServiceOutcome::Failed,
            "{organisation:?}"
        );
        assert!(organisation
            .error
            .as_deref()
            .unwrap_or("")
            .contains("lease"));
    } else {
        assert_eq!(organisation.result, ServiceOutcome::Interrupted);
    }
    for id in ["PERSON", "ORGANISATION"] {
        assert_eq!(env.ordinal(&importer, id).await, None, "{id}: no commit");
    }
    let holder: Option<String> = redis::cmd("GET")
        .arg(lease_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        holder.as_deref(),
        Some("thief"),
        "not released by the loser"
    );
}

/// A restarted instance (same `INSTANCE_ID`) takes its own unexpired lease
/// back at once and finishes the import; another instance, waiting beside
/// it, still waits for the 30 s expiry and never gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_takes_its_own_lease_back_at_once() {
    let env = Env::start(3000).await;
    env.consumer.set_latency(Duration::from_millis(10));
    let config = lease_file_with_ttl(30);
    let mut first = daemon(&env, config.path(), "a");
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), |r| entities_of(r, "PERSON") >= 300)
            .await
    );
    let mut other = daemon(&env, config.path(), "b");
    let store = OrdinalStore::connect(&Secret::new(env.redis.url()))
        .await
        .unwrap();
    let key = sis_importer::lease::lease_key();
    let before = store.lease_holder(&key).await.unwrap().expect("a holds it");
    assert!(before.starts_with("a ("), "{before}");
    first.kill().unwrap();
    first.wait().unwrap();
    let restarted_at = std::time::Instant::now();
    let mut again = daemon(&env, config.path(), "a");
    env.consumer.set_latency(Duration::ZERO);
    let taken = eventually(Duration::from_secs(10), async || {
        let holder = store.lease_holder(&key).await.unwrap();
        holder.is_some_and(|h| h.starts_with("a (") && h != before)
    })
    .await;
    assert!(taken, "the restarted instance took its lease back");
    assert!(
        restarted_at.elapsed() < Duration::from_secs(20),
        "well before the 30 s lease expired"
    );
    let greatest = env.fake.greatest_ordinal("PERSON");
    let mut b_held = false;
    let done = eventually(Duration::from_secs(60), async || {
        // The holder first: once the import is done, b may take the lease
        // legitimately (its own run then finds nothing new).
        let holder = store.lease_holder(&key).await.unwrap();
        let finished = store.ordinal(&service("PERSON")).await.unwrap() == greatest;
        b_held |= !finished && holder.is_some_and(|h| h.starts_with("b ("));
        finished
    })
    .await;
    assert!(done, "the restarted instance finished the import");
    assert!(
        !b_held,
        "the other instance waited: the lease had not expired"
    );
    terminate(&mut again);
    terminate(&mut other);
    env.assert_delivered("PERSON", &[]);
}

/// An operator's `once` on the host where the daemon runs, with the same
/// (default) `INSTANCE_ID`: it waits for the daemon's run, says who holds
/// the lease, and imports nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_beside_the_daemon_on_one_host_waits_for_its_run() {
    let env = Env::start(2000).await;
    // 200 chunks at 100 ms on two instances: the daemon's run lasts 10 s.
    env.consumer.set_latency(Duration::from_millis(100));
    let config = lease_file_with_ttl(30);
    let mut daemon = daemon(&env, config.path(), "node-1");
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(60), |r| entities_of(r, "PERSON") >= 200)
            .await
    );
    let store = env.store().await;
    let key = sis_importer::lease::lease_key();
    let daemons = store.lease_holder(&key).await.unwrap().expect("held");
    let once = env
        .command(&["once", "--service", "PERSON", "--config"])
        .arg(config.path())
        .env("INSTANCE_ID", "node-1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        store.lease_holder(&key).await.unwrap().as_deref(),
        Some(daemons.as_str()),
        "once did not take the live daemon's lease"
    );
    env.consumer.set_latency(Duration::ZERO);
    let out = tokio::task::spawn_blocking(move || once.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("another live process of this INSTANCE_ID holds the import lease")
            && logs.contains(&daemons),
        "it said who holds the lease: {logs}"
    );
    terminate(&mut daemon);
    assert_eq!(
        entities_of(&env.consumer.received(), "PERSON"),
        2000,
        "each change delivered once"
    );
}

/// A container restarted in its pod has the same host name and pid 1
/// again, in a new pid namespace: its predecessor's lease is taken back
/// once it missed a renewal, long before it expires, but never while a
/// live twin (same host name, same pid, another namespace) renews it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_containers_lease_is_taken_back_only_if_not_renewed() {
    use sis_importer::lease::{lease_key, Holder, Lease};
    let env = Env::start(5).await;
    let store = env.store().await;
    let ttl = Duration::from_secs(6);
    let mut predecessor = Holder::this_process("pod-a");
    predecessor.pid_ns += 1;
    let planted = predecessor.owner("0ldc0de0");
    let url = env.redis.url();
    let plant = move |holder: String| {
        let url = url.clone();
        async move {
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let _: () = redis::cmd("SET")
                .arg(lease_key())
                .arg(holder)
                .arg("PX")
                .arg(6000)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    };
    // A live twin renews every second: the lease is never taken from it.
    plant(planted.clone()).await;
    let renewing = tokio::spawn({
        let planted = planted.clone();
        let plant = plant.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                plant(planted.clone()).await;
            }
        }
    });
    let lease = Lease::new(store.clone(), ttl, "pod-a");
    let (_trigger, shutdown) = sis_importer::shutdown::channel();
    let mut waiting = shutdown.clone();
    let took = tokio::time::timeout(Duration::from_secs(8), lease.acquire(&mut waiting)).await;
    assert!(took.is_err(), "a renewing twin keeps its lease");
    renewing.abort();
    // A predecessor that stopped renewing loses it after one renewal
    // interval (2 s + margin), not at its expiry (6 s).
    plant(planted.clone()).await;
    let started = std::time::Instant::now();
    let mut waiting = shutdown.clone();
    assert!(lease.acquire(&mut waiting).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "taken back before the lease expired: {:?}",
        started.elapsed()
    );
    assert_eq!(
        store.lease_holder(&lease_key()).await.unwrap().as_deref(),
        Some(lease.owner())
    );
}
