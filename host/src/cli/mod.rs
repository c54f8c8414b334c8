//! The `nexa` subcommands beside `up` and `build`: one module per command,
//! each exposing `run` over its own clap arguments. Commands that report
//! print a table or sentence for people and, with `--json`, JSON for
//! scripts; any failure is an error (exit status 1) with the reason.
//!
//! This module holds what they share: the admin API client (`--admin URL`,
//! token from `NEXA_ADMIN_TOKEN`), the app's files as `nexa up` finds them
//! (`-f/--from`, `--runtime-config-file`, `--state-dir`), the
//! table/size/digest formatting and the stderr spinner.

pub mod bench;
pub mod check_config;
pub mod components;
pub mod db;
pub mod deployment;
pub mod graph;
pub mod logs;
pub mod reload;
pub mod status;

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
    /// Spin runtime config (its `state_dir`, SQLite databases and variable providers count).
    #[arg(long, env = "NEXA_RUNTIME_CONFIG_FILE")]
    pub runtime_config_file: Option<PathBuf>,
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
            host_config: None,
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

/// Left-aligned columns, two spaces apart.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: [usize; N] = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
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
    fn the_admin_url_must_be_http() {
        assert!(AdminClient::new("127.0.0.1:9464").is_err());
        assert!(AdminClient::new("http://127.0.0.1:9464/").is_ok());
    }
}
