//! The wasmtime engine and the on-disk cache of compiled components.
//!
//! Compiling a component with cranelift takes from a fraction of a second to
//! seconds; the result is cached under the state dir, keyed by the engine's
//! compatibility hash and the sha256 of the wasm, so the next start-up only
//! maps it back in.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::host::HostConfig;

/// How often the epoch ticks: the granularity of request deadlines and of the
/// yields that let a busy guest be timed out.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Builds the engine every component of the app runs on.
pub fn build_engine(host: &HostConfig) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    // Deadlines: a ticking epoch makes running guests yield, so a guest that
    // never returns can still be timed out and dropped.
    config.epoch_interruption(true);

    let instances = host.max_instances;
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances)
        .total_tables(instances.saturating_mul(2))
        .total_stacks(instances)
        .max_memory_size(host.max_instance_memory_bytes);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine (pooling allocator)")
}

/// Counts of how components were obtained at start-up (and at swaps).
#[derive(Debug, Default)]
pub struct ArtifactCacheStats {
    pub compiled: AtomicU64,
    pub loaded: AtomicU64,
}

/// Precompiled components on disk.
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
    pub stats: ArtifactCacheStats,
}

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: PathBuf) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            stats: ArtifactCacheStats::default(),
        }
    }

    /// The compiled component for `wasm`: from the cache when this engine
    /// compiled the same bytes before, else compiled now and stored.
    pub fn load(&self, engine: &Engine, name: &str, wasm_path: &Path) -> anyhow::Result<Component> {
        let wasm = std::fs::read(wasm_path).with_context(|| {
            format!(
                "component \"{name}\": cannot read {} (run `nexa build`, or `nexa up --build`)",
                wasm_path.display()
            )
        })?;
        let digest = hex::encode(Sha256::digest(&wasm));
        let artifact = self.dir.join(format!("{}-{digest}.cwasm", self.engine_key));
        let started = Instant::now();
        if artifact.exists() {
            // SAFETY: the file was written by `Engine::precompile_component` of
            // an engine with the same compatibility hash (it is in the name), in
            // a directory only this host writes; wasmtime still checks the
            // header and refuses an incompatible artifact.
            match unsafe { Component::deserialize_file(engine, &artifact) } {
                Ok(component) => {
                    self.stats.loaded.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        component = name,
                        artifact = %artifact.display(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "component loaded from the artifact cache"
                    );
                    return Ok(component);
                }
                Err(error) => {
                    tracing::warn!(component = name, %error, "cached artifact unusable; recompiling");
                }
            }
        }
        let compiled = engine
            .precompile_component(&wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component \"{name}\": compiling {}", wasm_path.display()))?;
        if let Err(error) = self.store(&artifact, &compiled) {
            tracing::warn!(component = name, %error, "could not write the artifact cache");
        }
        // SAFETY: these bytes were produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &compiled) }?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            component = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component compiled (artifact cache miss)"
        );
        Ok(component)
    }

    /// Writes atomically, so a crash never leaves a torn artifact behind.
    fn store(&self, artifact: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let temporary = artifact.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, artifact)
    }
}
