//! Spin capabilities, one module each with the same shape:
//!
//! - `config`: what the manifest and runtime config say, as plain structs;
//! - `state`: what is built once per app (stores, databases, resolved values)
//!   and shared by every instance through `Arc`s;
//! - `host`: the WIT host implementation, which sees only its own view of the
//!   per-store data.

pub mod allowed_hosts;
pub mod key_value;
pub mod outbound_http;
pub mod postgres;
pub mod redis;
pub mod sqlite;
pub mod variables;

use std::sync::Arc;

/// What one component may use, built once per component at load time and
/// shared (cheaply cloned) into each of its instances.
#[derive(Clone)]
pub struct ComponentCapabilities {
    pub variables: Arc<variables::ComponentVariables>,
    pub key_value: Arc<key_value::KeyValueGrant>,
    pub sqlite: Arc<sqlite::SqliteGrant>,
    pub postgres: Arc<postgres::PostgresGrant>,
    pub redis: Arc<redis::RedisGrant>,
    pub outbound_http: Arc<outbound_http::OutboundHttpGrant>,
}
