//! `nexa components list / swap / rollback`: the admin API's component
//! endpoints, for people (a table or sentence) and scripts (`--json`).

use anyhow::Context;

use super::{AdminClient, format_size, short_digest, table};

/// `nexa components swap ID FILE` and `nexa components rollback ID`: what
/// serves now, as the host reports it.
pub async fn change(
    admin: &str,
    id: &str,
    wasm: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let outcome = match wasm {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            client
                .send(
                    reqwest::Method::PUT,
                    &format!("/admin/components/{id}"),
                    Some(bytes),
                )
                .await?
        }
        None => {
            client
                .send(
                    reqwest::Method::POST,
                    &format!("/admin/components/{id}/rollback"),
                    None,
                )
                .await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        let digest =
            |key: &str| short_digest(outcome[key].as_str().unwrap_or_default()).to_string();
        println!(
            "{id}: now serving {} (was {})",
            digest("digest"),
            digest("replaced")
        );
    }
    Ok(())
}

/// `nexa components list`.
pub async fn list(admin: &str, json: bool) -> anyhow::Result<()> {
    let components = AdminClient::new(admin)?.components().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&components)?);
        return Ok(());
    }
    let rows: Vec<[String; 7]> = components
        .iter()
        .map(|c| {
            [
                c.id.clone(),
                if c.private {
                    "(private)".to_string()
                } else {
                    c.routes.join(" ")
                },
                short_digest(&c.digest).to_string(),
                format_size(c.size_bytes),
                c.requests_served.to_string(),
                c.live_instances.to_string(),
                c.loaded_at.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ID", "ROUTES", "DIGEST", "SIZE", "REQUESTS", "LIVE", "LOADED"
            ],
            &rows
        )
    );
    Ok(())
}
