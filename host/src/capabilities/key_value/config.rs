use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::runtime::LoadedRuntimeConfig;

/// `[key_value_store.<label>]` in the runtime config.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyValueStoreSection {
    /// An embedded SQLite file. `path` defaults to `<state_dir>/sqlite_key_value.db`
    /// and is relative to the runtime-config file.
    Spin { path: Option<PathBuf> },
    /// A Redis server, e.g. `redis://127.0.0.1:6379`.
    Redis { url: String },
}

/// The label every app has, with no set-up.
pub const DEFAULT_LABEL: &str = "default";

/// Where one store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackendConfig {
    /// An SQLite file (a table keyed by store label, as Spin's `spin` store).
    Sqlite { path: PathBuf },
    /// A Redis server.
    Redis { url: String },
}

/// The stores an app defines: the runtime config's `[key_value_store.*]`, plus
/// `default` as an SQLite file in the state dir unless the runtime config maps it.
pub fn stores_from_runtime_config(
    runtime: &LoadedRuntimeConfig,
    state_dir: &Path,
) -> BTreeMap<String, StoreBackendConfig> {
    let default_file = state_dir.join("sqlite_key_value.db");
    let mut stores: BTreeMap<String, StoreBackendConfig> = runtime
        .config
        .key_value_store
        .iter()
        .map(|(label, config)| {
            let backend = match config {
                KeyValueStoreSection::Spin { path } => StoreBackendConfig::Sqlite {
                    path: path
                        .as_deref()
                        .map(|p| runtime.resolve(p))
                        .unwrap_or_else(|| default_file.clone()),
                },
                KeyValueStoreSection::Redis { url } => {
                    StoreBackendConfig::Redis { url: url.clone() }
                }
            };
            (label.clone(), backend)
        })
        .collect();
    stores
        .entry(DEFAULT_LABEL.to_string())
        .or_insert(StoreBackendConfig::Sqlite { path: default_file });
    stores
}
