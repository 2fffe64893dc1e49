//! The test kit's commands as processes: `demo` on servers of its own
//! unless `--use-env-servers` (and no password printed either way),
//! `fake-sisu` serving pages with the latency, field order and generation
//! asked, and `consumer` in the seed's form surviving a SIGKILL.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use sis_importer::catalogue::{self, Service, FEEDBACK_SUBJECT, POST_UPDATE_SUBJECT};
use sis_testkit::consumer::{JsonLinesFile, StoredEntity};
use sis_testkit::servers::{NatsOptions, NatsServer, RedisOptions, RedisServer};
use tokio::io::AsyncBufReadExt;

const DEMO: &str = env!("CARGO_BIN_EXE_demo");
const FAKE_SISU: &str = env!("CARGO_BIN_EXE_fake-sisu");
const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

/// The operator's servers as the environment names them: a NATS that
/// demands a user and password and a Redis that demands a password, the
/// credentials inside `NATS_URL` and `REDIS_URL`.
struct EnvServers {
    nats: NatsServer,
    redis: RedisServer,
    nats_url: String,
}

const NATS_PASSWORD: &str = "nats-SECRET-demo-1";

impl EnvServers {
    /// Both servers, with `LATEST_PERSON_ORDINAL` = 42 in the Redis.
    async fn start() -> EnvServers {
        let nats = NatsServer::start_with(NatsOptions {
            user_password: Some(("importer".into(), NATS_PASSWORD.into())),
            ..NatsOptions::default()
        })
        .await
        .unwrap();
        let redis = RedisServer::start_with(RedisOptions {
            password: Some("redis-SECRET-demo-2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let nats_url = nats
            .url()
            .replacen("://", &format!("://importer:{NATS_PASSWORD}@"), 1);
        let env = EnvServers {
            nats,
            redis,
            nats_url,
        };
        let _: () = redis::cmd("SET")
            .arg("LATEST_PERSON_ORDINAL")
            .arg(42)
            .query_async(&mut env.redis_connection().await)
            .await
            .unwrap();
        env
    }

    async fn redis_connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// PERSON's ordinal in this Redis.
    async fn person_ordinal(&self) -> i64 {
        redis::cmd("GET")
            .arg("LATEST_PERSON_ORDINAL")
            .query_async(&mut self.redis_connection().await)
            .await
            .unwrap()
    }

    /// Whether this NATS holds the importer's stream.
    async fn has_stream(&self) -> bool {
        let client = async_nats::ConnectOptions::with_user_and_password(
            "importer".into(),
            NATS_PASSWORD.into(),
        )
        .connect(self.nats.url())
        .await
        .unwrap();
        jetstream::new(client)
            .get_stream("SIS_IMPORTER")
            .await
            .is_ok()
    }
}

/// `demo` with `args` and `NATS_URL`/`REDIS_URL` in an otherwise clean
/// environment; its exit code, stdout and stderr, checked for secrets.
fn demo(args: &[&str], nats_url: &str, redis_url: &str) -> (Option<i32>, String, String) {
    let out = Command::new(DEMO)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env("NATS_URL", nats_url)
        .env("REDIS_URL", redis_url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains("SECRET") && !stderr.contains("SECRET"),
        "a password was printed: {stdout}\n{stderr}"
    );
    (out.status.code(), stdout, stderr)
}

/// With `NATS_URL` and `REDIS_URL` set and answering, the demo still runs
/// on servers of its own, and leaves the ones named alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_on_its_own_servers_and_leaves_the_environments_alone() {
    let env = EnvServers::start().await;
    let (code, stdout, stderr) = demo(&["--entities", "150"], &env.nats_url, &env.redis.url());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("started nats-server"), "{stdout}");
    assert!(stdout.contains("started redis-server"), "{stdout}");
    assert!(
        stdout.contains("NATS_URL is not used without --use-env-servers"),
        "{stdout}"
    );
    for id in [
        "PERSON",
        "TERM_REGISTRATION",
        "GRAPHQL_GRADE_SCALES",
        "CURRICULUM_PERIOD",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(id) && l.contains(" ok ")),
            "{id}: {stdout}"
        );
    }
    let attainment = stdout
        .lines()
        .find(|l| l.starts_with("ATTAINMENT "))
        .unwrap();
    assert!(
        attainment.split_whitespace().nth(4) == Some("1"),
        "one planted dead letter: {attainment}"
    );
    assert!(stdout.contains("success: true"), "{stdout}");
    assert_eq!(env.person_ordinal().await, 42, "the named Redis untouched");
    assert!(
        !env.has_stream().await,
        "nothing published to the named NATS"
    );
}

/// `--use-env-servers` imports into the servers of `NATS_URL` and
/// `REDIS_URL` (credentials inside the URLs), printing them masked; a
/// server that does not answer ends the demo (exit 2), masked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_uses_the_environments_servers_only_when_told() {
    let env = EnvServers::start().await;
    let flag = ["--use-env-servers", "--entities", "50"];
    let (code, stdout, stderr) = demo(&flag, &env.nats_url, &env.redis.url());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let port = |url: String| {
        url.rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_owned()
    };
    let nats_port = port(env.nats.url());
    assert!(
        stdout.contains(&format!("NATS: using nats://***@127.0.0.1:{nats_port}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("Redis: using redis://***@127.0.0.1:"),
        "{stdout}"
    );
    assert!(!stdout.contains("started"), "{stdout}");
    assert!(
        env.person_ordinal().await > 42,
        "imported into the named Redis"
    );
    assert!(env.has_stream().await, "published into the named NATS");

    let silent = format!("nats://importer:{NATS_PASSWORD}@127.0.0.1:1");
    let (code, stdout, stderr) = demo(&flag, &silent, &env.redis.url());
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("NATS at nats://***@127.0.0.1:1 does not answer"),
        "{stderr}"
    );
    let silent = "redis://:redis-SECRET-demo-3@127.0.0.1:1/";
    let (code, stdout, stderr) = demo(&flag, &env.nats_url, silent);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Redis at redis://***@127.0.0.1:1/ does not answer"),
        "{stderr}"
    );
}

/// A `fake-sisu` process on a free port; killed when dropped.
struct FakeSisuProcess {
    child: std::process::Child,
    port: u16,
}

impl FakeSisuProcess {
    fn start(args: &[&str]) -> FakeSisuProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(FAKE_SISU)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        FakeSisuProcess { child, port }
    }

    /// How long GET `path` took and its body, retrying while the process
    /// starts.
    async fn get(&self, path: &str) -> (Duration, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let http = reqwest::Client::new();
        for _ in 0..100 {
            let started = Instant::now();
            if let Ok(r) = http.get(&url).send().await {
                assert!(r.status().is_success(), "{url}: {}", r.status());
                return (started.elapsed(), r.text().await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the fake Sisu does not answer {url}");
    }

    /// The entities of one export page of `service` from the start.
    async fn entities(&self, service: &Service, limit: u32) -> Vec<serde_json::Value> {
        let path = format!("{}{}", service.source.api_prefix(), service.path);
        let (_, body) = self.get(&format!("{path}?since=0&limit={limit}")).await;
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        page["entities"].as_array().unwrap().clone()
    }
}

impl Drop for FakeSisuProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PERSONS: &str = "/ori/api/persons/v1/export";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_sisu_command_serves_pages_with_the_latency_asked() {
    let fake = FakeSisuProcess::start(&["--entities", "20", "--latency-ms", "400"]);
    let (took, body) = fake.get(&format!("{PERSONS}?since=0&limit=5")).await;
    assert!(took >= Duration::from_millis(400), "answered in {took:?}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["entities"].as_array().unwrap().len(), 5);
    assert!(
        body.starts_with(r#"{"greatestOrdinal":"#),
        "Sisu's order: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_sisu_command_puts_paging_fields_last_when_asked() {
    let fake = FakeSisuProcess::start(&["--entities", "20", "--fields-last"]);
    let (_, body) = fake.get(&format!("{PERSONS}?since=0&limit=20")).await;
    assert!(body.starts_with(r#"{"entities":[{"#), "{body}");
    let tail = r#"],"hasMore":false,"greatestOrdinal":"#;
    assert!(body.contains(tail), "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["entities"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_sisu_command_serves_later_generations_on_top_of_the_first() {
    let fakes = ["1", "2", "3"].map(|generation| {
        FakeSisuProcess::start(&["--entities", "100", "--generation", generation])
    });
    let mut new = 0;
    for service in catalogue::builtin()
        .into_iter()
        .filter(|s| s.source.is_export())
    {
        let id = &service.id;
        let [one, two, three] = [0, 1, 2].map(|g| fakes[g].entities(&service, 1000));
        let (one, two, three) = (one.await, two.await, three.await);
        // Each later generation: 10% of --entities more changes per service.
        assert_eq!([one.len(), two.len(), three.len()], [100, 110, 120], "{id}");
        assert_eq!(two[..100], one[..], "{id}: generation 1 unchanged below 2");
        assert_eq!(
            three[..110],
            two[..],
            "{id}: generation 2 unchanged below 3"
        );
        let identity = |e: &serde_json::Value| service.identity_of(&e.to_string()).unwrap();
        let before: HashSet<String> = one.iter().map(identity).collect();
        new += two[100..]
            .iter()
            .filter(|e| !before.contains(&identity(e)))
            .count();
    }
    // 17 services × 10 changes, ~15% of them new identities.
    assert!(
        (5..=60).contains(&new),
        "new identities in generation 2: {new}"
    );
}

/// `consumer --form seed` as a process: answers a chunk of the current hash
/// in the seed's form after writing its entity to the store file; killed
/// (SIGKILL) mid-chunk, its successor resumes on the same durable consumer:
/// the chunk in progress comes again, what was acked does not, nothing is
/// lost. SIGTERM ends it with 0. The Redis password is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_command_answers_in_the_seed_form_and_resumes_after_a_kill() {
    let nats = NatsServer::start().await.unwrap();
    let redis = RedisServer::start_with(RedisOptions {
        password: Some("hunter2-redis".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("CURRENT_EXECUTION_HASH")
        .arg("h1")
        .query_async(&mut con)
        .await
        .unwrap();
    // The stream as the importer creates it.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    let mut subjects: Vec<String> = catalogue::builtin()
        .into_iter()
        .map(|s| s.subject)
        .collect();
    subjects
        .extend([FEEDBACK_SUBJECT, POST_UPDATE_SUBJECT, "POST_UPDATE_FINISH"].map(String::from));
    let stream = js
        .create_stream(stream::Config {
            name: "SIS_IMPORTER".into(),
            subjects,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut feedback = client.subscribe(FEEDBACK_SUBJECT).await.unwrap();
    client.flush().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("stored.jsonl");
    let spawn = |run: &str| {
        let log = std::fs::File::create(dir.path().join(format!("{run}.log"))).unwrap();
        let mut child = tokio::process::Command::new(CONSUMER)
            .args(["--form", "seed", "--nats-url", &nats.url()])
            .args(["--latency-ms", "1000", "--ack-wait-secs", "3"])
            .arg("--store-file")
            .arg(&store)
            .env_clear()
            .env("REDIS_URL", redis.url())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        (child, tokio::io::BufReader::new(stdout).lines())
    };
    let person = |id: &str, ordinal: i64| {
        format!(
            r#"{{"id":"{id}","documentState":"ACTIVE","metadata":{{"modificationOrdinal":{ordinal}}}}}"#
        )
    };
    let chunk = |chunk_id: &str, entity: &str| {
        format!(r#"{{"executionHash":"h1","chunkId":"{chunk_id}","entities":[{entity}]}}"#)
    };
    let stored = |id: &str, ordinal: i64| StoredEntity {
        service: "PERSON".into(),
        identity: id.into(),
        ordinal: Some(ordinal),
        document_state: Some("ACTIVE".into()),
    };
    let acked_through = |seq: u64| {
        let stream = stream.clone();
        async move {
            for _ in 0..200 {
                let durable = stream
                    .get_consumer::<pull::Config>("reference_PERSON")
                    .await;
                if let Ok(mut durable) = durable {
                    if durable.info().await.unwrap().ack_floor.stream_sequence >= seq {
                        return true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };

    let (mut first, mut out) = spawn("first");
    let line = out.next_line().await.unwrap().unwrap();
    assert_eq!(
        line,
        "consumer running: form=seed, instances=1, stream=SIS_IMPORTER"
    );
    let publish = |body: String| {
        let js = js.clone();
        async move {
            js.publish("ORI_PERSON_CHANNEL", body.into())
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    let ok = |amount: usize| {
        format!(
            r#"{{"status":"OK","amount":{amount},"channel":"ORI_PERSON_CHANNEL","executionHash":"h1"}}"#
        )
    };
    publish(chunk("c-1", &person("p1", 1))).await;
    assert_eq!(next_feedback(&mut feedback).await, ok(1));
    assert_eq!(JsonLinesFile::read(&store).unwrap(), [stored("p1", 1)]);
    assert!(acked_through(1).await);
    // Killed while c-2 waits out its processing delay: neither stored nor
    // answered nor acked.
    let two = format!("{},{}", person("p2", 2), person("p3", 3));
    let c2 = publish(chunk("c-2", &two)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().await.unwrap();
    assert_eq!(JsonLinesFile::read(&store).unwrap(), [stored("p1", 1)]);

    // The successor takes the same durable: c-2 comes again once its ack
    // wait is over; c-1, acked before the kill, does not.
    let (mut second, mut out) = spawn("second");
    let line = out.next_line().await.unwrap().unwrap();
    assert!(line.starts_with("consumer running: form=seed"), "{line}");
    assert_eq!(next_feedback(&mut feedback).await, ok(2));
    assert!(acked_through(c2.sequence).await);
    let c3 = publish(chunk("c-3", &person("p4", 4))).await;
    assert_eq!(next_feedback(&mut feedback).await, ok(1));
    assert!(acked_through(c3.sequence).await);
    assert_eq!(
        JsonLinesFile::read(&store).unwrap(),
        [
            stored("p1", 1),
            stored("p2", 2),
            stored("p3", 3),
            stored("p4", 4)
        ]
    );
    let names: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(
        names.iter().filter(|n| n.ends_with("_PERSON")).count(),
        1,
        "{names:?}"
    );

    let pid = second.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(15), second.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    for run in ["first", "second"] {
        let log = std::fs::read_to_string(dir.path().join(format!("{run}.log"))).unwrap();
        assert!(!log.contains("hunter2-redis"), "{log}");
    }
}

/// The next message's body, within 20 s.
async fn next_feedback(feedback: &mut async_nats::Subscriber) -> String {
    let next = tokio::time::timeout(Duration::from_secs(20), feedback.next());
    String::from_utf8(next.await.unwrap().unwrap().payload.to_vec()).unwrap()
}
