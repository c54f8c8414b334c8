//! The `nexa` subcommands beside `up` and `build`: one module per command,
//! each exposing `run` over its own clap arguments. Commands that report
//! print a table or sentence for people and, with `--json`, JSON for
//! scripts; any failure is an error (exit status 1) with the reason.
//!
//! This module holds what they share: the admin API client (`--admin URL`,
//! token from `NEXA_ADMIN_TOKEN`) and the table/size/digest formatting.

pub mod bench;
pub mod components;

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::admin::{ADMIN_TOKEN_ENV, ComponentReport};

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
