//! Spin's runtime-config format (`spin up --runtime-config-file`), the subset
//! Nexa implements. Unknown keys are errors, as in Spin. Each capability owns
//! the type of its own section; this file only puts them together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, parse_toml};
use crate::capabilities::key_value::KeyValueStoreSection;
use crate::capabilities::sqlite::SqliteDatabaseSection;
use crate::capabilities::variables::VariablesProviderSection;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Where embedded stores live. Default: `.spin` beside the manifest.
    pub state_dir: Option<PathBuf>,
    /// Key-value stores by label. `default` needs no entry: it is an embedded
    /// SQLite file at `<state_dir>/sqlite_key_value.db`.
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KeyValueStoreSection>,
    /// SQLite databases by label. `default` needs no entry: it is
    /// `<state_dir>/sqlite_db.db`.
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SqliteDatabaseSection>,
    /// Variable providers, consulted in order; the `SPIN_VARIABLE_*` environment
    /// comes after all of them (as in Spin).
    #[serde(default, alias = "config_provider")]
    pub variables_provider: Vec<VariablesProviderSection>,
    #[serde(default)]
    pub outbound_pg: OutboundLimits,
    #[serde(default)]
    pub outbound_redis: OutboundLimits,
}

/// `[outbound_pg]` / `[outbound_redis]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundLimits {
    /// Connections open at once across the app. Default: unlimited in Spin;
    /// Nexa's pools use their own default when this is unset.
    pub max_connections: Option<u32>,
}

/// A runtime config with the directory its relative paths start from.
#[derive(Debug, Clone, Default)]
pub struct LoadedRuntimeConfig {
    /// `None` when no file was given (all defaults).
    pub path: Option<PathBuf>,
    pub config: RuntimeConfig,
    /// The file as read: what a reload compares to tell whether it changed.
    pub text: Option<String>,
}

impl LoadedRuntimeConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: RuntimeConfig = parse_toml(path, &text)?;
        let loaded = Self {
            path: Some(path.to_path_buf()),
            config,
            text: Some(text),
        };
        loaded.validate()?;
        Ok(loaded)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let path = self.path.as_deref().unwrap_or(Path::new("runtime-config"));
        for (label, store) in &self.config.key_value_store {
            if let KeyValueStoreSection::Redis { url } = store
                && !(url.starts_with("redis://") || url.starts_with("rediss://"))
            {
                return Err(ConfigError::invalid(
                    path,
                    format!("key_value_store.{label}.url: expected a redis:// URL, got {url:?}"),
                ));
            }
        }
        for (index, provider) in self.config.variables_provider.iter().enumerate() {
            if let VariablesProviderSection::Static { values } = provider {
                for name in values.keys() {
                    if !super::manifest::is_variable_name(name) {
                        return Err(ConfigError::invalid(
                            path,
                            format!(
                                "variables_provider[{index}].values.{name}: names must be lower_snake_case"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Resolves a path from this file against the file's directory.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        match self.path.as_deref().and_then(Path::parent) {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig, ConfigError> {
        super::super::parse_toml(Path::new("rc.toml"), text)
    }

    #[test]
    fn stores_and_providers_parse() {
        let rc = parse(
            r#"
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:6379"
[sqlite_database.reports]
type = "spin"
path = "reports.db"
[[variables_provider]]
type = "static"
values = { jwt_secret = "x" }
[outbound_pg]
max_connections = 8
"#,
        )
        .unwrap();
        assert!(matches!(
            rc.key_value_store["default"],
            KeyValueStoreSection::Redis { .. }
        ));
        assert_eq!(rc.outbound_pg.max_connections, Some(8));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = parse(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://x\"\npassword = \"p\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("password"), "{error}");
        let error = parse("[outbound_http]\nmax_connections = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("outbound_http"), "{error}");
        let error = parse("[key_value_store.x]\ntype = \"azure_cosmos\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("azure_cosmos"), "{error}");
    }
}
