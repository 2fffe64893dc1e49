//! Reaching Redis, and saying why it could not be reached. The first
//! connection is made directly with the redis crate, not through the
//! pool: the pool retries inside its own timeout and then reports only
//! that it timed out, whatever the cause was. Wrong credentials, a closed
//! port, a silent host, a name that does not resolve and a port that
//! speaks something else each get their own message, naming what to fix.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, ErrorKind, RedisError};

/// How long the first connection (with its `PING`) may take, retries of a
/// refused or silent server included.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between attempts while nothing answers at start (a Redis that is
/// still starting beside the importer).
const CONNECT_RETRY: Duration = Duration::from_millis(250);

/// Why Redis could not be reached, or would not let the importer in; each
/// says what to fix. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// `AUTH` refused (WRONGPASS): retrying does not help.
    #[error(
        "Redis refused the password (WRONGPASS): fix the password in REDIS_URL \
         (redis://:PASSWORD@host:port/, or redis://USER:PASSWORD@… for an ACL user)"
    )]
    WrongPassword,
    /// The server wants a password and none was given (NOAUTH).
    #[error(
        "Redis requires a password (NOAUTH) and REDIS_URL gives none: put it in \
         REDIS_URL as redis://:PASSWORD@host:port/"
    )]
    NoPassword,
    /// Nothing listens at the address.
    #[error(
        "nothing listens at {addr} (connection refused): is redis-server running, and \
         are REDIS_URL's host and port right?"
    )]
    Refused {
        /// `host:port`.
        addr: String,
    },
    /// No answer in time.
    #[error(
        "no answer from {addr} within {secs} s: the host is down or unreachable, or a \
         firewall drops the connection{}",
        if *tls { "; with rediss://, also check that the port serves TLS" } else { "" }
    )]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The time waited, in seconds.
        secs: u64,
        /// Whether the URL asks for TLS.
        tls: bool,
    },
    /// The host name does not resolve.
    #[error("cannot resolve the host {host}: check the host name in REDIS_URL")]
    UnknownHost {
        /// The host name.
        host: String,
    },
    /// Something answered that is not Redis.
    #[error(
        "{addr} does not answer as Redis does: check the port in REDIS_URL (and \
         redis:// against rediss://)"
    )]
    NotRedis {
        /// `host:port`.
        addr: String,
    },
    /// TLS (`rediss://`) failed.
    #[error(
        "TLS to {addr} failed ({message}): check that the port serves TLS and that its \
         certificate is trusted"
    )]
    Tls {
        /// `host:port`.
        addr: String,
        /// The TLS error, on one line.
        message: String,
    },
    /// `REDIS_URL` does not parse as a Redis URL.
    #[error("REDIS_URL is not a Redis URL: use redis://[:PASSWORD@]HOST:PORT/[DB] or rediss://…")]
    BadUrl,
    /// Anything else, as the redis crate says it.
    #[error("{0}")]
    Other(String),
}

impl Unreachable {
    /// Whether trying again cannot help (credentials, names, the wrong
    /// kind of server): the operator has to change a setting.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            Unreachable::Refused { .. } | Unreachable::Timeout { .. } | Unreachable::Other(_)
        )
    }
}

/// Where Redis is, as messages name it (no credentials).
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// `host:port`, or the socket path.
    addr: String,
    /// The host name alone.
    host: String,
    /// Whether the URL asks for TLS.
    tls: bool,
}

impl Target {
    /// Where `client` connects.
    pub(super) fn of(client: &redis::Client) -> Target {
        let (host, port, tls) = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), Some(*port), false),
            ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), Some(*port), true),
            other => (other.to_string(), None, false),
        };
        let addr = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        Target { addr, host, tls }
    }

    /// `e`, met connecting to this target, told apart.
    pub(super) fn classify(&self, e: &RedisError, waited: Duration) -> Unreachable {
        let text = e.to_string();
        let addr = self.addr.clone();
        if e.kind() == ErrorKind::AuthenticationFailed || e.code() == Some("WRONGPASS") {
            Unreachable::WrongPassword
        } else if e.code() == Some("NOAUTH") {
            Unreachable::NoPassword
        } else if e.is_connection_refusal() {
            Unreachable::Refused { addr }
        } else if e.is_timeout() {
            Unreachable::Timeout {
                addr,
                secs: waited.as_secs().max(1),
                tls: self.tls,
            }
        } else if e.kind() == ErrorKind::Parse {
            Unreachable::NotRedis { addr }
        } else if text.contains("failed to lookup address") {
            Unreachable::UnknownHost {
                host: self.host.clone(),
            }
        } else if self.tls && e.is_io_error() {
            Unreachable::Tls {
                addr,
                message: one_line(&text),
            }
        } else {
            Unreachable::Other(one_line(&text))
        }
    }
}

/// Connects and pings, retrying a refused or silent server for at most
/// [`CONNECT_TIMEOUT`]; anything else fails at once.
pub(super) async fn first_connection(
    client: &redis::Client,
    target: &Target,
) -> Result<MultiplexedConnection, Unreachable> {
    let started = tokio::time::Instant::now();
    let deadline = started + CONNECT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(left))
            .set_response_timeout(Some(left));
        let attempt = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        let e = match tokio::time::timeout(left, attempt).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => target.classify(&e, started.elapsed()),
            Err(_) => Unreachable::Timeout {
                addr: target.addr.clone(),
                secs: CONNECT_TIMEOUT.as_secs(),
                tls: target.tls,
            },
        };
        if e.is_permanent() || tokio::time::Instant::now() + CONNECT_RETRY >= deadline {
            return Err(e);
        }
        tokio::time::sleep(CONNECT_RETRY).await;
    }
}

/// The last error the pool met connecting (it keeps them to itself and
/// only reports that it timed out), told apart; shared with the pool's
/// error sink.
#[derive(Debug, Clone, Default)]
pub(super) struct LastFailure(Arc<Mutex<Option<RedisError>>>);

impl LastFailure {
    /// Remembers `e`.
    pub(super) fn set(&self, e: &RedisError) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
    }

    /// Forgets the last error (a connection worked).
    pub(super) fn clear(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The last error, told apart against `target`.
    pub(super) fn get(&self, target: &Target) -> Option<Unreachable> {
        let last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().map(|e| target.classify(e, CONNECT_TIMEOUT))
    }
}

/// `text` with its line breaks and runs of blanks made single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_names_and_the_wrong_server_are_not_retried() {
        for permanent in [
            Unreachable::WrongPassword,
            Unreachable::NoPassword,
            Unreachable::UnknownHost { host: "x".into() },
            Unreachable::NotRedis { addr: "x:1".into() },
            Unreachable::BadUrl,
        ] {
            assert!(permanent.is_permanent(), "{permanent}");
        }
        assert!(!Unreachable::Refused { addr: "x:1".into() }.is_permanent());
    }

    #[test]
    fn tls_troubles_are_named_and_a_silent_tls_port_gets_a_hint() {
        let client = redis::Client::open("rediss://:pw@redis.internal:6380/").unwrap();
        let target = Target::of(&client);
        let untrusted = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(
            target.classify(&untrusted.into(), CONNECT_TIMEOUT),
            Unreachable::Tls {
                addr: "redis.internal:6380".into(),
                message: "invalid peer certificate: UnknownIssuer".into()
            }
        );
        let silent = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let message = target.classify(&silent.into(), CONNECT_TIMEOUT).to_string();
        assert!(
            message.ends_with("; with rediss://, also check that the port serves TLS"),
            "{message}"
        );
    }

    #[test]
    fn a_target_is_shown_without_its_password() {
        let client = redis::Client::open("redis://:hunter2@redis.internal:6380/2").unwrap();
        let target = Target::of(&client);
        assert_eq!(target.addr, "redis.internal:6380");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let message = target
            .classify(&refused.into(), CONNECT_TIMEOUT)
            .to_string();
        assert!(
            message.starts_with("nothing listens at redis.internal:6380"),
            "{message}"
        );
        assert!(!message.contains("hunter2"));
    }
}
