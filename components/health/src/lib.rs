//! `GET /health`: probes the database and the key-value store and reports
//! `operational` (200) or `degraded` (503).
//!
//! The database is reached as every API component reaches it (`database_url`:
//! empty for the embedded SQLite `default` database, or a `postgres://` URL),
//! through the shared `Database` adapter. A failed probe reports only
//! `unhealthy` to the client: backend messages (driver errors, addresses)
//! go to the component's log (stderr) with the request id.
#![cfg(target_arch = "wasm32")]

use std::time::{Instant, SystemTime};

use nexa_api::http::{json, serve};
use nexa_api::repository;
use nexa_api::storage::spin::SpinDatabase;
use serde_json::{Value, json};
use spin_sdk::http::{Request, Response};
use spin_sdk::{http_service, key_value, variables};

/// The key the cache probe looks up.
const CACHE_PROBE_KEY: &str = "nexa:health:probe";

#[http_service]
async fn handle(request: Request) -> Response<String> {
    serve(
        request,
        |request| async move { Ok(health(&request.id).await) },
    )
    .await
}

/// The probes' report.
async fn health(request_id: &str) -> Response<String> {
    let database = probe(request_id, "database", probe_database()).await;
    let cache = probe(request_id, "cache", probe_cache()).await;
    let healthy = database["status"] == "healthy" && cache["status"] == "healthy";
    let body = json!({
        "status": if healthy { "operational" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "components": { "database": database, "cache": cache },
        "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    });
    let mut response = json(if healthy { 200 } else { 503 }, &body);
    response
        .headers_mut()
        .insert("cache-control", "no-store".parse().expect("static header"));
    response
}

/// Runs one probe and renders its outcome with the time it took; why it
/// failed is logged, never answered.
async fn probe(
    request_id: &str,
    name: &str,
    check: impl Future<Output = Result<(), String>>,
) -> Value {
    let started = Instant::now();
    let outcome = check.await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let status = match outcome {
        Ok(()) => "healthy",
        Err(error) => {
            eprintln!("request_id={request_id} health: {name} probe failed: {error}");
            "unhealthy"
        }
    };
    json!({ "status": status, "latency_ms": latency_ms })
}

async fn probe_database() -> Result<(), String> {
    let url = variables::get("database_url")
        .await
        .map_err(|e| format!("variable database_url: {e}"))?;
    let db = SpinDatabase::open(&url).await.map_err(|e| e.to_string())?;
    repository::ping(&db).await.map_err(|e| e.to_string())
}

async fn probe_cache() -> Result<(), String> {
    // A read-only round trip: it proves the store answers, and concurrent
    // probes cannot disturb each other (a write-then-read probe would race).
    let store = key_value::Store::open_default()
        .await
        .map_err(|e| format!("key-value: {e}"))?;
    store
        .exists(CACHE_PROBE_KEY)
        .await
        .map(drop)
        .map_err(|e| format!("key-value: {e}"))
}
