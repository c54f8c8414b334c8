//! `spin:key-value/key-value@3.0.0`: app-scoped stores shared by all instances,
//! opened by label under each component's `key_value_stores` allow-list.
//! Backends: an embedded SQLite file (the `default` store, no set-up) and Redis
//! (one shared, auto-reconnecting connection per store).

mod config;
mod host;
mod state;

pub use config::{StoreBackendConfig, stores_from_runtime_config};
pub use host::{KeyValue, KeyValueView, OpenStore};
pub use state::{KeyValueBackend, KeyValueError, KeyValueGrant, KeyValueState};
