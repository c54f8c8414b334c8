//! The admin listener: what operators and Prometheus read, on an address of
//! its own (`--admin-listen`, default 127.0.0.1:9464), never on the public
//! port, so it is neither rate limited nor public. `/metrics` needs no token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;
use crate::server::ServerState;

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

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The text exposition, with the gauges read at scrape time brought up to date.
async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let metrics = Metrics::global();
    let (mut idle, mut used) = (0, 0);
    for pool in state.app.postgres.gauges() {
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
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ServerState>) {
    if let Err(error) = axum::serve(listener, router(state)).await {
        tracing::error!(%error, "the admin listener stopped");
    }
}
