//! `nexa.toml`: settings of the Nexa host that Spin has no place for. Optional;
//! every field has a default, documented on the field.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, read_toml};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Requests handled at once across the app; beyond it requests wait up to
    /// `queue_timeout_ms` for a slot, then get 503 with `Retry-After`. Default 256.
    pub max_concurrent_requests: usize,
    /// How long a request may wait for a slot. Default 100 ms.
    pub queue_timeout_ms: u64,
    /// Deadline for a component to produce its response; then 504. Default 30 s.
    pub request_timeout_ms: u64,
    /// Linear memory one instance may grow to. Default 128 MiB.
    pub max_instance_memory_bytes: usize,
    /// Instances alive at once across the app (the pooling allocator's size). Default 512.
    pub max_instances: u32,
    /// Requests one instance serves before it is retired. Default 128 (as Spin).
    pub max_instance_reuse_count: usize,
    /// Requests one instance serves concurrently. Default 16 (as Spin).
    pub max_instance_concurrent_reuse_count: usize,
    /// How long an idle instance is kept for reuse. Default 1 s (as Spin).
    pub idle_instance_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests. Default 10 s.
    pub shutdown_grace_ms: u64,
    /// Request bodies larger than this are refused with 413. Default 16 MiB.
    pub max_request_body_bytes: usize,
    /// Per-component limits, by component id (`[component.<id>]`). Default: none.
    pub component: BTreeMap<String, ComponentLimits>,
}

/// Limits for one component, on top of the app-wide ones: e.g. to keep a
/// CPU-heavy component (password hashing) from taking every core.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentLimits {
    /// Requests this component handles at once; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// How long a request waits for one of this component's slots before 503.
    /// Default: the app-wide `queue_timeout_ms`.
    pub queue_timeout_ms: Option<u64>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 256,
            queue_timeout_ms: 100,
            request_timeout_ms: 30_000,
            max_instance_memory_bytes: 128 << 20,
            max_instances: 512,
            max_instance_reuse_count: 128,
            max_instance_concurrent_reuse_count: 16,
            idle_instance_timeout_ms: 1_000,
            shutdown_grace_ms: 10_000,
            max_request_body_bytes: 16 << 20,
            component: BTreeMap::new(),
        }
    }
}

impl HostConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config: Self = read_toml(path)?;
        let positive = [
            (
                "max_concurrent_requests",
                config.max_concurrent_requests as u64,
            ),
            ("request_timeout_ms", config.request_timeout_ms),
            (
                "max_instance_memory_bytes",
                config.max_instance_memory_bytes as u64,
            ),
            ("max_instances", u64::from(config.max_instances)),
            (
                "max_instance_reuse_count",
                config.max_instance_reuse_count as u64,
            ),
            (
                "max_instance_concurrent_reuse_count",
                config.max_instance_concurrent_reuse_count as u64,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(
                    path,
                    format!("{key} must be at least 1"),
                ));
            }
        }
        Ok(config)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    pub fn idle_instance_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_instance_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}
