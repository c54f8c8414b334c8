//! The Nexa host: serves the spin-sdk components of a `spin.toml` with
//! wasmtime, wasmtime-wasi-http's handler machinery, axum and tokio.

pub mod capabilities;
pub mod config;

/// Host bindings for the Spin interfaces, generated from `wit/` and the WIT
/// published by spin-sdk (assembled by `build.rs`).
pub mod spin_bindings {
    include!(concat!(env!("OUT_DIR"), "/spin_bindings.rs"));
}
pub mod admin;
pub mod app;
pub mod backends;
pub mod builder;
pub mod cli;
pub mod contract;
pub mod edge;
pub mod engine;
pub mod health;
pub mod instances;
pub mod metrics;
pub mod progress;
pub mod reload;
pub mod routes;
pub mod server;
pub mod store;
pub mod swap;
pub mod telemetry;
pub mod twin;
pub mod watch;
