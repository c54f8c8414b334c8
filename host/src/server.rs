//! The HTTP edge: one axum router whose fallback dispatches every request
//! through the route table to a component, with the host's own policies
//! around it, in this order: request id (tower-http) → host errors rendered
//! as JSON → body size limit (tower-http) → route → body read → load shedding
//! (app-wide, then the component's own slots) → `spin-*` headers → the
//! component, under the request's deadline.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use wasmtime_wasi_http::handler::ExpirationError;

use crate::app::Deadline;

use crate::app::App;
use crate::routes::{header_value, is_spin_header};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every request handler shares.
pub struct ServerState {
    pub app: App,
    slots: Arc<Semaphore>,
}

impl ServerState {
    pub fn new(app: App) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(app.host.max_concurrent_requests.get()));
        Arc::new(Self { app, slots })
    }
}

/// The router, separate from `serve` so tests can drive it without a socket.
/// The middleware stack, outermost first: drop an unusable client request id,
/// set one (tower-http), copy it to the response, render the host's errors
/// (including tower-http's own 413) as JSON, limit the body size.
pub fn router(state: Arc<ServerState>) -> Router {
    let body_limit = state.app.host.max_request_body_bytes;
    Router::new().fallback(dispatch).with_state(state).layer(
        ServiceBuilder::new()
            .map_request(drop_unusable_request_id)
            .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(axum::middleware::from_fn(move |request, next| {
                render_bare_errors(body_limit, request, next)
            }))
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
    #[error("The component did not respond within {0} ms")]
    Timeout(u128),
    #[error("The component failed while handling the request")]
    ComponentFailed,
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
            HostError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            HostError::ComponentFailed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The one place a host error becomes an HTTP response.
    pub fn into_response_with_id(self, request_id: &HeaderValue) -> Response {
        let body = serde_json::json!({
            "detail": self.to_string(),
            "request_id": request_id.to_str().unwrap_or_default(),
        });
        let mut response = (self.status(), body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(REQUEST_ID, request_id.clone());
        if matches!(self, HostError::Overloaded | HostError::Unavailable) {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
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
        HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
            .ok()
            .map(RequestId::new)
    }
}

fn request_id_of<B>(request: &Request<B>) -> HeaderValue {
    request
        .headers()
        .get(&REQUEST_ID)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("-"))
}

/// tower-http answers a declared over-limit body itself, with plain text;
/// the host's clients get the JSON error shape for it like for every other
/// host error.
async fn render_bare_errors(body_limit: usize, request: Request<Body>, next: Next) -> Response {
    let id = request_id_of(&request);
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return HostError::BodyTooLarge(body_limit).into_response_with_id(&id);
    }
    response
}

async fn dispatch(
    State(state): State<Arc<ServerState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let id = request_id_of(&request);
    match handle(&state, client, request, &id).await {
        Ok(response) => response,
        Err(error) => error.into_response_with_id(&id),
    }
}

/// Reads the whole (size-limited) body before the request takes a
/// concurrency slot, so a slow sender holds no slot, and an over-limit chunked
/// body is a 413 rather than a failure inside the component.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, HostError> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let error = error.into_inner();
            if error.is::<http_body_util::LengthLimitError>() {
                Err(HostError::BodyTooLarge(limit))
            } else {
                Err(HostError::BodyUnreadable)
            }
        }
    }
}

async fn handle(
    state: &ServerState,
    client: SocketAddr,
    request: Request<Body>,
    id: &HeaderValue,
) -> Result<Response, HostError> {
    let host = &state.app.host;
    let deadline = Deadline::after(host.request_timeout());
    let route = state
        .app
        .routes
        .route(request.uri().path())
        .ok_or(HostError::NoRoute)?;
    let component = state
        .app
        .components
        .get(route.component())
        .ok_or(HostError::NoRoute)?;
    let (mut parts, body) = request.into_parts();
    let body = read_body(body, host.max_request_body_bytes).await?;

    // Load shedding: wait briefly for a slot, then refuse.
    let permit = tokio::time::timeout(host.queue_timeout(), state.slots.clone().acquire_owned())
        .await
        .map_err(|_| HostError::Overloaded)?
        .map_err(|_| HostError::Overloaded)?;
    let component_permit = match &component.slots {
        Some((slots, wait)) => Some(
            tokio::time::timeout(*wait, slots.clone().acquire_owned())
                .await
                .map_err(|_| HostError::Overloaded)?
                .map_err(|_| HostError::Overloaded)?,
        ),
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
    let full_url = format!("http://{authority}{path_and_query}");
    // The component sees an absolute URI, as under Spin.
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
    parts.headers.remove(http::header::CONNECTION);
    for (name, value) in route.spin_headers(&full_url, &client.to_string()) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            parts.headers.insert(name, header_value(&value));
        }
    }
    parts.headers.insert(REQUEST_ID, id.clone());
    let body = http_body_util::Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let request = http::Request::from_parts(parts, body);

    let response = match component.handler.handle(deadline, request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(
                component = %component.id,
                request_id = id.to_str().unwrap_or_default(),
                error = %format!("{error:#}"),
                "request failed"
            );
            // Past its deadline the request was expired by the handler (or its
            // instance retired by the second line of defence): a timeout.
            if error.is::<ExpirationError>() || deadline.has_passed() {
                return Err(HostError::Timeout(host.request_timeout().as_millis()));
            }
            if error
                .downcast_ref::<wasmtime_wasi_http::handler::InstantiationError<Deadline>>()
                .is_some()
            {
                return Err(HostError::Unavailable);
            }
            return Err(HostError::ComponentFailed);
        }
    };
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        Body::new(HoldsPermit {
            body,
            _permits: (permit, component_permit),
        }),
    ))
}

/// A response body that keeps its request's concurrency slots (app-wide and
/// the component's own) until it has been sent (or dropped), since the
/// instance is busy producing it.
struct HoldsPermit<B> {
    body: B,
    _permits: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
}

impl<B> http_body::Body for HoldsPermit<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Binds, serves until SIGTERM or ctrl-c, then drains in-flight requests for
/// at most the configured grace period.
pub async fn serve(
    state: Arc<ServerState>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;

    let grace = state.app.host.shutdown_grace();
    let listener = listener.tap_io(|tcp| {
        // Without this, responses written in pieces stall 40 ms on keep-alive
        // connections (Nagle + delayed ACK), as measured under Spin.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "TCP_NODELAY");
        }
    });
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let signalled = shutdown.clone();
    let server = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        signalled.notify_one();
    });
    tokio::select! {
        result = server => result?,
        _ = async {
            shutdown.notified().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; dropping unfinished requests");
        }
    }
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

async fn shutdown_signal() {
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
