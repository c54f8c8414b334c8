//! A deployment's files, read offline as `nexa up` reads them (spin.toml,
//! the runtime config, nexa.toml), plus the Docker Compose file of its
//! backing services when there is one. `nexa graph` draws them and
//! `nexa check-config` audits them; neither needs a running host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::capabilities::variables::{ProviderConfig, Template, VariablesProviderSection};
use crate::config::host::HostConfig;
use crate::config::manifest::LoadedManifest;
use crate::config::runtime::LoadedRuntimeConfig;

/// Where the files are: the same flags and defaults as `nexa up`, plus `--compose`.
#[derive(clap::Args, Debug, Clone)]
pub struct DeploymentArgs {
    #[command(flatten)]
    pub app: super::AppArgs,
    /// A Docker Compose file of the backing services. Default:
    /// compose/compose.yaml beside the manifest, if any.
    #[arg(long)]
    pub compose: Option<PathBuf>,
}

/// The files of one deployment, parsed.
pub struct Deployment {
    pub manifest: LoadedManifest,
    pub runtime: LoadedRuntimeConfig,
    pub host: HostFile,
    /// Where embedded stores live (as `nexa up` finds it).
    pub state_dir: PathBuf,
    pub compose: Option<ComposeFile>,
    /// The runtime config's variable providers, in order.
    providers: Vec<ProviderConfig>,
}

/// nexa.toml, or the defaults when there is none.
pub struct HostFile {
    /// `None`: no file, every default.
    pub path: Option<PathBuf>,
    pub config: HostConfig,
    /// Why `nexa up` would refuse the file's values, if it would. Kept rather
    /// than raised so that `check-config` can report it beside its findings.
    pub refused: Option<String>,
}

impl Deployment {
    pub fn load(args: &DeploymentArgs) -> anyhow::Result<Self> {
        let manifest = LoadedManifest::load(&args.app.manifest)?;
        let runtime = match &args.app.runtime_config_file {
            Some(path) => LoadedRuntimeConfig::load(path)?,
            None => LoadedRuntimeConfig::default(),
        };
        let host_path = match &args.app.host_config_file {
            Some(path) => Some(path.clone()),
            None => Some(beside(&manifest, "nexa.toml")).filter(|p| p.exists()),
        };
        let host = match host_path {
            None => HostFile {
                path: None,
                config: HostConfig::default(),
                refused: None,
            },
            Some(path) => {
                let config: HostConfig = crate::config::read_toml(&path)?;
                // CORS wildcards are check-config's own finding; the rest of
                // what `nexa up` refuses is checked as it checks it.
                let mut checked = config.clone();
                checked
                    .cors
                    .allowed_origins
                    .retain(|origin| !origin.contains('*'));
                let refused = checked.validate().err();
                HostFile {
                    path: Some(path),
                    config,
                    refused,
                }
            }
        };
        let state_dir = args.app.state_dir.clone().unwrap_or_else(|| {
            runtime
                .config
                .state_dir
                .as_deref()
                .map(|p| runtime.resolve(p))
                .unwrap_or_else(|| manifest.dir.join(".spin"))
        });
        let compose_path = match &args.compose {
            Some(path) => Some(path.clone()),
            None => Some(beside(&manifest, "compose/compose.yaml")).filter(|p| p.exists()),
        };
        let compose = compose_path.map(|p| ComposeFile::load(&p)).transpose()?;
        let providers = crate::capabilities::variables::providers(&runtime)?;
        Ok(Self {
            manifest,
            runtime,
            host,
            state_dir,
            compose,
            providers,
        })
    }

    /// The name files are shown by: the path as given.
    pub fn manifest_name(&self) -> String {
        self.manifest.path.display().to_string()
    }

    pub fn runtime_name(&self) -> String {
        shown(self.runtime.path.as_deref(), "runtime config")
    }

    pub fn host_name(&self) -> String {
        shown(self.host.path.as_deref(), "nexa.toml")
    }

    /// An app variable's value and where it comes from, in the order
    /// `nexa up` consults them: the runtime config's providers, the
    /// `SPIN_VARIABLE_*` environment, the manifest's default.
    pub fn variable(&self, name: &str) -> Option<ResolvedVariable> {
        let decl = self.manifest.manifest.variables.get(name)?;
        let default_env = ProviderConfig::Env {
            prefix: ProviderConfig::DEFAULT_ENV_PREFIX.to_string(),
            dotenv: BTreeMap::new(),
        };
        let found = self
            .providers
            .iter()
            .enumerate()
            .find_map(|(index, p)| Some((VariableSource::Provider(index), p.lookup(name)?)))
            .or_else(|| Some((VariableSource::Environment, default_env.lookup(name)?)))
            .or_else(|| Some((VariableSource::Default, decl.default.clone()?)));
        Some(match found {
            Some((source, value)) => ResolvedVariable {
                value: Some(value),
                source,
            },
            None => ResolvedVariable {
                value: None,
                source: VariableSource::Missing,
            },
        })
    }

    /// Where a variable's value is set, as a person would look for it.
    pub fn variable_place(&self, name: &str, source: &VariableSource) -> String {
        match source {
            VariableSource::Provider(index) => {
                match self.runtime.config.variables_provider.get(*index) {
                    Some(VariablesProviderSection::Static { .. }) => format!(
                        "{}: variables_provider[{index}].values.{name}",
                        self.runtime_name()
                    ),
                    _ => format!(
                        "{}: variables_provider[{index}] (environment)",
                        self.runtime_name()
                    ),
                }
            }
            VariableSource::Environment => format!(
                "environment: {}_{}",
                ProviderConfig::DEFAULT_ENV_PREFIX,
                name.to_ascii_uppercase()
            ),
            VariableSource::Default | VariableSource::Missing => {
                format!("{}: variables.{name}", self.manifest_name())
            }
        }
    }

    /// A `{{ variable }}` template rendered as `nexa up` would, or `None`
    /// when it is malformed or reads a variable without a value.
    pub fn render(&self, text: &str) -> Option<String> {
        Template::parse(text)
            .ok()?
            .render(|name| self.variable(name).and_then(|v| v.value).ok_or(()))
            .ok()
    }

    /// A path shown relative to the manifest's directory when it is inside it
    /// (so that output diffs the same on every machine).
    pub fn show_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.manifest.dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// A file's path as given, or what stands for it when there is none.
fn shown(path: Option<&Path>, absent: &str) -> String {
    path.map(|p| p.display().to_string())
        .unwrap_or_else(|| absent.to_string())
}

/// A file in the manifest's directory, named as a person would (`nexa.toml`
/// rather than `./nexa.toml`).
fn beside(manifest: &LoadedManifest, name: &str) -> PathBuf {
    let path = manifest.dir.join(name);
    match path.strip_prefix(".") {
        Ok(relative) => relative.to_path_buf(),
        Err(_) => path,
    }
}

/// An app variable's value, if it has one, and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVariable {
    pub value: Option<String>,
    pub source: VariableSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableSource {
    /// The runtime config's `[[variables_provider]]` at this index.
    Provider(usize),
    /// `SPIN_VARIABLE_<NAME>`, consulted after every provider.
    Environment,
    /// The manifest's `default`.
    Default,
    /// No value anywhere.
    Missing,
}

/// The part of a Compose file the two commands read. Compose has many more
/// keys; they are ignored, not refused (it is not Nexa's file).
#[derive(Debug, Clone, Deserialize)]
pub struct ComposeFile {
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(default)]
    pub services: BTreeMap<String, ComposeService>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ComposeService {
    pub image: Option<String>,
    ports: Vec<PortEntry>,
    user: Option<serde_yaml::Value>,
    pub privileged: bool,
    environment: Environment,
}

/// `ports:` entries: `"5432"`, `"127.0.0.1:5432:5432"`, `5432`, or the long form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PortEntry {
    Number(u64),
    Short(String),
    Long {
        target: serde_yaml::Value,
        #[serde(default)]
        published: Option<serde_yaml::Value>,
        #[serde(default)]
        host_ip: Option<String>,
    },
}

/// `environment:` as a map or as a list of `NAME=value`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Environment {
    Map(BTreeMap<String, Option<serde_yaml::Value>>),
    List(Vec<String>),
}

impl Default for Environment {
    fn default() -> Self {
        Self::Map(BTreeMap::new())
    }
}

/// One published port of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// The host address it is bound to; `None`: every interface.
    pub host_ip: Option<String>,
    /// The host port (or range); `None`: one Docker picks.
    pub published: Option<String>,
    /// The container port (or range), without `/tcp`.
    pub target: String,
}

impl PublishedPort {
    /// Reachable from other machines: bound to every interface.
    pub fn on_every_interface(&self) -> bool {
        self.host_ip
            .as_deref()
            .is_none_or(|ip| matches!(ip, "0.0.0.0" | "::" | "[::]" | ""))
    }
}

impl ComposeFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut file: Self = serde_yaml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (expected a Compose file with `services:`)",
                path.display()
            )
        })?;
        file.path = path.to_path_buf();
        Ok(file)
    }

    pub fn name(&self) -> String {
        self.path.display().to_string()
    }
}

impl ComposeService {
    pub fn ports(&self) -> Vec<PublishedPort> {
        self.ports.iter().map(PortEntry::published).collect()
    }

    /// `user:` as written (`root`, `0`, `0:0`, `postgres`), if set.
    pub fn user(&self) -> Option<String> {
        self.user.as_ref().map(yaml_text)
    }

    pub fn environment(&self) -> BTreeMap<String, String> {
        match &self.environment {
            Environment::Map(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(yaml_text).unwrap_or_default()))
                .collect(),
            Environment::List(list) => list
                .iter()
                .map(|entry| match entry.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (entry.clone(), String::new()),
                })
                .collect(),
        }
    }

    /// The image's name without registry, namespace or tag: `postgres` for
    /// `docker.io/library/postgres:16-alpine`.
    pub fn image_name(&self) -> Option<&str> {
        let image = self.image.as_deref()?;
        let image = image.split('@').next().unwrap_or(image);
        let last = image.rsplit('/').next().unwrap_or(image);
        Some(last.split(':').next().unwrap_or(last))
    }
}

impl PortEntry {
    fn published(&self) -> PublishedPort {
        match self {
            PortEntry::Number(port) => PublishedPort {
                host_ip: None,
                published: None,
                target: port.to_string(),
            },
            PortEntry::Short(text) => {
                let text = text.split('/').next().unwrap_or(text);
                // [ip:]host:container, where ip may be a bracketed IPv6 address.
                let (ip, rest) = match text.strip_prefix('[').and_then(|t| t.split_once("]:")) {
                    Some((ip, rest)) => (Some(ip.to_string()), rest),
                    None => (None, text),
                };
                let parts: Vec<&str> = rest.split(':').collect();
                match (ip, parts.as_slice()) {
                    (None, [target]) => PublishedPort {
                        host_ip: None,
                        published: None,
                        target: target.to_string(),
                    },
                    (ip, [published, target]) => PublishedPort {
                        host_ip: ip,
                        published: Some(published.to_string()).filter(|p| !p.is_empty()),
                        target: target.to_string(),
                    },
                    (_, [ip, published, target]) => PublishedPort {
                        host_ip: Some(ip.to_string()),
                        published: Some(published.to_string()).filter(|p| !p.is_empty()),
                        target: target.to_string(),
                    },
                    _ => PublishedPort {
                        host_ip: None,
                        published: None,
                        target: text.to_string(),
                    },
                }
            }
            PortEntry::Long {
                target,
                published,
                host_ip,
            } => PublishedPort {
                host_ip: host_ip.clone(),
                published: published.as_ref().map(yaml_text),
                target: yaml_text(target),
            },
        }
    }
}

/// A YAML scalar as text (`0` and `"0"` alike).
fn yaml_text(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compose(text: &str) -> ComposeFile {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn compose_ports_in_every_syntax() {
        let file = compose(
            r#"
services:
  db:
    image: docker.io/library/postgres:16-alpine
    ports:
      - "5432:5432"
      - "127.0.0.1:6543:5432/tcp"
      - 9000
      - "[::1]:7000:7000"
      - target: 80
        published: "8080"
        host_ip: 127.0.0.1
"#,
        );
        let db = &file.services["db"];
        assert_eq!(db.image_name(), Some("postgres"));
        let ports = db.ports();
        let shown: Vec<(Option<&str>, Option<&str>, &str, bool)> = ports
            .iter()
            .map(|p| {
                (
                    p.host_ip.as_deref(),
                    p.published.as_deref(),
                    p.target.as_str(),
                    p.on_every_interface(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (None, Some("5432"), "5432", true),
                (Some("127.0.0.1"), Some("6543"), "5432", false),
                (None, None, "9000", true),
                (Some("::1"), Some("7000"), "7000", false),
                (Some("127.0.0.1"), Some("8080"), "80", false),
            ]
        );
    }

    #[test]
    fn compose_users_and_environment_in_both_forms() {
        let file = compose(
            "services:\n  a:\n    user: 0\n    environment: [\"A=1\", \"B\"]\n  b:\n    environment:\n      C: 2\n      D:\n",
        );
        assert_eq!(file.services["a"].user().as_deref(), Some("0"));
        assert_eq!(
            file.services["a"].environment(),
            BTreeMap::from([("A".into(), "1".into()), ("B".into(), String::new())])
        );
        assert_eq!(
            file.services["b"].environment(),
            BTreeMap::from([("C".into(), "2".into()), ("D".into(), String::new())])
        );
        assert_eq!(file.services["b"].user(), None);
    }
}
