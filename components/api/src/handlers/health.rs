//! `GET /health`: probes the database and the key-value store and reports
//! `operational` (200) or `degraded` (503).
//!
//! The database is reached as every API handler reaches it (`database_url`:
//! empty for the embedded SQLite `default` database, or a `postgres://` URL).
//! A failed probe reports only `unhealthy` to the client: backend messages
//! (driver errors, addresses) go to the log (stderr) with the request id.

use std::time::{Instant, SystemTime};

use http::HeaderValue;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, json};
use crate::platform::{KeyValueStore, Platform, Variables};
use crate::repository;

/// The key the cache probe looks up.
const CACHE_PROBE_KEY: &str = "nexa:health:probe";

/// The probes' report.
pub async fn handle<P: Platform>(
    platform: &P,
    request: ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let request_id = &request.id;
    let database = probe(request_id, "database", probe_database(platform)).await;
    let cache = probe(request_id, "cache", probe_cache(platform)).await;
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
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(response)
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

async fn probe_database<P: Platform>(platform: &P) -> Result<(), String> {
    let url = platform
        .variables()
        .get("database_url")
        .await
        .map_err(|e| format!("variable database_url: {e}"))?;
    let db = platform
        .open_database(&url)
        .await
        .map_err(|e| e.to_string())?;
    repository::ping(&db).await.map_err(|e| e.to_string())
}

async fn probe_cache<P: Platform>(platform: &P) -> Result<(), String> {
    // A read-only round trip: it proves the store answers, and concurrent
    // probes cannot disturb each other (a write-then-read probe would race).
    let store = platform
        .open_key_value()
        .await
        .map_err(|e| format!("key-value: {e}"))?;
    store
        .exists(CACHE_PROBE_KEY)
        .await
        .map(drop)
        .map_err(|e| format!("key-value: {e}"))
}
