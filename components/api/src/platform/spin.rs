//! The [`Platform`] of a component (wasm32): spin-sdk's databases, key-value
//! store and variables.

use spin_sdk::{key_value, variables};

use super::{FirstUse, KeyValueStore, Platform, Variables};
use crate::storage::DbError;
use crate::storage::spin::SpinDatabase;

/// This instance's first-use state (a wasm instance is its own memory).
static FIRST_USE: FirstUse = FirstUse::new();

/// What a component gets from Spin.
pub struct SpinPlatform;

/// The component's variables through spin-sdk.
pub struct SpinVariables;

/// A key-value store opened through spin-sdk.
pub struct SpinStore(key_value::Store);

impl Platform for SpinPlatform {
    type Database = SpinDatabase;
    type KeyValue = SpinStore;
    type Variables = SpinVariables;

    async fn open_database(&self, database_url: &str) -> Result<SpinDatabase, DbError> {
        SpinDatabase::open(database_url).await
    }

    async fn open_key_value(&self) -> Result<SpinStore, String> {
        key_value::Store::open_default()
            .await
            .map(SpinStore)
            .map_err(|e| e.to_string())
    }

    fn variables(&self) -> &SpinVariables {
        &SpinVariables
    }

    fn first_use(&self) -> &FirstUse {
        &FIRST_USE
    }
}

impl Variables for SpinVariables {
    async fn get(&self, name: &str) -> Result<String, String> {
        variables::get(name).await.map_err(|e| e.to_string())
    }
}

impl KeyValueStore for SpinStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).await.map_err(|e| e.to_string())
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(key, value).await.map_err(|e| e.to_string())
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        self.0.delete(key).await.map_err(|e| e.to_string())
    }

    async fn exists(&self, key: &str) -> Result<bool, String> {
        self.0.exists(key).await.map_err(|e| e.to_string())
    }
}
