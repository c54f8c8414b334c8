//! Live swap and rollback of one component, and the content-addressed store
//! that keeps every version the admin API accepted.
//!
//! A swap readies the new version exactly as start-up readied the first —
//! compiled (through the artifact cache), checked against the `wit/` world,
//! linked against the component's own grants, and instantiated once to prove
//! it starts — and only then makes it the one new requests get. Requests in
//! flight keep the version they started on; its idle instances expire and
//! its memory goes with its last request. Anything that fails leaves the
//! serving version as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::{
    App, ComponentPlan, ComponentVersions, LoadedComponent, Serving, pre_instantiate,
};
use crate::engine::{ComponentSource, write_atomically};

/// Why a swap or rollback changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwapError {
    #[error("no component \"{0}\" in this app")]
    UnknownComponent(String),
    #[error("component \"{id}\" was refused, nothing changed: {reason}")]
    Refused { id: String, reason: String },
    #[error("component \"{0}\" has no earlier version to roll back to")]
    NothingToRollBack(String),
    #[error("the component store: {0}")]
    Store(#[from] std::io::Error),
}

/// What a swap or rollback did.
#[derive(Debug, serde::Serialize)]
pub struct SwapOutcome {
    pub id: String,
    /// `sha256:<hex>` now serving.
    pub digest: String,
    pub size_bytes: u64,
    /// `sha256:<hex>` serving before.
    pub replaced: String,
}

impl SwapOutcome {
    /// The outcome of `serving` replacing `replaced`, logged as `what`.
    fn record(id: &str, serving: &LoadedComponent, replaced: &LoadedComponent, what: &str) -> Self {
        let outcome = Self {
            id: id.to_string(),
            digest: serving.source.reference(),
            size_bytes: serving.source.size,
            replaced: replaced.source.reference(),
        };
        tracing::info!(
            component = id,
            digest = %outcome.digest,
            replaced = %outcome.replaced,
            "{what}"
        );
        outcome
    }
}

impl App {
    /// Makes `wasm` the version of component `id` new requests get.
    pub async fn swap(&self, id: &str, wasm: Vec<u8>) -> Result<SwapOutcome, SwapError> {
        let _no_reload = self.changing.read().await;
        let serving = self.serving();
        let versions = versions_of(&serving, id)?;
        let _one_at_a_time = versions.changing.lock().await;
        let current = versions.current();
        let next = Arc::new(self.ready(&current.plan, wasm).await?);
        self.component_store.activate(id, &next.source.digest)?;
        let replaced = versions.replace(next.clone());
        let outcome = SwapOutcome::record(
            id,
            &next,
            &replaced,
            "component swapped: new requests go to the new version",
        );
        if let Ok(mut previous) = versions.previous.lock() {
            previous.push_front(replaced);
            previous.truncate(self.host.rollback_versions);
        }
        Ok(outcome)
    }

    /// Makes the version before the current one serve again.
    pub async fn rollback(&self, id: &str) -> Result<SwapOutcome, SwapError> {
        let _no_reload = self.changing.read().await;
        let serving = self.serving();
        let versions = versions_of(&serving, id)?;
        let _one_at_a_time = versions.changing.lock().await;
        let earlier = versions
            .previous
            .lock()
            .ok()
            .and_then(|mut previous| previous.pop_front())
            .ok_or_else(|| SwapError::NothingToRollBack(id.to_string()))?;
        if let Err(error) = self.component_store.activate(id, &earlier.source.digest) {
            if let Ok(mut previous) = versions.previous.lock() {
                previous.push_front(earlier);
            }
            return Err(error.into());
        }
        let replaced = versions.replace(earlier.clone());
        Ok(SwapOutcome::record(
            id,
            &earlier,
            &replaced,
            "component rolled back",
        ))
    }

    /// Readies `wasm` as the next version of the component `plan` describes;
    /// it enters the component store only once it has proved it starts.
    async fn ready(
        &self,
        plan: &ComponentPlan,
        wasm: Vec<u8>,
    ) -> Result<LoadedComponent, SwapError> {
        let refused = |reason: String| SwapError::Refused {
            id: plan.id.clone(),
            reason,
        };
        let (engine, artifacts, id) =
            (self.engine.clone(), self.artifacts.clone(), plan.id.clone());
        // Compiling takes a core for a while: off the async workers.
        let (component, source, wasm) = tokio::task::spawn_blocking(move || {
            let (component, source) = artifacts.load_bytes(&engine, &id, &wasm)?;
            crate::contract::check(&engine, &id, &component)?;
            Ok::<_, anyhow::Error>((component, source, wasm))
        })
        .await
        .map_err(|e| refused(format!("compiling it failed: {e}")))?
        .map_err(|e| refused(format!("{e:#}")))?;
        let plan = ComponentPlan {
            wasm: self.component_store.path_of(&source.digest),
            ..plan.clone()
        };
        let next = pre_instantiate(
            &self.engine,
            &self.linker,
            plan,
            &component,
            source,
            self.limits,
        )
        .map_err(|e| refused(format!("{e:#}")))?;
        next.probe()
            .await
            .map_err(|e| refused(format!("it fails to instantiate: {e:#}")))?;
        self.component_store.put(&next.source, &wasm)?;
        Ok(next)
    }
}

fn versions_of<'a>(serving: &'a Serving, id: &str) -> Result<&'a ComponentVersions, SwapError> {
    serving
        .components
        .versions(id)
        .ok_or_else(|| SwapError::UnknownComponent(id.to_string()))
}

/// `<state-dir>/components/`: every version accepted, as
/// `sha256/<hex>.wasm`, and `active.json`, the digest each swapped
/// component serves, which start-up honours.
pub struct ComponentStore {
    dir: PathBuf,
}

impl ComponentStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("components"),
        }
    }

    pub fn path_of(&self, digest: &str) -> PathBuf {
        self.dir.join("sha256").join(format!("{digest}.wasm"))
    }

    /// Keeps `wasm` under its digest (written atomically; kept as is when
    /// already there).
    pub fn put(&self, source: &ComponentSource, wasm: &[u8]) -> std::io::Result<()> {
        let path = self.path_of(&source.digest);
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, wasm)
    }

    fn active_path(&self) -> PathBuf {
        self.dir.join("active.json")
    }

    /// Component id → digest, for every component swapped so far.
    pub fn active(&self) -> BTreeMap<String, String> {
        std::fs::read(self.active_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Records that `id` serves `digest` (before the swap, so a crash
    /// after it comes back with what was being activated).
    pub fn activate(&self, id: &str, digest: &str) -> std::io::Result<()> {
        let mut active = self.active();
        active.insert(id.to_string(), digest.to_string());
        let json = serde_json::to_vec_pretty(&active).map_err(std::io::Error::other)?;
        write_atomically(&self.active_path(), &json)
    }

    /// Points each plan whose component was swapped at the version last
    /// activated, and says so; a version missing from the store is
    /// reported and spin.toml's source used.
    pub fn use_activated(&self, plans: &mut [ComponentPlan]) {
        let active = self.active();
        for plan in plans {
            let Some(digest) = active.get(&plan.id) else {
                continue;
            };
            let path = self.path_of(digest);
            if path.exists() {
                tracing::info!(
                    component = %plan.id,
                    digest = %format!("sha256:{digest}"),
                    "serving the version last activated through the admin API, not spin.toml's source"
                );
                plan.wasm = path;
            } else {
                tracing::warn!(
                    component = %plan.id,
                    missing = %path.display(),
                    "the version last activated is gone from the component store; serving spin.toml's source"
                );
            }
        }
    }
}
