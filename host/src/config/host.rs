//! `nexa.toml`: settings of the Nexa host that Spin has no place for. Optional;
//! every field has a default, documented on the field.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, read_toml};
use crate::edge::browser::CorsConfig;
use crate::edge::client::TrustedProxy;
use crate::edge::rate_limit::RateLimitConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Requests handled at once across the app; beyond it requests wait up to
    /// `queue_timeout_ms` for a slot, then get 503 with `Retry-After`. Default 256.
    pub max_concurrent_requests: NonZeroUsize,
    /// How long a request may wait for a slot. Default 100 ms.
    pub queue_timeout_ms: u64,
    /// Deadline for a component to produce its response; then 504. Default 30 s.
    pub request_timeout_ms: NonZeroU64,
    /// Linear memory one instance may grow to. Default 128 MiB.
    pub max_instance_memory_bytes: NonZeroUsize,
    /// Instances alive at once across the app (the pooling allocator's size). Default 512.
    pub max_instances: NonZeroU32,
    /// Requests one instance serves before it is retired. Default 128 (as Spin).
    pub max_instance_reuse_count: NonZeroUsize,
    /// Requests one instance serves concurrently. Default 1, so that a
    /// trap, a runaway loop or an allocation failure ends only the request
    /// that caused it (Spin allows 16; above 1, a fault also ends whatever
    /// else its instance was serving).
    pub max_instance_concurrent_reuse_count: NonZeroUsize,
    /// How long an idle instance is kept for reuse. Default 1 s (as Spin).
    pub idle_instance_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests. Default 10 s.
    pub shutdown_grace_ms: u64,
    /// How long shutdown waits for the last spans to reach the OTLP
    /// collector (when tracing is on). Default 2 s.
    pub trace_shutdown_timeout_ms: u64,
    /// Request bodies larger than this are refused with 413. Default 16 MiB.
    pub max_request_body_bytes: usize,
    /// Open client connections at most; beyond it a new connection gets 503
    /// with `Retry-After` and is closed. Default 10,000.
    pub max_connections: NonZeroUsize,
    /// A client must send a request's headers within this long, and an idle
    /// keep-alive connection is closed after it too (hyper starts the timer
    /// while waiting for the next request). Default 20 s.
    pub header_read_timeout_ms: NonZeroU64,
    /// An idle keep-alive connection (no request in flight) is closed after
    /// this long. Default 15 s.
    pub keep_alive_timeout_ms: NonZeroU64,
    /// The longest pause while a request body arrives; then 408. The body is
    /// read whole before the request takes a concurrency slot. Default 10 s.
    pub body_read_timeout_ms: NonZeroU64,
    /// Proxies (addresses or networks, e.g. `10.0.0.0/8`) whose
    /// `Forwarded`/`X-Forwarded-For`/`X-Forwarded-Proto` headers are believed.
    /// Default: none (the socket peer is the client).
    pub trusted_proxies: Vec<TrustedProxy>,
    /// The URL clients reach the app at (e.g. `https://api.example.com`): its
    /// scheme is the one components see when no trusted proxy says otherwise.
    /// Default: none.
    pub public_url: Option<String>,
    /// Inbound rate limits (`[rate_limit]`). Default: on, see the README.
    pub rate_limit: RateLimitConfig,
    /// Cross-origin access (`[cors]`). Default: same origin only.
    pub cors: CorsConfig,
    /// Where the admin listener (`/metrics`) listens: `host:port`, or `off`.
    /// `--admin-listen` overrides it. Default 127.0.0.1:9464.
    pub admin_listen: Option<String>,
    /// A file holding the bearer token of the admin API (`/admin/*`), read
    /// at start-up; a relative path is taken from this file's directory.
    /// `NEXA_ADMIN_TOKEN` overrides it. Default: none, and with no token the
    /// admin API is off (`/metrics` stays up).
    pub admin_token_file: Option<PathBuf>,
    /// Versions of each component kept for rollback after a swap through
    /// the admin API. Default 5.
    pub rollback_versions: usize,
    /// Per-component limits, by component id (`[component.<id>]`). Default: none.
    pub component: BTreeMap<String, ComponentLimits>,
}

/// Limits for one component, on top of the app-wide ones: e.g. to keep a
/// CPU-heavy component (password hashing) from taking every core.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentLimits {
    /// Requests this component handles at once; more wait for a slot.
    pub max_concurrent_requests: NonZeroUsize,
    /// Requests it may handle at once while no other component's request
    /// is admitted nor was in the last 50 ms (e.g. logins on every core of
    /// an otherwise idle host); at
    /// least `max_concurrent_requests`. Default: `max_concurrent_requests`.
    pub max_concurrent_requests_when_alone: Option<NonZeroUsize>,
    /// How long a request waits for one of this component's slots before 503.
    /// Default: the app-wide `queue_timeout_ms`.
    pub queue_timeout_ms: Option<u64>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            max_concurrent_requests: NonZeroUsize::new(256).expect("nonzero"),
            queue_timeout_ms: 100,
            request_timeout_ms: NonZeroU64::new(30_000).expect("nonzero"),
            max_instance_memory_bytes: NonZeroUsize::new(128 << 20).expect("nonzero"),
            max_instances: NonZeroU32::new(512).expect("nonzero"),
            max_instance_reuse_count: NonZeroUsize::new(128).expect("nonzero"),
            max_instance_concurrent_reuse_count: NonZeroUsize::new(1).expect("nonzero"),
            idle_instance_timeout_ms: 1_000,
            shutdown_grace_ms: 10_000,
            trace_shutdown_timeout_ms: 2_000,
            max_request_body_bytes: 16 << 20,
            max_connections: NonZeroUsize::new(10_000).expect("nonzero"),
            header_read_timeout_ms: NonZeroU64::new(20_000).expect("nonzero"),
            keep_alive_timeout_ms: NonZeroU64::new(15_000).expect("nonzero"),
            body_read_timeout_ms: NonZeroU64::new(10_000).expect("nonzero"),
            trusted_proxies: Vec::new(),
            public_url: None,
            rate_limit: RateLimitConfig::default(),
            cors: CorsConfig::default(),
            admin_listen: None,
            admin_token_file: None,
            rollback_versions: 5,
            component: BTreeMap::new(),
        }
    }
}

/// Sets `[rate_limit] redis_url`, over nexa.toml: the URL holds Redis's
/// password, which containers take from a secret, not from a config file.
pub const RATE_LIMIT_REDIS_URL_ENV: &str = "NEXA_RATE_LIMIT_REDIS_URL";

impl HostConfig {
    /// What the environment overrides ([`RATE_LIMIT_REDIS_URL_ENV`]).
    pub fn with_environment(mut self) -> Self {
        if let Ok(url) = std::env::var(RATE_LIMIT_REDIS_URL_ENV)
            && !url.trim().is_empty()
        {
            self.rate_limit.redis_url = Some(url.trim().to_string());
        }
        self
    }

    /// Counts and sizes that must be positive are `NonZero*`, so a zero is
    /// refused while parsing, with the file, line and key in the message.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = read_toml(path)?;
        if let (Some(file), Some(dir)) = (&config.admin_token_file, path.parent())
            && file.is_relative()
        {
            config.admin_token_file = Some(dir.join(file));
        }
        config
            .validate()
            .map_err(|message| ConfigError::invalid(path, message))?;
        Ok(config)
    }

    /// What the types alone cannot check.
    pub fn validate(&self) -> Result<(), String> {
        self.public_url()?;
        self.cors.origins()?;
        for (id, limits) in &self.component {
            if let Some(alone) = limits.max_concurrent_requests_when_alone
                && alone < limits.max_concurrent_requests
            {
                return Err(format!(
                    "[component.{id}] max_concurrent_requests_when_alone ({alone}) is below max_concurrent_requests ({})",
                    limits.max_concurrent_requests
                ));
            }
        }
        if let Some(admin) = &self.admin_listen {
            admin
                .parse::<crate::admin::AdminListen>()
                .map_err(|e| format!("admin_listen: {e}"))?;
        }
        Ok(())
    }

    /// The parsed `public_url`, if set.
    pub fn public_url(&self) -> Result<Option<url::Url>, String> {
        self.public_url
            .as_deref()
            .map(|raw| {
                let url = url::Url::parse(raw)
                    .map_err(|e| format!("public_url: {raw:?} is not a URL: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(format!("public_url: {raw:?} is not an http(s) URL"));
                }
                Ok(url)
            })
            .transpose()
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms.get())
    }

    pub fn keep_alive_timeout(&self) -> Duration {
        Duration::from_millis(self.keep_alive_timeout_ms.get())
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms.get())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.get())
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

    pub fn trace_shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.trace_shutdown_timeout_ms)
    }
}
