//! Test kit: the parts that stand in for the world around the importer in
//! tests, benchmarks and the demo. Real NATS and Redis are never faked; Sisu
//! (which cannot be reached from here) and the downstream consumers are.
//!
//! # Layout
//! - `fake_sisu/`: a seeded HTTP server serving all 26 services from data
//!   generated page by page, with later generations of changes and faults.
//! - `consumer/`: the reference consumer (consumer side of SPEC §4).
//! - `servers/`: start `nats-server -js` and `redis-server` on free ports in
//!   a temp dir, kill and restart them (one process harness, `process.rs`,
//!   for both).
//! - `bin/`: the `demo` and `fake-sisu` commands.

pub mod consumer;
pub mod fake_sisu;
pub mod servers;
