//! What the dead-letter tests share: PERSON's dead-letter keys and the
//! keys a replay must leave alone, raw Redis commands, an environment
//! with poison entities imported, the consumer fixed, the command line.

#![allow(dead_code)]

use redis::aio::MultiplexedConnection;

use crate::common::*;

/// PERSON's dead-letter list.
pub const LIST: &str = "SIS_IMPORTER:DEAD_LETTERS:PERSON";
/// Its entity versions listed.
pub const SEEN: &str = "SIS_IMPORTER:DEAD_LETTERS:PERSON:SEEN";
/// Its kept entity bytes.
pub const BYTES: &str = "SIS_IMPORTER:DEAD_LETTERS:PERSON:BYTES";
/// What a replay must leave alone.
pub const UNTOUCHED: [&str; 4] = [
    "LATEST_PERSON_ORDINAL",
    "LATEST_PERSON_ORDINAL_SCHEDULED",
    "LATEST_PERSON_ORDINAL_UPDATED",
    "SIS_IMPORTER:ATTEMPT:PERSON",
];

/// A connection to the environment's Redis.
pub async fn redis(env: &Env) -> MultiplexedConnection {
    let client = redis::Client::open(env.redis.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// One raw Redis command.
pub async fn cmd<T: redis::FromRedisValue>(conn: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    cmd.query_async(conn).await.unwrap()
}

/// The keys a replay must leave alone, each dumped as Redis holds it.
pub async fn untouched(conn: &mut MultiplexedConnection) -> Vec<Option<Vec<u8>>> {
    let mut dumps = Vec::new();
    for key in UNTOUCHED {
        dumps.push(cmd(conn, &["DUMP", key]).await);
    }
    dumps
}

/// `(llen, scard, bytes)` of PERSON's dead-letter keys.
pub async fn letter_keys(conn: &mut MultiplexedConnection) -> (u64, u64, Option<u64>) {
    let len = cmd(conn, &["LLEN", LIST]).await;
    let seen = cmd(conn, &["SCARD", SEEN]).await;
    (len, seen, cmd(conn, &["GET", BYTES]).await)
}

/// PERSON imported with the changes at `poison` failing in the consumer.
pub async fn poisoned(poison: &[u64]) -> Env {
    let env = Env::start(60).await;
    for &i in poison {
        env.fake.faults().poison("PERSON", i);
    }
    run_ok(&*env.importer(env.config()).await, &["PERSON"]).await;
    env
}

/// The consumer now stores what it refused before.
pub async fn fix_consumer(env: &mut Env) {
    env.replace_consumer(|c| c.fail_field = "notAField".into())
        .await;
}

/// Exit code, stdout and stderr of a finished command.
pub fn output(out: &std::process::Output) -> (Option<i32>, String, String) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// `sis-importer dead-letters <args>` against `env`: exit code, stdout, stderr.
pub fn cli(env: &Env, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["dead-letters"];
    all.extend_from_slice(args);
    output(&env.command(&all).output().unwrap())
}

/// The identity and ordinal of change `index` of PERSON.
pub fn change(env: &Env, index: usize) -> (String, Option<i64>) {
    let e = env.fake.expected("PERSON")[index].clone();
    (e.identity, e.ordinal)
}

pub fn seen_by_consumer(env: &Env, version: &(String, Option<i64>)) -> bool {
    let received = env.consumer.received();
    received
        .per_service
        .get("PERSON")
        .is_some_and(|s| s.seen.contains(version))
}
