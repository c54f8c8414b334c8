//! Starting a real host on a throwaway app directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The components the tests use, built once per test run.
const COMPONENTS: &[&str] = &[
    "health",
    "fallback",
    "auth",
    "items",
    "users",
    "fixture",
    "fixture-sockets",
];

/// Builds the test components (once) and returns the path of one `.wasm`.
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // The fallback component embeds the dashboard's build, as
            // spin.toml's build command for it does.
            let status = Command::new("sh")
                .arg(repo_root().join("frontend/build.sh"))
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("building the dashboard failed: {status}"));
            }
            for crate_name in COMPONENTS {
                let status = Command::new("sh")
                    .arg(repo_root().join("components/build.sh"))
                    .arg(crate_name)
                    .status()
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!("building component {crate_name} failed: {status}"));
                }
            }
            Ok(())
        })
        .as_ref()
        .expect("components build");
    repo_root().join(format!("components/{name}/{name}.wasm"))
}

/// The fixture component built as `version` (what its `/fixture/version`
/// answers; the default build answers `v1`), kept beside cargo's target
/// directory. The default build (`component("fixture")`) is left as it is.
pub fn fixture_version(version: &str) -> PathBuf {
    static BUILDS: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    component("fixture");
    let mut builds = BUILDS.lock().unwrap();
    if let Some((_, path)) = builds.iter().find(|(v, _)| v == version) {
        return path.clone();
    }
    let root = repo_root();
    let status = Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "--profile",
            "wasm-release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "fixture",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .env("NEXA_FIXTURE_VERSION", version)
        .status()
        .expect("running cargo");
    assert!(status.success(), "building fixture {version} failed");
    let metadata = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .output()
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let target = PathBuf::from(metadata["target_directory"].as_str().unwrap());
    let path = target.join(format!("nexa-test-fixture-{version}.wasm"));
    std::fs::copy(
        target.join("wasm32-wasip2/wasm-release/fixture.wasm"),
        &path,
    )
    .unwrap();
    builds.push((version.to_string(), path.clone()));
    path
}

/// A unique token for names (keys, labels) a test creates.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// An app directory with a spin.toml (and optionally runtime config and nexa.toml).
pub struct AppDir {
    pub dir: tempfile::TempDir,
}

impl AppDir {
    /// `manifest` may use `{fixture}`, `{health}`... for component paths.
    pub fn new(manifest: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut text = manifest.to_string();
        for name in COMPONENTS {
            let placeholder = format!("{{{name}}}");
            if text.contains(&placeholder) {
                text = text.replace(&placeholder, &component(name).display().to_string());
            }
        }
        std::fs::write(dir.path().join("spin.toml"), text).unwrap();
        let app = Self { dir };
        app.write("nexa.toml", "");
        app
    }

    /// Writes a file of the app. A `nexa.toml` that does not configure
    /// `[rate_limit]` gets it turned off: tests that count requests must not
    /// trip the limiter (the rate-limit tests configure it, and
    /// `rate_limit::default_app` copies the repository's file as is).
    pub fn write(&self, name: &str, text: &str) -> &Self {
        let configures_limits = text
            .lines()
            .any(|line| line.trim_start().starts_with("[rate_limit"));
        let text = if name == "nexa.toml" && !configures_limits {
            format!("{text}\n[rate_limit]\nenabled = false\n")
        } else {
            text.to_string()
        };
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `nexa up` and waits until it serves (or exits).
    pub fn start(&self, extra_args: &[&str]) -> Host {
        self.start_with_env(extra_args, &[])
    }

    pub fn start_with_env(&self, extra_args: &[&str], env: &[(&str, &str)]) -> Host {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nexa"));
        command
            .arg("up")
            .arg("-f")
            .arg(self.path("spin.toml"))
            .args(["--listen", "127.0.0.1:0"])
            // Each host its own admin address (tests run several at once).
            .env("NEXA_ADMIN_LISTEN", "127.0.0.1:0")
            .args(extra_args);
        run_until_serving(command, env)
    }

    /// Runs `nexa-twin` on this app (the same flags as `nexa up`) and waits
    /// until it serves (or exits).
    pub fn start_twin(&self, extra_args: &[&str], env: &[(&str, &str)]) -> Host {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nexa-twin"));
        command
            .arg("-f")
            .arg(self.path("spin.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .args(extra_args);
        run_until_serving(command, env)
    }

    /// Runs `nexa up` expecting it to fail before serving; returns its stderr.
    pub fn start_failure(&self, extra_args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_nexa"))
            .arg("up")
            .arg("-f")
            .arg(self.path("spin.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .env("NEXA_ADMIN_LISTEN", "127.0.0.1:0")
            .args(extra_args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "nexa up should have failed; stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("Serving http://"),
            "nexa up served before failing:\n{stderr}"
        );
        stderr
    }
}

/// Spawns a host (`nexa up` or `nexa-twin`) with `env` and waits until it
/// prints "Serving http://…" (or exits).
fn run_until_serving(mut command: Command, env: &[(&str, &str)]) -> Host {
    command
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("starting the host");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let admin = Arc::new(Mutex::new(None));
    {
        let log = log.clone();
        let admin = admin.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("Admin http://") {
                    *admin.lock().unwrap() = Some(address.trim().to_string());
                }
                if let Some(address) = line.strip_prefix("Serving http://") {
                    let _ = address_tx.send(address.trim().to_string());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let address = address_rx.recv_timeout(Duration::from_secs(60)).ok();
    let admin = admin.lock().unwrap().clone();
    Host {
        child,
        address,
        admin,
        log,
    }
}

/// The JSON log lines of `log` (other lines, such as "Serving http://…",
/// are skipped).
pub fn events(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Whether some JSON log line has every `(field, value)` of `fields`.
pub fn logged(log: &str, fields: &[(&str, serde_json::Value)]) -> bool {
    events(log)
        .iter()
        .any(|event| fields.iter().all(|(key, value)| event[*key] == *value))
}

/// A running host process; killed when dropped.
pub struct Host {
    pub child: Child,
    address: Option<String>,
    /// The admin listener's address (`NEXA_ADMIN_LISTEN=127.0.0.1:0`).
    admin: Option<String>,
    log: Arc<Mutex<String>>,
}

impl Host {
    pub fn url(&self, path: &str) -> String {
        let address = self
            .address
            .as_ref()
            .unwrap_or_else(|| panic!("host did not start:\n{}", self.log()));
        format!("http://{address}{path}")
    }

    pub fn address(&self) -> &str {
        self.address.as_deref().expect("host started")
    }

    /// A URL on the host's admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self
            .admin
            .as_deref()
            .unwrap_or_else(|| panic!("no admin listener:\n{}", self.log()));
        format!("http://{admin}{path}")
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    pub fn terminate(&mut self) {
        // SAFETY-free: plain kill(2) through the `kill` command.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// SIGTERM, then waits (up to 10 s) for the process to exit and for its
    /// log to be complete; returns the log.
    pub fn terminate_and_wait(&mut self) -> String {
        self.terminate();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "host did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The log reader thread may still be draining the pipe.
        std::thread::sleep(Duration::from_millis(200));
        self.log()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A manifest serving the fixture under `/fixture/...` and the fallback at `/...`.
pub fn fixture_manifest(extra_component_keys: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "test"
[variables]
greeting = {{ default = "hello" }}
secret_word = {{ required = true, secret = true }}
[[trigger.http]]
route = "/fixture/..."
component = "fixture"
[[trigger.http]]
route = "/..."
component = "fallback"
[component.fixture]
source = "{{fixture}}"
{extra_component_keys}
[component.fallback]
source = "{{fallback}}"
"#
    )
}

/// The `admin` password in runtime-config.dev.toml.
pub const ADMIN_PASSWORD: &str = "admin-dev-password";

/// The fixture app plus a private copy of the fixture, reachable only by
/// service chaining as `http://internal.spin.internal`.
pub fn chaining_manifest(allowed_outbound_hosts: &str) -> String {
    let mut manifest = fixture_manifest(&format!(
        "allowed_outbound_hosts = [{allowed_outbound_hosts}]"
    ));
    manifest.push_str(
        "[[trigger.http]]\nroute = { private = true }\ncomponent = \"internal\"\n\
         [component.internal]\nsource = \"{fixture}\"\n",
    );
    manifest
}

/// Starts [`chaining_manifest`]'s app with the given nexa.toml.
pub fn chaining_host(allowed_outbound_hosts: &str, nexa_toml: &str) -> (AppDir, Host) {
    serve(&chaining_manifest(allowed_outbound_hosts), nexa_toml)
}

/// Starts `manifest` with the secret variable set and the given nexa.toml.
fn serve(manifest: &str, nexa_toml: &str) -> (AppDir, Host) {
    let app = app_with(manifest, nexa_toml);
    let host = start_with_rc(&app, &[]);
    (app, host)
}

/// An app directory with `manifest`, `nexa_toml` and a runtime config
/// giving the secret variable a value (`rc.toml`); not started.
pub fn app_with(manifest: &str, nexa_toml: &str) -> AppDir {
    let app = AppDir::new(manifest);
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    app.write("nexa.toml", nexa_toml);
    app
}

/// The fixture app (`fixture_manifest("")`) made by [`app_with`].
pub fn fixture_app(nexa_toml: &str) -> AppDir {
    app_with(&fixture_manifest(""), nexa_toml)
}

/// Starts an app made by [`app_with`] with its `rc.toml` and `env`.
pub fn start_with_rc(app: &AppDir, env: &[(&str, &str)]) -> Host {
    let rc = rc_args(app);
    app.start_with_env(&rc.each_ref().map(String::as_str), env)
}

/// A runtime config giving `secret_word` a value.
pub const SECRET_RUNTIME_CONFIG: &str = r#"
[[variables_provider]]
type = "static"
values = { secret_word = "swordfish" }
"#;

/// The repository's own app: its spin.toml (component paths made absolute)
/// and its development runtime config plus `runtime_extra`, as `rc.toml`.
/// Passwords are hashed with the cheapest bcrypt cost, to keep tests fast.
pub fn repo_app(runtime_extra: &str) -> AppDir {
    component("health");
    let manifest = std::fs::read_to_string(repo_root().join("spin.toml"))
        .unwrap()
        .replace(
            "source = \"components/",
            &format!("source = \"{}/components/", repo_root().display()),
        );
    let app = AppDir::new(&manifest);
    let dev = std::fs::read_to_string(repo_root().join("runtime-config.dev.toml")).unwrap();
    let dev = dev.replace(
        "[variables_provider.values]",
        "[variables_provider.values]\nbcrypt_cost = \"4\"",
    );
    app.write("rc.toml", &format!("{dev}\n{runtime_extra}"));
    app.write(
        "nexa.toml",
        &std::fs::read_to_string(repo_root().join("nexa.toml")).unwrap(),
    );
    app
}

/// `--runtime-config-file <app>/rc.toml`.
/// Where the repository's app keeps its data in a test.
pub enum Backend {
    /// The embedded `default` SQLite database in the app's state dir.
    Sqlite,
    /// A PostgreSQL database of the test's own (dropped with it).
    Postgres(crate::services::TestDatabase),
}

impl Drop for Backend {
    /// Every Postgres-backed test checks, as it ends, that it really ran there.
    fn drop(&mut self) {
        if let Backend::Postgres(db) = self
            && !std::thread::panicking()
        {
            db.assert_app_schema_here();
        }
    }
}

/// Starts `repo_app`'s app on embedded SQLite, or on a fresh Postgres
/// database through `SPIN_VARIABLE_DATABASE_URL`, as an operator would.
pub fn start_on(app: &AppDir, postgres: bool) -> (Backend, Host) {
    let rc = rc_args(app);
    let rc = rc.each_ref().map(String::as_str);
    if postgres {
        let db = crate::services::TestDatabase::create();
        let host = app.start_with_env(&rc, &[("SPIN_VARIABLE_DATABASE_URL", &db.url())]);
        (Backend::Postgres(db), host)
    } else {
        (Backend::Sqlite, app.start(&rc))
    }
}

/// Runs each named `async fn(postgres: bool)` as two tests, `<name>::sqlite`
/// and `<name>::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(false).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(true).await
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;

pub fn rc_args(app: &AppDir) -> [String; 2] {
    [
        "--runtime-config-file".to_string(),
        app.path("rc.toml").display().to_string(),
    ]
}

/// Starts the fixture app with extra `[component.fixture]` keys and extra
/// runtime config (the secret variable always has a value).
pub fn fixture_with(extra_component_keys: &str, runtime_extra: &str) -> (AppDir, Host) {
    let app = AppDir::new(&fixture_manifest(extra_component_keys));
    app.write(
        "rc.toml",
        &format!("{SECRET_RUNTIME_CONFIG}\n{runtime_extra}"),
    );
    let host = app.start(&[
        "--runtime-config-file",
        app.path("rc.toml").to_str().unwrap(),
    ]);
    (app, host)
}

/// POSTs JSON and returns the status and the JSON answer.
pub async fn post_json(
    host: &Host,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = host
        .client()
        .post(host.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A response's `Retry-After`, in seconds.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// GETs and returns the status and the JSON answer.
pub async fn get_json(host: &Host, path: &str) -> (u16, serde_json::Value) {
    status_and_json(host.client().get(host.url(path))).await
}

/// Sends `request`; the status and the JSON answer.
pub async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Starts the fixture app with default capabilities (key-value `default`,
/// sqlite `default`, a `message` variable) and the given nexa.toml.
pub fn fixture_host(nexa_toml: &str) -> (AppDir, Host) {
    serve(
        &fixture_manifest(
            "key_value_stores = [\"default\"]\nsqlite_databases = [\"default\"]\nvariables = { message = \"{{ greeting }}, {{ secret_word }}\" }",
        ),
        nexa_toml,
    )
}

/// Whether `program` runs here (`program <version_arg>`). In CI it must:
/// `.ci/run` installs it as `hint` says, so a missing one fails the test
/// there instead of skipping it.
pub fn installed(program: &str, version_arg: &str, hint: &str) -> bool {
    let installed = Command::new(program).arg(version_arg).output().is_ok();
    assert!(
        installed || std::env::var("CI").as_deref() != Ok("true"),
        "{program} is missing: .ci/run installs it ({hint})"
    );
    if !installed {
        println!("skipped: {program} is not installed ({hint})");
    }
    installed
}

/// An access token of the seeded admin (the repository's app).
pub async fn admin_token(host: &Host) -> String {
    let (status, body) = status_and_json(
        host.client()
            .post(host.url("/auth/token"))
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    body["access_token"].as_str().unwrap().to_string()
}
