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
    Spin {
        path: Option<PathBuf>,
        /// Whether guests may `ATTACH` other database files (as in Spin).
        /// Default false: only `""` and `:memory:` may be attached.
        #[serde(default)]
        allow_attach_file: bool,
    },
}

/// Where one database lives and what its guests may attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFile {
    pub path: PathBuf,
    pub allow_attach_file: bool,
}

/// The databases an app defines, label → file: the runtime config's
/// `[sqlite_database.*]`, plus `default` in the state dir unless it is mapped.
pub fn databases_from_runtime_config(
    runtime: &LoadedRuntimeConfig,
    state_dir: &Path,
) -> BTreeMap<String, DatabaseFile> {
    let mut databases: BTreeMap<String, DatabaseFile> = runtime
        .config
        .sqlite_database
        .iter()
        .map(|(label, config)| {
            let SqliteDatabaseSection::Spin {
                path,
                allow_attach_file,
            } = config;
            let path = match path {
                Some(path) => runtime.resolve(path),
                None if label == "default" => state_dir.join("sqlite_db.db"),
                None => state_dir.join(format!("{label}.db")),
            };
            let file = DatabaseFile {
                path,
                allow_attach_file: *allow_attach_file,
            };
            (label.clone(), file)
        })
        .collect();
    databases
        .entry("default".to_string())
        .or_insert_with(|| DatabaseFile {
            path: state_dir.join("sqlite_db.db"),
            allow_attach_file: false,
        });
    databases
}
