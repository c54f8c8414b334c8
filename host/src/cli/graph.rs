//! `nexa graph`: the app as a picture, from its files alone. Routes lead to
//! components, components to the capabilities spin.toml grants them
//! (key-value stores, SQLite databases, outbound hosts, variables), and
//! those to the backends that serve them (the runtime config's Redis or
//! SQLite file, Postgres servers, other components, where variable values
//! come from, the Compose services that run them). As Mermaid, DOT, SVG
//! (through graphviz) or JSON; sorted, so that two versions diff well.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::deployment::{Deployment, DeploymentArgs, VariableSource};
use crate::capabilities::allowed_hosts::{default_port, entry_parts};
use crate::capabilities::key_value::{StoreBackendConfig, stores_from_runtime_config};
use crate::capabilities::sqlite::databases_from_runtime_config;
use crate::capabilities::variables::{Template, VariablesProviderSection};
use crate::config::manifest::RouteDecl;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: DeploymentArgs,
    /// mermaid (for Markdown), dot (graphviz's language), svg (drawn by
    /// graphviz's `dot`, which must be installed) or json (nodes and edges,
    /// for scripts).
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
    Svg,
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let deployment = Deployment::load(&args.files)?;
    let graph = Graph::of(&deployment);
    let name = &deployment.manifest.manifest.application.name;
    let out = match args.format {
        Format::Mermaid => graph.mermaid(),
        Format::Dot => graph.dot(name),
        Format::Svg => svg(&graph.dot(name))?,
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&graph.json())?),
    };
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("writing the graph")?;
    Ok(())
}

/// The layers, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Route,
    Component,
    Capability,
    Backend,
    /// A Compose service.
    Service,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::Route => "route",
            NodeKind::Component => "component",
            NodeKind::Capability => "capability",
            NodeKind::Backend => "backend",
            NodeKind::Service => "service",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    /// May hold line breaks.
    pub label: String,
}

/// Nodes by key (`component:auth`, `key-value:default`, ...) and edges
/// between keys; both ordered, so every output is sorted.
#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: BTreeMap<String, Node>,
    pub edges: BTreeSet<(String, String)>,
    /// Backends reached over the network, with their host and port, for
    /// matching Compose services.
    addresses: BTreeMap<String, (String, String)>,
}

impl Graph {
    pub fn of(d: &Deployment) -> Self {
        let mut graph = Graph::default();
        let manifest = &d.manifest.manifest;
        // Components first, so that service chaining finds every one.
        for id in manifest.component.keys() {
            let label = match d.host.config.component.get(id) {
                Some(limits) => match limits.max_concurrent_requests_when_alone {
                    Some(alone) if alone > limits.max_concurrent_requests => format!(
                        "{id}\n(at most {} at once, {alone} when alone)",
                        limits.max_concurrent_requests
                    ),
                    _ => format!("{id}\n(at most {} at once)", limits.max_concurrent_requests),
                },
                None => id.clone(),
            };
            graph.node(&format!("component:{id}"), NodeKind::Component, label);
        }
        for (id, decl) in &manifest.component {
            let component = format!("component:{id}");
            let stores = decl.key_value_stores.iter().map(|label| {
                (
                    format!("key-value:{label}"),
                    format!("key-value store {label}"),
                )
            });
            let databases = decl.sqlite_databases.iter().map(|label| {
                (
                    format!("sqlite:{label}"),
                    format!("SQLite database {label}"),
                )
            });
            for (key, label) in stores.chain(databases) {
                graph.node(&key, NodeKind::Capability, label);
                graph.edge(&component, &key);
            }
            for entry in &decl.allowed_outbound_hosts {
                graph.outbound_host(d, &component, entry);
            }
            if !decl.variables.is_empty() {
                graph.variables(d, id, &decl.variables);
            }
        }
        for trigger in &manifest.trigger.http {
            let component = format!("component:{}", trigger.component);
            let (route, label) = match &trigger.route {
                RouteDecl::Path(path) => (format!("route:{path}"), path.clone()),
                RouteDecl::Private(_) => (
                    format!("route:private:{}", trigger.component),
                    "(private: service chaining only)".to_string(),
                ),
            };
            graph.node(&route, NodeKind::Route, label);
            graph.edge(&route, &component);
        }
        for (label, backend) in stores_from_runtime_config(&d.runtime, &d.state_dir) {
            let store = format!("key-value:{label}");
            if !graph.nodes.contains_key(&store) {
                continue;
            }
            let target = match backend {
                StoreBackendConfig::Sqlite { path } => graph.file(d, &path),
                StoreBackendConfig::Redis { url } => match url::Url::parse(&url) {
                    Ok(url) => graph.address(
                        "redis",
                        url.host_str().unwrap_or("localhost"),
                        url.port().map(|p| p.to_string()).as_deref(),
                    ),
                    Err(_) => continue,
                },
            };
            graph.edge(&store, &target);
        }
        for (label, file) in databases_from_runtime_config(&d.runtime, &d.state_dir) {
            let database = format!("sqlite:{label}");
            if graph.nodes.contains_key(&database) {
                let target = graph.file(d, &file.path);
                graph.edge(&database, &target);
            }
        }
        if let Some(compose) = &d.compose {
            for (name, service) in &compose.services {
                let key = format!("service:{name}");
                let label = match &service.image {
                    Some(image) => format!("compose service {name}\n{image}"),
                    None => format!("compose service {name}"),
                };
                graph.node(&key, NodeKind::Service, label);
                let ports = service.ports();
                for (backend, (host, port)) in graph.addresses.clone() {
                    let local = matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1");
                    let published = ports.iter().any(|p| p.published.as_deref() == Some(&port));
                    if host == *name || (local && published) {
                        graph.edge(&backend, &key);
                    }
                }
            }
        }
        graph
    }

    fn node(&mut self, key: &str, kind: NodeKind, label: String) {
        self.nodes
            .entry(key.to_string())
            .or_insert(Node { kind, label });
    }

    fn edge(&mut self, from: &str, to: &str) {
        self.edges.insert((from.to_string(), to.to_string()));
    }

    /// One `allowed_outbound_hosts` entry, rendered as `nexa up` renders it,
    /// and where it leads.
    fn outbound_host(&mut self, d: &Deployment, component: &str, entry: &str) {
        let rendered = d.render(entry).unwrap_or_else(|| entry.to_string());
        let rendered = rendered.trim();
        if rendered.is_empty() {
            return;
        }
        let capability = format!("outbound:{rendered}");
        self.node(
            &capability,
            NodeKind::Capability,
            format!("outbound {rendered}"),
        );
        self.edge(component, &capability);
        let Some((scheme, host, port)) = entry_parts(rendered) else {
            return;
        };
        if let Some(id) = host.strip_suffix(".spin.internal") {
            let targets: Vec<String> = if id == "*" {
                self.component_keys()
            } else {
                vec![format!("component:{id}")]
            };
            let targets: Vec<String> = targets
                .into_iter()
                .filter(|t| self.nodes.contains_key(t))
                .collect();
            if !targets.is_empty() {
                for target in targets {
                    self.edge(&capability, &target);
                }
                return;
            }
        }
        let backend = self.address(scheme, host, port);
        self.edge(&capability, &backend);
    }

    fn component_keys(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, node)| node.kind == NodeKind::Component)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// A component's variables, and which providers give the app variables
    /// their templates read. Values are never shown (they may be secrets);
    /// a value that is a Postgres or Redis URL leads to that server.
    fn variables(&mut self, d: &Deployment, id: &str, templates: &BTreeMap<String, String>) {
        let key = format!("variables:{id}");
        let names: Vec<&str> = templates.keys().map(String::as_str).collect();
        let lines: Vec<String> = names.chunks(3).map(|chunk| chunk.join(", ")).collect();
        self.node(
            &key,
            NodeKind::Capability,
            format!("variables\n{}", lines.join(",\n")),
        );
        self.edge(&format!("component:{id}"), &key);
        for text in templates.values() {
            let Ok(template) = Template::parse(text) else {
                continue;
            };
            for name in template.variables() {
                let source = d
                    .variable(name)
                    .map(|v| v.source)
                    .unwrap_or(VariableSource::Missing);
                let provider = self.provider(d, &source);
                self.edge(&key, &provider);
            }
            let Some(value) = d.render(text) else {
                continue;
            };
            if let Ok(url) = url::Url::parse(value.trim())
                && matches!(url.scheme(), "postgres" | "postgresql" | "redis" | "rediss")
                && let Some(host) = url.host_str()
            {
                let port = url.port().map(|p| p.to_string());
                let backend = self.address(url.scheme(), host, port.as_deref());
                self.edge(&key, &backend);
            }
        }
    }

    /// Where variable values come from.
    fn provider(&mut self, d: &Deployment, source: &VariableSource) -> String {
        let (key, label) = match source {
            VariableSource::Provider(index) => {
                let place = format!("{} variables_provider[{index}]", d.runtime_name());
                let label = match d.runtime.config.variables_provider.get(*index) {
                    Some(VariablesProviderSection::Env { prefix, .. }) => format!(
                        "environment {}_*\n{place}",
                        prefix.as_deref().unwrap_or("SPIN_VARIABLE")
                    ),
                    _ => format!("static values\n{place}"),
                };
                (format!("provider:{index}"), label)
            }
            VariableSource::Environment => (
                "provider:environment".to_string(),
                "environment SPIN_VARIABLE_*".to_string(),
            ),
            VariableSource::Default => (
                "provider:defaults".to_string(),
                format!("defaults\n{} [variables]", d.manifest_name()),
            ),
            VariableSource::Missing => (
                "provider:missing".to_string(),
                "no value\n(nexa up refuses to start)".to_string(),
            ),
        };
        self.node(&key, NodeKind::Backend, label);
        key
    }

    /// A server at `host:port`, named for what speaks `scheme`.
    fn address(&mut self, scheme: &str, host: &str, port: Option<&str>) -> String {
        let scheme = scheme.to_ascii_lowercase();
        let port = port
            .map(str::to_string)
            .or_else(|| default_port(&scheme).map(|p| p.to_string()))
            .unwrap_or_else(|| "*".to_string());
        let (kind, family) = match scheme.as_str() {
            "postgres" | "postgresql" => ("Postgres", "postgres"),
            "redis" | "rediss" => ("Redis", "redis"),
            "mysql" => ("MySQL", "mysql"),
            "http" | "https" => ("HTTP", "http"),
            "*" => ("any protocol", "*"),
            other => (other, other),
        };
        let host_label = if host == "*" { "any host" } else { host };
        let key = format!("backend:{family}://{host}:{port}");
        let label = if scheme == "https" || scheme == "http" {
            format!("{kind} {scheme}://{host_label}:{port}")
        } else {
            format!("{kind} {host_label}:{port}")
        };
        self.node(&key, NodeKind::Backend, label);
        if host != "*" {
            self.addresses
                .insert(key.clone(), (host.to_ascii_lowercase(), port));
        }
        key
    }

    fn file(&mut self, d: &Deployment, path: &std::path::Path) -> String {
        let shown = d.show_path(path);
        let key = format!("backend:file:{shown}");
        self.node(&key, NodeKind::Backend, format!("SQLite file\n{shown}"));
        key
    }

    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (key, node) in &self.nodes {
            let (open, close) = match node.kind {
                NodeKind::Route => ("([", "])"),
                NodeKind::Component => ("[", "]"),
                NodeKind::Capability => ("{{", "}}"),
                NodeKind::Backend => ("[(", ")]"),
                NodeKind::Service => ("[[", "]]"),
            };
            let _ = writeln!(
                out,
                "  {}{open}\"{}\"{close}",
                mermaid_id(key),
                mermaid_label(&node.label)
            );
        }
        for (from, to) in &self.edges {
            let _ = writeln!(out, "  {} --> {}", mermaid_id(from), mermaid_id(to));
        }
        out
    }

    pub fn dot(&self, name: &str) -> String {
        let mut out = format!("digraph {} {{\n  rankdir=LR;\n", dot_string(name));
        for (key, node) in &self.nodes {
            let shape = match node.kind {
                NodeKind::Route => "ellipse",
                NodeKind::Component => "box",
                NodeKind::Capability => "hexagon",
                NodeKind::Backend => "cylinder",
                NodeKind::Service => "component",
            };
            let _ = writeln!(
                out,
                "  {} [label={}, shape={shape}];",
                dot_string(key),
                dot_string(&node.label)
            );
        }
        for (from, to) in &self.edges {
            let _ = writeln!(out, "  {} -> {};", dot_string(from), dot_string(to));
        }
        out.push_str("}\n");
        out
    }

    /// `{"nodes": [{"id", "kind", "label"}], "edges": [{"from", "to"}]}`.
    pub fn json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|(key, node)| {
                serde_json::json!({"id": key, "kind": node.kind.name(), "label": node.label})
            })
            .collect();
        let edges: Vec<serde_json::Value> = self
            .edges
            .iter()
            .map(|(from, to)| serde_json::json!({"from": from, "to": to}))
            .collect();
        serde_json::json!({"nodes": nodes, "edges": edges})
    }
}

/// A Mermaid node id from a key: letters and digits kept, anything else
/// as `_<hex>_`, so distinct keys give distinct ids and none is a keyword.
fn mermaid_id(key: &str) -> String {
    let mut id = String::from("n_");
    for c in key.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else {
            let _ = write!(id, "_{:X}_", c as u32);
        }
    }
    id
}

/// A label inside `"..."`: Mermaid's entity codes for what would end or
/// break it, `<br>` for line breaks.
fn mermaid_label(label: &str) -> String {
    label
        .replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('\n', "<br>")
}

/// A DOT double-quoted string.
fn dot_string(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// Graphviz's `dot -Tsvg` over the DOT text.
fn svg(dot: &str) -> anyhow::Result<String> {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "--format svg runs graphviz's `dot`, which is not installed: install graphviz (e.g. `apt-get install graphviz`), or print --format dot and render it elsewhere"
        ),
        Err(error) => return Err(error).context("running graphviz's `dot`"),
    };
    // dot reads all of its input before it writes, so writing first cannot
    // deadlock on a full pipe.
    child
        .stdin
        .take()
        .context("dot's stdin")?
        .write_all(dot.as_bytes())
        .context("writing to graphviz's `dot`")?;
    let output = child
        .wait_with_output()
        .context("running graphviz's `dot`")?;
    if !output.status.success() {
        bail!(
            "graphviz's `dot` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).context("graphviz's `dot` wrote something other than UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_ids_are_distinct_and_plain() {
        let a = mermaid_id("route:/items/...");
        let b = mermaid_id("route:/items_...");
        assert_ne!(a, b);
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{a}"
        );
        assert_eq!(mermaid_id("component:end"), "n_component_3A_end");
        assert_ne!(mermaid_id("a_E9_"), mermaid_id("aé"));
    }

    #[test]
    fn labels_are_escaped_for_each_language() {
        assert_eq!(
            mermaid_label("a \"b\" <c>\n#d"),
            "a #quot;b#quot; #lt;c#gt;<br>#35;d"
        );
        assert_eq!(dot_string("a \"b\" \\c\nd"), r#""a \"b\" \\c\nd""#);
    }

    #[test]
    fn the_graph_is_sorted_and_deduplicated() {
        let mut graph = Graph::default();
        graph.node("component:b", NodeKind::Component, "b".into());
        graph.node("component:a", NodeKind::Component, "a".into());
        graph.node("route:/b", NodeKind::Route, "/b".into());
        graph.edge("route:/b", "component:b");
        graph.edge("route:/b", "component:b");
        assert_eq!(
            graph.mermaid(),
            "flowchart LR\n  n_component_3A_a[\"a\"]\n  n_component_3A_b[\"b\"]\n  n_route_3A__2F_b([\"/b\"])\n  n_route_3A__2F_b --> n_component_3A_b\n"
        );
        assert!(
            graph
                .dot("x")
                .contains("  \"route:/b\" -> \"component:b\";\n")
        );
    }
}
