//! Real `nats-server -js` and `redis-server` processes for tests, benchmarks
//! and the demo, each on a free port of 127.0.0.1 with its data and log in
//! its own temp dir. They can be killed (SIGKILL) and restarted on the same
//! port with the same data, which is how tests simulate a broker or store
//! outage. Dropping a server kills its process, so a failing test leaves no
//! orphan behind.
//!
//! - `process`: the harness both share (port, temp dir, spawn, readiness,
//!   retries, kill and restart).
//! - `nats`: [`NatsServer`], [`NatsCluster`] and their options.
//! - `redis`: [`RedisServer`] and its options.
//! - `sentinel`: [`RedisSentinelSet`], a master, a replica and three
//!   sentinels.

mod nats;
mod process;
mod redis;
mod sentinel;

pub use nats::{NatsCluster, NatsOptions, NatsServer, NatsServerTls};
pub use redis::{RedisOptions, RedisServer};
pub use sentinel::{RedisSentinelSet, MASTER_NAME};

#[cfg(test)]
mod tests {
    use super::*;

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
}
