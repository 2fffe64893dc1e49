//! Real `nats-server -js` and `redis-server` processes for tests, benchmarks
//! and the demo, each on a free port of 127.0.0.1 with its data and log in
//! its own temp dir. They can be killed (SIGKILL) and restarted on the same
//! port with the same data, which is how tests simulate a broker or store
//! outage. Dropping a server kills its process, so a failing test leaves no
//! orphan behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a started server may take to answer (PING / JetStream INFO).
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one readiness probe may take before it counts as a miss.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Fresh ports tried by `start` when the chosen one was taken meanwhile.
const START_ATTEMPTS: usize = 5;
/// How long `restart` keeps retrying its fixed port while it is still held.
const RESTART_BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of server log quoted in a start error.
const LOG_TAIL_LINES: usize = 30;

/// A port on 127.0.0.1 that was free a moment ago. Another process may take
/// it before it is used, which is why the servers retry on another port.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 must work on a test machine")
}

/// Options of a test NATS server (all off by default).
#[derive(Clone, Default)]
pub struct NatsOptions {
    /// `max_payload` in bytes; default: the server's own (1 MiB).
    pub max_payload: Option<u32>,
    /// Require this token from clients; default: no authentication.
    pub token: Option<String>,
    /// Require this user and password from clients.
    pub user_password: Option<(String, String)>,
    /// Serve TLS only.
    pub tls: Option<NatsServerTls>,
    /// Be one node of a cluster (see [`NatsCluster`]).
    pub cluster: Option<ClusterNode>,
}

/// One node's place in a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    /// `server_name` (JetStream clustering needs one per node).
    pub name: String,
    /// The port routes from the other nodes connect to.
    pub route_port: u16,
    /// The other nodes' route ports.
    pub peers: Vec<u16>,
}

/// TLS of a test NATS server (PEM files, e.g. made with `rcgen`).
#[derive(Clone, Debug)]
pub struct NatsServerTls {
    /// The server's certificate (valid for 127.0.0.1).
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
    /// The CA clients trust; with `client_cert`, also the CA the server
    /// demands client certificates from.
    pub ca_file: PathBuf,
    /// When set, clients must present a certificate; the readiness probe
    /// presents this one (certificate, key).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl NatsOptions {
    /// Client settings that satisfy this server (the probe's; tests hand
    /// them to consumers and importers).
    pub fn client_auth(&self) -> sis_importer::sinks::NatsAuth {
        use sis_importer::config::Secret;
        sis_importer::sinks::NatsAuth {
            token: self.token.clone().map(Secret::new),
            user_password: self.user_password.clone().map(|(u, p)| (u, Secret::new(p))),
            require_tls: self.tls.is_some(),
            ca_path: self.tls.as_ref().map(|t| t.ca_file.clone()),
            client_cert: self.tls.as_ref().and_then(|t| t.client_cert.clone()),
        }
    }
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret even in tests: never print it.
        f.debug_struct("NatsOptions")
            .field("max_payload", &self.max_payload)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user_password.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .finish()
    }
}

/// A child `nats-server -js` process with its JetStream store in a temp dir.
#[derive(Debug)]
pub struct NatsServer {
    /// The running process; `None` between `kill` and `restart`.
    child: Option<Child>,
    port: u16,
    options: NatsOptions,
    binary: PathBuf,
    /// Holds `nats.conf`, `jetstream/` and `nats-server.log`; removed on drop.
    dir: TempDir,
}

impl NatsServer {
    /// Starts a server with default options on a free port and waits until
    /// JetStream answers.
    pub async fn start() -> io::Result<NatsServer> {
        Self::start_with(NatsOptions::default()).await
    }

    /// Starts a server with `options` on a free port and waits until
    /// JetStream answers.
    pub async fn start_with(options: NatsOptions) -> io::Result<NatsServer> {
        let binary = find_binary("nats-server")?;
        let dir = tempfile::Builder::new().prefix("sis-nats-").tempdir()?;
        let mut server = NatsServer {
            child: None,
            port: 0,
            options,
            binary,
            dir,
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(Start::PortTaken(err)) => last_error = Some(err),
                Err(Start::Failed(err)) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    /// The server's process id while it runs (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `nats://127.0.0.1:PORT` (without the token).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding the config, the JetStream store and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it
    /// to exit. Does nothing when it is not running.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts the server again on the same port with the same store, so
    /// JetStream data survives, and waits until JetStream answers. Kills a
    /// still-running server first.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.kill();
        let deadline = Instant::now() + RESTART_BIND_TIMEOUT;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                // The old socket or a stray client may hold the port briefly.
                Err(Start::PortTaken(err)) if Instant::now() >= deadline => return Err(err),
                Err(Start::PortTaken(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(Start::Failed(err)) => return Err(err),
            }
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<(), Start> {
        let config = self.dir.path().join("nats.conf");
        std::fs::write(&config, self.config_text()).map_err(Start::Failed)?;
        let log = self.dir.path().join("nats-server.log");
        let mut command = Command::new(&self.binary);
        command.arg("-c").arg(&config);
        self.child = Some(spawn_logged(command, &log).map_err(Start::Failed)?);
        let probe = NatsProbe {
            url: self.url(),
            auth: self.options.client_auth(),
        };
        let result = wait_ready(&mut self.child, &log, "nats-server", || probe.check()).await;
        if result.is_err() {
            self.kill();
        }
        result
    }

    fn config_text(&self) -> String {
        // Config values are quoted strings, so the store path and token need
        // no escaping beyond quotes (temp paths and test tokens have none).
        let store = self.dir.path().join("jetstream");
        let mut text = format!(
            "listen: \"127.0.0.1:{}\"\njetstream {{\n  store_dir: \"{}\"\n}}\n",
            self.port,
            store.display()
        );
        if let Some(max_payload) = self.options.max_payload {
            text.push_str(&format!("max_payload: {max_payload}\n"));
        }
        if let Some(node) = &self.options.cluster {
            let routes: Vec<String> = node
                .peers
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            text.push_str(&format!(
                "server_name: \"{}\"\ncluster {{\n  name: \"sis-test\"\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                node.name,
                node.route_port,
                routes.join(", ")
            ));
        }
        if let Some(token) = &self.options.token {
            text.push_str(&format!("authorization {{\n  token: \"{token}\"\n}}\n"));
        }
        if let Some((user, password)) = &self.options.user_password {
            text.push_str(&format!(
                "authorization {{\n  user: \"{user}\"\n  password: \"{password}\"\n}}\n"
            ));
        }
        if let Some(tls) = &self.options.tls {
            text.push_str(&format!(
                "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {}\n  timeout: 5\n}}\n",
                tls.cert_file.display(),
                tls.key_file.display(),
                tls.ca_file.display(),
                tls.client_cert.is_some()
            ));
        }
        text
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JetStream cluster of `nats-server` nodes on free ports (routes between
/// them, each its own store), for tests that kill and restart nodes.
#[derive(Debug)]
pub struct NatsCluster {
    /// The nodes; kill and restart them one by one.
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` nodes at once (JetStream answers only once a quorum is
    /// up) and waits until every one answers.
    pub async fn start(n: usize) -> io::Result<NatsCluster> {
        let binary = find_binary("nats-server")?;
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for i in 0..n {
            let options = NatsOptions {
                cluster: Some(ClusterNode {
                    name: format!("n{}", i + 1),
                    route_port: route_ports[i],
                    peers: route_ports
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| *p)
                        .collect(),
                }),
                ..NatsOptions::default()
            };
            nodes.push(NatsServer {
                child: None,
                port: free_port(),
                options,
                binary: binary.clone(),
                dir: tempfile::Builder::new().prefix("sis-nats-").tempdir()?,
            });
        }
        let started = futures::future::join_all(nodes.iter_mut().map(|n| n.spawn_and_wait())).await;
        for result in started {
            match result {
                Ok(()) => {}
                Err(Start::PortTaken(e) | Start::Failed(e)) => return Err(e),
            }
        }
        Ok(NatsCluster { nodes })
    }

    /// Every node's client URL, comma-separated (a `NATS_URL`).
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(NatsServer::url).collect();
        urls.join(",")
    }
}

/// A child `redis-server` process with `appendonly yes` in a temp dir, so a
/// restart keeps the data.
#[derive(Debug)]
pub struct RedisServer {
    /// The running process; `None` between `kill` and `restart`.
    child: Option<Child>,
    port: u16,
    binary: PathBuf,
    /// Holds the append-only files and `redis-server.log`; removed on drop.
    dir: TempDir,
    options: RedisOptions,
}

/// Options of a test Redis server (all off by default).
#[derive(Clone, Default)]
pub struct RedisOptions {
    /// `requirepass`.
    pub password: Option<String>,
    /// Serve TLS only: (certificate, key, CA) PEM files.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> io::Result<RedisServer> {
        Self::start_with(RedisOptions::default()).await
    }

    /// Starts a server with `options` on a free port and waits until it
    /// answers PING (through [`RedisServer::url`], password and TLS included).
    pub async fn start_with(options: RedisOptions) -> io::Result<RedisServer> {
        let binary = find_binary("redis-server")?;
        let dir = tempfile::Builder::new().prefix("sis-redis-").tempdir()?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            binary,
            dir,
            options,
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(Start::PortTaken(err)) => last_error = Some(err),
                Err(Start::Failed(err)) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    /// `redis://127.0.0.1:PORT/`; with a password `redis://:PASSWORD@…`;
    /// with TLS `rediss://…/#insecure` (test certificates are not in the
    /// system trust store).
    pub fn url(&self) -> String {
        let auth = self
            .options
            .password
            .as_ref()
            .map_or_else(String::new, |p| format!(":{p}@"));
        match self.options.tls {
            Some(_) => format!("rediss://{auth}127.0.0.1:{}/#insecure", self.port),
            None => format!("redis://{auth}127.0.0.1:{}/", self.port),
        }
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding the data and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL and waits for it to exit. Writes it
    /// acknowledged are already in the append-only file (written before the
    /// reply), so they survive. Does nothing when it is not running.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts the server again on the same port with the same data and
    /// waits until it answers PING. Kills a still-running server first.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.kill();
        let deadline = Instant::now() + RESTART_BIND_TIMEOUT;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                Err(Start::PortTaken(err)) if Instant::now() >= deadline => return Err(err),
                Err(Start::PortTaken(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(Start::Failed(err)) => return Err(err),
            }
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<(), Start> {
        let log = self.dir.path().join("redis-server.log");
        let mut command = Command::new(&self.binary);
        let port = self.port.to_string();
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
        command
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--save", "", "--daemonize", "no"])
            // An empty logfile means stdout, which goes to our log file.
            .args(["--logfile", "", "--protected-mode", "no"]);
        self.child = Some(spawn_logged(command, &log).map_err(Start::Failed)?);
        let url = self.url();
        let result = wait_ready(&mut self.child, &log, "redis-server", || redis_ping(&url)).await;
        if result.is_err() {
            self.kill();
        }
        result
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Why one start attempt failed: a taken port is worth another try.
enum Start {
    PortTaken(io::Error),
    Failed(io::Error),
}

/// `name` on PATH, else in /usr/sbin or /usr/bin (not always on PATH).
fn find_binary(name: &str) -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{name} not found on PATH, in /usr/sbin or /usr/bin; \
                     install it with `apt-get install nats-server redis-server`"
                ),
            )
        })
}

/// Spawns `command` with stdout and stderr appended to `log` (a restart
/// appends to the same file).
fn spawn_logged(mut command: Command, log: &Path) -> io::Result<Child> {
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
}

fn kill_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        // Std's `kill` is SIGKILL; an already exited child is fine too.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Probes until the server answers, it exits, or `READY_TIMEOUT` passes.
async fn wait_ready<F, Fut>(
    child: &mut Option<Child>,
    log: &Path,
    name: &str,
    probe: F,
) -> Result<(), Start>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_probe_error;
    loop {
        let exited = child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            *child = None;
            let tail = log_tail(log);
            let err = io::Error::other(format!(
                "{name} exited at start ({status}); log tail:\n{tail}"
            ));
            let lower = tail.to_lowercase();
            let port_taken = lower.contains("address already in use");
            return Err(if port_taken {
                Start::PortTaken(err)
            } else {
                Start::Failed(err)
            });
        }
        match tokio::time::timeout(PROBE_TIMEOUT, probe()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => last_probe_error = err,
            Err(_) => last_probe_error = format!("probe timed out after {PROBE_TIMEOUT:?}"),
        }
        if Instant::now() >= deadline {
            let tail = log_tail(log);
            return Err(Start::Failed(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{name} not ready after {READY_TIMEOUT:?} (last probe: {last_probe_error}); \
                     log tail:\n{tail}"
                ),
            )));
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

fn log_tail(log: &Path) -> String {
    let text = File::open(log)
        .and_then(|mut f| {
            let mut s = String::new();
            io::Read::read_to_string(&mut f, &mut s).map(|_| s)
        })
        .unwrap_or_else(|err| format!("<log unreadable: {err}>"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// What a NATS readiness probe needs.
struct NatsProbe {
    url: String,
    auth: sis_importer::sinks::NatsAuth,
}

impl NatsProbe {
    /// Connects and asks JetStream for the account info.
    async fn check(&self) -> Result<(), String> {
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(PROBE_TIMEOUT)
            .max_reconnects(1);
        let client = self
            .auth
            .apply(options)
            .connect(self.url.as_str())
            .await
            .map_err(|e| e.to_string())?;
        // A raw `$JS.API.INFO` request: async-nats 0.51's `query_account()`
        // cannot parse nats-server 2.9's answer (it lacks `reserved_memory`).
        let result = client.request("$JS.API.INFO", "".into()).await;
        // Probing clients must not linger as reconnecting background tasks.
        let _ = client.drain().await;
        let answer = result.map_err(|e| format!("JetStream not answering: {e}"))?;
        let info: serde_json::Value = serde_json::from_slice(&answer.payload)
            .map_err(|e| format!("JetStream INFO unreadable: {e}"))?;
        match info.get("error") {
            None => Ok(()),
            Some(error) => Err(format!("JetStream INFO error: {error}")),
        }
    }
}

async fn redis_ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(format!("PING answered {pong:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nats_client(server: &NatsServer) -> async_nats::Client {
        async_nats::connect(server.url())
            .await
            .expect("connect to test nats")
    }

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

    #[tokio::test]
    async fn jetstream_stream_survives_restart() {
        let mut nats = NatsServer::start().await.unwrap();
        let js = async_nats::jetstream::new(nats_client(&nats).await);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "KEEP".into(),
            subjects: vec!["keep.>".into()],
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("keep.one", "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let port = nats.port();
        nats.restart().await.unwrap();
        assert_eq!(nats.port(), port);
        let js = async_nats::jetstream::new(nats_client(&nats).await);
        let mut stream = js.get_stream("KEEP").await.unwrap();
        assert_eq!(stream.info().await.unwrap().state.messages, 1);
    }

    #[tokio::test]
    async fn max_payload_and_token_are_applied() {
        let options = NatsOptions {
            max_payload: Some(64 * 1024),
            token: Some("s3cret".into()),
            ..Default::default()
        };
        let nats = NatsServer::start_with(options).await.unwrap();
        assert!(
            async_nats::connect(nats.url()).await.is_err(),
            "token must be required"
        );
        let client = async_nats::ConnectOptions::with_token("s3cret".into())
            .connect(nats.url())
            .await
            .unwrap();
        assert_eq!(client.server_info().max_payload, 64 * 1024);
    }

    #[tokio::test]
    async fn two_servers_get_different_ports() {
        let a = NatsServer::start().await.unwrap();
        let b = NatsServer::start().await.unwrap();
        assert_ne!(a.port(), b.port());
    }

    /// The harness never talks to the machine's own servers: what answers
    /// on a harness port is the process it started, since stopping that
    /// process closes the port (a system server on 4222 or 6379 would go
    /// on answering).
    #[tokio::test]
    async fn the_port_belongs_to_the_process_started_and_closes_when_it_is_dropped() {
        let nats = NatsServer::start().await.unwrap();
        let redis = RedisServer::start().await.unwrap();
        let ports = [nats.port(), redis.port()];
        for port in ports {
            assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        }
        drop((nats, redis));
        for port in ports {
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
                "port {port} still answers"
            );
        }
        assert!(NatsServer::start().await.is_ok(), "a new one starts after");
    }

    #[tokio::test]
    async fn kill_then_restart_serves_again() {
        let mut nats = NatsServer::start().await.unwrap();
        nats.kill();
        nats.kill(); // idempotent
        assert!(std::net::TcpStream::connect(("127.0.0.1", nats.port())).is_err());
        nats.restart().await.unwrap();
        nats_client(&nats).await;
    }
}
