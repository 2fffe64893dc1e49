//! Redis behind Sentinel (`REDIS_URL=redis+sentinel://…`) against a real
//! master, replica and three sentinels ([`RedisSentinelSet`]): an import
//! through the sentinels; a failover mid-import, asked for
//! (`SENTINEL FAILOVER`) and forced (SIGKILL of the master), survived
//! like a Redis restart, with nothing lost, the ordinal never moving back
//! or past an unacknowledged entity, and the lease with one importer
//! throughout; a connection to a demoted master (READONLY) dropped; and
//! the messages for sentinels that do not answer or do not know the
//! master.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sis_importer::config::Secret;
use sis_importer::lease::Lease;
use sis_importer::shutdown::Shutdown;
use sis_importer::store::OrdinalStore;
use sis_testkit::servers::{RedisOptions, RedisSentinelSet, RedisServer};

use common::*;

const SERVICES: [&str; 2] = ["PERSON", "ATTAINMENT"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_through_the_sentinels_delivers_everything_and_check_passes() {
    let env = Env::start(200).await;
    let set = RedisSentinelSet::start()
        .await
        .expect("the Sentinel set starts");
    let mut config = env.config();
    config.redis_url = Secret::new(set.url());
    let importer = env.importer(config).await;
    run_ok(&importer, &SERVICES).await;
    for id in SERVICES {
        env.assert_delivered(id, &[]);
        assert_eq!(
            env.ordinal(&importer, id).await,
            env.fake.greatest_ordinal(id)
        );
    }
    // The ordinals are on the master the sentinels name.
    let master = set.master_port().await.unwrap();
    let direct = OrdinalStore::connect(&Secret::new(format!("redis://127.0.0.1:{master}/")))
        .await
        .unwrap();
    assert_eq!(
        direct.ordinal(&service("PERSON")).await.unwrap(),
        env.fake.greatest_ordinal("PERSON")
    );

    let out = env
        .command(&["check"])
        .env("REDIS_URL", set.url())
        .output()
        .expect("the importer runs");
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{lines}");
    assert!(lines.contains("ok    redis     ping answered"), "{lines}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_mid_import_loses_nothing_and_never_moves_an_ordinal_back() {
    fail_over_mid_import(Fault::SentinelFailover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_failed_over_mid_import_loses_nothing_and_never_moves_an_ordinal_back() {
    fail_over_mid_import(Fault::KillMaster).await;
}

/// How the master goes.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `SENTINEL FAILOVER mymaster`: promoted replica, old master demoted.
    SentinelFailover,
    /// SIGKILL of the master; the sentinels see it down after 1 s and
    /// promote the replica.
    KillMaster,
}

/// An import of PERSON then ATTAINMENT under the lease, through the
/// sentinels; `fault` strikes once 300 PERSON entities have arrived. A
/// watcher polls the ordinals through the sentinels, a rival instance
/// tries to take the lease all along.
async fn fail_over_mid_import(fault: Fault) {
    let env = Env::start(1500).await;
    env.consumer.set_latency(Duration::from_millis(5));
    let mut set = RedisSentinelSet::start()
        .await
        .expect("the Sentinel set starts");
    let mut config = env.config();
    config.redis_url = Secret::new(set.url());
    config.panic_timeout = Duration::from_secs(3);
    let importer = env.importer(config).await;

    // Longer than a failover takes: the lease must outlive it.
    let ttl = Duration::from_secs(10);
    let lease = Lease::new(importer.io.store.clone(), ttl, "sentinel-test");
    assert!(lease.try_acquire().await.unwrap());
    let rival = Lease::new(set_store(&set).await, ttl, "rival");
    let stop = Arc::new(AtomicBool::new(false));
    let rival_won = spawn_rival(rival, stop.clone());
    let watch = Arc::new(Watch::default());
    let watcher = spawn_watcher(
        Watched {
            services: &SERVICES,
            expected: Arc::new(served_versions(&env.fake, &SERVICES)),
            exempt: Arc::default(),
            probes: vec![env.consumer.probe()],
        },
        set.url(),
        stop.clone(),
        watch.clone(),
    );

    let run = {
        let importer = importer.clone();
        tokio::spawn(async move {
            let services = services(&SERVICES);
            let work = importer.run(&services, Shutdown::never());
            lease.while_held(&importer, work).await
        })
    };
    assert!(
        env.consumer
            .wait_until(Duration::from_secs(30), |r| entities_of(r, "PERSON") >= 300)
            .await
    );
    let old = set.master_port().await.unwrap();
    let struck = Instant::now();
    match fault {
        Fault::SentinelFailover => set.failover().await.unwrap(),
        Fault::KillMaster => set.node_mut(old).kill(),
    }
    let new = set.wait_for_new_master(old).await.unwrap();
    let failed_over = struck.elapsed();

    let summary = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the import finishes")
        .unwrap()
        .expect("the run starts");
    assert!(summary.success, "{summary:#?}");
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    assert_eq!(
        rival_won.await.unwrap(),
        0,
        "the rival never held the lease"
    );

    for id in SERVICES {
        env.assert_delivered(id, &[]);
        assert_eq!(
            env.ordinal(&importer, id).await,
            env.fake.greatest_ordinal(id),
            "{id}: committed on the new master"
        );
    }
    let direct = OrdinalStore::connect(&Secret::new(format!("redis://127.0.0.1:{new}/")))
        .await
        .unwrap();
    assert_eq!(
        direct.ordinal(&service("ATTAINMENT")).await.unwrap(),
        env.fake.greatest_ordinal("ATTAINMENT")
    );
    let violations = watch.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{fault:?}: {violations:#?}");
    let polls = watch.polls.load(Ordering::Relaxed);
    assert!(polls > 20, "the watcher polled ({polls} times)");
    eprintln!("{fault:?}: failed over in {failed_over:?}; watcher polled {polls} times");
}

/// A store on the set, through its sentinels.
async fn set_store(set: &RedisSentinelSet) -> OrdinalStore {
    OrdinalStore::connect(&Secret::new(set.url()))
        .await
        .expect("the sentinels answer")
}

/// A master demoted under a live connection answers writes with READONLY
/// (the connection stays open); the store drops that connection and its
/// retry connects anew, reaching the new master. Here without sentinels,
/// so the moment is exact: a proxy stands for "where the master is", and
/// is pointed at the promoted replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_a_demoted_master_is_dropped_and_the_write_goes_to_the_new_one() {
    let old = RedisServer::start().await.unwrap();
    let new = RedisServer::start_with(RedisOptions {
        replica_of: Some(old.port()),
        ..RedisOptions::default()
    })
    .await
    .unwrap();
    let proxy = MovableProxy::start(old.port()).await;
    let store = OrdinalStore::connect(&Secret::new(format!("redis://{}/", proxy.addr)))
        .await
        .unwrap();
    let person = service("PERSON");
    assert_eq!(store.commit(&person, 10, 0, None).await.unwrap(), 10);

    // The failover by hand: promote the replica, send new connections to
    // it, demote the old master (whose clients stay connected).
    let connect_to = |port| async move {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    };
    let mut to_new = connect_to(new.port()).await;
    let mut to_old = connect_to(old.port()).await;
    assert!(
        replicated(&mut to_new, &person.ordinal_key).await,
        "the replica has the ordinal"
    );
    let () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut to_new)
        .await
        .unwrap();
    proxy.point_at(new.port());
    let () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(new.port())
        .query_async(&mut to_old)
        .await
        .unwrap();

    let started = Instant::now();
    let committed =
        tokio::time::timeout(Duration::from_secs(5), store.commit(&person, 20, 0, None))
            .await
            .expect("the write does not wait out the retries on the demoted master");
    assert_eq!(committed.unwrap(), 20);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let on_new: Option<i64> = redis::cmd("GET")
        .arg(&person.ordinal_key)
        .query_async(&mut to_new)
        .await
        .unwrap();
    assert_eq!(on_new, Some(20), "written to the new master");
}

/// Whether the replica behind `conn` has `key` yet.
async fn replicated(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let value: Option<i64> = redis::cmd("GET").arg(key).query_async(conn).await.unwrap();
        if value.is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_that_do_not_answer_or_do_not_know_the_master_are_told_apart() {
    let set = RedisSentinelSet::start()
        .await
        .expect("the Sentinel set starts");
    let failure = |url: String| async move {
        let error = OrdinalStore::connect(&Secret::new(url.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} connects"));
        error.to_string()
    };

    let unknown = set.url().replace("/mymaster", "/othermaster");
    let started = Instant::now();
    let message = failure(unknown.replace("://", "://:hunter2@")).await;
    assert!(
        message.contains("monitor no master named \"othermaster\""),
        "{message}"
    );
    assert!(message.contains(&format!("127.0.0.1:{}", set.sentinel_ports()[0])));
    assert!(message.contains("`sentinel monitor`"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a wrong name is not retried"
    );

    // A closed port and a Redis that is not a sentinel: each one's reason.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = set.nodes[0].port();
    let message = failure(format!(
        "redis+sentinel://127.0.0.1:{closed},127.0.0.1:{redis}/mymaster"
    ))
    .await;
    assert!(
        message.contains("no sentinel said where the master \"mymaster\" is"),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{closed} refused the connection")),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{redis} is not a sentinel")),
        "{message}"
    );

    let message = failure("redis+sentinel://127.0.0.1:26379/".into()).await;
    assert!(message.contains("names no master"), "{message}");
    assert!(
        message.contains("redis+sentinel://[[USER]:PASSWORD@]HOST"),
        "{message}"
    );
}

/// A TCP proxy to a port of 127.0.0.1 that can be pointed elsewhere:
/// connections made after `point_at` go to the new port, those made
/// before keep theirs.
struct MovableProxy {
    addr: SocketAddr,
    target: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl MovableProxy {
    async fn start(port: u16) -> MovableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(AtomicU16::new(port));
        let to = target.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let port = to.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        MovableProxy { addr, target, task }
    }

    fn point_at(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }
}

impl Drop for MovableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
