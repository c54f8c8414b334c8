use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::config::runtime::LoadedRuntimeConfig;

/// `[[variables_provider]]` in the runtime config (alias `config_provider`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VariablesProviderSection {
    /// `<PREFIX>_<NAME>` environment variables (default prefix `SPIN_VARIABLE`).
    /// Consulted at its place in the list; the default `SPIN_VARIABLE_*`
    /// environment provider is also consulted after every configured one.
    Env {
        prefix: Option<String>,
        /// A dotenv file read at start-up (relative to the runtime-config file).
        dotenv_path: Option<PathBuf>,
    },
    /// Fixed values, e.g. development secrets.
    Static { values: BTreeMap<String, String> },
}

/// The runtime config's providers, in its order, as the capability uses them.
pub fn providers(runtime: &LoadedRuntimeConfig) -> anyhow::Result<Vec<ProviderConfig>> {
    runtime
        .config
        .variables_provider
        .iter()
        .map(|provider| {
            Ok(match provider {
                VariablesProviderSection::Env {
                    prefix,
                    dotenv_path,
                } => ProviderConfig::Env {
                    prefix: prefix
                        .clone()
                        .unwrap_or_else(|| ProviderConfig::DEFAULT_ENV_PREFIX.to_string()),
                    dotenv: match dotenv_path {
                        Some(path) => read_dotenv(&runtime.resolve(path))?,
                        None => BTreeMap::new(),
                    },
                },
                VariablesProviderSection::Static { values } => {
                    ProviderConfig::Static(values.clone())
                }
            })
        })
        .collect()
}

/// A dotenv file's entries (parsed by `dotenvy`, without touching the
/// process environment).
fn read_dotenv(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    dotenvy::from_path_iter(path)
        .and_then(Iterator::collect)
        .with_context(|| format!("reading dotenv file {}", path.display()))
}

/// Where app variable values come from. Providers are consulted in the
/// runtime config's order, then the default environment provider (as Spin).
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    /// `<prefix>_<NAME>` from the process environment (or a dotenv file's entries).
    Env {
        prefix: String,
        dotenv: BTreeMap<String, String>,
    },
    /// Fixed values.
    Static(BTreeMap<String, String>),
}

impl ProviderConfig {
    pub const DEFAULT_ENV_PREFIX: &'static str = "SPIN_VARIABLE";

    pub fn lookup(&self, name: &str) -> Option<String> {
        match self {
            ProviderConfig::Env { prefix, dotenv } => {
                let key = format!("{prefix}_{}", name.to_ascii_uppercase());
                std::env::var(&key)
                    .ok()
                    .or_else(|| dotenv.get(&key).cloned())
            }
            ProviderConfig::Static(values) => values.get(name).cloned(),
        }
    }
}

/// A string with `{{ variable }}` expressions, as spin.toml allows in component
/// `variables` and `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{{{' in {0:?}")]
    Unclosed(String),
    #[error("{0:?} is not a variable name (lower_snake_case) in {1:?}")]
    BadName(String, String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
            let name = after[..end].trim();
            if !crate::config::manifest::is_variable_name(name) {
                return Err(TemplateError::BadName(name.to_string(), text.to_string()));
            }
            parts.push(Part::Variable(name.to_string()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self(parts))
    }

    /// The variables this template reads.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    pub fn render<E>(
        &self,
        mut value_of: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(&value_of(name)?),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render() {
        let t = Template::parse("postgres://{{ db_host }}:{{db_port}}").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["db_host", "db_port"]);
        let rendered = t
            .render(|name| {
                Ok::<_, ()>(if name == "db_host" {
                    "h".into()
                } else {
                    "5432".into()
                })
            })
            .unwrap();
        assert_eq!(rendered, "postgres://h:5432");
        assert_eq!(
            Template::parse("plain").unwrap().render(|_| Err(())),
            Ok("plain".to_string())
        );
    }

    #[test]
    fn dotenv_files_are_read_without_touching_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# comment\nSPIN_VARIABLE_A=plain\nexport SPIN_VARIABLE_B=\"quoted value\"\nSPIN_VARIABLE_C='single # not a comment'\n",
        )
        .unwrap();
        let values = read_dotenv(&path).unwrap();
        assert_eq!(values["SPIN_VARIABLE_A"], "plain");
        assert_eq!(values["SPIN_VARIABLE_B"], "quoted value");
        assert_eq!(values["SPIN_VARIABLE_C"], "single # not a comment");
        assert!(std::env::var("SPIN_VARIABLE_A").is_err());
        let error = read_dotenv(&dir.path().join("missing.env")).unwrap_err();
        assert!(format!("{error:#}").contains("missing.env"), "{error:#}");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(matches!(
            Template::parse("{{ x"),
            Err(TemplateError::Unclosed(_))
        ));
        assert!(matches!(
            Template::parse("{{ Bad }}"),
            Err(TemplateError::BadName(..))
        ));
    }
}
