//! `spin.toml`, manifest version 2: the subset of Spin's schema Nexa serves.
//!
//! Every table refuses keys it does not know, so a typo (or a Spin feature
//! Nexa does not implement) stops start-up with the file, key and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, read_toml};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be 2.
    pub spin_manifest_version: u32,
    pub application: Application,
    /// App variables, by lower_snake_case name.
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    /// Components, by kebab-case id.
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
}

/// An app variable: either it has a default or it is required.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    pub description: Option<String>,
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Secret values are never logged.
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    pub id: Option<String>,
    pub route: RouteDecl,
    /// The id of a component declared under `[component.<id>]`.
    pub component: String,
    pub executor: Option<Executor>,
}

/// `route = "/path"` or `route = { private = true }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RouteDecl {
    Path(String),
    Private(PrivateRoute),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

/// Only Spin's default executor (`http`, alias `spin`) is served.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executor {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDecl {
    pub description: Option<String>,
    /// Path of the component's `.wasm`, relative to the manifest's directory.
    pub source: String,
    /// `scheme://host:port` patterns the component may connect to.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value store labels the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open.
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// Component variables: templates over the app variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Environment variables the component sees.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub build: Option<BuildDecl>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDecl {
    pub command: Command,
    /// Directory to run the command in, relative to the manifest's directory.
    pub workdir: Option<String>,
    /// Globs `spin watch` rebuilds on; kept for Spin, unused by Nexa.
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A build command: one shell line, or several run in order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Command {
    One(String),
    Many(Vec<String>),
}

impl Command {
    pub fn lines(&self) -> Vec<&str> {
        match self {
            Command::One(line) => vec![line.as_str()],
            Command::Many(lines) => lines.iter().map(String::as_str).collect(),
        }
    }
}

/// A manifest read from disk, with the directory its relative paths start from.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl LoadedManifest {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let manifest: Manifest = read_toml(path)?;
        let dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let loaded = Self {
            path: path.to_path_buf(),
            dir,
            manifest,
        };
        loaded.validate()?;
        Ok(loaded)
    }

    /// Checks what serde cannot: versions, names, references between tables.
    fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.manifest;
        let fail = |message: String| Err(ConfigError::invalid(&self.path, message));
        if m.spin_manifest_version != 2 {
            return fail(format!(
                "spin_manifest_version = {} is not supported; use 2",
                m.spin_manifest_version
            ));
        }
        for name in m.variables.keys() {
            if !is_variable_name(name) {
                return fail(format!(
                    "variables.{name}: names must be lower_snake_case (a-z, 0-9, _; starting with a letter)"
                ));
            }
        }
        for (name, decl) in &m.variables {
            if decl.required && decl.default.is_some() {
                return fail(format!(
                    "variables.{name}: a variable is either required or has a default, not both"
                ));
            }
        }
        for (id, component) in &m.component {
            if !is_kebab_id(id) {
                return fail(format!(
                    "component.{id}: component ids must be kebab-case (a-z, 0-9, -)"
                ));
            }
            for name in component.variables.keys() {
                if !is_variable_name(name) {
                    return fail(format!(
                        "component.{id}.variables.{name}: names must be lower_snake_case"
                    ));
                }
            }
        }
        for (index, trigger) in m.trigger.http.iter().enumerate() {
            if !m.component.contains_key(&trigger.component) {
                return fail(format!(
                    "trigger.http[{index}]: component \"{}\" is not declared; add [component.{}]",
                    trigger.component, trigger.component
                ));
            }
            if let Some(executor) = &trigger.executor
                && !matches!(executor.kind.as_str(), "http" | "spin")
            {
                return fail(format!(
                    "trigger.http[{index}].executor: type \"{}\" is not supported; Nexa serves type = \"http\"",
                    executor.kind
                ));
            }
            if let RouteDecl::Private(PrivateRoute { private: false }) = trigger.route {
                return fail(format!(
                    "trigger.http[{index}].route: must be a path or {{ private = true }}"
                ));
            }
        }
        Ok(())
    }

    /// Resolves a path from the manifest against the manifest's directory.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

/// lower_snake_case, as Spin requires for variable names.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_kebab_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ConfigError> {
        super::super::parse_toml(Path::new("spin.toml"), text)
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let error = parse(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[component.a]\nsource = \"a.wasm\"\nallowed_hosts = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("spin.toml"), "{error}");
        assert!(error.contains("allowed_hosts"), "{error}");
        assert!(error.contains("line 6"), "{error}");
    }

    #[test]
    fn routes_parse_as_path_or_private() {
        let m = parse(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/a/...\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = { private = true }\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        )
        .unwrap();
        assert!(matches!(&m.trigger.http[0].route, RouteDecl::Path(p) if p == "/a/..."));
        assert!(matches!(
            m.trigger.http[1].route,
            RouteDecl::Private(PrivateRoute { private: true })
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(is_variable_name("db_url2"));
        assert!(!is_variable_name("DbUrl"));
        assert!(!is_variable_name("1x"));
        assert!(is_kebab_id("health-check"));
        assert!(!is_kebab_id("health_check"));
        assert!(!is_kebab_id("-x"));
    }
}
