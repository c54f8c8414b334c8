//! Loading an app, in named stages that each can be run (and tested) alone:
//!
//! 1. [`AppFiles::read`] — parse: spin.toml, the runtime config and nexa.toml,
//!    each checked on its own;
//! 2. [`ResolvedApp::resolve`] — resolve config: the routes, every
//!    capability's app-level state, and what each component is granted;
//! 3. [`compile_components`] — compile each component (or load it from the
//!    artifact cache) and check its imports against the Nexa world;
//! 4. [`crate::store::build_linker`] — link: every capability's host functions;
//! 5. [`pre_instantiate`] — pre-instantiate each component and ready its
//!    instances: an [`InstancePool`] (one request per instance at a time,
//!    the default), or wasmtime-wasi-http's `ProxyHandler` when an instance
//!    serves several at once.
//!
//! All of it happens before the socket is bound; nothing here runs per request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use arc_swap::ArcSwap;
use wasmtime::component::{Component, GuestTaskId, Linker};
use wasmtime::{CallHook, Engine, Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration,
    WorkerState, WorkerStatus,
};

use crate::backends::{Backend, backends_of};
use crate::capabilities::allowed_hosts::AllowedHosts;
use crate::capabilities::outbound_http::OutboundHttpState;
use crate::capabilities::postgres::PostgresState;
use crate::capabilities::variables::VariablesState;
use crate::capabilities::{AppCapabilities, AppContext, ComponentContext, ComponentGrants};
use crate::config::host::HostConfig;
use crate::config::manifest::{LoadedManifest, Manifest};
use crate::config::runtime::LoadedRuntimeConfig;
use crate::edge::slots::ComponentSlots;
use crate::engine::{ArtifactCache, ComponentSource, EPOCH_TICK, build_engine};
use crate::instances::{InstancePool, LiveInstance};
use crate::metrics::InstanceSeries;
use crate::progress::{Lines, Progress};
use crate::routes::RouteTable;
use crate::store::{StoreData, build_linker};
use crate::swap::ComponentStore;
use crate::telemetry;
use crate::telemetry::instance::{InstanceInfo, RequestContext};
use crate::telemetry::traces::Tracing;

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
    /// Routes, capabilities and components; replaced as a whole by a reload.
    serving: ArcSwap<Serving>,
    pub host: HostConfig,
    pub artifacts: Arc<ArtifactCache>,
    /// Where embedded stores, the artifact cache and the log file live.
    pub state_dir: PathBuf,
    /// What `nexa up` was asked to serve: a reload reads the same files.
    pub(crate) options: AppOptions,
    /// What a swap or reload needs to ready components as start-up did.
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreData>,
    pub(crate) limits: InstanceLimits,
    /// Components accepted through the admin API, by digest.
    pub component_store: ComponentStore,
    /// Swaps hold it shared, a reload exclusively: a swap never lands in a
    /// serving set that a reload is about to replace.
    pub(crate) changing: tokio::sync::RwLock<()>,
    _epoch: EpochTicker,
}

/// What spin.toml and the runtime config say to serve: the routes, the
/// capabilities' app-level state and the components readied under their
/// grants. Requests take a snapshot (an `Arc`) and finish on it.
pub struct Serving {
    pub routes: RouteTable,
    pub components: ComponentRegistry,
    /// The Postgres pools, for their gauges.
    pub postgres: Arc<PostgresState>,
    /// Outbound HTTP, which the edge makes route `*.spin.internal` back to it.
    pub outbound: Arc<OutboundHttpState>,
    /// The app's variables (the edge reads the JWT settings from them).
    pub variables: Arc<VariablesState>,
    /// The manifest and runtime config text it was built from: what a
    /// reload compares against.
    pub(crate) manifest: Manifest,
    pub(crate) runtime_config_text: Option<String>,
    /// The Postgres and Redis servers the configuration names, which
    /// `/readyz` reaches (`Err`: why they could not be read from it).
    pub backends: Result<Vec<Backend>, String>,
}

/// The app's components by id: each the version serving now and the ones
/// before it (for rollback), swapped atomically.
pub struct ComponentRegistry(HashMap<String, ComponentVersions>);

/// One component's versions.
pub struct ComponentVersions {
    current: ArcSwap<LoadedComponent>,
    /// Newest first, at most `rollback_versions`.
    pub(crate) previous: std::sync::Mutex<VecDeque<Arc<LoadedComponent>>>,
    /// One swap or rollback at a time per component.
    pub(crate) changing: tokio::sync::Mutex<()>,
}

impl ComponentVersions {
    fn new(loaded: LoadedComponent) -> Self {
        Self {
            current: ArcSwap::from_pointee(loaded),
            previous: Default::default(),
            changing: Default::default(),
        }
    }

    pub fn current(&self) -> Arc<LoadedComponent> {
        self.current.load_full()
    }

    /// Makes `next` the version new requests get; requests in flight finish
    /// on the one they hold. Returns the version replaced.
    pub(crate) fn replace(&self, next: Arc<LoadedComponent>) -> Arc<LoadedComponent> {
        self.current.swap(next)
    }

    /// The versions kept for rollback (`sha256:<hex>`), newest first.
    pub fn previous_references(&self) -> Vec<String> {
        self.previous
            .lock()
            .map(|previous| previous.iter().map(|v| v.source.reference()).collect())
            .unwrap_or_default()
    }
}

impl ComponentRegistry {
    /// The version of `id` serving now.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedComponent>> {
        self.0.get(id).map(ComponentVersions::current)
    }

    pub fn versions(&self, id: &str) -> Option<&ComponentVersions> {
        self.0.get(id)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The component ids, sorted.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.0.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One component, pre-instantiated, with its instance pool.
pub struct LoadedComponent {
    /// How it was readied (its id, grants and limits; a swap readies the
    /// next version from the same plan).
    pub plan: ComponentPlan,
    pub instances: Instances,
    /// The `.wasm` it was loaded from.
    pub source: ComponentSource,
    pub loaded_at: std::time::SystemTime,
    /// Requests handed to it (the edge's and chained ones).
    pub requests: AtomicU64,
    /// Its instance metrics (the live-instance gauge among them).
    pub series: InstanceSeries,
}

impl LoadedComponent {
    pub fn id(&self) -> &str {
        &self.plan.id
    }

    /// This component's own concurrency limit (nexa.toml), if any.
    pub fn slots(&self) -> Option<&Arc<ComponentSlots>> {
        self.plan.slots.as_ref()
    }

    /// Instances alive now.
    pub fn live_instances(&self) -> i64 {
        self.series.live.get()
    }

    /// Makes one instance and drops it: a component that traps while it
    /// starts is refused before it serves, not on its first request.
    pub(crate) async fn probe(&self) -> anyhow::Result<()> {
        let instance = self.instances.factory().instantiate_live().await?;
        drop(instance);
        Ok(())
    }
}

impl App {
    pub async fn load(options: &AppOptions) -> anyhow::Result<Self> {
        let files = AppFiles::read(options)?;
        let host = files.host.clone();
        let state_dir = files.state_dir.clone();
        let name = files.manifest.manifest.application.name.clone();
        let engine = build_engine(&host)?;
        let artifacts = Arc::new(ArtifactCache::new(
            &engine,
            state_dir.join("nexa-artifacts"),
        ));
        let component_store = ComponentStore::new(&state_dir);
        let linker = build_linker(&engine)?;
        let limits = InstanceLimits::from(&host);
        let serving = ready_serving(
            &Readying {
                engine: &engine,
                linker: &linker,
                artifacts: &artifacts,
                component_store: &component_store,
                limits,
                progress: ShowProgress::OnTerminal,
            },
            ResolvedApp::resolve(files)?,
        )?;
        let app = Self {
            name,
            serving: ArcSwap::from_pointee(serving),
            host,
            artifacts,
            state_dir,
            options: options.clone(),
            _epoch: EpochTicker::start(engine.clone()),
            engine,
            linker,
            limits,
            component_store,
            changing: Default::default(),
        };
        let stats = &app.artifacts.stats;
        tracing::info!(
            compiled = stats.compiled.load(Ordering::Relaxed),
            loaded_from_cache = stats.loaded.load(Ordering::Relaxed),
            "artifact cache"
        );
        Ok(app)
    }

    /// The routes and components serving now. Hold the snapshot for the
    /// whole request: a reload does not change it under you.
    pub fn serving(&self) -> Arc<Serving> {
        self.serving.load_full()
    }

    pub(crate) fn replace_serving(&self, next: Serving) -> Arc<Serving> {
        self.serving.swap(Arc::new(next))
    }

    /// What readies components here, as start-up did.
    pub(crate) fn readying(&self) -> Readying<'_> {
        Readying {
            engine: &self.engine,
            linker: &self.linker,
            artifacts: &self.artifacts,
            component_store: &self.component_store,
            limits: self.limits,
            progress: ShowProgress::Never,
        }
    }
}

/// What readies components: at start-up, and for swaps and reloads the same way.
pub(crate) struct Readying<'a> {
    pub engine: &'a Engine,
    pub linker: &'a Linker<StoreData>,
    pub artifacts: &'a ArtifactCache,
    pub component_store: &'a ComponentStore,
    pub limits: InstanceLimits,
    pub progress: ShowProgress,
}

/// Whether readying components draws a progress bar.
#[derive(Clone, Copy)]
pub(crate) enum ShowProgress {
    /// At start-up, when stderr is a terminal.
    OnTerminal,
    /// In a serving host (a reload): the log says what happens.
    Never,
}

/// Stages 3 to 5 for every component of `resolved` (versions activated
/// through the admin API win over spin.toml's sources). Compiles: call off
/// the async workers once the app serves.
pub(crate) fn ready_serving(with: &Readying<'_>, resolved: ResolvedApp) -> anyhow::Result<Serving> {
    let mut plans = resolved.components;
    with.component_store.use_activated(&mut plans);
    let progress = match with.progress {
        ShowProgress::OnTerminal => Progress::new(plans.len() as u64, "Compiling", Lines::Quiet),
        ShowProgress::Never => Progress::plain(Lines::Quiet),
    };
    let compiled = compile_components(with.engine, with.artifacts, &plans, &progress)?;
    drop(progress);
    let mut components = HashMap::new();
    for (plan, (component, source)) in plans.into_iter().zip(compiled) {
        let loaded = pre_instantiate(
            with.engine,
            with.linker,
            plan,
            &component,
            source,
            with.limits,
        )?;
        components.insert(loaded.id().to_string(), ComponentVersions::new(loaded));
    }
    let backends = backends_of(&resolved.files).map_err(|e| format!("{e:#}"));
    Ok(Serving {
        backends,
        routes: resolved.routes,
        components: ComponentRegistry(components),
        postgres: resolved.capabilities.postgres.clone(),
        outbound: resolved.capabilities.outbound_http.clone(),
        variables: resolved.capabilities.variables.clone(),
        manifest: resolved.files.manifest.manifest.clone(),
        runtime_config_text: resolved.files.runtime.text.clone(),
    })
}

/// Stage 1: the app's files, each parsed and checked on its own.
pub struct AppFiles {
    pub manifest: LoadedManifest,
    pub runtime: LoadedRuntimeConfig,
    pub host: HostConfig,
    /// Where embedded stores and the artifact cache live.
    pub state_dir: PathBuf,
}

impl AppFiles {
    pub fn read(options: &AppOptions) -> anyhow::Result<Self> {
        Self::read_with_host(options, None)
    }

    /// Reads the files, but takes `host` (the running host's settings) for
    /// nexa.toml when given: a reload applies spin.toml and the runtime
    /// config, while nexa.toml is read at start-up only.
    pub fn read_with_host(options: &AppOptions, host: Option<HostConfig>) -> anyhow::Result<Self> {
        let manifest = LoadedManifest::load(&options.manifest)?;
        let runtime = match &options.runtime_config {
            Some(path) => LoadedRuntimeConfig::load(path)?,
            None => LoadedRuntimeConfig::default(),
        };
        let host = match (host, &options.host_config) {
            (Some(host), _) => host,
            (None, Some(path)) => HostConfig::load(path)?.with_environment(),
            (None, None) => {
                let beside = manifest.dir.join("nexa.toml");
                if beside.exists() {
                    HostConfig::load(&beside)?.with_environment()
                } else {
                    HostConfig::default().with_environment()
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
        Ok(Self {
            manifest,
            runtime,
            host,
            state_dir,
        })
    }
}

/// Stage 2: what the files say together.
pub struct ResolvedApp {
    pub files: AppFiles,
    pub routes: RouteTable,
    pub capabilities: AppCapabilities,
    pub components: Vec<ComponentPlan>,
}

/// One component, resolved: where its wasm is and everything it is granted.
#[derive(Clone)]
pub struct ComponentPlan {
    pub id: String,
    pub wasm: PathBuf,
    pub environment: BTreeMap<String, String>,
    pub grants: ComponentGrants,
    pub slots: Option<Arc<ComponentSlots>>,
}

impl ResolvedApp {
    pub fn resolve(files: AppFiles) -> anyhow::Result<Self> {
        let manifest = &files.manifest;
        let in_manifest = |e: anyhow::Error| anyhow::anyhow!("{}: {e:#}", manifest.path.display());
        let routes = RouteTable::build(manifest)?;
        for id in files.host.component.keys() {
            if !manifest.manifest.component.contains_key(id) {
                bail!(
                    "nexa.toml: [component.{id}] names no component of {}",
                    manifest.path.display()
                );
            }
        }
        let capabilities = AppCapabilities::build(&AppContext {
            manifest,
            runtime: &files.runtime,
            state_dir: &files.state_dir,
        })?;
        let mut components = Vec::new();
        for (id, decl) in &manifest.manifest.component {
            let allowed_hosts = Arc::new(
                AllowedHosts::parse(&decl.allowed_outbound_hosts, &capabilities.variables)
                    .map_err(|e| anyhow::anyhow!("component \"{id}\": {e}"))
                    .map_err(in_manifest)?,
            );
            let grants = capabilities
                .grant(&ComponentContext {
                    id,
                    decl,
                    allowed_hosts: &allowed_hosts,
                    variables: &capabilities.variables,
                })
                .map_err(in_manifest)?;
            let slots = files
                .host
                .component
                .get(id)
                .map(|limits| ComponentSlots::new(limits, files.host.queue_timeout()));
            components.push(ComponentPlan {
                id: id.clone(),
                wasm: manifest.resolve(&decl.source),
                environment: decl.environment.clone(),
                grants,
                slots,
            });
        }
        Ok(Self {
            files,
            routes,
            capabilities,
            components,
        })
    }
}

/// Stage 3: each component compiled (or loaded from the artifact cache) and
/// checked against the Nexa world, in `plans` order; a compile takes seconds,
/// so `progress` counts them.
pub fn compile_components(
    engine: &Engine,
    artifacts: &ArtifactCache,
    plans: &[ComponentPlan],
    progress: &Progress,
) -> anyhow::Result<Vec<(Component, ComponentSource)>> {
    plans
        .iter()
        .map(|plan| {
            progress.start(format!("component {}", plan.id));
            let (component, source) = artifacts.load(engine, &plan.id, &plan.wasm)?;
            crate::contract::check(engine, &plan.id, &component)?;
            progress.inc();
            Ok((component, source))
        })
        .collect()
}

/// Stage 5: links one component's imports once and readies its instance pool.
pub fn pre_instantiate(
    engine: &Engine,
    linker: &Linker<StoreData>,
    plan: ComponentPlan,
    component: &Component,
    source: ComponentSource,
    limits: InstanceLimits,
) -> anyhow::Result<LoadedComponent> {
    let id = plan.id.as_str();
    let pre = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component \"{id}\": linking its imports"))?;
    let pre = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component \"{id}\": not a wasi:http/handler@0.3.0 component"))?;
    let series = InstanceSeries::new(crate::metrics::Metrics::global(), id);
    let instances = ComponentInstances {
        id: Arc::from(id),
        engine: engine.clone(),
        pre: ProxyPre::P3(pre),
        grants: plan.grants.clone(),
        environment: plan.environment.clone(),
        limits,
        series: series.clone(),
    };
    let instances = if limits.max_concurrent_reuse == 1 {
        Instances::Pooled(InstancePool::new(instances))
    } else {
        Instances::Shared(ProxyHandler::new(instances))
    };
    Ok(LoadedComponent {
        instances,
        plan,
        source,
        loaded_at: std::time::SystemTime::now(),
        requests: AtomicU64::new(0),
        series,
    })
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
            max_memory_bytes: host.max_instance_memory_bytes.get(),
            max_reuse: host.max_instance_reuse_count.get(),
            max_concurrent_reuse: host.max_instance_concurrent_reuse_count.get(),
            idle_timeout: host.idle_instance_timeout(),
            request_timeout: host.request_timeout(),
        }
    }
}

/// How a component's requests reach its instances.
pub enum Instances {
    /// One request at a time per instance (`max_concurrent_reuse` = 1, the
    /// default), run on the task that asked (see [`crate::instances`]).
    Pooled(Arc<InstancePool>),
    /// Several at once per instance: wasmtime-wasi-http's `ProxyHandler`,
    /// which runs each instance on a worker task of its own.
    Shared(ProxyHandler<ComponentInstances>),
}

impl Instances {
    /// Serves one request; the response body keeps what it needs of the
    /// instance until it is sent.
    pub async fn handle(
        &self,
        start: RequestStart,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
    ) -> anyhow::Result<http::Response<wasmtime_wasi_http::WasiBody>> {
        match self {
            Self::Pooled(pool) => pool.handle(start, request).await,
            Self::Shared(handler) => Ok(handler.handle(start, request).await?),
        }
    }

    /// What makes this component's instances.
    pub fn factory(&self) -> &ComponentInstances {
        match self {
            Self::Pooled(pool) => pool.factory(),
            Self::Shared(handler) => handler.state(),
        }
    }
}

/// Makes instances of one component: for the pool, or for `ProxyHandler`,
/// which reuses each for up to `max_reuse` requests (`max_concurrent_reuse`
/// at once) and retires it after a trap or timeout.
pub struct ComponentInstances {
    id: Arc<str>,
    engine: Engine,
    pre: ProxyPre<StoreData>,
    grants: ComponentGrants,
    environment: BTreeMap<String, String>,
    limits: InstanceLimits,
    series: InstanceSeries,
}

impl ComponentInstances {
    pub(crate) fn limits(&self) -> &InstanceLimits {
        &self.limits
    }

    pub(crate) fn series(&self) -> &InstanceSeries {
        &self.series
    }

    /// A new instance, counted live until dropped.
    pub async fn instantiate_live(&self) -> wasmtime::Result<LiveInstance> {
        let (store, proxy) = self.instantiate_store().await?;
        Ok(LiveInstance::new(store, proxy, self.series.live.clone()))
    }

    /// A new store and instance (not yet counted live).
    async fn instantiate_store(&self) -> wasmtime::Result<(Store<StoreData>, Proxy)> {
        let instance = InstanceInfo::new(self.id.clone());
        let data = StoreData::new(
            self.grants.clone(),
            &self.environment,
            self.limits.max_memory_bytes,
            instance,
        );
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.limits);
        if Tracing::get().is_some() {
            // Marks which instance calls into the host, so a capability
            // call's span finds its request (see `telemetry::instance`).
            store.call_hook(|store, hook| {
                match hook {
                    CallHook::CallingHost => telemetry::instance::enter(&store.data().instance),
                    CallHook::ReturningFromHost => telemetry::instance::leave(),
                    _ => {}
                }
                Ok(())
            });
        }
        // Yield to the event loop at every epoch tick, so deadlines and other
        // requests get a turn even while this guest computes.
        store.epoch_deadline_async_yield_and_update(1);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.series.instantiations.inc();
        Ok((store, proxy))
    }
}

impl HandlerState for ComponentInstances {
    type StoreData = StoreData;
    type WorkerExpiration = InstanceExpiration;
    type WorkerState = InstanceWorker;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<StoreData, InstanceExpiration, InstanceWorker>> {
        let (store, proxy) = self.instantiate_store().await?;
        // Counted live until the worker ends (`InstanceWorker::drop`).
        self.series.live.inc();
        let bodies = Arc::new(OpenBodies::default());
        Ok(Instance {
            store,
            proxy,
            view: <StoreData as WasiHttpView>::http,
            expiration: InstanceExpiration::new(self.limits, bodies.clone()),
            state: InstanceWorker {
                series: self.series.clone(),
                limits: self.limits,
                served: AtomicUsize::new(0),
                bodies,
            },
        })
    }
}

/// Per-instance policy: how many requests it takes and when one expires.
pub struct InstanceWorker {
    series: InstanceSeries,
    limits: InstanceLimits,
    /// Requests started on this instance, for the reuse metric.
    served: AtomicUsize,
    /// Its responses still being sent.
    bodies: Arc<OpenBodies>,
}

/// Responses of one instance whose bodies are still being sent. The guest
/// writes a body after it has returned the response, so wasmtime-wasi-http
/// counts the request done while its body streams; a fault of another
/// request on the instance meanwhile would cut that body. An instance takes
/// a new request only while fewer than `max_concurrent_reuse` of its
/// requests are running or still sending.
#[derive(Default)]
pub struct OpenBodies {
    count: AtomicUsize,
    /// The instance's worker, woken when a body is done so that it takes
    /// requests again.
    worker: futures::task::AtomicWaker,
}

/// One response body of an instance in flight; dropped when the body is
/// done (sent, failed or abandoned).
pub struct BodyInFlight(Arc<OpenBodies>);

impl Drop for BodyInFlight {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.worker.wake();
    }
}

/// When one request must have its response: set once at the edge (or by the
/// caller of a chained request) and enforced by the instance handler, which
/// expires the request at that instant. `InstanceExpiration` retires an
/// instance still busy past the same timeout, as wasmtime-wasi-http asks for
/// as a second line of defence; the edge only classifies the failure.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(tokio::time::Instant);

impl Deadline {
    pub fn after(timeout: Duration) -> Self {
        Self(tokio::time::Instant::now() + timeout)
    }

    pub fn has_passed(&self) -> bool {
        tokio::time::Instant::now() >= self.0
    }

    pub fn instant(&self) -> tokio::time::Instant {
        self.0
    }
}

/// What the edge hands an instance with each request.
pub struct RequestStart {
    pub deadline: Deadline,
    pub context: RequestContext,
    /// Gets the response body's place on the instance, for the caller to
    /// hold until the body is done.
    pub body: tokio::sync::oneshot::Sender<BodyInFlight>,
}

impl WorkerState for InstanceWorker {
    type StoreData = StoreData;
    type RequestData = RequestStart;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        // `concurrent` counts requests until their response is returned;
        // the bodies count them until the body is sent.
        let in_flight = concurrent.max(self.bodies.count.load(Ordering::Acquire));
        if total >= self.limits.max_reuse {
            ShouldAccept::Never
        } else if in_flight >= self.limits.max_concurrent_reuse {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        store: StoreContextMut<'_, StoreData>,
        request: RequestStart,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        if self.served.fetch_add(1, Ordering::Relaxed) > 0 {
            self.series.reuses.inc();
        }
        // In flight on this instance until the request is done (when the
        // handler drops this future).
        let in_flight = store.data().instance.start(request.context);
        self.bodies.count.fetch_add(1, Ordering::AcqRel);
        // Dropped at once (and uncounted) if the caller has gone.
        let _ = request.body.send(BodyInFlight(self.bodies.clone()));
        let deadline = request.deadline.0;
        Box::pin(async move {
            let _in_flight = in_flight;
            tokio::time::sleep_until(deadline).await
        })
    }

    fn drop(&self, _store: Store<StoreData>, result: wasmtime::Result<()>) {
        self.series.live.dec();
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
    bodies: Arc<OpenBodies>,
}

impl InstanceExpiration {
    fn new(limits: InstanceLimits, bodies: Arc<OpenBodies>) -> Self {
        Self {
            limits,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            deadline: None,
            bodies,
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
        // Polled by the worker's own task: a body done wakes it, and it asks
        // `should_accept_request` again.
        self.bodies.worker.register(cx.waker());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An app directory with one component whose wasm does not exist: the
    /// first two stages need no wasm at all.
    fn app_dir(component_keys: &str, runtime_config: &str) -> (tempfile::TempDir, AppOptions) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("spin.toml"),
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"stages\"\n\
                 [variables]\ngreeting = {{ default = \"hi\" }}\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
                 [component.web]\nsource = \"web.wasm\"\n{component_keys}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("rc.toml"), runtime_config).unwrap();
        let options = AppOptions {
            manifest: dir.path().join("spin.toml"),
            runtime_config: Some(dir.path().join("rc.toml")),
            host_config: None,
            state_dir: Some(dir.path().join("state")),
        };
        (dir, options)
    }

    #[tokio::test]
    async fn parse_and_resolve_run_without_wasm() {
        let (dir, options) = app_dir(
            "key_value_stores = [\"default\"]\nvariables = { message = \"{{ greeting }}\" }",
            "",
        );
        let files = AppFiles::read(&options).unwrap();
        assert_eq!(files.state_dir, dir.path().join("state"));
        let resolved = ResolvedApp::resolve(files).unwrap();
        assert_eq!(resolved.components.len(), 1);
        let web = &resolved.components[0];
        assert_eq!(web.wasm, dir.path().join("web.wasm"));
        assert_eq!(web.grants.variables.get("message"), Some("hi"));
        assert!(web.grants.key_value.allowed.contains("default"));
        assert!(resolved.routes.route("/anything").is_some());
    }

    #[tokio::test]
    async fn resolve_names_an_undefined_store() {
        let (_dir, options) = app_dir("key_value_stores = [\"audit\"]", "");
        let files = AppFiles::read(&options).unwrap();
        let error = format!("{:#}", ResolvedApp::resolve(files).err().unwrap());
        assert!(error.contains("spin.toml"), "{error}");
        assert!(error.contains("\"audit\""), "{error}");
        assert!(error.contains("[key_value_store.audit]"), "{error}");
    }

    #[tokio::test]
    async fn compile_names_a_missing_wasm_and_the_fix() {
        let (_dir, options) = app_dir("", "");
        let resolved = ResolvedApp::resolve(AppFiles::read(&options).unwrap()).unwrap();
        let engine = build_engine(&resolved.files.host).unwrap();
        let artifacts = ArtifactCache::new(&engine, resolved.files.state_dir.join("a"));
        let error = format!(
            "{:#}",
            compile_components(
                &engine,
                &artifacts,
                &resolved.components,
                &Progress::plain(Lines::Quiet),
            )
            .err()
            .unwrap()
        );
        assert!(error.contains("web.wasm"), "{error}");
        assert!(error.contains("nexa build"), "{error}");
    }
}
