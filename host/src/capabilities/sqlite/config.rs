use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::runtime::LoadedRuntimeConfig;

/// `[sqlite_database.<label>]` in the runtime config.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SqliteDatabaseSection {
    /// A local file, relative to the runtime-config file.
    /// Defaults to `<state_dir>/sqlite_db.db` for `default`, `<state_dir>/<label>.db` otherwise.
    Spin { path: Option<PathBuf> },
}

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
            let SqliteDatabaseSection::Spin { path } = config;
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
