//! Redis behind Sentinel for tests: a master, a replica and three
//! sentinels (`redis-server sentinel.conf --sentinel`, quorum 2), each on
//! a free port of 127.0.0.1. The sentinels call a master down after 1 s
//! without an answer, so a SIGKILL of the master is failed over in a few
//! seconds; `SENTINEL FAILOVER` fails it over at once.
//!
//! The first master refuses writes while its replica is gone
//! (`min-replicas-to-write 1`): once a failover has promoted the replica,
//! the old master takes no write the new one would not have. The replica
//! has no such setting, so as the new master, with the old one killed,
//! it goes on taking writes alone.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::{ServerProcess, Spec};
use super::redis::{RedisOptions, RedisServer};

/// The master's name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// How long the set may take to be ready (sentinels that know each other
/// and the replica), and a failover to finish.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// A master, a replica and three sentinels; dropping it kills them all.
#[derive(Debug)]
pub struct RedisSentinelSet {
    /// The data nodes: the first master, then its replica. Which one is
    /// master now: [`RedisSentinelSet::master_port`].
    pub nodes: Vec<RedisServer>,
    sentinels: Vec<ServerProcess<Sentinel>>,
}

impl RedisSentinelSet {
    /// Starts the set and waits until the replica is in sync and every
    /// sentinel knows the replica and the two other sentinels (and so can
    /// fail over).
    pub async fn start() -> io::Result<RedisSentinelSet> {
        let master = RedisServer::start_with(RedisOptions {
            min_replicas_to_write: Some(1),
            ..RedisOptions::default()
        })
        .await?;
        let replica = RedisServer::start_with(RedisOptions {
            replica_of: Some(master.port()),
            ..RedisOptions::default()
        })
        .await?;
        let sentinels = (0..3).map(|_| {
            ServerProcess::start(Sentinel {
                master_port: master.port(),
            })
        });
        let sentinels = futures::future::try_join_all(sentinels).await?;
        let set = RedisSentinelSet {
            nodes: vec![master, replica],
            sentinels,
        };
        set.settle(|s| s.ready()).await?;
        Ok(set)
    }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/mymaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port()).collect()
    }

    /// The master's port as the first sentinel names it.
    pub async fn master_port(&self) -> io::Result<u16> {
        let addr: Option<(String, u16)> = self
            .ask_sentinel(0, &["GET-MASTER-ADDR-BY-NAME", MASTER_NAME])
            .await?;
        addr.map(|(_, port)| port)
            .ok_or_else(|| io::Error::other("the sentinel knows no master"))
    }

    /// The data node on `port`.
    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of the set")
    }

    /// `SENTINEL FAILOVER mymaster`: the sentinel promotes the replica at
    /// once and makes the old master its replica.
    pub async fn failover(&self) -> io::Result<()> {
        self.ask_sentinel::<()>(0, &["FAILOVER", MASTER_NAME]).await
    }

    /// Waits until every sentinel names a master other than `old` and
    /// that server says it is master; its port.
    pub async fn wait_for_new_master(&self, old: u16) -> io::Result<u16> {
        self.settle(|s| async move {
            let mut named = Vec::new();
            for i in 0..s.sentinels.len() {
                let addr: Option<(String, u16)> = s
                    .ask_sentinel(i, &["GET-MASTER-ADDR-BY-NAME", MASTER_NAME])
                    .await
                    .map_err(|e| e.to_string())?;
                named.push(addr.map(|(_, port)| port));
            }
            let Some(Some(new)) = named.first().copied() else {
                return Err("no master named".into());
            };
            if new == old || named.iter().any(|n| *n != Some(new)) {
                return Err(format!("sentinels name {named:?}"));
            }
            let role: Vec<redis::Value> = query(new, "ROLE", &[]).await?;
            match role.first() {
                Some(redis::Value::BulkString(r)) if r == b"master" => Ok(new),
                other => Err(format!("{new} says {other:?}")),
            }
        })
        .await
    }

    /// Ready: the master takes writes (its replica is in sync), and every
    /// sentinel has a quorum and knows the replica and both other
    /// sentinels.
    async fn ready(&self) -> Result<(), String> {
        // The master takes writes once its replica is in sync and counted
        // (`min-replicas-to-write 1`).
        let master = self.nodes[0].port();
        query::<()>(master, "SET", &["sis-testkit:ready", "1"]).await?;
        query::<()>(master, "DEL", &["sis-testkit:ready"]).await?;
        for i in 0..self.sentinels.len() {
            self.ask_sentinel::<String>(i, &["CKQUORUM", MASTER_NAME])
                .await
                .map_err(|e| e.to_string())?;
            let replicas: Vec<redis::Value> = self
                .ask_sentinel(i, &["REPLICAS", MASTER_NAME])
                .await
                .map_err(|e| e.to_string())?;
            let others: Vec<redis::Value> = self
                .ask_sentinel(i, &["SENTINELS", MASTER_NAME])
                .await
                .map_err(|e| e.to_string())?;
            if replicas.len() != 1 || others.len() != 2 {
                return Err(format!(
                    "sentinel {i} knows {} replicas and {} sentinels",
                    replicas.len(),
                    others.len()
                ));
            }
        }
        Ok(())
    }

    /// Polls `check` every 100 ms until it passes, for at most
    /// [`SETTLE_TIMEOUT`].
    async fn settle<'a, T, F, Fut>(&'a self, check: F) -> io::Result<T>
    where
        F: Fn(&'a Self) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let last = match check(self).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the Sentinel set did not settle in {SETTLE_TIMEOUT:?}: {last}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `SENTINEL args…` to sentinel `i`.
    async fn ask_sentinel<T: redis::FromRedisValue>(
        &self,
        i: usize,
        args: &[&str],
    ) -> io::Result<T> {
        query(self.sentinels[i].port(), "SENTINEL", args)
            .await
            .map_err(io::Error::other)
    }
}

/// `command args…` to the server on `port`, with short timeouts.
async fn query<T: redis::FromRedisValue>(
    port: u16,
    command: &str,
    args: &[&str],
) -> Result<T, String> {
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd(command)
        .arg(args)
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())
}

/// How to run and probe a sentinel.
#[derive(Debug)]
struct Sentinel {
    /// The first master's port (the sentinels follow failovers themselves).
    master_port: u16,
}

impl Spec for Sentinel {
    const PROGRAM: &'static str = "redis-server";
    const DIR_PREFIX: &'static str = "sis-sentinel-";

    /// Writes `sentinel.conf` once (a sentinel rewrites it with what it
    /// learns, so a restart keeps that); the port goes on the command line.
    fn configure(&self, command: &mut Command, port: u16, dir: &Path) -> io::Result<()> {
        let conf = dir.join("sentinel.conf");
        if !conf.exists() {
            let text = format!(
                "bind 127.0.0.1\n\
                 dir {dir}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 3000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir = dir.display(),
                master = self.master_port,
            );
            std::fs::write(&conf, text)?;
        }
        command
            .arg(&conf)
            .arg("--sentinel")
            .args(["--port", &port.to_string()])
            .args(["--daemonize", "no", "--logfile", ""]);
        Ok(())
    }

    /// Sends PING.
    async fn probe(&self, port: u16) -> Result<(), String> {
        let answer: String = query(port, "PING", &[]).await?;
        super::redis::pong(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failover_and_a_killed_master_each_make_the_other_node_master() {
        let mut set = RedisSentinelSet::start().await.unwrap();
        let first = set.master_port().await.unwrap();
        assert_eq!(first, set.nodes[0].port());
        set.failover().await.unwrap();
        let second = set.wait_for_new_master(first).await.unwrap();
        assert_eq!(second, set.nodes[1].port());
        set.node_mut(second).kill();
        assert_eq!(set.wait_for_new_master(second).await.unwrap(), first);
    }
}
