use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::runtime::{LoadedRuntimeConfig, SqliteDatabaseConfig};

/// The databases an app defines, label → file: the runtime config's
/// `[sqlite_database.*]`, plus `default` in the state dir unless it is mapped.
pub fn databases_from_runtime_config(
    runtime: &LoadedRuntimeConfig,
    state_dir: &Path,
) -> BTreeMap<String, PathBuf> {
    let mut databases: BTreeMap<String, PathBuf> = runtime
        .config
        .sqlite_database
        .iter()
        .map(|(label, config)| {
            let SqliteDatabaseConfig::Spin { path } = config;
            let path = match path {
                Some(path) => runtime.resolve(path),
                None if label == "default" => state_dir.join("sqlite_db.db"),
                None => state_dir.join(format!("{label}.db")),
            };
            (label.clone(), path)
        })
        .collect();
    databases
        .entry("default".to_string())
        .or_insert_with(|| state_dir.join("sqlite_db.db"));
    databases
}
