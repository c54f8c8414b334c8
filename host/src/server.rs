//! The HTTP edge: one axum router whose fallback dispatches every request
//! through the route table to a component, with the host's own policies
//! around it, in this order: request id (tower-http) → CORS (tower-http) →
//! security headers and host errors rendered as JSON → body size limit (tower-http) → route → the client (behind trusted
//! proxies) → cross-site check → rate limit → body read, with a stall
//! timeout → load shedding (app-wide, then the component's own slots) →
//! `spin-*` headers → the component, under the request's deadline.
//!
//! A chained request (`http://<component>.spin.internal`) enters the same
//! pipeline at the `spin-*` headers ([`ServerState`] implements
//! [`ServiceChaining`]): it gets a request id, a deadline and the header
//! scrub, but no second concurrency slot (its caller holds one; taking
//! another could deadlock when all are held) and no per-client limit.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::ExpirationError;

use crate::app::{App, Deadline, LoadedComponent, RequestStart, Serving};
use crate::capabilities::outbound_http::{ChainedResponse, ServiceChaining};
use crate::edge::browser;
use crate::edge::client::{Client, ClientResolver, Scheme};
use crate::edge::listener::{self, ConnectionLimits, ConnectionStats};
use crate::edge::rate_limit::{Decision, RateLimiter, SubjectVerifier};
use crate::edge::slots::{AppPermit, AppSlots, ComponentPermit, Overloaded};
use crate::health::Readiness;
use crate::instances::{InstantiationFailed, on_own_task};
use crate::metrics::{Metrics, RequestSeries};
use crate::reload::{ReloadError, ReloadOutcome};
use crate::routes::{RouteMatch, header_value, is_spin_header};
use crate::telemetry::instance::RequestContext;
use crate::telemetry::logs::{self, RequestFields};
use crate::telemetry::traces::{self, Tracing};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every request handler shares.
pub struct ServerState {
    pub app: Arc<App>,
    slots: AppSlots,
    clients: ClientResolver,
    /// `None` when `[rate_limit] enabled = false`.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    allowed_origins: Vec<HeaderValue>,
    /// The origin of `public_url`, when set: this site, whatever `Host` says.
    public_origin: Option<String>,
    pub connections: Arc<ConnectionStats>,
    /// What `/readyz` answers.
    pub readiness: Readiness,
}

impl ServerState {
    /// Builds the edge for `app` and routes the app's chained requests
    /// through it. Call inside the tokio runtime.
    pub fn new(app: App) -> anyhow::Result<Arc<Self>> {
        let host = &app.host;
        let public_url = host.public_url().map_err(anyhow::Error::msg)?;
        let clients = ClientResolver::new(host.trusted_proxies.clone(), public_url.as_ref());
        let variables = app.serving().variables.clone();
        let subjects = variables.resolve("jwt_secret").ok().and_then(|secret| {
            let issuer = variables.resolve("jwt_issuer").ok();
            let audience = variables.resolve("jwt_audience").ok();
            SubjectVerifier::new(&secret, issuer.as_deref(), audience.as_deref())
        });
        let rate_limiter =
            RateLimiter::new(&host.rate_limit, subjects).map_err(anyhow::Error::msg)?;
        let allowed_origins = host.cors.origins().map_err(anyhow::Error::msg)?;
        let state = Arc::new(Self {
            slots: AppSlots::new(host.max_concurrent_requests.get()),
            clients,
            rate_limiter,
            allowed_origins,
            public_origin: public_url.map(|url| url.origin().ascii_serialization()),
            connections: Arc::new(ConnectionStats::default()),
            readiness: Readiness::default(),
            app: Arc::new(app),
        });
        let serving = state.app.serving();
        Metrics::global().declare(&serving.components.ids());
        serving.outbound.set_components(state.chaining());
        if let Some(limiter) = &state.rate_limiter {
            let limiter = Arc::downgrade(limiter);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                every.tick().await;
                loop {
                    every.tick().await;
                    let Some(limiter) = limiter.upgrade() else {
                        return;
                    };
                    limiter.forget_idle_keys();
                }
            });
        }
        Ok(state)
    }

    /// Where the app's `*.spin.internal` requests go: back through this edge.
    fn chaining(self: &Arc<Self>) -> Weak<dyn ServiceChaining> {
        Arc::downgrade(self) as Weak<dyn ServiceChaining>
    }

    /// `POST /admin/reload`: spin.toml and the runtime config applied anew.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadOutcome, ReloadError> {
        self.app.reload(self.chaining()).await
    }

    /// This site's origin as the client sees it, for the cross-site check.
    fn own_origin(&self, client: &Client, headers: &http::HeaderMap) -> String {
        if let Some(origin) = &self.public_origin {
            return origin.clone();
        }
        let authority = headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        format!("{}://{authority}", client.scheme.as_str())
    }
}

/// The router, separate from `serve` so tests can drive it without a socket.
/// The middleware stack, outermost first: drop an unusable client request id,
/// set one (tower-http), copy it to the response, CORS (tower-http), add
/// security headers and render the host's errors (including tower-http's own
/// 413) as JSON, limit the body size.
pub fn router(state: Arc<ServerState>) -> Router {
    let body_limit = state.app.host.max_request_body_bytes;
    let cors = state
        .app
        .host
        .cors
        .layer()
        .expect("checked when the config was loaded");
    Router::new()
        .fallback(dispatch)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .map_request(drop_unusable_request_id)
                .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors)
                .layer(axum::middleware::from_fn_with_state(state, edge_responses))
                .layer(RequestBodyLimitLayer::new(body_limit)),
        )
}

/// Errors the host itself answers with: JSON `{"detail", "request_id"}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    #[error("Not Found")]
    NoRoute,
    #[error("Server is busy; retry shortly")]
    Overloaded,
    #[error("Request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("The request body could not be read")]
    BodyUnreadable,
    #[error("The request body stalled for more than {0} ms")]
    BodyTimeout(u128),
    #[error("{0}")]
    CrossSite(&'static str),
    #[error("Too many requests; retry in {} s", crate::edge::rate_limit::whole_seconds(.0.retry_after).max(1))]
    RateLimited(Decision),
    #[error("The component did not respond within {0} ms")]
    Timeout(u128),
    #[error("The component failed while handling the request")]
    ComponentFailed {
        /// It ran out of its memory limit (for the metrics; never shown).
        memory: bool,
    },
    #[error("The component could not be started; retry shortly")]
    Unavailable,
}

impl HostError {
    fn status(&self) -> StatusCode {
        match self {
            HostError::NoRoute => StatusCode::NOT_FOUND,
            HostError::Overloaded | HostError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            HostError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HostError::BodyUnreadable => StatusCode::BAD_REQUEST,
            HostError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            HostError::CrossSite(_) => StatusCode::FORBIDDEN,
            HostError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            HostError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            HostError::ComponentFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Counts what the metrics distinguish: shed requests, refusals by the
    /// rate limiter, and component failures by kind.
    fn record(&self, metrics: &Metrics, component: &str) {
        match self {
            HostError::Overloaded => metrics.shed.with_label_values(&["overloaded"]).inc(),
            HostError::BodyTimeout(_) => metrics.shed.with_label_values(&["timeout"]).inc(),
            HostError::RateLimited(decision) => metrics
                .rate_limited
                .with_label_values(&[decision.class.name()])
                .inc(),
            HostError::Timeout(_) => metrics
                .traps
                .with_label_values(&[component, "deadline"])
                .inc(),
            HostError::ComponentFailed { memory } => metrics
                .traps
                .with_label_values(&[component, if *memory { "memory" } else { "trap" }])
                .inc(),
            _ => {}
        }
    }

    /// The one place a host error becomes an HTTP response.
    pub fn into_response_with_id(self, request_id: &HeaderValue) -> Response {
        let (parts, body) = self.into_parts(request_id);
        Response::from_parts(parts, Body::from(body))
    }

    /// The same response, as a chained request's caller receives it.
    fn into_wasi_response(self, request_id: &HeaderValue) -> http::Response<WasiBody> {
        let (parts, body) = self.into_parts(request_id);
        let body = http_body_util::Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Response::from_parts(parts, body)
    }

    fn into_parts(self, request_id: &HeaderValue) -> (http::response::Parts, Bytes) {
        let body = serde_json::json!({
            "detail": self.to_string(),
            "request_id": request_id.to_str().unwrap_or_default(),
        });
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = self.status();
        let headers = &mut parts.headers;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(REQUEST_ID, request_id.clone());
        match &self {
            HostError::Overloaded | HostError::Unavailable => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            HostError::RateLimited(decision) => decision.write_headers(headers),
            HostError::BodyTimeout(_) => {
                headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        (parts, Bytes::from(body.to_string()))
    }
}

/// Whether a client's `x-request-id` may be kept: a short token of
/// `[A-Za-z0-9._-]`, so it is safe in logs and headers.
fn is_usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn drop_unusable_request_id<B>(mut request: Request<B>) -> Request<B> {
    if request
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|id| !is_usable_request_id(id))
    {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// New request ids: a v4 uuid without dashes.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(new_request_id()))
    }
}

fn new_request_id() -> HeaderValue {
    HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
        .expect("hex digits are a valid header value")
}

fn request_id_of<B>(request: &Request<B>) -> HeaderValue {
    request
        .headers()
        .get(&REQUEST_ID)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("-"))
}

/// Every response leaves with the security headers it lacks (HSTS when the
/// client came over https through a trusted proxy); tower-http's own
/// plain-text 413 becomes the host's JSON error like every other.
async fn edge_responses(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let body_limit = state.app.host.max_request_body_bytes;
    let id = request_id_of(&request);
    let hsts = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| state.clients.resolve(*peer, request.headers()))
        .is_some_and(|client| client.via_trusted_proxy && client.scheme == Scheme::Https);
    let mut response = next.run(request).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        response = HostError::BodyTooLarge(body_limit).into_response_with_id(&id);
    }
    browser::add_security_headers(response.headers_mut(), hsts);
    response
}

async fn dispatch(
    State(state): State<Arc<ServerState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let id = request_id_of(&request);
    if crate::telemetry::bypassed() {
        let client = state.clients.resolve(peer, request.headers());
        let serving = state.app.serving();
        let route = serving.routes.route(request.uri().path());
        return handle(&state, &serving, client, route, request, &id, None)
            .await
            .unwrap_or_else(|error| error.into_response_with_id(&id));
    }
    let metrics = Metrics::global();
    let started = Instant::now();
    let _active = ActiveRequest::start(metrics);
    let method = request.method().clone();
    let uri = request.uri().clone();
    let client = state.clients.resolve(peer, request.headers());
    let client_addr = client.addr;
    let serving = state.app.serving();
    let route = serving.routes.route(uri.path());
    // Labelled by the route as spin.toml declares it, never the raw path.
    let series = route
        .as_ref()
        .map_or(RequestSeries::unmatched(), |route| route.series());
    let trace = Tracing::get().map(|tracing| {
        tracing.server_span(
            request.headers(),
            &method,
            route.as_ref().map(|r| r.route()),
            || {
                vec![
                    KeyValue::new("url.path", uri.path().to_string()),
                    KeyValue::new("url.scheme", client.scheme.as_str()),
                    KeyValue::new("client.address", client_addr.ip().to_string()),
                    KeyValue::new(
                        "nexa.request_id",
                        id.to_str().unwrap_or_default().to_string(),
                    ),
                ]
            },
        )
    });
    let fields = request_fields(&id, trace.as_ref());
    logs::in_request(fields, async {
        let mut response = match handle(
            &state,
            &serving,
            client,
            route,
            request,
            &id,
            trace.as_ref(),
        )
        .await
        {
            Ok(response) => response,
            Err(error) => {
                error.record(metrics, series.component());
                error.into_response_with_id(&id)
            }
        };
        let status = response.status();
        let elapsed = started.elapsed();
        series.record(metrics, &method, status, elapsed);
        tracing::info!(
            target: "nexa::access",
            method = method.as_str(),
            path = uri.path(),
            route = series.route(),
            component = series.component(),
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            client = %client_addr.ip(),
            "request"
        );
        if let Some(trace) = &trace {
            end_server_span(trace, status, response.headers_mut());
        }
        response
    })
    .await
}

/// What ties the log lines written while a request is handled to it.
fn request_fields(id: &HeaderValue, trace: Option<&opentelemetry::Context>) -> RequestFields {
    RequestFields {
        request_id: id.to_str().unwrap_or_default().to_string(),
        trace: trace.and_then(traces::ids),
    }
}

/// Ends a request's server span (an error on 5xx) and tells the client its
/// trace id (`traceresponse`).
fn end_server_span(
    trace: &opentelemetry::Context,
    status: StatusCode,
    headers: &mut http::HeaderMap,
) {
    if let Some(value) = traces::traceresponse(trace) {
        headers.insert(traces::TRACERESPONSE, value);
    }
    let error = status.is_server_error().then_some(status.as_str());
    traces::end(
        trace,
        error,
        vec![KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        )],
    );
}

/// Counts a request in `http_server_active_requests` until it is dropped:
/// also when the client goes away and the request's future with it.
struct ActiveRequest(&'static Metrics);

impl ActiveRequest {
    fn start(metrics: &'static Metrics) -> Self {
        metrics.active_requests.inc();
        Self(metrics)
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.active_requests.dec();
    }
}

/// Reads the whole (size-limited) body before the request takes a
/// concurrency slot, so a slow sender holds no slot, an over-limit chunked
/// body is a 413 rather than a failure inside the component, and a body that
/// stalls for `stall` is a 408.
pub async fn read_body(mut body: Body, limit: usize, stall: Duration) -> Result<Bytes, HostError> {
    let mut bytes = BytesMut::new();
    loop {
        match tokio::time::timeout(stall, body.frame()).await {
            Err(_) => return Err(HostError::BodyTimeout(stall.as_millis())),
            Ok(None) => return Ok(bytes.freeze()),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(error))) => {
                let error = error.into_inner();
                return Err(if error.is::<http_body_util::LengthLimitError>() {
                    HostError::BodyTooLarge(limit)
                } else {
                    HostError::BodyUnreadable
                });
            }
        }
    }
}

impl From<Overloaded> for HostError {
    fn from(_: Overloaded) -> Self {
        HostError::Overloaded
    }
}

async fn handle(
    state: &ServerState,
    serving: &Serving,
    client: Client,
    route: Option<RouteMatch<'_>>,
    request: Request<Body>,
    id: &HeaderValue,
    trace: Option<&opentelemetry::Context>,
) -> Result<Response, HostError> {
    let host = &state.app.host;
    let deadline = Deadline::after(host.request_timeout());
    let route = route.ok_or(HostError::NoRoute)?;
    let component = serving
        .components
        .get(route.component())
        .ok_or(HostError::NoRoute)?;
    let own_origin = state.own_origin(&client, request.headers());
    browser::check_cross_site(
        request.method(),
        request.headers(),
        &own_origin,
        &state.allowed_origins,
    )
    .map_err(HostError::CrossSite)?;
    let decision = match &state.rate_limiter {
        Some(limiter) => {
            limiter
                .check(
                    request.method(),
                    request.uri().path(),
                    request.headers(),
                    &client,
                )
                .await
        }
        None => None,
    };
    if let Some(decision) = decision
        && !decision.allowed
    {
        return Err(HostError::RateLimited(decision));
    }

    let (mut parts, body) = request.into_parts();
    let body = read_body(body, host.max_request_body_bytes, host.body_read_timeout()).await?;
    // Load shedding: each wait is short, then the request is refused.
    let permit = state.slots.acquire(host.queue_timeout()).await?;
    let component_permit = match component.slots() {
        Some(slots) => Some(slots.acquire(&state.slots).await?),
        None => None,
    };

    let authority = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .to_string();
    let full_url = format!("{}://{authority}{path_and_query}", client.scheme.as_str());
    parts.headers.remove(http::header::CONNECTION);
    set_spin_headers(&mut parts, &route, &full_url, &client.addr.to_string(), id);
    let body = http_body_util::Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let response = call(
        &component,
        deadline,
        host.request_timeout(),
        Request::from_parts(parts, body),
        trace,
    )
    .await?;
    let (mut parts, body) = response.into_parts();
    if let Some(decision) = decision {
        decision.write_headers(&mut parts.headers);
    }
    Ok(Response::from_parts(
        parts,
        Body::new(HoldsPermit {
            body,
            deadline,
            _permits: (permit, component_permit),
        }),
    ))
}

/// What every request to a component gets, from the socket or chained: the
/// absolute URI (as under Spin), the `spin-*` headers set by the host (any
/// the sender set are removed first) and the request id.
pub fn set_spin_headers(
    parts: &mut http::request::Parts,
    route: &RouteMatch<'_>,
    full_url: &str,
    client_addr: &str,
    id: &HeaderValue,
) {
    if let Ok(uri) = full_url.parse() {
        parts.uri = uri;
    }
    let spoofed: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|name| is_spin_header(name.as_str()))
        .cloned()
        .collect();
    for name in spoofed {
        parts.headers.remove(&name);
    }
    for (name, value) in route.spin_headers(full_url, client_addr) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            parts.headers.insert(name, header_value(&value));
        }
    }
    parts.headers.insert(REQUEST_ID, id.clone());
}

/// Hands the request to the component under its deadline (in a component
/// span, when the request is traced) and classifies a failure.
async fn call(
    component: &LoadedComponent,
    deadline: Deadline,
    timeout: Duration,
    request: http::Request<WasiBody>,
    trace: Option<&opentelemetry::Context>,
) -> Result<http::Response<WasiBody>, HostError> {
    component
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("-"));
    let component_trace = match (Tracing::get(), trace) {
        (Some(tracing), Some(parent)) => Some(tracing.child_span(
            parent,
            format!("component {}", component.id()),
            SpanKind::Internal,
            || vec![KeyValue::new("nexa.component", component.id().to_string())],
        )),
        _ => None,
    };
    let (body_tx, mut body_rx) = tokio::sync::oneshot::channel();
    let start = RequestStart {
        deadline,
        context: RequestContext {
            request_id,
            trace: component_trace.clone(),
        },
        body: body_tx,
    };
    let result = component.instances.handle(start, request).await;
    let result = match result {
        // The body keeps its place on the instance until it is done.
        Ok(response) => Ok(match body_rx.try_recv() {
            Ok(in_flight) => response.map(|body| WithGuard(body, in_flight).boxed_unsync()),
            Err(_) => response,
        }),
        Err(error) => Err(classify(component, deadline, timeout, error)),
    };
    if let Some(trace) = &component_trace {
        let kind = match &result {
            Err(HostError::Timeout(_)) => Some("deadline"),
            Err(HostError::ComponentFailed { memory: true }) => Some("memory"),
            Err(HostError::ComponentFailed { memory: false }) => Some("trap"),
            Err(HostError::Unavailable) => Some("instantiation"),
            _ => None,
        };
        let attributes = kind
            .map(|kind| vec![KeyValue::new("nexa.failure", kind)])
            .unwrap_or_default();
        traces::end(trace, kind, attributes);
    }
    result
}

fn classify(
    component: &LoadedComponent,
    deadline: Deadline,
    timeout: Duration,
    error: anyhow::Error,
) -> HostError {
    tracing::warn!(
        component = %component.id(),
        error = %format!("{error:#}"),
        "request failed"
    );
    // Past its deadline the request was expired by the handler (or its
    // instance retired by the second line of defence): a timeout.
    if error.is::<ExpirationError>() || deadline.has_passed() {
        return HostError::Timeout(timeout.as_millis());
    }
    if error
        .downcast_ref::<wasmtime_wasi_http::handler::InstantiationError<RequestStart>>()
        .is_some()
        || error.is::<InstantiationFailed>()
    {
        return HostError::Unavailable;
    }
    // A failed allocation past the limit surfaces as a trap whose chain
    // names the memory; the client is told no more either way.
    let memory = format!("{error:#}").contains("memory");
    HostError::ComponentFailed { memory }
}

impl ServiceChaining for ServerState {
    fn dispatch(
        &self,
        id: &str,
        request: http::Request<WasiBody>,
        timeout: Duration,
    ) -> Option<ChainedResponse> {
        let serving = self.app.serving();
        let component = serving.components.get(id)?;
        let (mut parts, body) = request.into_parts();
        // The caller's request id when it passed one on, else a new one.
        let request_id = parts
            .headers
            .get(&REQUEST_ID)
            .filter(|v| is_usable_request_id(v))
            .cloned()
            .unwrap_or_else(new_request_id);
        let route = serving.routes.for_component(id, parts.uri.path());
        let full_url = parts.uri.to_string();
        parts.headers.remove(HOST);
        parts.headers.remove(http::header::CONNECTION);
        set_spin_headers(&mut parts, &route, &full_url, "127.0.0.1:0", &request_id);
        let timeout = timeout.min(self.app.host.request_timeout());
        let deadline = Deadline::after(timeout);
        // The callee's spans go under the caller's outbound call, whose
        // `traceparent` the request carries.
        let trace = Tracing::get().map(|tracing| {
            tracing.server_span(&parts.headers, &parts.method, Some(route.route()), || {
                vec![
                    KeyValue::new("url.path", parts.uri.path().to_string()),
                    KeyValue::new(
                        "nexa.request_id",
                        request_id.to_str().unwrap_or_default().to_string(),
                    ),
                    KeyValue::new("nexa.chained", true),
                ]
            })
        });
        let fields = request_fields(&request_id, trace.as_ref());
        let request = http::Request::from_parts(parts, body);
        let id = id.to_string();
        Some(Box::pin(on_own_task(logs::in_request(
            fields,
            async move {
                let mut response =
                    match call(&component, deadline, timeout, request, trace.as_ref()).await {
                        Ok(response) => response,
                        Err(error) => {
                            error.record(Metrics::global(), &id);
                            error.into_wasi_response(&request_id)
                        }
                    };
                if let Some(trace) = &trace {
                    end_server_span(trace, response.status(), response.headers_mut());
                }
                Ok(response)
            },
        ))))
    }
}

/// A body and something held as long as it lives (the body's place on its
/// instance, see `app::OpenBodies`).
struct WithGuard<B, G>(B, G);

impl<B, G> http_body::Body for WithGuard<B, G>
where
    B: http_body::Body + Unpin,
    G: Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// The response body, holding the request's concurrency slots until it has
/// been sent. A body still streaming when the request's deadline passes is
/// stopped by the instance handler, which ends it as if complete: past the
/// deadline that end is reported as an error instead, so hyper aborts the
/// response (no final chunk) and the client sees it cut, not finished.
struct HoldsPermit<B> {
    body: B,
    deadline: Deadline,
    _permits: (AppPermit, Option<ComponentPermit>),
}

impl<B> http_body::Body for HoldsPermit<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(None) if self.deadline.has_passed() => {
                tracing::warn!("response body cut at the request deadline");
                Poll::Ready(Some(Err(
                    "the response body was cut at the request deadline".into(),
                )))
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|frame| frame.map_err(Into::into))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves until SIGTERM or ctrl-c, then drains in-flight requests for at
/// most the configured grace period.
pub async fn serve(
    state: Arc<ServerState>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let host = &state.app.host;
    let limits = ConnectionLimits {
        max_connections: host.max_connections.get(),
        header_read_timeout: host.header_read_timeout(),
        keep_alive_timeout: host.keep_alive_timeout(),
        shutdown_grace: host.shutdown_grace(),
    };
    let stats = state.connections.clone();
    let draining = state.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // Balancers that probe /readyz stop sending requests while we drain.
        draining.readiness.shutting_down();
    };
    listener::serve(listener, router(state), limits, stats, shutdown).await;
    log_capability_calls();
    Ok(())
}

/// What the components asked of each capability during this run.
fn log_capability_calls() {
    for call in crate::capabilities::calls::CapabilityCalls::global().snapshot() {
        tracing::info!(
            capability = %call.capability,
            operation = %call.operation,
            ok = call.ok,
            error = call.error,
            trap = call.trap,
            busy_ms = call.busy_nanos / 1_000_000,
            "capability calls"
        );
    }
}

/// SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
