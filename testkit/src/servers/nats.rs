//! `nats-server -js` for tests: one server ([`NatsServer`], with token,
//! user/password, TLS and `max_payload` options) or a JetStream cluster
//! ([`NatsCluster`]).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::{free_port, ServerProcess, Spec, PROBE_TIMEOUT};

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

/// A child `nats-server -js` process with its config (`nats.conf`), its
/// JetStream store (`jetstream/`) and its log in a temp dir.
#[derive(Debug)]
pub struct NatsServer {
    process: ServerProcess<Nats>,
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
        Self::start_node(options, None).await
    }

    async fn start_node(options: NatsOptions, cluster: Option<ClusterNode>) -> io::Result<Self> {
        let process = ServerProcess::start(Nats { options, cluster }).await?;
        Ok(NatsServer { process })
    }

    /// The server's process id while it runs (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// `nats://127.0.0.1:PORT` (without the token).
    pub fn url(&self) -> String {
        url(self.port())
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it
    /// to exit. Does nothing when it is not running.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port with the same store, so
    /// JetStream data survives, and waits until JetStream answers. Kills a
    /// still-running server first.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.process.restart().await
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
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let nodes = (0..n).map(|i| {
            let node = ClusterNode {
                name: format!("n{}", i + 1),
                route_port: route_ports[i],
                peers: route_ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| *p)
                    .collect(),
            };
            NatsServer::start_node(NatsOptions::default(), Some(node))
        });
        let nodes = futures::future::try_join_all(nodes).await?;
        Ok(NatsCluster { nodes })
    }

    /// Every node's client URL, comma-separated (a `NATS_URL`).
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(NatsServer::url).collect();
        urls.join(",")
    }
}

fn url(port: u16) -> String {
    format!("nats://127.0.0.1:{port}")
}

/// One node's place in a test cluster.
#[derive(Clone, Debug)]
struct ClusterNode {
    /// `server_name` (JetStream clustering needs one per node).
    name: String,
    /// The port routes from the other nodes connect to.
    route_port: u16,
    /// The other nodes' route ports.
    peers: Vec<u16>,
}

/// How to run and probe `nats-server`.
#[derive(Debug)]
struct Nats {
    options: NatsOptions,
    cluster: Option<ClusterNode>,
}

impl Spec for Nats {
    const PROGRAM: &'static str = "nats-server";
    const DIR_PREFIX: &'static str = "sis-nats-";

    fn configure(&self, command: &mut Command, port: u16, dir: &Path) -> io::Result<()> {
        let config = dir.join("nats.conf");
        std::fs::write(&config, self.config_text(port, dir))?;
        command.arg("-c").arg(&config);
        Ok(())
    }

    /// Connects and asks JetStream for the account info.
    async fn probe(&self, port: u16) -> Result<(), String> {
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(PROBE_TIMEOUT)
            .max_reconnects(1);
        let client = self
            .options
            .client_auth()
            .apply(options)
            .connect(url(port))
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

impl Nats {
    fn config_text(&self, port: u16, dir: &Path) -> String {
        // Config values are quoted strings, so the store path and token need
        // no escaping beyond quotes (temp paths and test tokens have none).
        let store = dir.join("jetstream");
        let mut text = format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: \"{}\"\n}}\n",
            store.display()
        );
        let options = &self.options;
        if let Some(max_payload) = options.max_payload {
            text.push_str(&format!("max_payload: {max_payload}\n"));
        }
        if let Some(node) = &self.cluster {
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
        if let Some(token) = &options.token {
            text.push_str(&format!("authorization {{\n  token: \"{token}\"\n}}\n"));
        }
        if let Some((user, password)) = &options.user_password {
            text.push_str(&format!(
                "authorization {{\n  user: \"{user}\"\n  password: \"{password}\"\n}}\n"
            ));
        }
        if let Some(tls) = &options.tls {
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn nats_client(server: &NatsServer) -> async_nats::Client {
        async_nats::connect(server.url())
            .await
            .expect("connect to test nats")
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
