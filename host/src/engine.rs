//! The wasmtime engine and the on-disk cache of compiled components.
//!
//! Compiling a component with cranelift takes from a fraction of a second to
//! seconds; the result is cached under the state dir, keyed by the engine's
//! compatibility hash and the sha256 of the wasm, so the next start-up only
//! maps it back in.

use std::hash::Hash;
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

    let instances = host.max_instances.get();
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances)
        .total_tables(instances.saturating_mul(2))
        .total_stacks(instances)
        .max_memory_size(host.max_instance_memory_bytes.get());
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine (pooling allocator)")
}

/// A stable name for what wasmtime calls the engine's compatibility: the
/// sha256 of its `precompile_compatibility_hash` (wasmtime version, target and
/// every setting that changes code). `std`'s `DefaultHasher` would do, but its
/// output may change between Rust releases, silently emptying the cache.
pub fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..12])
}

/// Feeds `Hash` output into sha256.
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("sha256 is 32 bytes"))
    }
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
        Self {
            dir,
            engine_key: engine_key(engine),
            stats: ArtifactCacheStats::default(),
        }
    }

    /// Where the artifact of `wasm` for this engine lives: named by the
    /// engine's key and the wasm's sha256, so a different engine or different
    /// bytes never find each other's artifact.
    pub fn artifact_path(&self, wasm: &[u8]) -> PathBuf {
        self.artifact_path_of(&ComponentSource::of(wasm))
    }

    fn artifact_path_of(&self, source: &ComponentSource) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", self.engine_key, source.digest))
    }

    /// The compiled component for `wasm`: from the cache when this engine
    /// compiled the same bytes before, else compiled now and stored.
    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        wasm_path: &Path,
    ) -> anyhow::Result<(Component, ComponentSource)> {
        let wasm = std::fs::read(wasm_path).with_context(|| {
            format!(
                "component \"{name}\": cannot read {} (run `nexa build`, or `nexa up --build`)",
                wasm_path.display()
            )
        })?;
        self.load_bytes(engine, name, &wasm)
            .with_context(|| format!("component \"{name}\": {}", wasm_path.display()))
    }

    /// The same for bytes in hand (a component uploaded to the admin API).
    pub fn load_bytes(
        &self,
        engine: &Engine,
        name: &str,
        wasm: &[u8],
    ) -> anyhow::Result<(Component, ComponentSource)> {
        let source = ComponentSource::of(wasm);
        let artifact = self.artifact_path_of(&source);
        let started = Instant::now();
        if artifact.exists() {
            // SAFETY: the file was written by `Engine::precompile_component` of
            // an engine with the same compatibility hash (it is in the name), in
            // a directory only this host writes; wasmtime still checks the
            // header and refuses an incompatible artifact.
            match unsafe { Component::deserialize_file(engine, &artifact) } {
                Ok(component) => {
                    self.stats.loaded.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::Metrics::global().artifact_cache_hits.inc();
                    tracing::info!(
                        component = name,
                        artifact = %artifact.display(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "component loaded from the artifact cache"
                    );
                    return Ok((component, source));
                }
                Err(error) => {
                    tracing::warn!(component = name, %error, "cached artifact unusable; recompiling");
                }
            }
        }
        let compiled = engine
            .precompile_component(wasm)
            .map_err(anyhow::Error::from)
            .context("compiling it")?;
        if let Err(error) = self.store(&artifact, &compiled) {
            tracing::warn!(component = name, %error, "could not write the artifact cache");
        }
        // SAFETY: these bytes were produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &compiled) }?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        let metrics = crate::metrics::Metrics::global();
        metrics.artifact_cache_misses.inc();
        metrics
            .compile_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            component = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component compiled (artifact cache miss)"
        );
        Ok((component, source))
    }

    /// Writes atomically, so a crash never leaves a torn artifact behind.
    fn store(&self, artifact: &Path, bytes: &[u8]) -> std::io::Result<()> {
        write_atomically(artifact, bytes)
    }
}

/// Writes `bytes` to a file of its own beside `path`, then renames it into
/// place: readers see the old file or the whole new one, never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// What a component was loaded from: the SHA-256 of its `.wasm` bytes
/// (hex) and their size, as the admin API reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSource {
    pub digest: String,
    pub size: u64,
}

impl ComponentSource {
    pub fn of(wasm: &[u8]) -> Self {
        Self {
            digest: hex::encode(Sha256::digest(wasm)),
            size: wasm.len() as u64,
        }
    }

    /// The digest as the admin API and the logs name it: `sha256:<hex>`.
    pub fn reference(&self) -> String {
        format!("sha256:{}", self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_is_stable_per_engine_and_follows_the_wasm() {
        let host = HostConfig::default();
        let first = ArtifactCache::new(&build_engine(&host).unwrap(), PathBuf::from("/c"));
        let second = ArtifactCache::new(&build_engine(&host).unwrap(), PathBuf::from("/c"));
        let wasm = b"\0asm one component";
        assert_eq!(first.artifact_path(wasm), second.artifact_path(wasm));
        assert_ne!(
            first.artifact_path(wasm),
            first.artifact_path(b"\0asm another component")
        );
        // sha256-derived, fixed width: no std hasher whose output may change.
        assert_eq!(first.engine_key.len(), 24);
        assert!(first.engine_key.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
