//! The connection pool's manager: where a new connection goes (the one
//! server of `redis://`, or the master the sentinels name for
//! `redis+sentinel://`), and which connections the pool must drop (those
//! [`Conn::stale`] marks: their server no longer takes writes).

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};

use super::sentinel::Sentinels;

/// Where connections go.
#[derive(Debug, Clone)]
pub(super) enum Endpoint {
    /// One Redis server (`redis://`, `rediss://`).
    Direct(redis::Client),
    /// The current master of a Sentinel set (`redis+sentinel://`).
    Sentinel(Sentinels),
}

impl Endpoint {
    /// A new connection, made with `config` (its timeouts).
    pub(super) async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, ConnectError> {
        match self {
            Endpoint::Direct(client) => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map_err(|source| ConnectError::Redis { at: None, source }),
            Endpoint::Sentinel(sentinels) => sentinels.connect_master(config).await,
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum ConnectError {
    /// The Redis server said or did this: `REDIS_URL`'s server, or the
    /// master the sentinels named (`at`).
    #[error("{source}")]
    Redis {
        /// The master's `host:port`; `None` for `REDIS_URL`'s own server.
        at: Option<String>,
        /// The cause.
        source: RedisError,
    },
    /// No sentinel said where the master is.
    #[error("no sentinel answered: {why}")]
    NoSentinel {
        /// Each sentinel and why, `; `-separated.
        why: String,
    },
    /// The sentinels answered but monitor no master of the URL's name.
    #[error("the sentinels know no master of that name")]
    UnknownMaster,
    /// The server the sentinels named does not say it is master.
    #[error("{at} is not master (yet)")]
    NotMaster {
        /// Its `host:port`.
        at: String,
    },
}

/// A pooled connection, and whether the pool must drop it.
pub(super) struct Conn {
    /// The connection.
    pub(super) inner: MultiplexedConnection,
    /// Set by `OrdinalStore::query` when the server answered `READONLY`
    /// or `NOREPLICAS` (a master demoted, or cut off from its promoted
    /// replica, by a failover): the pool drops the connection when it
    /// comes back, so the next one is made anew and goes where the
    /// endpoint now leads.
    pub(super) stale: bool,
}

/// Makes the pool's connections through an [`Endpoint`].
#[derive(Debug)]
pub(super) struct Manager {
    pub(super) endpoint: Endpoint,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnectError;

    async fn connect(&self) -> Result<Conn, ConnectError> {
        // The redis crate's default timeouts (1 s to connect, 500 ms per
        // answer), as the pool had before it knew Sentinel.
        let inner = self.endpoint.connect(&AsyncConnectionConfig::new()).await?;
        Ok(Conn {
            inner,
            stale: false,
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), ConnectError> {
        redis::cmd("PING")
            .query_async::<()>(&mut conn.inner)
            .await
            .map_err(|source| ConnectError::Redis { at: None, source })
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.stale
    }
}
