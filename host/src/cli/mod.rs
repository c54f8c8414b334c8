//! The `nexa` subcommands beside `up` and `build`: one module per command,
//! each exposing `run` over its own clap arguments. Commands that report
//! print a table or sentence for people and, with `--json`, JSON for
//! scripts; any failure is an error (exit status 1) with the reason.
//!
//! This module holds what they share: the admin API client (`--admin URL`,
//! token from `NEXA_ADMIN_TOKEN`), the Prometheus HTTP API client
//! (`--prometheus URL`), the app's files as `nexa up` finds them
//! (`-f/--from`, `--runtime-config-file`, `--state-dir`), a spinner for
//! slow work, and the table/size/digest formatting.

pub mod bench;
pub mod check_config;
pub mod components;
pub mod db;
pub mod deployment;
pub mod doctor;
pub mod graph;
pub mod logs;
pub mod probe;
pub mod reload;
pub mod slo;
pub mod status;
pub mod traces;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::admin::{ADMIN_TOKEN_ENV, ComponentReport};
use crate::app::{AppFiles, AppOptions};

/// Which app a command is about, found as `nexa up` finds it.
#[derive(clap::Args, Debug, Clone)]
pub struct AppArgs {
    /// The app manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// Spin runtime config (its `state_dir`, stores, databases and variable
    /// providers count). Default: none, as `nexa up` without it.
    #[arg(long, env = "NEXA_RUNTIME_CONFIG_FILE")]
    pub runtime_config_file: Option<PathBuf>,
    /// Host-only settings (limits, CORS, rate limits). Default: nexa.toml
    /// beside the manifest, if any.
    #[arg(long, env = "NEXA_HOST_CONFIG_FILE")]
    pub host_config_file: Option<PathBuf>,
    /// The state directory `nexa up` was given. Default: the runtime
    /// config's `state_dir`, else .spin beside the manifest.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl AppArgs {
    /// The app's files, read and checked as `nexa up` reads them.
    pub fn files(&self) -> anyhow::Result<AppFiles> {
        AppFiles::read(&AppOptions {
            manifest: self.manifest.clone(),
            runtime_config: self.runtime_config_file.clone(),
            host_config: self.host_config_file.clone(),
            state_dir: self.state_dir.clone(),
        })
    }

    /// The state directory, without reading the app's files when
    /// `--state-dir` says where it is.
    pub fn state_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(self.files()?.state_dir),
        }
    }
}

/// What the binaries (`nexa`, `nexa-twin`) do around their work: clear the
/// `PG*` environment before any thread exists (sqlx would read it into every
/// Postgres connection's options), start logging, parse the command line,
/// run `work` on a multi-threaded tokio runtime, and report a failure as
/// "Error: …" with its causes (never a backtrace), exiting with status 1.
pub fn run_process<A, F>(work: impl FnOnce(A) -> F) -> anyhow::Result<()>
where
    A: clap::Parser,
    F: Future<Output = anyhow::Result<()>>,
{
    let scrubbed: Vec<&str> = crate::capabilities::postgres::address::SQLX_ENVIRONMENT
        .iter()
        .copied()
        .filter(|name| std::env::var_os(name).is_some())
        .collect();
    for name in &scrubbed {
        // SAFETY: called first thing in `main`, single-threaded: nothing
        // reads the environment concurrently.
        unsafe { std::env::remove_var(name) };
    }
    crate::telemetry::logs::init(crate::telemetry::logs::Format::from_env());
    if !scrubbed.is_empty() {
        tracing::warn!(
            ignored = %scrubbed.join(", "),
            "the host's PG* environment is ignored: components' Postgres connections use only their own address"
        );
    }
    let args = A::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(work(args));
    crate::telemetry::logs::flush();
    if let Err(error) = &result {
        // The reason and its causes, for people: never a backtrace, whatever
        // RUST_BACKTRACE says.
        eprintln!("Error: {error}");
        let causes: Vec<String> = error.chain().skip(1).map(|c| c.to_string()).collect();
        if !causes.is_empty() {
            eprintln!("\nCaused by:");
            for cause in causes {
                eprintln!("    {cause}");
            }
        }
        std::process::exit(1);
    }
    Ok(())
}

/// A spinner on stderr for work that may take more than a second; hidden
/// when stderr is not a terminal. `finish_and_clear` it before printing.
pub fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> indicatif::ProgressBar {
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

/// Where a running host's admin listener is (the token comes from
/// `NEXA_ADMIN_TOKEN`).
#[derive(clap::Args)]
pub struct AdminArgs {
    /// The admin listener's URL.
    #[arg(
        long = "admin",
        default_value = "http://127.0.0.1:9464",
        env = "NEXA_ADMIN_URL"
    )]
    pub url: String,
}

/// A client of one host's admin API.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct ComponentList {
    components: Vec<ComponentReport>,
}

impl AdminClient {
    /// A client of the admin listener at `base` (`http://host:port`), with
    /// the token from `NEXA_ADMIN_TOKEN` when set.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--admin {base:?}: expected an http:// or https:// URL"
        );
        let token = std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { base, token, http })
    }

    /// A path that answers text (`/metrics`).
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach the admin listener at {}", self.base))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "GET {url}: {status}");
        Ok(response.text().await?)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.body(body);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the admin listener at {}", self.base))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .with_context(|| format!("{method} {url}: the answer is not JSON"))?;
        if !status.is_success() {
            let detail = body["detail"].as_str().unwrap_or("no detail given");
            if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
                bail!("{method} {url}: {status}: {detail} (set {ADMIN_TOKEN_ENV})");
            }
            bail!("{method} {url}: {status}: {detail}");
        }
        Ok(body)
    }

    pub async fn components(&self) -> anyhow::Result<Vec<ComponentReport>> {
        let body = self.get("/admin/components").await?;
        let list: ComponentList =
            serde_json::from_value(body).context("GET /admin/components: unexpected answer")?;
        Ok(list.components)
    }
}

/// Where `nexa slo` and `nexa doctor` find Prometheus unless told.
pub const PROMETHEUS_URL_ENV: &str = "NEXA_PROMETHEUS_URL";

/// A client of Prometheus's HTTP API (`/api/v1/...`).
pub struct PrometheusClient {
    base: String,
    http: reqwest::Client,
}

/// One sample of an instant vector: its labels (the metric name under
/// `__name__`) and its value (NaN when Prometheus says so).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

impl PrometheusClient {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--prometheus {base:?}: expected an http:// or https:// URL"
        );
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { base, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /-/ready`: whether the server is up and serving queries.
    pub async fn ready(&self) -> anyhow::Result<()> {
        let response = self
            .http
            .get(format!("{}/-/ready", self.base))
            .send()
            .await
            .with_context(|| format!("cannot reach Prometheus at {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "Prometheus at {} is not ready: {status}: {}",
                self.base,
                body.trim()
            );
        }
        Ok(())
    }

    /// `GET /api/v1/<path>`: the `data` of a successful answer, or an error
    /// naming what Prometheus said.
    pub async fn api(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}/api/v1/{path}", self.base);
        let response = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .with_context(|| format!("cannot reach Prometheus at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer: ApiAnswer = serde_json::from_str(&text).with_context(|| {
            format!(
                "Prometheus at {} answered {status} to /api/v1/{path} with something that is not its API's JSON (is this Prometheus?)",
                self.base
            )
        })?;
        if answer.status != "success" || !status.is_success() {
            bail!(
                "Prometheus at {} answered {status} to /api/v1/{path}: {}: {}",
                self.base,
                answer.error_type.as_deref().unwrap_or("error"),
                answer.error.as_deref().unwrap_or("no reason given")
            );
        }
        Ok(answer.data)
    }

    /// An instant query (`/api/v1/query`) whose result is a vector.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<Sample>> {
        let data = self.api("query", &[("query", promql)]).await?;
        anyhow::ensure!(
            data["resultType"] == "vector",
            "Prometheus answered {promql:?} with a {} instead of a vector",
            data["resultType"]
        );
        let samples: Vec<VectorSample> = serde_json::from_value(data["result"].clone())
            .with_context(|| format!("Prometheus's answer to {promql:?} is not a vector"))?;
        Ok(samples
            .into_iter()
            .map(|sample| Sample {
                labels: sample.metric,
                value: parse_prometheus_float(&sample.value.1),
            })
            .collect())
    }
}

/// Prometheus writes sample values as strings: `"0.25"`, `"NaN"`, `"+Inf"`.
fn parse_prometheus_float(text: &str) -> f64 {
    text.parse().unwrap_or(f64::NAN)
}

/// A duration for people: `850 µs`, `12.3 ms`, `4.56 s`, `43m 12s`.
pub fn format_duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", micros as f64 / 1e3)
    } else if micros < 60_000_000 {
        format!("{:.2} s", micros as f64 / 1e6)
    } else {
        humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
    }
}

/// `sha256:0123456789ab…` → `0123456789ab` (as `docker images` shortens).
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

pub fn format_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let bytes_f = bytes as f64;
    if bytes_f >= KIB * KIB {
        format!("{:.1} MiB", bytes_f / (KIB * KIB))
    } else if bytes_f >= KIB {
        format!("{:.1} KiB", bytes_f / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Left-aligned columns, two spaces apart. Cells may be styled with
/// `console::style`: widths are measured without the colour codes.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: [usize; N] = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(console::measure_text_width(cell));
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < N {
                let padding = widths[i] - console::measure_text_width(cell) + 2;
                text.push_str(&" ".repeat(padding));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_its_columns() {
        let rows = [
            ["health".to_string(), "/health".to_string()],
            ["items".to_string(), "/items/...".to_string()],
        ];
        assert_eq!(
            table(&["ID", "ROUTES"], &rows),
            "ID      ROUTES\nhealth  /health\nitems   /items/...\n"
        );
    }

    #[test]
    fn sizes_and_digests_are_shortened_for_people() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(2048), "2.0 KiB");
        assert_eq!(format_size(3 << 20), "3.0 MiB");
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn prometheus_values_include_nan_and_infinities() {
        assert_eq!(parse_prometheus_float("0.25"), 0.25);
        assert!(parse_prometheus_float("NaN").is_nan());
        assert_eq!(parse_prometheus_float("+Inf"), f64::INFINITY);
        assert_eq!(parse_prometheus_float("-Inf"), f64::NEG_INFINITY);
    }

    #[test]
    fn durations_are_shortened_for_people() {
        assert_eq!(format_duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(format_duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(format_duration(Duration::from_millis(4_560)), "4.56 s");
        assert_eq!(format_duration(Duration::from_secs(2592)), "43m 12s");
    }

    #[test]
    fn the_admin_url_must_be_http() {
        assert!(AdminClient::new("127.0.0.1:9464").is_err());
        assert!(AdminClient::new("http://127.0.0.1:9464/").is_ok());
    }
}
