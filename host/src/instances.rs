//! A component's instance pool when each instance serves one request at a
//! time (`max_instance_concurrent_reuse_count = 1`, the default).
//!
//! The guest runs on the task that asked: the connection's task drives the
//! instance until the response head is ready, then the response body drives
//! it while the guest writes the body, and the instance goes back to the pool
//! once the guest is done. wasmtime-wasi-http's `ProxyHandler` instead runs
//! every instance on a worker task of its own, so each request and each body
//! crosses between tasks (two wake-ups and thread switches per request); it
//! stays in use for instances that serve several requests at once.
//!
//! An instance goes back to the pool only after a response its guest ended
//! normally; a trap, a timeout, a guest error or an abandoned body retires it.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::channel::oneshot;
use http_body_util::BodyExt;
use wasmtime::component::Accessor;
use wasmtime::{AsContextMut, Store};
use wasmtime_wasi_http::handler::{ExpirationError, Prepared, Proxy};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::app::{ComponentInstances, RequestStart};
use crate::store::StoreData;

type Response = http::Response<WasiBody>;

/// An instance made by [`ComponentInstances::instantiate_live`]: counted in the
/// live-instance gauge until dropped.
pub struct LiveInstance {
    pub(crate) store: Store<StoreData>,
    pub(crate) proxy: Proxy,
    pub(crate) live: prometheus::IntGauge,
    /// Requests started on it.
    served: usize,
    /// When it last went idle.
    idle_since: Instant,
}

impl LiveInstance {
    pub(crate) fn new(store: Store<StoreData>, proxy: Proxy, live: prometheus::IntGauge) -> Self {
        live.inc();
        Self {
            store,
            proxy,
            live,
            served: 0,
            idle_since: Instant::now(),
        }
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        self.live.dec();
    }
}

/// Failed to make an instance for a request (e.g. the pooling allocator's
/// limits are reached): the request was not started.
#[derive(Debug)]
pub struct InstantiationFailed(pub wasmtime::Error);

impl std::fmt::Display for InstantiationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "instantiation failed: {:#}", self.0)
    }
}

impl std::error::Error for InstantiationFailed {}

/// The idle instances of one component, warmest last.
pub struct InstancePool {
    factory: ComponentInstances,
    idle: Mutex<Vec<LiveInstance>>,
    reaper: std::sync::Once,
}

impl InstancePool {
    pub fn new(factory: ComponentInstances) -> Arc<Self> {
        Arc::new(Self {
            factory,
            idle: Mutex::new(Vec::new()),
            reaper: std::sync::Once::new(),
        })
    }

    pub fn factory(&self) -> &ComponentInstances {
        &self.factory
    }

    /// Instances waiting for a request.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Runs `request` on an idle instance, or a new one. The response's body
    /// drives the instance until the guest is done with it.
    pub async fn handle(
        self: &Arc<Self>,
        start: RequestStart,
        request: http::Request<WasiBody>,
    ) -> anyhow::Result<Response> {
        self.start_reaper();
        let instance = match self.take_idle() {
            Some(instance) => instance,
            None => self
                .factory
                .instantiate_live()
                .await
                .map_err(InstantiationFailed)?,
        };
        let (mut run, mut response) = Run::start(self.clone(), instance, start, request);
        let mut finished = None;
        let response = poll_fn(|cx| {
            // Without a response (the guest failed before sending one), the
            // run's end says why.
            if let Poll::Ready(Ok(sent)) = response.poll_unpin(cx) {
                return Poll::Ready(Some(sent));
            }
            match run.poll(cx) {
                Poll::Ready(outcome) => {
                    finished = Some(outcome);
                    // The run sends its response, if any, before it ends.
                    Poll::Ready(response.try_recv().ok().flatten())
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match (response, finished) {
            (Some(Ok(response)), finished) => Ok(response.map(|body| {
                let run = finished.is_none().then_some(run);
                DrivenBody::new(body, run).boxed_unsync()
            })),
            (Some(Err(error)), _) => Err(error.into()),
            (None, Some(Err(error))) => Err(error.into()),
            (None, _) => Err(anyhow::anyhow!("the instance ended without a response")),
        }
    }

    fn take_idle(&self) -> Option<LiveInstance> {
        self.idle.lock().ok()?.pop()
    }

    /// Takes back an instance whose guest is done, unless it has served its
    /// share of requests.
    fn put_back(&self, mut instance: LiveInstance) {
        if instance.served >= self.factory.limits().max_reuse {
            return;
        }
        instance.idle_since = Instant::now();
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(instance);
        }
    }

    /// Drops the instances idle longer than the idle timeout.
    fn reap(&self) {
        let timeout = self.factory.limits().idle_timeout;
        let stale: Vec<LiveInstance> = match self.idle.lock() {
            Ok(mut idle) => {
                // Oldest first: the stale ones are a prefix.
                let fresh = idle
                    .iter()
                    .position(|instance| instance.idle_since.elapsed() < timeout)
                    .unwrap_or(idle.len());
                idle.drain(..fresh).collect()
            }
            Err(_) => Vec::new(),
        };
        // Dropped outside the lock: freeing a store takes a while.
        drop(stale);
    }

    /// Starts, on the first request, the task that drops idle instances;
    /// it ends with the pool.
    fn start_reaper(self: &Arc<Self>) {
        self.reaper.call_once(|| {
            let pool: Weak<Self> = Arc::downgrade(self);
            let every = (self.factory.limits().idle_timeout / 2).max(Duration::from_millis(50));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match pool.upgrade() {
                        Some(pool) => pool.reap(),
                        None => break,
                    }
                }
            });
        });
    }
}

type Outcome = Result<(), wasmtime::Error>;
type Sent = Result<Response, wasmtime::Error>;
type Guest = Pin<Box<dyn Future<Output = (LiveInstance, wasmtime::Result<bool>)> + Send>>;

/// One request's run of an instance, until its guest is done: bounded by the
/// request's deadline until the response, and by the request timeout after
/// it (the body). Polled by whoever waits on the request: the connection's
/// task, then the response body.
struct Run {
    pool: Arc<InstancePool>,
    guest: Guest,
    /// Checked outside the guest's event loop too: a guest stuck in a host
    /// call does not reach the deadline inside it.
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Run {
    fn start(
        pool: Arc<InstancePool>,
        mut instance: LiveInstance,
        start: RequestStart,
        request: http::Request<WasiBody>,
    ) -> (Self, oneshot::Receiver<Sent>) {
        let (sent_tx, sent_rx) = oneshot::channel();
        instance.served += 1;
        if instance.served > 1 {
            pool.factory.series().reuses.inc();
        }
        let deadline = start.deadline.instant();
        let guest = Box::pin(async move {
            let LiveInstance { store, proxy, .. } = &mut instance;
            let proxy = &*proxy;
            let result = store
                .run_concurrent(async move |accessor: &Accessor<StoreData>| {
                    serve_one(accessor, proxy, start, request, sent_tx).await
                })
                .await
                .and_then(|reusable| reusable);
            (instance, result)
        });
        let run = Self {
            pool,
            guest,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        };
        (run, sent_rx)
    }

    /// Drives the guest; ready when it is done (the instance back in the
    /// pool if it may serve again) or past its time (the instance dropped).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Poll::Ready((instance, result)) = self.guest.as_mut().poll(cx) {
            return Poll::Ready(match result {
                Ok(true) => {
                    self.pool.put_back(instance);
                    Ok(())
                }
                Ok(false) => Ok(()),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "instance retired after a fault");
                    Err(error)
                }
            });
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(ExpirationError.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// From the response on, the guest has the request timeout to finish.
    fn body_started(&mut self) {
        let timeout = self.pool.factory.limits().request_timeout;
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + timeout);
    }
}

/// Inside the instance's event loop: starts the guest's handler, sends its
/// response, and waits for the guest to finish. Whether the instance may
/// serve again: only after a response the guest ended normally.
async fn serve_one(
    accessor: &Accessor<StoreData>,
    proxy: &Proxy,
    start: RequestStart,
    request: http::Request<WasiBody>,
    sent: oneshot::Sender<Sent>,
) -> wasmtime::Result<bool> {
    let (response_tx, mut response_rx) = oneshot::channel();
    let RequestStart {
        deadline, context, ..
    } = start;
    let (prepared, in_flight) = accessor.with(|mut access| {
        let store = access.as_context_mut();
        let prepared = Prepared::new(
            store,
            proxy,
            request,
            <StoreData as WasiHttpView>::http,
            response_tx,
        )?;
        let in_flight = access.get().instance.start(context);
        wasmtime::error::Ok((prepared, in_flight))
    })?;
    let expiry = tokio::time::sleep_until(deadline.instant());
    let responded = prepared.run(accessor, expiry).await?;
    let response = match response_rx.try_recv() {
        Ok(Some(response)) => response,
        _ => Err(wasmtime::format_err!("the guest produced no response")),
    };
    let reusable = responded && response.is_ok();
    let _ = sent.send(response);
    if reusable {
        // The guest may still be writing the body, or finishing after it.
        poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
    }
    drop(in_flight);
    Ok(reusable)
}

/// A response body that drives its instance's guest while it is read.
/// Dropped before the guest is done (the client left, or the body ended
/// while the guest still runs), it lets the guest finish on a task of its
/// own, bounded by the same timer.
struct DrivenBody {
    body: WasiBody,
    run: Option<Run>,
}

impl DrivenBody {
    fn new(body: WasiBody, mut run: Option<Run>) -> Self {
        if let Some(run) = &mut run {
            run.body_started();
        }
        Self { body, run }
    }
}

impl http_body::Body for DrivenBody {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if let Some(run) = &mut self.run
            && let Poll::Ready(outcome) = run.poll(cx)
        {
            self.run = None;
            if let Err(error) = outcome
                && error.is::<ExpirationError>()
            {
                tracing::warn!("response body cut: the guest ran past the request timeout");
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)));
            }
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.run.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for DrivenBody {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(poll_fn(move |cx| run.poll(cx).map(drop)));
        }
    }
}

/// Runs `respond` on a task of its own and forwards its response body frame
/// by frame. For a request made from inside another instance's event loop
/// (service chaining): driving a second store from within the first one's
/// event loop is not supported, so the callee's instance runs apart.
pub async fn on_own_task<F>(respond: F) -> anyhow::Result<Response>
where
    F: Future<Output = anyhow::Result<Response>> + Send + 'static,
{
    use futures::SinkExt;

    let (head_tx, head_rx) = oneshot::channel();
    tokio::spawn(async move {
        let response = match respond.await {
            Ok(response) => response,
            Err(error) => {
                let _ = head_tx.send(Err(error));
                return;
            }
        };
        let (parts, mut body) = response.into_parts();
        // A frame or two in flight: the caller's reads pace the callee.
        let (mut frames_tx, frames_rx) = futures::channel::mpsc::channel(1);
        let forwarded = http_body_util::StreamBody::new(frames_rx).boxed_unsync();
        if head_tx
            .send(Ok(Response::from_parts(parts, forwarded)))
            .is_err()
        {
            return;
        }
        while let Some(frame) = body.frame().await {
            if frames_tx.send(frame).await.is_err() {
                // The caller dropped the body.
                break;
            }
        }
    });
    head_rx
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the chained request's task ended early")))
}
