//! `nexa probe URL`: one GET, exit 0 on a 2xx answer, 1 otherwise — the
//! container `HEALTHCHECK` of an image without a shell or curl
//! (`nexa probe http://127.0.0.1:9464/readyz`).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// What to GET, e.g. http://127.0.0.1:9464/readyz.
    pub url: String,
    /// How long the answer may take.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(&args.url).with_context(|| {
        format!(
            "{:?} is not a URL (e.g. http://127.0.0.1:9464/readyz)",
            args.url
        )
    })?;
    let http = reqwest::Client::builder()
        .timeout(args.timeout)
        .build()
        .context("making the HTTP client")?;
    let started = Instant::now();
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {}", crate::backends::cause(&e)))?;
    let status = response.status();
    let elapsed = started.elapsed();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        // The host's JSON errors say why in `detail`.
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        bail!("{url} answered {status}: {detail}");
    }
    println!("{url} answered {status} in {} ms", elapsed.as_millis());
    Ok(())
}
