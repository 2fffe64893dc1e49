//! Reaching Redis, and saying why it could not be reached. The first
//! connection is made directly through the [`Endpoint`], not through the
//! pool: the pool retries inside its own timeout and then reports only
//! that it timed out, whatever the cause was. Wrong credentials, a closed
//! port, a silent host, a name that does not resolve and a port that
//! speaks something else each get their own message, naming what to fix;
//! so do sentinels that do not answer or do not know the master's name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, ErrorKind, RedisError};

use super::pool::{ConnectError, Endpoint};
use super::sentinel;

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
    #[error(
        "REDIS_URL is not a Redis URL: use redis://[:PASSWORD@]HOST:PORT/[DB] or rediss://…, \
         or for Redis behind Sentinel {}",
        sentinel::FORM
    )]
    BadUrl,
    /// `REDIS_URL` has the Sentinel scheme but not its form.
    #[error(
        "REDIS_URL is not a usable Sentinel URL: {problem}; use {}",
        sentinel::FORM
    )]
    BadSentinelUrl {
        /// What is wrong (never the user info).
        problem: String,
    },
    /// No sentinel said where the master is.
    #[error(
        "no sentinel said where the master {master:?} is ({why}): are the sentinels \
         running, and are REDIS_URL's hosts and ports those of the sentinels (26379 by \
         default), not of Redis?"
    )]
    NoSentinel {
        /// The master's name.
        master: String,
        /// Each sentinel and why.
        why: String,
    },
    /// The sentinels answered but monitor no master of that name.
    #[error(
        "the sentinels at {sentinels} monitor no master named {master:?}: the name after \
         the hosts in REDIS_URL (redis+sentinel://HOST:PORT,…/MASTER) must be the one in \
         their `sentinel monitor` line (SENTINEL MASTERS lists them)"
    )]
    UnknownMaster {
        /// The master's name.
        master: String,
        /// The sentinels, `host:port,…`.
        sentinels: String,
    },
    /// The server the sentinels name is not master (yet).
    #[error(
        "{addr}, which the sentinels name as master {master:?}, is not master: a failover \
         is under way, or the sentinels disagree"
    )]
    NotMaster {
        /// Its `host:port`.
        addr: String,
        /// The master's name.
        master: String,
    },
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
            Unreachable::Refused { .. }
                | Unreachable::Timeout { .. }
                | Unreachable::NoSentinel { .. }
                | Unreachable::NotMaster { .. }
                | Unreachable::Other(_)
        )
    }
}

/// Where Redis is, as messages name it (no credentials).
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// `host:port`, or the socket path; for Sentinel the master's name
    /// and the sentinels.
    addr: String,
    /// The host name alone.
    host: String,
    /// Whether the URL asks for TLS.
    tls: bool,
    /// For Sentinel: the master's name and the sentinels, `host:port,…`.
    sentinel: Option<(String, String)>,
}

impl Target {
    /// Where `endpoint` connects.
    pub(super) fn of(endpoint: &Endpoint) -> Target {
        let client = match endpoint {
            Endpoint::Direct(client) => client,
            Endpoint::Sentinel(sentinels) => {
                let url = sentinels.url();
                let list = url.sentinel_list();
                return Target {
                    addr: format!("master {:?} of the sentinels at {list}", url.master),
                    host: url.sentinels[0].0.clone(),
                    tls: url.tls,
                    sentinel: Some((url.master.clone(), list)),
                };
            }
        };
        let (host, port, tls) = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), Some(*port), false),
            ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), Some(*port), true),
            other => (other.to_string(), None, false),
        };
        let addr = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        Target {
            addr,
            host,
            tls,
            sentinel: None,
        }
    }

    /// `e`, met connecting to this target, told apart.
    pub(super) fn classify(&self, e: &ConnectError, waited: Duration) -> Unreachable {
        let (master, sentinels) = self.sentinel.clone().unwrap_or_default();
        match e {
            ConnectError::Redis { at, source } => {
                self.classify_redis(source, at.as_deref(), waited)
            }
            ConnectError::NoSentinel { why } => Unreachable::NoSentinel {
                master,
                why: why.clone(),
            },
            ConnectError::UnknownMaster => Unreachable::UnknownMaster { master, sentinels },
            ConnectError::NotMaster { at } => Unreachable::NotMaster {
                addr: at.clone(),
                master,
            },
        }
    }

    /// `e`, met talking to the server at `at` (this target's own address
    /// when `None`), told apart.
    pub(super) fn classify_redis(
        &self,
        e: &RedisError,
        at: Option<&str>,
        waited: Duration,
    ) -> Unreachable {
        let text = e.to_string();
        let addr = at.unwrap_or(&self.addr).to_owned();
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
                host: at.map_or(self.host.clone(), |a| host_of(a).to_owned()),
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

/// The host of `host:port`.
fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host)
}

/// Connects and pings, retrying a refused or silent server (or sentinels,
/// or a master mid-failover) for at most [`CONNECT_TIMEOUT`]; anything
/// else fails at once.
pub(super) async fn first_connection(
    endpoint: &Endpoint,
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
            let mut conn = endpoint.connect(&config).await?;
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|source| ConnectError::Redis { at: None, source })?;
            Ok::<_, ConnectError>(conn)
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
pub(super) struct LastFailure(Arc<Mutex<Option<ConnectError>>>);

impl LastFailure {
    /// Remembers `e`.
    pub(super) fn set(&self, e: &ConnectError) {
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

    fn direct(url: &str) -> Target {
        Target::of(&Endpoint::Direct(redis::Client::open(url).unwrap()))
    }

    fn sentinel(url: &str) -> Target {
        let url = sentinel::SentinelUrl::parse(url).unwrap();
        Target::of(&Endpoint::Sentinel(sentinel::Sentinels::new(url)))
    }

    #[test]
    fn sentinel_troubles_name_the_sentinels_the_master_and_what_to_fix() {
        let target = sentinel("redis+sentinel://:hunter2@s1:26379,s2:26379/mymaster");
        let unknown = target.classify(&ConnectError::UnknownMaster, CONNECT_TIMEOUT);
        assert!(unknown.is_permanent());
        let message = unknown.to_string();
        assert!(
            message.starts_with(
                "the sentinels at s1:26379,s2:26379 monitor no master named \"mymaster\""
            ),
            "{message}"
        );
        assert!(message.contains("`sentinel monitor`"), "{message}");
        let silent = ConnectError::NoSentinel {
            why: "s1:26379 refused the connection; s2:26379 did not answer within 1 s".into(),
        };
        let message = target.classify(&silent, CONNECT_TIMEOUT);
        assert!(!message.is_permanent(), "sentinels may be starting");
        let message = message.to_string();
        assert!(
            message.contains("s1:26379 refused the connection; s2:26379 did not answer"),
            "{message}"
        );
        assert!(message.contains("26379 by default"), "{message}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let at_master = ConnectError::Redis {
            at: Some("10.0.0.5:6379".into()),
            source: refused.into(),
        };
        assert_eq!(
            target.classify(&at_master, CONNECT_TIMEOUT),
            Unreachable::Refused {
                addr: "10.0.0.5:6379".into()
            }
        );
        let mid_failover = ConnectError::NotMaster {
            at: "10.0.0.5:6379".into(),
        };
        assert!(!target
            .classify(&mid_failover, CONNECT_TIMEOUT)
            .is_permanent());
        assert!(!format!("{target:?}").contains("hunter2"));
    }

    #[test]
    fn credentials_names_and_the_wrong_server_are_not_retried() {
        for permanent in [
            Unreachable::WrongPassword,
            Unreachable::NoPassword,
            Unreachable::UnknownHost { host: "x".into() },
            Unreachable::NotRedis { addr: "x:1".into() },
            Unreachable::BadUrl,
            Unreachable::BadSentinelUrl {
                problem: "x".into(),
            },
            Unreachable::UnknownMaster {
                master: "m".into(),
                sentinels: "s:1".into(),
            },
        ] {
            assert!(permanent.is_permanent(), "{permanent}");
        }
        assert!(!Unreachable::Refused { addr: "x:1".into() }.is_permanent());
    }

    #[test]
    fn tls_troubles_are_named_and_a_silent_tls_port_gets_a_hint() {
        let target = direct("rediss://:pw@redis.internal:6380/");
        let untrusted = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(
            target.classify_redis(&untrusted.into(), None, CONNECT_TIMEOUT),
            Unreachable::Tls {
                addr: "redis.internal:6380".into(),
                message: "invalid peer certificate: UnknownIssuer".into()
            }
        );
        let silent = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let message = target
            .classify_redis(&silent.into(), None, CONNECT_TIMEOUT)
            .to_string();
        assert!(
            message.ends_with("; with rediss://, also check that the port serves TLS"),
            "{message}"
        );
    }

    #[test]
    fn a_target_is_shown_without_its_password() {
        let target = direct("redis://:hunter2@redis.internal:6380/2");
        assert_eq!(target.addr, "redis.internal:6380");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let message = target
            .classify_redis(&refused.into(), None, CONNECT_TIMEOUT)
            .to_string();
        assert!(
            message.starts_with("nothing listens at redis.internal:6380"),
            "{message}"
        );
        assert!(!message.contains("hunter2"));
    }
}
