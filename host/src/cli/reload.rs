//! `nexa reload`: `POST /admin/reload` — the running host re-reads spin.toml
//! and the runtime config; prints what changed.

use super::{AdminArgs, AdminClient};
use crate::reload::ReloadOutcome;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Print the admin API's JSON instead of sentences.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.admin.url)?;
    let answer = client
        .send(reqwest::Method::POST, "/admin/reload", None)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let outcome: ReloadOutcome = serde_json::from_value(answer)?;
    print!("{}", describe(&outcome));
    Ok(())
}

fn describe(outcome: &ReloadOutcome) -> String {
    if !outcome.applied {
        return "Nothing changed: spin.toml, the runtime config and the components' sources are as loaded.\n".to_string();
    }
    let mut text = String::from("Reloaded: new requests get the new routes and components.\n");
    let mut list = |what: &str, items: &[String]| {
        if !items.is_empty() {
            text.push_str(&format!("  {what}: {}\n", items.join(", ")));
        }
    };
    list("components added", &outcome.components_added);
    list("components removed", &outcome.components_removed);
    list("components changed", &outcome.components_changed);
    list("routes added", &outcome.routes_added);
    list("routes removed", &outcome.routes_removed);
    list("variables changed", &outcome.variables_changed);
    if outcome.runtime_config_changed {
        text.push_str("  the runtime config changed\n");
    }
    text
}
