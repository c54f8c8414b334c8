//! `nexa graph`: the app's routes → components → capabilities → backends,
//! read from its files (no host runs). The tests parse the Mermaid and DOT
//! lines the command prints back into labelled edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{AppDir, repo_root};

/// Runs `nexa <args>` with `env` and nothing of the caller's Spin or Nexa
/// environment (which would change the values the command sees); the
/// offline commands answer in well under a second.
pub fn run_offline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexa"));
    command.args(args).stdin(Stdio::null()).env("NO_COLOR", "1");
    for (name, _) in std::env::vars() {
        if name.starts_with("SPIN_VARIABLE_") || name.starts_with("NEXA_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let started = Instant::now();
    let output = command.output().expect("running nexa");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "nexa {args:?} took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "nexa {args:?} panicked:\n{stderr}"
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn graph(args: &[&str]) -> String {
    let output = run_offline(&[&["graph"], args].concat(), &[]);
    assert!(
        output.status.success(),
        "nexa graph {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// The edges of a Mermaid flowchart, as (from label, to label), with the
/// labels unescaped (`<br>` back to a line break).
fn mermaid_edges(text: &str) -> BTreeSet<(String, String)> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart LR"));
    let mut labels = BTreeMap::new();
    let mut edges = Vec::new();
    for line in lines {
        let line = line.trim();
        if let Some((from, to)) = line.split_once(" --> ") {
            edges.push((from.to_string(), to.to_string()));
            continue;
        }
        let id_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or_else(|| panic!("not a node line: {line}"));
        let (start, end) = (line.find('"').unwrap(), line.rfind('"').unwrap());
        let label = line[start + 1..end]
            .replace("<br>", "\n")
            .replace("#quot;", "\"")
            .replace("#lt;", "<")
            .replace("#gt;", ">")
            .replace("#35;", "#");
        labels.insert(line[..id_end].to_string(), label);
    }
    edges
        .into_iter()
        .map(|(from, to)| {
            let label = |id: &str| {
                labels
                    .get(id)
                    .unwrap_or_else(|| panic!("edge to undeclared node {id}"))
                    .clone()
            };
            (label(&from), label(&to))
        })
        .collect()
}

/// The edges of a DOT digraph, as (from label, to label).
fn dot_edges(text: &str) -> BTreeSet<(String, String)> {
    assert!(text.starts_with("digraph "), "{text}");
    let unquote = |s: &str| -> String {
        s.trim()
            .trim_matches('"')
            .replace("\\n", "\n")
            .replace("\\\"", "\"")
    };
    let mut labels = BTreeMap::new();
    let mut edges = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some((from, to)) = line.strip_suffix(';').and_then(|l| l.split_once(" -> ")) {
            edges.push((unquote(from), unquote(to)));
        } else if let Some((id, rest)) = line.split_once(" [label=") {
            let label = &rest[..rest.rfind(", shape=").unwrap()];
            labels.insert(unquote(id), unquote(label));
        }
    }
    edges
        .into_iter()
        .map(|(from, to)| (labels[&from].clone(), labels[&to].clone()))
        .collect()
}

fn edge(from: &str, to: &str) -> (String, String) {
    (from.to_string(), to.to_string())
}

/// `-f <dir>/spin.toml --runtime-config-file <dir>/<runtime_config>`.
fn files_args(dir: &Path, runtime_config: &str) -> Vec<String> {
    vec![
        "-f".into(),
        dir.join("spin.toml").display().to_string(),
        "--runtime-config-file".into(),
        dir.join(runtime_config).display().to_string(),
    ]
}

fn repo_args() -> Vec<String> {
    files_args(&repo_root(), "runtime-config.dev.toml")
}

#[test]
fn the_repository_app_from_routes_to_backends() {
    let args = repo_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mermaid = graph(&args);
    let edges = mermaid_edges(&mermaid);
    let rc = format!(
        "static values\n{} variables_provider[0]",
        repo_root().join("runtime-config.dev.toml").display()
    );
    let defaults = format!(
        "defaults\n{} [variables]",
        repo_root().join("spin.toml").display()
    );
    for expected in [
        edge("/health", "health"),
        edge("/auth/...", "auth\n(at most 1 at once, 2 when alone)"),
        edge("/items/...", "items"),
        edge("/users/...", "users"),
        edge("/...", "fallback"),
        edge("health", "key-value store default"),
        edge("items", "key-value store default"),
        edge(
            "key-value store default",
            "SQLite file\n.spin/sqlite_key_value.db",
        ),
        edge("users", "SQLite database default"),
        edge("SQLite database default", "SQLite file\n.spin/sqlite_db.db"),
        edge("items", "outbound postgres://127.0.0.1:5432"),
        edge(
            "outbound postgres://127.0.0.1:5432",
            "Postgres 127.0.0.1:5432",
        ),
        edge("health", "variables\ndatabase_url"),
        edge("variables\ndatabase_url", &defaults),
    ] {
        assert!(
            edges.contains(&expected),
            "missing {expected:?} in\n{mermaid}"
        );
    }
    // auth reads jwt_secret and admin_password from the static provider.
    let auth_variables = edges
        .iter()
        .find(|(from, to)| from.starts_with("auth") && to.starts_with("variables\n"))
        .map(|(_, to)| to.clone())
        .unwrap_or_else(|| panic!("auth has no variables in\n{mermaid}"));
    assert!(auth_variables.contains("jwt_secret"), "{auth_variables}");
    assert!(
        edges.contains(&(auth_variables.clone(), rc.clone())),
        "{mermaid}"
    );
    assert!(edges.contains(&(auth_variables, defaults)), "{mermaid}");
    // fallback has no capability; no secret value is printed.
    assert!(
        !edges.iter().any(|(from, _)| from == "fallback"),
        "{mermaid}"
    );
    assert!(!mermaid.contains("admin-dev-password"), "{mermaid}");

    // Deterministic, and DOT says the same.
    assert_eq!(graph(&args), mermaid);
    let dot = graph(&[&args[..], &["--format", "dot"]].concat());
    assert_eq!(dot_edges(&dot), edges);

    // JSON: the same nodes and edges, by key.
    let json: serde_json::Value =
        serde_json::from_str(&graph(&[&args[..], &["--format", "json"]].concat())).unwrap();
    let auth = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "component:auth")
        .unwrap();
    assert_eq!(auth["kind"], "component");
    assert_eq!(json["edges"].as_array().unwrap().len(), edges.len());
    assert!(
        json["edges"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"from": "route:/auth/...", "to": "component:auth"}))
    );
}

const CHAINED_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "chained \"app\""
[variables]
database_url = { default = "postgres://app:hunter2@db:5432/app" }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = { private = true }
component = "worker"
[component.api]
source = "api.wasm"
key_value_stores = ["cache"]
sqlite_databases = ["reports"]
allowed_outbound_hosts = ["http://worker.spin.internal", "https://payments.example.com", "redis://*:6379"]
[component.api.variables]
database_url = "{{ database_url }}"
[component.worker]
source = "worker.wasm"
"#;

const CHAINED_RC: &str = r#"
[key_value_store.cache]
type = "redis"
url = "redis://:s3cret@127.0.0.1:6380"
[sqlite_database.reports]
type = "spin"
path = "data/reports.db"
"#;

const COMPOSE: &str = r#"
services:
  db:
    image: postgres:16
  cache:
    image: redis:7
    ports:
      - "127.0.0.1:6380:6379"
  unrelated:
    image: nginx
"#;

fn chained_app() -> AppDir {
    let app = AppDir::new(CHAINED_APP);
    app.write("rc.toml", CHAINED_RC);
    app.write(
        "nexa.toml",
        "[component.worker]\nmax_concurrent_requests = 4\n",
    );
    std::fs::create_dir_all(app.path("compose")).unwrap();
    app.write("compose/compose.yaml", COMPOSE);
    app
}

fn app_args(app: &AppDir) -> Vec<String> {
    files_args(app.dir.path(), "rc.toml")
}

#[test]
fn stores_chaining_private_routes_and_compose_services() {
    let app = chained_app();
    let args = app_args(&app);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mermaid = graph(&args);
    let edges = mermaid_edges(&mermaid);
    let worker = "worker\n(at most 4 at once)";
    for expected in [
        edge("/api/...", "api"),
        edge("(private: service chaining only)", worker),
        edge("api", "outbound http://worker.spin.internal"),
        edge("outbound http://worker.spin.internal", worker),
        edge("api", "key-value store cache"),
        edge("key-value store cache", "Redis 127.0.0.1:6380"),
        // compose/compose.yaml beside the manifest is read by default; the
        // store's published port leads to its service.
        edge("Redis 127.0.0.1:6380", "compose service cache\nredis:7"),
        edge("api", "SQLite database reports"),
        // Paths inside the app's directory are shown relative to it.
        edge("SQLite database reports", "SQLite file\ndata/reports.db"),
        edge(
            "outbound https://payments.example.com",
            "HTTP https://payments.example.com:443",
        ),
        edge("outbound redis://*:6379", "Redis any host:6379"),
        // A Postgres URL in a variable leads to that server, and the
        // server's host name to the Compose service of that name.
        edge("variables\ndatabase_url", "Postgres db:5432"),
        edge("Postgres db:5432", "compose service db\npostgres:16"),
    ] {
        assert!(
            edges.contains(&expected),
            "missing {expected:?} in\n{mermaid}"
        );
    }
    assert!(mermaid.contains("compose service unrelated"), "{mermaid}");
    // Credentials in URLs are never shown.
    for secret in ["s3cret", "hunter2"] {
        assert!(!mermaid.contains(secret), "{secret} shown in\n{mermaid}");
    }

    // DOT: the same edges, and the app's name quoted.
    let dot = graph(&[&args[..], &["--format", "dot"]].concat());
    assert!(
        dot.starts_with("digraph \"chained \\\"app\\\"\" {"),
        "{dot}"
    );
    assert_eq!(dot_edges(&dot), edges);

    // An explicit --compose replaces the default one.
    app.write("other.yaml", "services:\n  db:\n    image: postgres:17\n");
    let other = graph(
        &[
            &args[..],
            &["--compose", app.path("other.yaml").to_str().unwrap()],
        ]
        .concat(),
    );
    let other_edges = mermaid_edges(&other);
    assert!(
        other_edges.contains(&edge("Postgres db:5432", "compose service db\npostgres:17")),
        "{other}"
    );
    assert!(!other.contains("compose service cache"), "{other}");
}

fn has_graphviz() -> bool {
    Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn graphviz_accepts_the_dot_and_svg_is_drawn() {
    if !has_graphviz() {
        eprintln!("skipped: graphviz's `dot` is not installed (apt-get install graphviz)");
        return;
    }
    let app = chained_app();
    for args in [app_args(&app), repo_args()] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dot = graph(&[&args[..], &["--format", "dot"]].concat());
        let path = app.path("graph.dot");
        std::fs::write(&path, &dot).unwrap();
        let checked = Command::new("dot")
            .arg("-Tcanon")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "graphviz refused:\n{dot}\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        let svg = graph(&[&args[..], &["--format", "svg"]].concat());
        assert!(svg.contains("<svg"), "{svg}");
        // graphviz draws every component's label.
        assert!(svg.contains(">fallback<") || svg.contains(">api<"), "{svg}");
    }
}

#[test]
fn svg_without_graphviz_says_to_install_it() {
    let app = chained_app();
    let empty = tempfile::tempdir().unwrap();
    let args = app_args(&app);
    let mut all: Vec<&str> = vec!["graph"];
    all.extend(args.iter().map(String::as_str));
    all.extend(["--format", "svg"]);
    let output = run_offline(&all, &[("PATH", empty.path().to_str().unwrap())]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("install graphviz"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_flags_and_missing_files_fail_with_the_reason() {
    let output = run_offline(&["graph", "--format", "png"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let missing = Path::new("/nonexistent/spin.toml");
    let output = run_offline(&["graph", "-f", missing.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/spin.toml"), "{stderr}");
    // A Compose file that is not one names the file.
    let app = chained_app();
    app.write("bad.yaml", "services: [not, a, map]\n");
    let args = app_args(&app);
    let bad = app.path("bad.yaml").display().to_string();
    let mut all: Vec<&str> = vec!["graph"];
    all.extend(args.iter().map(String::as_str));
    all.extend(["--compose", &bad]);
    let output = run_offline(&all, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml"), "{stderr}");
}
