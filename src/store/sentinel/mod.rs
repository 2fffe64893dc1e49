//! Redis behind Sentinel: every new connection asks the sentinels, in the
//! order `REDIS_URL` lists them, where the master named there is now,
//! connects to it and checks with `ROLE` that it is master. After a
//! failover the old connections fail (the sentinels close them, or the
//! dead master does), the pool drops them, and the new ones go to the new
//! master; a connection to a master demoted (`READONLY`) or cut off from
//! its promoted replica (`NOREPLICAS`) is dropped by `OrdinalStore::query`
//! the same way.
//!
//! - `url`: the `redis+sentinel://` form.

mod url;

pub use url::{is_sentinel, SentinelUrl, FORM};

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::pool::ConnectError;

/// How long one sentinel may take to accept a connection, and to answer.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(1);

/// The sentinels of one master, asked for every new connection.
#[derive(Debug, Clone)]
pub(super) struct Sentinels {
    url: SentinelUrl,
}

impl Sentinels {
    /// Asks the sentinels of `url`.
    pub(super) fn new(url: SentinelUrl) -> Sentinels {
        Sentinels { url }
    }

    /// The URL taken apart.
    pub(super) fn url(&self) -> &SentinelUrl {
        &self.url
    }

    /// A connection to the current master, made with `config`: the first
    /// address a sentinel names that answers as master. Fails with the
    /// master's own error when one was named (a failover under way), else
    /// with [`ConnectError::UnknownMaster`] when a sentinel answered, else
    /// with [`ConnectError::NoSentinel`] and each one's reason.
    pub(super) async fn connect_master(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, ConnectError> {
        let mut unanswered = Vec::new();
        let mut answered = false;
        let mut named = Vec::new();
        let mut master_error = None;
        for (host, port) in &self.url.sentinels {
            let addr = match self.ask(host, *port).await {
                Ok(Some(addr)) => addr,
                Ok(None) => {
                    answered = true;
                    continue;
                }
                Err(why) => {
                    unanswered.push(format!("{host}:{port} {why}"));
                    continue;
                }
            };
            answered = true;
            // Sentinels that agree are asked, but their master tried once.
            if named.contains(&addr) {
                continue;
            }
            named.push(addr.clone());
            match self.master(&addr, config).await {
                Ok(conn) => return Ok(conn),
                Err(e) => master_error = Some(e),
            }
        }
        Err(match master_error {
            Some(e) => e,
            None if answered => ConnectError::UnknownMaster,
            None => ConnectError::NoSentinel {
                why: unanswered.join("; "),
            },
        })
    }

    /// The master's `(host, port)` as the sentinel at `host:port` knows
    /// it (`None`: it monitors no master of that name), or why it did not
    /// say. Asks without credentials, and again with them when the
    /// sentinel demands a password.
    async fn ask(&self, host: &str, port: u16) -> Result<Option<(String, u16)>, String> {
        match self.ask_with(host, port, false).await {
            Err(e) if e.code() == Some("NOAUTH") && self.url.password.is_some() => {
                self.ask_with(host, port, true).await
            }
            other => other,
        }
        .map_err(|e| sentinel_failure(&e))
    }

    async fn ask_with(
        &self,
        host: &str,
        port: u16,
        credentials: bool,
    ) -> redis::RedisResult<Option<(String, u16)>> {
        let mut info = self.addr(host.to_owned(), port).into_connection_info()?;
        if credentials {
            info = info.set_redis_settings(self.credentials(RedisConnectionInfo::default()));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(SENTINEL_TIMEOUT))
            .set_response_timeout(Some(SENTINEL_TIMEOUT));
        let mut conn = redis::Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.url.master)
            .query_async(&mut conn)
            .await
    }

    /// Connects to `addr` as the master and checks that it is one.
    async fn master(
        &self,
        (host, port): &(String, u16),
        config: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, ConnectError> {
        let at = format!("{host}:{port}");
        let failed = |source| ConnectError::Redis {
            at: Some(at.clone()),
            source,
        };
        let settings = self.credentials(RedisConnectionInfo::default().set_db(self.url.db));
        let info = self
            .addr(host.clone(), *port)
            .into_connection_info()
            .map_err(failed)?
            .set_redis_settings(settings);
        let mut conn = redis::Client::open(info)
            .map_err(failed)?
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map_err(failed)?;
        match redis::cmd("ROLE").query_async(&mut conn).await {
            Ok(redis::Role::Primary { .. }) => Ok(conn),
            Ok(_) => Err(ConnectError::NotMaster { at }),
            // A user without the right to ask: trust the sentinels (a
            // write to a replica would still be told by READONLY).
            Err(e) if e.code() == Some("NOPERM") => Ok(conn),
            Err(e) => Err(failed(e)),
        }
    }

    /// Where `host:port` is, with TLS when the URL asks for it.
    fn addr(&self, host: String, port: u16) -> ConnectionAddr {
        if self.url.tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: self.url.insecure,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        }
    }

    /// `settings` with the URL's user and password.
    fn credentials(&self, mut settings: RedisConnectionInfo) -> RedisConnectionInfo {
        if let Some(user) = &self.url.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.url.password {
            settings = settings.set_password(password.expose());
        }
        settings
    }
}

/// Why a sentinel did not say where the master is, in a few words.
fn sentinel_failure(e: &redis::RedisError) -> String {
    let text = e.to_string();
    if e.is_connection_refusal() {
        "refused the connection".into()
    } else if e.is_timeout() {
        format!("did not answer within {} s", SENTINEL_TIMEOUT.as_secs())
    } else if text.contains("failed to lookup address") {
        "does not resolve".into()
    } else if text.to_ascii_lowercase().contains("unknown command") {
        "is not a sentinel (it does not know the SENTINEL command; a sentinel listens on \
         26379 by default)"
            .into()
    } else if e.code() == Some("NOAUTH") {
        "demands a password (NOAUTH) and REDIS_URL gives none".into()
    } else if e.code() == Some("WRONGPASS") || e.kind() == redis::ErrorKind::AuthenticationFailed {
        "refused the password (WRONGPASS)".into()
    } else {
        format!(
            "failed: {}",
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    }
}
