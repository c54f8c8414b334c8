//! The admin listener: what operators and Prometheus read, on an address of
//! its own (`--admin-listen`, default 127.0.0.1:9464), never on the public
//! port, so it is neither rate limited nor public. `/metrics`, `/livez` and
//! `/readyz` (see [`crate::health`]) need no token;
//! the admin API under `/admin/` needs the bearer token
//! ([`AdminToken`]) and is off when none is configured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::host::HostConfig;
use crate::metrics::Metrics;
use crate::server::ServerState;
use crate::swap::{SwapError, SwapOutcome};

/// The environment variable that holds the admin API's bearer token.
pub const ADMIN_TOKEN_ENV: &str = "NEXA_ADMIN_TOKEN";

/// Tokens shorter than this are accepted, with a warning at start-up.
const SHORT_TOKEN: usize = 16;

/// The admin API's bearer token, kept as its SHA-256: a presented token is
/// hashed and the digests compared in constant time, so neither the content
/// nor the length of the token leaks through timing.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// `NEXA_ADMIN_TOKEN`, else the file nexa.toml names; `None` when
    /// neither is set. An empty token or an unreadable file is an error.
    pub fn configured(host: &HostConfig) -> anyhow::Result<Option<Self>> {
        let (token, origin) = match std::env::var(ADMIN_TOKEN_ENV) {
            Ok(token) => (token, ADMIN_TOKEN_ENV.to_string()),
            Err(_) => match &host.admin_token_file {
                Some(path) => (
                    std::fs::read_to_string(path).with_context(|| {
                        format!("reading the admin token file {}", path.display())
                    })?,
                    path.display().to_string(),
                ),
                None => return Ok(None),
            },
        };
        let token = token.trim();
        anyhow::ensure!(!token.is_empty(), "the admin token in {origin} is empty");
        if token.len() < SHORT_TOKEN {
            tracing::warn!(
                from = %origin,
                "the admin token is shorter than {SHORT_TOKEN} characters: use a long random one"
            );
        }
        Ok(Some(Self::new(token)))
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&digest).into()
    }
}

/// Where the admin listener listens: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminListen {
    Off,
    At(SocketAddr),
}

/// The default admin address (Prometheus's exporter range).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";

impl std::str::FromStr for AdminListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(AdminListen::Off);
        }
        text.trim()
            .parse()
            .map(AdminListen::At)
            .map_err(|_| format!("{text:?} is neither an address (host:port) nor `off`"))
    }
}

pub fn router(state: Arc<ServerState>, token: Option<AdminToken>) -> Router {
    let api = match token {
        Some(token) => Router::new()
            .route("/components", get(components))
            .route("/components/{id}", put(swap))
            .route("/components/{id}/rollback", post(rollback))
            .route("/reload", post(reload))
            // A component's .wasm is the body of a swap.
            .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES))
            .fallback(|| async { error(StatusCode::NOT_FOUND, "no such admin endpoint") })
            .layer(middleware::from_fn_with_state(token, require_token)),
        None => Router::new().fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "the admin API is off: set NEXA_ADMIN_TOKEN or admin_token_file in nexa.toml",
            )
        }),
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .nest("/admin", api)
        .with_state(state)
}

/// The admin API's errors: JSON `{"detail": ...}` like the host's others.
fn error(status: StatusCode, detail: impl Into<String>) -> Response {
    let detail: String = detail.into();
    json(status, &serde_json::json!({ "detail": detail }))
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Lets through requests that carry `Authorization: Bearer <token>`.
async fn require_token(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if token.accepts(presented.trim()) => next.run(request).await,
        Some(_) => error(StatusCode::UNAUTHORIZED, "the admin token is not valid"),
        None => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "the admin API needs `Authorization: Bearer <token>`",
            );
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// `GET /livez`: the process serves; never depends on a backend.
async fn livez() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "live" }))
}

/// `GET /readyz`: 200 when this host should get requests, else 503 and why.
async fn readyz(State(state): State<Arc<ServerState>>) -> Response {
    let report = state.readiness.check(&state.app.serving()).await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &serde_json::to_value(report).unwrap_or_default())
}

/// The largest .wasm a swap accepts.
const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// `PUT /admin/components/{id}`: the body is the new version's .wasm.
async fn swap(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    outcome(state.app.swap(&id, body.to_vec()).await)
}

/// `POST /admin/components/{id}/rollback`.
async fn rollback(State(state): State<Arc<ServerState>>, Path(id): Path<String>) -> Response {
    outcome(state.app.rollback(&id).await)
}

/// `POST /admin/reload`: 200 with what changed, or 422 with why nothing did.
async fn reload(State(state): State<Arc<ServerState>>) -> Response {
    match state.reload().await {
        Ok(outcome) => json(
            StatusCode::OK,
            &serde_json::to_value(outcome).unwrap_or_default(),
        ),
        Err(refused) => {
            tracing::warn!(error = %refused, "admin API");
            error(StatusCode::UNPROCESSABLE_ENTITY, refused.to_string())
        }
    }
}

/// The one place a swap's outcome becomes HTTP.
fn outcome(result: Result<SwapOutcome, SwapError>) -> Response {
    match result {
        Ok(outcome) => json(
            StatusCode::OK,
            &serde_json::to_value(outcome).unwrap_or_default(),
        ),
        Err(failure) => {
            let status = match &failure {
                SwapError::UnknownComponent(_) => StatusCode::NOT_FOUND,
                SwapError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                SwapError::NothingToRollBack(_) => StatusCode::CONFLICT,
                SwapError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status.is_server_error() {
                tracing::error!(error = %failure, "admin API");
            } else {
                tracing::warn!(error = %failure, "admin API");
            }
            error(status, failure.to_string())
        }
    }
}

/// One component as `GET /admin/components` reports it (and the CLI reads it).
#[derive(Debug, Serialize, Deserialize)]
pub struct ComponentReport {
    pub id: String,
    /// Its public routes as spin.toml declares them.
    pub routes: Vec<String>,
    /// Reachable only by chained requests.
    pub private: bool,
    /// `sha256:<hex>` of the `.wasm` serving now.
    pub digest: String,
    pub size_bytes: u64,
    /// RFC 3339, UTC.
    pub loaded_at: String,
    pub requests_served: u64,
    pub live_instances: i64,
    /// Earlier versions kept for rollback, newest first.
    pub previous_versions: Vec<String>,
}

async fn components(State(state): State<Arc<ServerState>>) -> Response {
    let serving = state.app.serving();
    let reports: Vec<ComponentReport> = serving
        .components
        .ids()
        .into_iter()
        .filter_map(|id| serving.components.versions(id))
        .map(|versions| (versions.current(), versions.previous_references()))
        .map(|(component, previous)| ComponentReport {
            id: component.id().to_string(),
            routes: serving
                .routes
                .routes_of(component.id())
                .into_iter()
                .map(String::from)
                .collect(),
            private: serving.routes.is_private(component.id()),
            digest: component.source.reference(),
            size_bytes: component.source.size,
            loaded_at: humantime::format_rfc3339_seconds(component.loaded_at).to_string(),
            requests_served: component.requests.load(Ordering::Relaxed),
            live_instances: component.live_instances(),
            previous_versions: previous,
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({ "components": reports }),
    )
}

/// The text exposition, with the gauges read at scrape time brought up to date.
async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let metrics = Metrics::global();
    let (mut idle, mut used) = (0, 0);
    for pool in state.app.serving().postgres.gauges() {
        idle += i64::from(pool.idle);
        used += i64::from(pool.in_use);
    }
    metrics
        .postgres_pool_connections
        .with_label_values(&["idle"])
        .set(idle);
    metrics
        .postgres_pool_connections
        .with_label_values(&["used"])
        .set(used);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(),
    )
}

/// Serves the admin router on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    token: Option<AdminToken>,
) {
    if let Err(error) = axum::serve(listener, router(state, token)).await {
        tracing::error!(%error, "the admin listener stopped");
    }
}
