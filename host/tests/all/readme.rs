//! The README's commands, run as written. Every fenced ```` ```sh ```` block of
//! README.md and frontend/README.md is either run by a test here (the test command: checked to be
//! what `.ci/run` runs) or starts with `# Not run by CI:` (it needs a tool
//! this machine cannot have, such as Spin).
//!
//! A block runs in `bash` under `set -euo pipefail` with only mechanical
//! substitutions: `cargo run --release --bin nexa --` is this build's `nexa`,
//! `localhost:3000` is the test's host, the machine's shared `postgres`
//! database is a database of the test's own, a long-running command (`nexa
//! up`, the Vite dev server) goes to the background with a state dir, log
//! and port of the test's own and is waited for, and the benches run for a
//! second with two connections.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::services::{TestDatabase, free_port};
use crate::support::{component, rc_args, repo_app, repo_root};

/// The first line of a block this machine cannot run.
const NOT_RUN_MARKER: &str = "# Not run by CI:";

/// Each block the tests below run, found by a piece of its text, and the test.
const RUN_HERE: &[(&str, &str)] = &[
    (
        "up --build --runtime-config-file runtime-config.dev.toml",
        "the_first_command_builds_and_serves_the_dashboard",
    ),
    (
        "cargo test --release --workspace",
        "the_test_command_is_what_ci_runs",
    ),
    (
        "check-component",
        "check_component_accepts_the_health_component",
    ),
    ("auth/token", "the_auth_flow_with_curl"),
    ("bench/run.sh 5 3 16", "the_twin_bench_runs"),
    (
        "cargo bench --bench request_path",
        "the_request_path_and_cold_start_benches_run",
    ),
    (
        "npm --prefix frontend run dev",
        "the_vite_dev_server_serves_the_dashboard",
    ),
    (
        "export SPIN_VARIABLE_DATABASE_URL",
        "postgres_and_redis_health_is_healthy",
    ),
    (
        "nexa -- up --runtime-config-file runtime-config.redis.example.toml\n```",
        "the_redis_example_puts_the_key_value_store_on_redis",
    ),
    ("host/benches/load.sh", "the_benches_run"),
    (
        "VITE_OTEL_EXPORTER_OTLP_ENDPOINT=",
        "the_dashboard_builds_with_a_trace_collector",
    ),
];

/// The READMEs whose blocks are checked.
const READMES: &[&str] = &["README.md", "frontend/README.md"];

/// The fenced `sh` blocks of the READMEs, each with its closing fence.
fn sh_blocks() -> Vec<String> {
    let mut blocks = Vec::new();
    for readme in READMES {
        blocks.extend(sh_blocks_of(readme));
    }
    blocks
}

fn sh_blocks_of(readme: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join(readme)).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(block) if line.trim_end() == "```" => {
                block.push_str("```");
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    blocks
}

/// The one block containing `key`, without its closing fence.
fn block(key: &str) -> String {
    let matching: Vec<String> = sh_blocks()
        .into_iter()
        .filter(|b| b.contains(key))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "README.md: exactly one ```sh block should contain {key:?}: {matching:#?}"
    );
    matching[0].trim_end_matches("```").to_string()
}

#[test]
fn every_sh_block_is_run_by_a_test_or_marked_not_run_by_ci() {
    let blocks = sh_blocks();
    assert!(blocks.len() >= RUN_HERE.len(), "{blocks:#?}");
    for text in &blocks {
        let runners: Vec<&str> = RUN_HERE
            .iter()
            .filter(|(key, _)| text.contains(key))
            .map(|(_, test)| *test)
            .collect();
        let marked = text.starts_with(NOT_RUN_MARKER);
        assert!(
            marked || runners.len() == 1,
            "README.md: this ```sh block is run by {runners:?}; it must be run by exactly one \
             test in host/tests/all/readme.rs or start with {NOT_RUN_MARKER:?}:\n{text}"
        );
        assert!(
            !marked || runners.is_empty(),
            "README.md: a block marked not run by CI is run by {runners:?}:\n{text}"
        );
    }
    for (key, _) in RUN_HERE {
        block(key);
    }
}

/// A long-running command of a block: the line starting with `prefix` is
/// started in the background with `extra` appended, and the script waits
/// until `url` answers.
struct Background<'a> {
    prefix: &'a str,
    extra: String,
    url: String,
}

/// What a block needs substituted and where it runs.
struct Script<'a> {
    block: String,
    cwd: PathBuf,
    work: &'a Path,
    substitutions: Vec<(String, String)>,
    background: Vec<Background<'a>>,
}

/// Runs the bash script's process group: killed (SIGTERM, then SIGKILL) when
/// dropped, with everything the script left running in the background.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0);
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Command::new("kill")
            .args(["-0", "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

const PRELUDE: &str = r#"set -euo pipefail
background_pid=""
wait_for_url() {
  for _ in $(seq 1 3000); do
    curl -s -o /dev/null "$1" && return 0
    if ! kill -0 "$background_pid" 2>/dev/null; then
      echo "the background command exited; its log:" >&2; cat "$WORK/background.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "$1 did not answer; the log:" >&2; cat "$WORK/background.log" >&2; return 1
}
"#;

impl<'a> Script<'a> {
    fn new(key: &str, work: &'a Path) -> Self {
        Script {
            block: block(key),
            cwd: repo_root(),
            work,
            substitutions: Vec::new(),
            background: Vec::new(),
        }
    }

    /// A block that starts `nexa up`: it runs in the background on a free
    /// port of the test's own, with a state dir of the test's own.
    fn serving(needle: &str, work: &'a Path) -> (Self, u16) {
        let (up, port) = nexa_up(work);
        let mut script = Script::new(needle, work);
        script.background.push(up);
        (script, port)
    }

    fn substitute(mut self, from: &str, to: &str) -> Self {
        self.substitutions.push((from.to_string(), to.to_string()));
        self
    }

    /// The script's text: the block with its substitutions (each must apply).
    fn text(&self) -> String {
        // The binary everywhere it appears; the rest only where the test
        // says it must.
        let mut text = self
            .block
            .replace("cargo run --release --bin nexa --", "\"$NEXA\"");
        for (from, to) in &self.substitutions {
            assert!(
                text.contains(from.as_str()),
                "the README block no longer contains {from:?}:\n{}",
                self.block
            );
            text = text.replace(from.as_str(), to);
        }
        let mut script = String::from(PRELUDE);
        for line in text.lines() {
            let background = self.background.iter().find(|b| line.contains(b.prefix));
            match background {
                Some(b) => {
                    // `a && long-running` becomes `a` then the background job:
                    // the same under `set -e`.
                    let (before, command) = line.split_at(line.find(b.prefix).unwrap());
                    if let Some(before) = before.trim_end().strip_suffix("&&") {
                        script.push_str(before);
                        script.push('\n');
                    } else {
                        assert!(before.trim().is_empty(), "{line}");
                    }
                    assert!(!command.contains('#'), "a comment would hide: {line}");
                    script.push_str(&format!(
                        "{command}{} >>\"$WORK/background.log\" 2>&1 &\nbackground_pid=$!\nwait_for_url '{}'\n",
                        b.extra, b.url
                    ));
                }
                None => {
                    script.push_str(line);
                    script.push('\n');
                }
            }
        }
        script
    }

    /// Runs the script; returns its output and its process group, which still
    /// holds what it started in the background.
    fn run(&self) -> (Output, ProcessGroup) {
        use std::os::unix::process::CommandExt;
        let text = self.text();
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(&text)
            .current_dir(&self.cwd)
            .env("NEXA", env!("CARGO_BIN_EXE_nexa"))
            .env("NEXA_TWIN", env!("CARGO_BIN_EXE_nexa-twin"))
            .env("WORK", self.work)
            // A free admin port each: README blocks and other tests run at once.
            .env("NEXA_ADMIN_LISTEN", "127.0.0.1:0")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .process_group(0);
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let group = ProcessGroup(child.id());
        let output = child.wait_with_output().unwrap();
        let log = std::fs::read_to_string(self.work.join("background.log")).unwrap_or_default();
        assert!(
            output.status.success(),
            "the README block failed ({}):\n{text}\nstdout:\n{}\nstderr:\n{}\nbackground log:\n{log}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        (output, group)
    }
}

/// `nexa up` in the background on a free port, with a state dir of the
/// test's own (nothing is written to the repository).
fn nexa_up(work: &Path) -> (Background<'static>, u16) {
    let port = free_port();
    let state = work.join("state");
    (
        Background {
            prefix: "\"$NEXA\" up",
            extra: format!(
                " --listen 127.0.0.1:{port} --state-dir '{}'",
                state.display()
            ),
            url: format!("http://127.0.0.1:{port}/health"),
        },
        port,
    )
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_first_command_builds_and_serves_the_dashboard() {
    // The test harness builds the components first, so `--build` below finds
    // them current (cargo and the dashboard's build have nothing to do) and
    // each component is renamed into place, never half-written, while other
    // tests read it.
    component("fallback");
    let work = tempfile::tempdir().unwrap();
    let (script, port) = Script::serving(
        "up --build --runtime-config-file runtime-config.dev.toml",
        work.path(),
    );
    let (_output, group) = script.run();

    let index = get(&format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = index.text().await.unwrap();
    assert!(
        html.contains("<div id=\"root\">") && html.contains("/assets/"),
        "{html}"
    );
    let health: Value = get(&format!("http://127.0.0.1:{port}/health"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "operational", "{health}");
    // The README's sign-in works.
    let login = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/auth/token"))
        .form(&[("username", "admin"), ("password", "admin-dev-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    drop(group);
    assert!(
        work.path().join("state/sqlite_db.db").exists(),
        "the state went elsewhere"
    );
}

#[test]
fn the_test_command_is_what_ci_runs() {
    let command = block("cargo test --release --workspace");
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    for line in command.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            ci.lines().any(|ci_line| ci_line == line),
            ".ci/run does not run the README's test command verbatim: {line}"
        );
    }
}

#[test]
fn check_component_accepts_the_health_component() {
    component("health");
    let work = tempfile::tempdir().unwrap();
    let (output, _group) = Script::new("check-component", work.path()).run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("components/health/health.wasm: ok"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_auth_flow_with_curl() {
    let app = repo_app("");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    let work = tempfile::tempdir().unwrap();
    let mut script =
        Script::new("auth/token", work.path()).substitute("localhost:3000", host.address());
    // The cookie jar lands in the test's directory, not the repository.
    script.cwd = work.path().to_path_buf();
    let (output, _group) = script.run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The created item, the refreshed tokens, then the status after logout
    // (curl prints the JSON bodies without a newline between them).
    let answers: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let [item, refreshed, after_logout] = &answers[..] else {
        panic!("three answers expected: {stdout}");
    };
    assert_eq!(item["name"], "Desk", "{item}");
    assert!(item["id"].is_number(), "{item}");
    assert!(refreshed["refresh_token"].is_string(), "{refreshed}");
    assert_eq!(after_logout, 401, "{stdout}");
}

#[tokio::test]
async fn the_vite_dev_server_serves_the_dashboard() {
    // The dev server proxies API paths to 127.0.0.1:3000, fixed in
    // frontend/vite.config.ts; this checks what it serves itself.
    component("fallback"); // npm ci has run
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut script = Script::new("npm --prefix frontend run dev", work.path());
    script.background.push(Background {
        prefix: "npm --prefix frontend run dev",
        extra: format!(" -- --port {port} --strictPort"),
        url: format!("http://localhost:{port}/"),
    });
    let (_output, group) = script.run();
    let html = get(&format!("http://localhost:{port}/"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<title>Nexa</title>") && html.contains("/src/main.tsx"),
        "{html}"
    );
    drop(group);
}

#[tokio::test]
async fn postgres_and_redis_health_is_healthy() {
    // The health probe only reads one key (`exists`) from the shared Redis,
    // so sharing the example's store with parallel tests changes nothing.
    let db = TestDatabase::create();
    let work = tempfile::tempdir().unwrap();
    let (script, port) = Script::serving("export SPIN_VARIABLE_DATABASE_URL", work.path());
    let script = script
        .substitute(
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
            &db.url(),
        )
        .substitute("localhost:3000", &format!("127.0.0.1:{port}"));
    let (output, group) = script.run();
    let health: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(health["status"], "operational", "{health}");
    assert_eq!(
        health["components"]["database"]["status"], "healthy",
        "{health}"
    );
    // The probe ran on the test's database (the pool keeps its connection).
    assert!(
        db.connections() > 0,
        "the health probe did not use Postgres"
    );
    assert!(
        !work.path().join("state/sqlite_key_value.db").exists(),
        "the key-value store is not on Redis"
    );
    drop(group);
}

#[tokio::test]
async fn the_redis_example_puts_the_key_value_store_on_redis() {
    // As above: /health only reads from the shared Redis.
    let work = tempfile::tempdir().unwrap();
    let (script, port) = Script::serving(
        "nexa -- up --runtime-config-file runtime-config.redis.example.toml\n```",
        work.path(),
    );
    let (_output, group) = script.run();
    let health: Value = get(&format!("http://127.0.0.1:{port}/health"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "operational", "{health}");
    assert_eq!(
        health["components"]["cache"]["status"], "healthy",
        "{health}"
    );
    // An embedded store would have created its file in the state dir.
    assert!(work.path().join("state/sqlite_db.db").exists());
    assert!(
        !work.path().join("state/sqlite_key_value.db").exists(),
        "the key-value store is not on Redis"
    );
    drop(group);
}

#[test]
fn the_benches_run() {
    if !crate::support::installed("wrk", "--version", "apt-get install wrk") {
        return;
    }
    component("fixture");
    let work = tempfile::tempdir().unwrap();
    let script = Script::new("host/benches/load.sh", work.path())
        .substitute("host/benches/load.sh 6 32", "host/benches/load.sh 1 2")
        .substitute(
            "host/benches/backends.sh 10 32",
            "host/benches/backends.sh 1 2",
        )
        .substitute(
            "host/benches/observability.sh 7 5 32",
            "host/benches/observability.sh 1 1 2",
        );
    let (output, _group) = script.run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for row in [
        "/health",
        "/missing",
        "trivial (/fixture/ok)",
        "postgres primary-key",
        "redis GET",
        "tracing off:",
        "tracing on:",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row:\n{stdout}"));
        if row.starts_with("tracing") {
            assert!(line.contains("of the baseline"), "{line}\n{stdout}");
            continue;
        }
        assert!(line.contains(" req/s "), "{line}\n{stdout}");
        // The trivial handler's answer is the fallback's 404.
        if row != "/missing" {
            assert!(line.ends_with("non-2xx 0"), "{line}\n{stdout}");
        }
    }
}

/// bench/run.sh for a second a run: the host and the twin both serve every
/// workload without errors, and the summary has its rows.
#[test]
fn the_twin_bench_runs() {
    component("health");
    let work = tempfile::tempdir().unwrap();
    let script = Script::new("bench/run.sh 5 3 16", work.path()).substitute(
        "bench/run.sh 5 3 16",
        "OUT=\"$WORK/results\" bench/run.sh 1 1 2",
    );
    let (output, _group) = script.run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for row in [
        "| GET /health |",
        "| GET /items/{id}, cache hit |",
        "| GET /items/{id}, Postgres",
        "| GET /items?limit=20",
        "| POST /items |",
        "| GET /users",
        "| POST /auth/token",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row:\n{stdout}"));
        assert!(line.ends_with("| 0 |"), "errors in {line}\n{stdout}");
    }
}

/// Both briefly: criterion for a second a case, one cold-start run of each
/// kind (with the test's `nexa`).
#[test]
fn the_request_path_and_cold_start_benches_run() {
    component("health");
    let work = tempfile::tempdir().unwrap();
    let script = Script::new("cargo bench --bench request_path", work.path())
        .substitute(
            "cargo bench --bench request_path",
            "cargo bench --bench request_path -- --warm-up-time 0.5 --measurement-time 1 --noplot",
        )
        .substitute("--runs 5", "--runs 1");
    let (output, _group) = script.run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for case in ["instance reuse on", "instance reuse off"] {
        assert!(
            stdout.contains(&format!("GET /fixture/ok in process/{case}")),
            "{stdout}"
        );
    }
    for row in ["| warm |", "| cold |"] {
        assert!(stdout.lines().any(|l| l.starts_with(row)), "{stdout}");
    }
}

#[test]
fn the_dashboard_builds_with_a_trace_collector() {
    // Built into a directory of the test's own: frontend/dist, which the
    // fallback component embeds, stays as it is.
    component("fallback"); // npm ci has run
    let work = tempfile::tempdir().unwrap();
    let mut script = Script::new("VITE_OTEL_EXPORTER_OTLP_ENDPOINT=", work.path())
        .substitute("npm run build", "npm run build -- --outDir \"$WORK/dist\"");
    script.cwd = repo_root().join("frontend");
    script.run();
    let assets = std::fs::read_dir(work.path().join("dist/assets")).unwrap();
    let with_endpoint = assets
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
        .any(|text| text.contains("http://localhost:4318"));
    assert!(with_endpoint, "no built script names the collector");
}
