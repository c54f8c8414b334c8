//! The native [`Platform`] of one component: what the host would give the
//! component, built from the same configuration code and backends.
//!
//! - variables: the host's [`ComponentVariables`] (spin.toml's `[variables]`
//!   and `[component.<id>.variables]`, the runtime config's providers, the
//!   `SPIN_VARIABLE_*` environment), resolved once as `nexa up` does;
//! - key-value: the host's [`KeyValueBackend`] of the `default` store (SQLite
//!   in the state dir, or Redis when the runtime config says so);
//! - database: a connection from the host's own Postgres pools
//!   ([`PostgresState`], keyed and sized as for components), or from an
//!   [`SqlitePool`] over the embedded `default` database's file.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nexa_api::handlers::Handler;
use nexa_api::platform::{FirstUse, KeyValueStore, Platform, Variables};
use nexa_api::storage::native::{NativeDatabase, PostgresDatabase, SqlitePool};
use nexa_api::storage::{DatabaseUrl, DbError};

use crate::capabilities::key_value::{DEFAULT_LABEL, KeyValueBackend, KeyValueGrant};
use crate::capabilities::postgres::address::parse_address;
use crate::capabilities::postgres::{PgPool, PostgresState, acquire};
use crate::capabilities::variables::ComponentVariables;

/// The databases every twin component may open.
pub struct TwinDatabases {
    pub postgres: Arc<PostgresState>,
    /// The embedded `default` database, when some component uses it.
    pub sqlite: Option<Arc<SqlitePool>>,
}

impl TwinDatabases {
    /// The pool of `component` for a `postgres://` URL, as the host keys
    /// it, and how long an open may wait for one of its connections.
    fn postgres_pool(&self, component: &str, url: &str) -> Result<(PgPool, Duration), String> {
        let address = parse_address(url)?;
        let pool = self.postgres.pool(component, &address, url, None)?;
        Ok((pool, self.postgres.acquire_timeout(&address)))
    }
}

/// One component served natively.
pub struct NativeComponent {
    pub id: String,
    pub handler: Handler,
    variables: Arc<ComponentVariables>,
    key_value: Option<TwinStore>,
    databases: Arc<TwinDatabases>,
    /// The pool of the component's own `database_url`, found at start-up.
    own_pool: Option<(String, (PgPool, Duration))>,
    first_use: FirstUse,
}

impl NativeComponent {
    /// `database_url` is checked here, so a bad one stops start-up.
    pub fn new(
        id: &str,
        handler: Handler,
        variables: Arc<ComponentVariables>,
        key_value: &KeyValueGrant,
        databases: Arc<TwinDatabases>,
    ) -> anyhow::Result<Self> {
        let own_pool = match variables.get("database_url").map(DatabaseUrl::parse) {
            Some(Ok(DatabaseUrl::Postgres(url))) => Some((
                url.to_string(),
                databases
                    .postgres_pool(id, url)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("component \"{id}\": variable database_url"))?,
            )),
            Some(Err(error)) => {
                return Err(anyhow::anyhow!("{error}"))
                    .with_context(|| format!("component \"{id}\": variable database_url"));
            }
            Some(Ok(DatabaseUrl::EmbeddedSqlite)) | None => None,
        };
        let key_value = key_value
            .allowed
            .contains(DEFAULT_LABEL)
            .then(|| key_value.state.store(DEFAULT_LABEL))
            .flatten()
            .map(TwinStore);
        Ok(Self {
            id: id.to_string(),
            handler,
            variables,
            key_value,
            databases,
            own_pool,
            first_use: FirstUse::new(),
        })
    }
}

impl Platform for NativeComponent {
    type Database = NativeDatabase;
    type KeyValue = TwinStore;
    type Variables = ComponentVariables;

    async fn open_database(&self, database_url: &str) -> Result<NativeDatabase, DbError> {
        match DatabaseUrl::parse(database_url)? {
            DatabaseUrl::EmbeddedSqlite => match &self.databases.sqlite {
                Some(pool) => pool.acquire().map(NativeDatabase::Sqlite),
                None => Err(DbError::Unavailable("sqlite: no default database".into())),
            },
            DatabaseUrl::Postgres(url) => {
                let (pool, timeout) = match &self.own_pool {
                    Some((own, pool)) if own == url => pool.clone(),
                    _ => self
                        .databases
                        .postgres_pool(&self.id, url)
                        .map_err(|e| DbError::Unavailable(format!("postgres: {e}")))?,
                };
                // Any failure to get one means the database is unavailable,
                // as a component's open reports it.
                let connection = acquire(&pool, timeout)
                    .await
                    .map_err(|e| DbError::Unavailable(format!("postgres: {e}")))?;
                Ok(NativeDatabase::Postgres(PostgresDatabase::pooled(
                    connection,
                )))
            }
        }
    }

    async fn open_key_value(&self) -> Result<TwinStore, String> {
        // As a component that does not list the store is refused.
        self.key_value
            .clone()
            .ok_or_else(|| "access denied to key-value store \"default\"".to_string())
    }

    fn variables(&self) -> &ComponentVariables {
        &self.variables
    }

    fn first_use(&self) -> &FirstUse {
        &self.first_use
    }
}

impl Variables for ComponentVariables {
    async fn get(&self, name: &str) -> Result<String, String> {
        ComponentVariables::get(self, name)
            .map(str::to_string)
            .ok_or_else(|| format!("no variable for {name:?}"))
    }
}

/// The `default` key-value store, on the host's backend for it.
#[derive(Clone)]
pub struct TwinStore(Arc<KeyValueBackend>);

impl KeyValueStore for TwinStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key.to_string()).await.map_err(|e| e.to_string())
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0
            .set(key.to_string(), value.to_vec())
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        self.0
            .delete(key.to_string())
            .await
            .map_err(|e| e.to_string())
    }

    async fn exists(&self, key: &str) -> Result<bool, String> {
        self.0
            .exists(key.to_string())
            .await
            .map_err(|e| e.to_string())
    }
}
