//! `POST /admin/reload`: re-read spin.toml and the runtime config and apply
//! what changed — routes, components, variables, grants — all at once, or
//! nothing and the reason.
//!
//! A reload readies a whole new serving set (routes, every capability's
//! app-level state, every component compiled through the artifact cache,
//! linked under its new grants and instantiated once) beside the one
//! serving, and only then replaces it. Requests in flight finish on the set
//! they started on. nexa.toml (limits, the edge, the admin listener) is read
//! at start-up only.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use crate::app::{App, AppFiles, ResolvedApp, Serving, ready_serving};
use crate::capabilities::outbound_http::ServiceChaining;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    #[error("reload refused, nothing changed: {0}")]
    Refused(String),
}

/// What a reload changed (empty lists when it found nothing to change).
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReloadOutcome {
    /// Whether a new serving set replaced the old one.
    pub applied: bool,
    pub components_added: Vec<String>,
    pub components_removed: Vec<String>,
    /// Components whose declaration in spin.toml or whose `.wasm` changed.
    pub components_changed: Vec<String>,
    /// `route -> component`.
    pub routes_added: Vec<String>,
    pub routes_removed: Vec<String>,
    /// Variables whose declaration changed (names only: values may be secret).
    pub variables_changed: Vec<String>,
    pub runtime_config_changed: bool,
}

impl App {
    /// Re-reads spin.toml and the runtime config and, when anything
    /// changed, replaces the serving set; `chaining` is where the new set's
    /// `*.spin.internal` requests go (the edge).
    pub async fn reload(
        self: &Arc<Self>,
        chaining: Weak<dyn ServiceChaining>,
    ) -> Result<ReloadOutcome, ReloadError> {
        let _exclusive = self.changing.write().await;
        let current = self.serving();
        let app = self.clone();
        // Reading, resolving and compiling block: off the async workers.
        let next = tokio::task::spawn_blocking(move || app.ready_next())
            .await
            .map_err(|e| ReloadError::Refused(format!("readying the new set failed: {e}")))?
            .map_err(|e| ReloadError::Refused(format!("{e:#}")))?;
        let mut outcome = compare(&current, &next);
        if outcome == ReloadOutcome::default() && current.manifest == next.manifest {
            tracing::info!("reload: spin.toml, the runtime config and the sources are unchanged");
            return Ok(outcome);
        }
        for id in next.components.ids() {
            let component = next.components.get(id).expect("listed");
            component.probe().await.map_err(|e| {
                ReloadError::Refused(format!("component \"{id}\" fails to instantiate: {e:#}"))
            })?;
        }
        next.outbound.set_components(chaining);
        crate::metrics::Metrics::global().declare(&next.components.ids());
        self.replace_serving(next);
        outcome.applied = true;
        tracing::info!(
            added = ?outcome.components_added,
            removed = ?outcome.components_removed,
            changed = ?outcome.components_changed,
            routes_added = ?outcome.routes_added,
            routes_removed = ?outcome.routes_removed,
            variables_changed = ?outcome.variables_changed,
            runtime_config_changed = outcome.runtime_config_changed,
            "reloaded: new requests get the new routes and components"
        );
        Ok(outcome)
    }

    fn ready_next(&self) -> anyhow::Result<Serving> {
        let files = AppFiles::read_with_host(&self.options, Some(self.host.clone()))?;
        anyhow::ensure!(
            files.state_dir == self.state_dir,
            "the state directory would change ({} -> {}): restart to move it",
            self.state_dir.display(),
            files.state_dir.display()
        );
        ready_serving(&self.readying(), ResolvedApp::resolve(files)?)
    }
}

/// What differs between the set serving and the one readied.
fn compare(current: &Serving, next: &Serving) -> ReloadOutcome {
    let ids = |serving: &Serving| -> BTreeSet<String> {
        serving
            .components
            .ids()
            .into_iter()
            .map(String::from)
            .collect()
    };
    let (before, after) = (ids(current), ids(next));
    let routes = |serving: &Serving| -> BTreeSet<String> {
        serving
            .components
            .ids()
            .into_iter()
            .flat_map(|id| {
                serving
                    .routes
                    .routes_of(id)
                    .into_iter()
                    .map(move |route| format!("{route} -> {id}"))
            })
            .collect()
    };
    let (routes_before, routes_after) = (routes(current), routes(next));
    let components_changed = before
        .intersection(&after)
        .filter(|id| {
            let declared = |s: &Serving| s.manifest.component.get(id.as_str()).cloned();
            let digest = |s: &Serving| s.components.get(id).map(|c| c.source.digest.clone());
            declared(current) != declared(next) || digest(current) != digest(next)
        })
        .cloned()
        .collect();
    let (vars_before, vars_after) = (&current.manifest.variables, &next.manifest.variables);
    let variables_changed = vars_before
        .keys()
        .chain(vars_after.keys())
        .filter(|name| vars_before.get(*name) != vars_after.get(*name))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ReloadOutcome {
        applied: false,
        components_added: after.difference(&before).cloned().collect(),
        components_removed: before.difference(&after).cloned().collect(),
        components_changed,
        routes_added: routes_after.difference(&routes_before).cloned().collect(),
        routes_removed: routes_before.difference(&routes_after).cloned().collect(),
        variables_changed,
        runtime_config_changed: current.runtime_config_text != next.runtime_config_text,
    }
}
