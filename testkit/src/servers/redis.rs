//! `redis-server` for tests, with `appendonly yes` so a restart keeps the
//! data; options: a password, TLS, replication (for the Sentinel set).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::{ServerProcess, Spec};

/// Options of a test Redis server (all off by default).
#[derive(Clone, Default)]
pub struct RedisOptions {
    /// `requirepass`.
    pub password: Option<String>,
    /// Serve TLS only: (certificate, key, CA) PEM files.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// `replicaof 127.0.0.1 PORT`: start as a replica of that server.
    pub replica_of: Option<u16>,
    /// `min-replicas-to-write`: refuse writes (NOREPLICAS) while fewer
    /// replicas are connected.
    pub min_replicas_to_write: Option<u32>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("replica_of", &self.replica_of)
            .field("min_replicas_to_write", &self.min_replicas_to_write)
            .finish()
    }
}

/// A child `redis-server` process with its append-only files and its log
/// in a temp dir.
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess<Redis>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> io::Result<RedisServer> {
        Self::start_with(RedisOptions::default()).await
    }

    /// Starts a server with `options` on a free port and waits until it
    /// answers PING (through [`RedisServer::url`], password and TLS included).
    pub async fn start_with(options: RedisOptions) -> io::Result<RedisServer> {
        let process = ServerProcess::start(Redis { options }).await?;
        Ok(RedisServer { process })
    }

    /// `redis://127.0.0.1:PORT/`; with a password `redis://:PASSWORD@…`;
    /// with TLS `rediss://…/#insecure` (test certificates are not in the
    /// system trust store).
    pub fn url(&self) -> String {
        self.process.spec().url(self.port())
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Kills the server with SIGKILL and waits for it to exit. Writes it
    /// acknowledged are already in the append-only file (written before the
    /// reply), so they survive. Does nothing when it is not running.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port with the same data and
    /// waits until it answers PING. Kills a still-running server first.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.process.restart().await
    }
}

/// How to run and probe `redis-server`.
#[derive(Debug)]
struct Redis {
    options: RedisOptions,
}

impl Redis {
    fn url(&self, port: u16) -> String {
        let auth = self
            .options
            .password
            .as_ref()
            .map_or_else(String::new, |p| format!(":{p}@"));
        match self.options.tls {
            Some(_) => format!("rediss://{auth}127.0.0.1:{port}/#insecure"),
            None => format!("redis://{auth}127.0.0.1:{port}/"),
        }
    }
}

impl Spec for Redis {
    const PROGRAM: &'static str = "redis-server";
    const DIR_PREFIX: &'static str = "sis-redis-";

    fn configure(&self, command: &mut Command, port: u16, dir: &Path) -> io::Result<()> {
        let port = port.to_string();
        match &self.options.tls {
            Some((cert, key, ca)) => {
                command.args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ]);
                command.arg("--tls-cert-file").arg(cert);
                command.arg("--tls-key-file").arg(key);
                command.arg("--tls-ca-cert-file").arg(ca);
            }
            None => {
                command.args(["--port", &port]);
            }
        }
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password]);
        }
        if let Some(master) = self.options.replica_of {
            command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
        }
        if let Some(n) = self.options.min_replicas_to_write {
            command.args(["--min-replicas-to-write", &n.to_string()]);
        }
        command
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--appendonly", "yes", "--save", "", "--daemonize", "no"])
            // An empty logfile means stdout, which goes to the harness's log.
            .args(["--logfile", "", "--protected-mode", "no"]);
        Ok(())
    }

    /// Connects (password and TLS included) and sends PING.
    async fn probe(&self, port: u16) -> Result<(), String> {
        let client = redis::Client::open(self.url(port)).map_err(|e| e.to_string())?;
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let answer: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        pong(&answer)
    }
}

/// A PING's answer, read: redis-server and redis-server `--sentinel` both
/// answer `PONG` once they take commands.
pub(super) fn pong(answer: &str) -> Result<(), String> {
    if answer == "PONG" {
        Ok(())
    } else {
        Err(format!("PING answered {answer:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redis_key_survives_restart() {
        let mut redis = RedisServer::start().await.unwrap();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut con)
            .await
            .unwrap();
        redis.kill();
        redis.restart().await.unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let v: Option<String> = redis::cmd("GET")
            .arg("k")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(v.as_deref(), Some("v"));
    }
}
