//! Loading an app: read and validate every file, build the capabilities'
//! app-level state, compile (or load from cache) and pre-instantiate every
//! component. All of it happens before the socket is bound; nothing here runs
//! per request.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};

use crate::capabilities::ComponentCapabilities;
use crate::capabilities::allowed_hosts::AllowedHosts;
use crate::capabilities::key_value::{self, KeyValueGrant, KeyValueState};
use crate::capabilities::outbound_http::{
    OutboundHttpConfig, OutboundHttpGrant, OutboundHttpState,
};
use crate::capabilities::postgres::{PostgresConfig, PostgresGrant, PostgresState};
use crate::capabilities::redis::{RedisConfig, RedisGrant, RedisState};
use crate::capabilities::sqlite::{self, SqliteGrant, SqliteState};
use crate::capabilities::variables::{ProviderConfig, VariablesState};
use crate::config::host::HostConfig;
use crate::config::manifest::LoadedManifest;
use crate::config::runtime::{LoadedRuntimeConfig, VariablesProviderConfig};
use crate::engine::{ArtifactCache, EPOCH_TICK, build_engine};
use crate::routes::RouteTable;
use crate::store::{StoreData, build_linker};

/// What `nexa up` was asked to serve.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub manifest: PathBuf,
    pub runtime_config: Option<PathBuf>,
    /// `nexa.toml`; `None` looks for one beside the manifest.
    pub host_config: Option<PathBuf>,
    /// Overrides the runtime config's `state_dir` (default `.spin` beside the manifest).
    pub state_dir: Option<PathBuf>,
}

/// A loaded app, ready to serve.
pub struct App {
    pub name: String,
    pub routes: RouteTable,
    pub components: Arc<HashMap<String, LoadedComponent>>,
    /// The Postgres pools, for their gauges.
    pub postgres: Arc<PostgresState>,
    pub host: HostConfig,
    pub artifacts: Arc<ArtifactCache>,
    _epoch: EpochTicker,
}

/// One component, pre-instantiated, with its instance pool.
pub struct LoadedComponent {
    pub id: String,
    pub handler: ProxyHandler<ComponentInstances>,
    /// This component's own concurrency limit (nexa.toml), if any, and how
    /// long a request may wait for it.
    pub slots: Option<(Arc<tokio::sync::Semaphore>, Duration)>,
}

impl App {
    pub async fn load(options: &AppOptions) -> anyhow::Result<Self> {
        let manifest = LoadedManifest::load(&options.manifest)?;
        let runtime = match &options.runtime_config {
            Some(path) => LoadedRuntimeConfig::load(path)?,
            None => LoadedRuntimeConfig::default(),
        };
        let host = match &options.host_config {
            Some(path) => HostConfig::load(path)?,
            None => {
                let beside = manifest.dir.join("nexa.toml");
                if beside.exists() {
                    HostConfig::load(&beside)?
                } else {
                    HostConfig::default()
                }
            }
        };
        let state_dir = options
            .state_dir
            .clone()
            .or_else(|| {
                runtime
                    .config
                    .state_dir
                    .as_deref()
                    .map(|p| runtime.resolve(p))
            })
            .unwrap_or_else(|| manifest.dir.join(".spin"));

        let variables =
            VariablesState::new(manifest.manifest.variables.clone(), providers(&runtime)?);
        variables.check_required()?;
        let routes = RouteTable::build(&manifest)?;

        // Which stores and databases the components use, checked against
        // what the runtime config defines.
        let store_configs = key_value::stores_from_runtime_config(&runtime, &state_dir);
        let database_files = sqlite::databases_from_runtime_config(&runtime, &state_dir);
        let mut used_stores = HashSet::new();
        let mut used_databases = HashSet::new();
        for (id, component) in &manifest.manifest.component {
            for label in &component.key_value_stores {
                if !store_configs.contains_key(label) {
                    bail!(
                        "{}: component \"{id}\" uses key-value store \"{label}\", which is not defined; add [key_value_store.{label}] to the runtime config",
                        manifest.path.display()
                    );
                }
                used_stores.insert(label.clone());
            }
            for label in &component.sqlite_databases {
                if !database_files.contains_key(label) {
                    bail!(
                        "{}: component \"{id}\" uses SQLite database \"{label}\", which is not defined; add [sqlite_database.{label}] to the runtime config",
                        manifest.path.display()
                    );
                }
                used_databases.insert(label.clone());
            }
        }
        for id in host.component.keys() {
            if !manifest.manifest.component.contains_key(id) {
                bail!(
                    "nexa.toml: [component.{id}] names no component of {}",
                    manifest.path.display()
                );
            }
        }
        let key_value_state = Arc::new(KeyValueState::open(&store_configs, &used_stores)?);
        let sqlite_state = Arc::new(SqliteState::open(&database_files, &used_databases)?);

        let mut postgres_config = PostgresConfig::default();
        if let Some(max) = runtime.config.outbound_pg.max_connections {
            postgres_config.max_connections = max.max(1);
        }
        let postgres = Arc::new(PostgresState::new(postgres_config));
        let redis = Arc::new(RedisState::new(RedisConfig {
            max_connections: runtime.config.outbound_redis.max_connections,
            ..RedisConfig::default()
        }));
        let outbound_http = Arc::new(OutboundHttpState::new(OutboundHttpConfig::default()));

        let engine = build_engine(&host)?;
        let linker = build_linker(&engine)?;
        let artifacts = Arc::new(ArtifactCache::new(
            &engine,
            state_dir.join("nexa-artifacts"),
        ));
        let mut components = HashMap::new();
        for (id, decl) in &manifest.manifest.component {
            let allowed_hosts = Arc::new(
                AllowedHosts::parse(&decl.allowed_outbound_hosts, &variables).map_err(|e| {
                    anyhow::anyhow!("{}: component \"{id}\": {e}", manifest.path.display())
                })?,
            );
            let capabilities = ComponentCapabilities {
                variables: Arc::new(variables.for_component(id, &decl.variables)?),
                key_value: Arc::new(KeyValueGrant {
                    allowed: decl.key_value_stores.iter().cloned().collect(),
                    state: key_value_state.clone(),
                }),
                sqlite: Arc::new(SqliteGrant {
                    allowed: decl.sqlite_databases.iter().cloned().collect(),
                    state: sqlite_state.clone(),
                }),
                postgres: Arc::new(PostgresGrant {
                    component: id.clone(),
                    allowed_hosts: allowed_hosts.clone(),
                    state: postgres.clone(),
                }),
                redis: Arc::new(RedisGrant {
                    component: id.clone(),
                    allowed_hosts: allowed_hosts.clone(),
                    state: redis.clone(),
                }),
                outbound_http: Arc::new(OutboundHttpGrant {
                    component: id.clone(),
                    allowed_hosts,
                    state: outbound_http.clone(),
                }),
            };
            let wasm = manifest.resolve(&decl.source);
            let component = artifacts.load(&engine, id, &wasm)?;
            crate::contract::check(&engine, id, &component)?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component \"{id}\": linking its imports"))?;
            let pre = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component \"{id}\": not a wasi:http/handler@0.3.0 component")
                })?;
            let instances = ComponentInstances {
                engine: engine.clone(),
                pre: ProxyPre::P3(pre),
                capabilities,
                environment: decl.environment.clone(),
                limits: InstanceLimits::from(&host),
            };
            let slots = host.component.get(id).map(|limits| {
                let wait = limits
                    .queue_timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or_else(|| host.queue_timeout());
                (
                    Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent_requests)),
                    wait,
                )
            });
            components.insert(
                id.clone(),
                LoadedComponent {
                    id: id.clone(),
                    handler: ProxyHandler::new(instances),
                    slots,
                },
            );
        }
        let components = Arc::new(components);
        outbound_http.set_components(&components);
        let stats = &artifacts.stats;
        tracing::info!(
            compiled = stats.compiled.load(Ordering::Relaxed),
            loaded_from_cache = stats.loaded.load(Ordering::Relaxed),
            "artifact cache"
        );
        Ok(Self {
            name: manifest.manifest.application.name.clone(),
            routes,
            components,
            postgres,
            host,
            artifacts,
            _epoch: EpochTicker::start(engine),
        })
    }
}

/// The runtime config's providers as the variables capability wants them.
fn providers(runtime: &LoadedRuntimeConfig) -> anyhow::Result<Vec<ProviderConfig>> {
    runtime
        .config
        .variables_provider
        .iter()
        .map(|provider| {
            Ok(match provider {
                VariablesProviderConfig::Env {
                    prefix,
                    dotenv_path,
                } => ProviderConfig::Env {
                    prefix: prefix
                        .clone()
                        .unwrap_or_else(|| ProviderConfig::DEFAULT_ENV_PREFIX.to_string()),
                    dotenv: match dotenv_path {
                        Some(path) => read_dotenv(&runtime.resolve(path))?,
                        None => BTreeMap::new(),
                    },
                },
                VariablesProviderConfig::Static { values } => {
                    ProviderConfig::Static(values.clone())
                }
            })
        })
        .collect()
}

/// `KEY=value` lines; `#` comments and blank lines skipped, quotes trimmed.
fn read_dotenv(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading dotenv file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let key = key.trim().trim_start_matches("export ").trim();
            (key.to_string(), value.trim().trim_matches('"').to_string())
        })
        .collect())
}

/// Instance lifetimes, from `nexa.toml`.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLimits {
    pub max_memory_bytes: usize,
    pub max_reuse: usize,
    pub max_concurrent_reuse: usize,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

impl From<&HostConfig> for InstanceLimits {
    fn from(host: &HostConfig) -> Self {
        Self {
            max_memory_bytes: host.max_instance_memory_bytes,
            max_reuse: host.max_instance_reuse_count,
            max_concurrent_reuse: host.max_instance_concurrent_reuse_count,
            idle_timeout: host.idle_instance_timeout(),
            request_timeout: host.request_timeout(),
        }
    }
}

/// Makes instances of one component for `ProxyHandler`, which reuses each
/// for up to `max_reuse` requests (`max_concurrent_reuse` at once) and retires
/// it after a trap or timeout.
pub struct ComponentInstances {
    engine: Engine,
    pre: ProxyPre<StoreData>,
    capabilities: ComponentCapabilities,
    environment: BTreeMap<String, String>,
    limits: InstanceLimits,
}

impl HandlerState for ComponentInstances {
    type StoreData = StoreData;
    type WorkerExpiration = InstanceExpiration;
    type WorkerState = InstanceWorker;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<StoreData, InstanceExpiration, InstanceWorker>> {
        let data = StoreData::new(
            self.capabilities.clone(),
            &self.environment,
            self.limits.max_memory_bytes,
        );
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.limits);
        // Yield to the event loop at every epoch tick, so deadlines and other
        // requests get a turn even while this guest computes.
        store.epoch_deadline_async_yield_and_update(1);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            view: <StoreData as WasiHttpView>::http,
            expiration: InstanceExpiration::new(self.limits),
            state: InstanceWorker {
                limits: self.limits,
            },
        })
    }
}

/// Per-instance policy: how many requests it takes and when one expires.
pub struct InstanceWorker {
    limits: InstanceLimits,
}

impl WorkerState for InstanceWorker {
    type StoreData = StoreData;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.limits.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.limits.max_concurrent_reuse {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, StoreData>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        Box::pin(tokio::time::sleep(self.limits.request_timeout))
    }

    fn drop(&self, _store: Store<StoreData>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            tracing::warn!(error = %format!("{error:#}"), "instance retired after a fault");
        }
    }
}

/// When an instance is disposed of: idle too long, or busy past the request
/// deadline (the second line of defence behind `on_request_start`).
pub struct InstanceExpiration {
    limits: InstanceLimits,
    timer: Pin<Box<tokio::time::Sleep>>,
    deadline: Option<Instant>,
}

impl InstanceExpiration {
    fn new(limits: InstanceLimits) -> Self {
        Self {
            limits,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            deadline: None,
        }
    }
}

impl WorkerExpiration for InstanceExpiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let allowed = match status {
            WorkerStatus::Idle => self.limits.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.limits.request_timeout,
        };
        let deadline = start + allowed;
        if self.deadline != Some(deadline) {
            self.deadline = Some(deadline);
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
        }
        self.timer.as_mut().poll(cx)
    }
}

/// Advances the engine's epoch on a thread of its own; stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("nexa-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
