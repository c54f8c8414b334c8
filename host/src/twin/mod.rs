//! `nexa-twin`: the API's handlers (health, items, auth, users) compiled
//! natively and served with axum, over the same data as `nexa up` — the
//! physical limit of this design, for benchmarks to measure the host against.
//!
//! It reads the app as `nexa up` does ([`AppArgs`]: spin.toml, the runtime
//! config, nexa.toml, the state dir), resolves it with the host's own code
//! ([`ResolvedApp`]: the same checks and start-up errors, the same variables,
//! key-value backends and Postgres pools), routes with the host's
//! [`RouteTable`], and hands each request to the native handler of the
//! component the route names, with the `spin-*` headers and request id the
//! host would have set. No wasm, and none of the host's edge: no rate
//! limiting, CORS, security headers, concurrency limits, metrics or admin
//! listener. The fallback component's routes (`/`, `/openapi.json`, the
//! dashboard) answer the API's JSON 404.

mod platform;

pub use platform::{NativeComponent, TwinDatabases, TwinStore};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request};
use nexa_api::error::ApiError;
use nexa_api::handlers::Handler;
use nexa_api::http::request_id;
use nexa_api::storage::DatabaseUrl;
use nexa_api::storage::native::SqlitePool;

use crate::app::{AppFiles, ResolvedApp};
use crate::capabilities::sqlite::databases_from_runtime_config;
use crate::cli::AppArgs;
use crate::edge::client::ClientResolver;
use crate::edge::listener::{self, ConnectionLimits, ConnectionStats};
use crate::routes::RouteTable;
use crate::server::{HostError, read_body, set_spin_headers, shutdown_signal};

/// `nexa-twin`'s command line: `nexa up`'s app flags and `--listen`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "nexa-twin",
    version,
    about = "Serve the API's handlers natively (no wasm), over the same data as `nexa up`"
)]
pub struct Args {
    #[command(flatten)]
    pub app: AppArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000", env = "SPIN_HTTP_LISTEN_ADDR")]
    pub listen: SocketAddr,
}

/// What every request shares: built once at start-up.
pub struct Twin {
    routes: RouteTable,
    /// The components served natively, by id.
    components: HashMap<String, Arc<NativeComponent>>,
    clients: ClientResolver,
    body_limit: usize,
    body_stall: Duration,
    limits: ConnectionLimits,
}

impl Twin {
    /// Reads and resolves the app as `nexa up` does, then readies the
    /// native components.
    pub fn load(files: AppFiles) -> anyhow::Result<Self> {
        let host = files.host.clone();
        let sqlite_file = databases_from_runtime_config(&files.runtime, &files.state_dir)
            .remove("default")
            .map(|database| database.path);
        let resolved = ResolvedApp::resolve(files)?;
        let plans: Vec<_> = resolved
            .components
            .iter()
            .filter_map(|plan| Handler::for_component(&plan.id).map(|handler| (plan, handler)))
            .collect();
        let uses_sqlite = plans.iter().any(|(plan, _)| {
            plan.grants
                .variables
                .get("database_url")
                .is_some_and(|url| DatabaseUrl::parse(url) == Ok(DatabaseUrl::EmbeddedSqlite))
        });
        let sqlite = match (uses_sqlite, sqlite_file) {
            (true, Some(path)) => Some(
                SqlitePool::open(&path)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("the embedded SQLite database `default`")?,
            ),
            _ => None,
        };
        let databases = Arc::new(TwinDatabases {
            postgres: resolved.capabilities.postgres.clone(),
            sqlite,
        });
        let mut components = HashMap::new();
        for (plan, handler) in plans {
            let component = NativeComponent::new(
                &plan.id,
                handler,
                plan.grants.variables.clone(),
                &plan.grants.key_value,
                databases.clone(),
            )?;
            components.insert(plan.id.clone(), Arc::new(component));
        }
        let public_url = host.public_url().map_err(anyhow::Error::msg)?;
        Ok(Self {
            routes: resolved.routes,
            components,
            clients: ClientResolver::new(host.trusted_proxies.clone(), public_url.as_ref()),
            body_limit: host.max_request_body_bytes,
            body_stall: host.body_read_timeout(),
            limits: ConnectionLimits {
                max_connections: host.max_connections.get(),
                header_read_timeout: host.header_read_timeout(),
                keep_alive_timeout: host.keep_alive_timeout(),
                shutdown_grace: host.shutdown_grace(),
            },
        })
    }

    /// The ids of the components served natively, sorted.
    pub fn native_components(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.components.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }
}

/// The router, separate from [`serve`] so tests can drive it without a socket.
pub fn router(twin: Arc<Twin>) -> Router {
    Router::new().fallback(dispatch).with_state(twin)
}

/// Serves until SIGTERM or ctrl-c, on the host's own connection handling.
pub async fn serve(twin: Arc<Twin>, listener: tokio::net::TcpListener) {
    let limits = twin.limits;
    listener::serve(
        listener,
        router(twin),
        limits,
        Arc::new(ConnectionStats::default()),
        shutdown_signal(),
    )
    .await;
}

/// `nexa-twin`: load, bind, serve.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let twin = Arc::new(Twin::load(args.app.files()?)?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        native = %twin.native_components().join(", "),
        "serving natively on http://{address} (no wasm, no edge)"
    );
    crate::telemetry::logs::print(&format!("Serving http://{address}"));
    serve(twin, listener).await;
    Ok(())
}

async fn dispatch(
    State(twin): State<Arc<Twin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    // The host's rule: a sane client id is kept, else a new one.
    let id = request_id::assign(
        request
            .headers()
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let id = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"));
    let path = request.uri().path().to_string();
    let Some(route) = twin.routes.route(&path) else {
        return HostError::NoRoute.into_response_with_id(&id);
    };
    let component = twin.components.get(route.component()).cloned();
    let client = twin.clients.resolve(peer, request.headers());
    let (mut parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, twin.body_limit);
    let body = match read_body(Body::new(body), twin.body_limit, twin.body_stall).await {
        Ok(body) => body,
        Err(error) => return error.into_response_with_id(&id),
    };
    let authority = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let full_url = format!("{}://{authority}{path_and_query}", client.scheme.as_str());
    set_spin_headers(&mut parts, &route, &full_url, &client.addr.to_string(), &id);
    let body = async move { Ok(body.to_vec()) };
    let response = match component {
        Some(component) => {
            nexa_api::http::serve(parts, body, |request| {
                component.handler.handle(&*component, request)
            })
            .await
        }
        // The fallback component (and any other without a native handler):
        // the API's JSON 404.
        None => {
            nexa_api::http::serve(parts, body, |_| async {
                Err(ApiError::NotFound("Not Found"))
            })
            .await
        }
    };
    response.map(Body::from).into_response()
}
