use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::config::StoreBackendConfig;

/// How long one Redis operation may take before the guest gets an error.
const REDIS_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyValueError {
    #[error("key-value store {label:?}: cannot open {path}: {source}")]
    OpenSqlite {
        label: String,
        path: String,
        source: rusqlite::Error,
    },
    #[error("key-value store {label:?}: bad Redis URL: {source}")]
    RedisUrl {
        label: String,
        source: redis::RedisError,
    },
    #[error("{0}")]
    Backend(String),
}

/// One store's backend. Shared by every instance of every component allowed to
/// open it.
pub enum KeyValueBackend {
    Sqlite {
        label: String,
        connection: Arc<Mutex<rusqlite::Connection>>,
    },
    Redis {
        connection: ConnectionManager,
    },
}

impl KeyValueBackend {
    pub fn open(label: &str, config: &StoreBackendConfig) -> Result<Self, KeyValueError> {
        match config {
            StoreBackendConfig::Sqlite { path } => {
                let open_error = |source| KeyValueError::OpenSqlite {
                    label: label.to_string(),
                    path: path.display().to_string(),
                    source,
                };
                let connection = open_sqlite(path).map_err(open_error)?;
                connection
                    .execute_batch(
                        "CREATE TABLE IF NOT EXISTS spin_key_value (
                            store TEXT NOT NULL,
                            key   TEXT NOT NULL,
                            value BLOB NOT NULL,
                            PRIMARY KEY (store, key)
                        );",
                    )
                    .map_err(open_error)?;
                Ok(Self::Sqlite {
                    label: label.to_string(),
                    connection: Arc::new(Mutex::new(connection)),
                })
            }
            StoreBackendConfig::Redis { url } => {
                let url_error = |source| KeyValueError::RedisUrl {
                    label: label.to_string(),
                    source,
                };
                let client = redis::Client::open(url.as_str()).map_err(url_error)?;
                // Lazy: the host starts even when Redis is down; each operation
                // then fails (or reconnects) on its own.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(REDIS_OPERATION_TIMEOUT))
                    .set_number_of_retries(1);
                let connection = client
                    .get_connection_manager_lazy(config)
                    .map_err(url_error)?;
                Ok(Self::Redis { connection })
            }
        }
    }

    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, KeyValueError> {
        match self {
            Self::Sqlite { label, connection } => {
                let label = label.clone();
                point_query(connection, move |c| {
                    c.prepare_cached(
                        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?
                    .query_row((label, key), |row| row.get(0))
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })
                })
                .await
            }
            Self::Redis { connection } => {
                let mut connection = connection.clone();
                redis_op(connection.get(key)).await
            }
        }
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), KeyValueError> {
        match self {
            Self::Sqlite { label, connection } => {
                let label = label.clone();
                point_query(connection, move |c| {
                    c.prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute((label, key, value))
                    .map(drop)
                })
                .await
            }
            Self::Redis { connection } => {
                let mut connection = connection.clone();
                redis_op(connection.set::<_, _, ()>(key, value)).await
            }
        }
    }

    pub async fn delete(&self, key: String) -> Result<(), KeyValueError> {
        match self {
            Self::Sqlite { label, connection } => {
                let label = label.clone();
                point_query(connection, move |c| {
                    c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                        .execute((label, key))
                        .map(drop)
                })
                .await
            }
            Self::Redis { connection } => {
                let mut connection = connection.clone();
                redis_op(connection.del::<_, ()>(key)).await
            }
        }
    }

    pub async fn exists(&self, key: String) -> Result<bool, KeyValueError> {
        match self {
            Self::Sqlite { label, connection } => {
                let label = label.clone();
                point_query(connection, move |c| {
                    c.prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
                    )?
                    .query_row((label, key), |row| row.get(0))
                })
                .await
            }
            Self::Redis { connection } => {
                let mut connection = connection.clone();
                redis_op(connection.exists(key)).await
            }
        }
    }

    pub async fn keys(&self) -> Result<Vec<String>, KeyValueError> {
        match self {
            Self::Sqlite { label, connection } => {
                let label = label.clone();
                point_query(connection, move |c| {
                    c.prepare_cached(
                        "SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key",
                    )?
                    .query_map([label], |row| row.get(0))?
                    .collect()
                })
                .await
            }
            Self::Redis { connection } => {
                let mut connection = connection.clone();
                let scan = async move {
                    use futures::StreamExt;
                    let iter = connection.scan::<String>().await?;
                    Ok::<_, redis::RedisError>(
                        iter.filter_map(|k| async { k.ok() }).collect().await,
                    )
                };
                redis_op(scan).await
            }
        }
    }
}

fn open_sqlite(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("creating {}: {e}", dir.display())),
            )
        })?;
    }
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    Ok(connection)
}

/// Runs a key-value SQLite call. These are single-row primary-key operations
/// (microseconds), so they run inline: a hop to the blocking pool costs more
/// than the query and showed up as context switches in profiles of /health.
async fn point_query<T: Send + 'static>(
    connection: &Arc<Mutex<rusqlite::Connection>>,
    call: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, KeyValueError> {
    let connection = connection
        .lock()
        .map_err(|_| KeyValueError::Backend("store connection poisoned".into()))?;
    call(&connection).map_err(|e| KeyValueError::Backend(e.to_string()))
}

async fn redis_op<T>(
    operation: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, KeyValueError> {
    match tokio::time::timeout(REDIS_OPERATION_TIMEOUT, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(KeyValueError::Backend(format!("redis: {e}"))),
        Err(_) => Err(KeyValueError::Backend("redis: operation timed out".into())),
    }
}

/// The stores of an app, built once at start-up: only those some component uses.
#[derive(Default)]
pub struct KeyValueState {
    stores: HashMap<String, Arc<KeyValueBackend>>,
}

impl KeyValueState {
    pub fn open(
        configs: &BTreeMap<String, StoreBackendConfig>,
        used: &HashSet<String>,
    ) -> Result<Self, KeyValueError> {
        let mut stores = HashMap::new();
        for label in used {
            if let Some(config) = configs.get(label) {
                stores.insert(
                    label.clone(),
                    Arc::new(KeyValueBackend::open(label, config)?),
                );
            }
        }
        Ok(Self { stores })
    }

    pub fn store(&self, label: &str) -> Option<Arc<KeyValueBackend>> {
        self.stores.get(label).cloned()
    }
}

/// What one component may open.
pub struct KeyValueGrant {
    pub allowed: HashSet<String>,
    pub state: Arc<KeyValueState>,
}
