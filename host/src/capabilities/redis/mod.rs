//! `spin:redis/redis@3.0.0`: one multiplexed, self-reconnecting connection
//! per address, shared by every instance (Spin opens a new one per guest
//! `open`); addresses checked against `allowed_outbound_hosts`; every
//! operation of the interface, and `execute` with its value types.

mod host;
mod state;

pub use host::{OpenRedisConnection, Redis, RedisGrant, RedisView};
pub use state::{RedisConfig, RedisState};
