//! What a handler gets from where it runs, as three small traits: the app's
//! [`Database`] (opened by `database_url`), the `default` [`KeyValueStore`]
//! and the component's [`Variables`]. Components get them from Spin
//! ([`spin`], wasm32); the native twin (`nexa-twin`) from sqlx, rusqlite,
//! redis-rs and the host's own configuration code.

#[cfg(target_arch = "wasm32")]
pub mod spin;

use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use crate::auth::login::Bcrypt;
use crate::storage::{Database, DbError};

/// A key-value store (the `default` one). Its errors are only logged: the
/// cache and the health probe degrade, they never fail a request.
// Components are single-threaded wasm; no `Send` bound is wanted (a native
// implementation's futures are `Send` when its own are).
#[allow(async_fn_in_trait)]
pub trait KeyValueStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    async fn delete(&self, key: &str) -> Result<(), String>;
    async fn exists(&self, key: &str) -> Result<bool, String>;
}

/// A component's variables (spin.toml's `[component.<id>.variables]`,
/// resolved by the host). The error says why a name has no value.
#[allow(async_fn_in_trait)]
pub trait Variables {
    async fn get(&self, name: &str) -> Result<String, String>;
}

/// Everything a handler reaches outside itself.
#[allow(async_fn_in_trait)]
pub trait Platform {
    type Database: Database;
    type KeyValue: KeyValueStore;
    type Variables: Variables;

    /// The database `database_url` names: empty for the embedded SQLite
    /// `default` database, else a `postgres://` URL (see
    /// [`crate::storage::DatabaseUrl`]). One connection, for one request.
    async fn open_database(&self, database_url: &str) -> Result<Self::Database, DbError>;

    /// The `default` key-value store.
    async fn open_key_value(&self) -> Result<Self::KeyValue, String>;

    fn variables(&self) -> &Self::Variables;

    /// What this component sets up on first use and keeps.
    fn first_use(&self) -> &FirstUse;
}

/// What a handler does once and then remembers: per instance in a component
/// (a wasm instance is its own memory), per component in the native twin.
#[derive(Default)]
pub struct FirstUse {
    /// The schema was brought up to date.
    pub migrated: AtomicBool,
    /// The seeded `admin` has been given its password (auth).
    pub admin_provisioned: AtomicBool,
    /// bcrypt with this component's dummy hash (auth), made once.
    pub passwords: OnceLock<Bcrypt>,
}

impl FirstUse {
    pub const fn new() -> Self {
        Self {
            migrated: AtomicBool::new(false),
            admin_provisioned: AtomicBool::new(false),
            passwords: OnceLock::new(),
        }
    }
}
