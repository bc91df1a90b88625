//! Test support for xgroup: throwaway Redis-compatible servers and a
//! fault-injecting TCP proxy, for the integration tests of the runtime
//! adapters. Std only: no async runtime.
//!
//! - [`RedisServer`] spawns `redis-server` (or `valkey-server`) on a free
//!   loopback port in a fresh temporary directory, and can stop, kill and
//!   restart it on the same port and data. It never touches port 6379.
//! - [`ClusterSet`]: a real Redis Cluster (3 primaries with a replica each
//!   by default) that can lose, restart and fail over nodes and migrate
//!   slots live; [`SentinelSet`]: a master, a replica and three sentinels.
//! - [`FaultProxy`] forwards TCP connections to a server and can cut them,
//!   refuse new ones, or stall traffic.
//! - [`RespConnection`] and [`RespValue`]: a tiny blocking RESP2 client for
//!   setting up and checking server state in tests.
//! - [`connection`]: the tests of every adapter's `Connection`, written once.
//! - [`typed`]: the typed-message scenarios (structs produced with
//!   `xadd_serialized`, read with `Fields::deserialize` in handlers).
//! - [`tls`]: certificates for TLS test servers, made by the test
//!   ([`RedisServerBuilder::tls`]).
//!
//! The server binary is `$XGROUP_REDIS_SERVER` if set, else `redis-server`,
//! else `valkey-server` from `PATH` (or [`RedisServerBuilder::binary`]).
//! After [`serve_the_model`], servers in this process are xgroup's
//! in-memory model served over TCP (`xgroup-sim`) instead.
//!
//! Everything here panics on setup failures, with messages meant for a
//! failing test's output.

mod cluster;
pub mod cluster_scenarios;
pub mod connection;
pub mod examples;
mod proxy;
mod resp;
pub mod scenarios;
mod sentinel;
pub mod sentinel_scenarios;
mod server;
pub mod shapes;
pub mod tls;
pub mod tls_connection;
pub mod tls_scenarios;
pub mod typed;

pub use cluster::{ClusterSet, ClusterSetBuilder, Migration};
pub use proxy::FaultProxy;
pub use resp::{encode_command, read_value, RespConnection, RespValue, DEFAULT_TIMEOUT};
pub use sentinel::SentinelSet;
pub use server::{
    redis_server_on_path, serve_the_model, RedisServer, RedisServerBuilder, SERVER_ENV,
};
