//! `GET /health`: probes the database and the key-value store and reports
//! `operational` (200) or `degraded` (503).
//!
//! The database is chosen by the `database_url` variable: empty means the
//! embedded SQLite `default` database, a `postgres://` URL means Postgres.
#![cfg(target_arch = "wasm32")]

use std::time::{Instant, SystemTime};

use nexa_api::http::serve;
use serde_json::{Value, json};
use spin_sdk::http::{Request, Response, StatusCode};
use spin_sdk::{http_service, key_value, pg, sqlite, variables};

/// The key the cache probe looks up.
const CACHE_PROBE_KEY: &str = "nexa:health:probe";

#[http_service]
async fn handle(request: Request) -> Response<String> {
    serve(request, |_| async { Ok(health().await) }).await
}

/// The probes' report.
async fn health() -> Response<String> {
    let database = probe(probe_database()).await;
    let cache = probe(probe_cache()).await;
    let healthy = database["status"] == "healthy" && cache["status"] == "healthy";
    let body = json!({
        "status": if healthy { "operational" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "components": { "database": database, "cache": cache },
        "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = json_response(status, &body);
    response
        .headers_mut()
        .insert("cache-control", "no-store".parse().expect("static header"));
    response
}

/// Runs one probe and renders its outcome with the time it took.
async fn probe(check: impl Future<Output = Result<(), String>>) -> Value {
    let started = Instant::now();
    let outcome = check.await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    match outcome {
        Ok(()) => json!({ "status": "healthy", "latency_ms": latency_ms }),
        Err(error) => json!({ "status": "unhealthy", "latency_ms": latency_ms, "error": error }),
    }
}

async fn probe_database() -> Result<(), String> {
    let url = variables::get("database_url")
        .await
        .map_err(|e| format!("variable database_url: {e}"))?;
    let url = url.trim();
    if url.is_empty() {
        let connection = sqlite::Connection::open_default()
            .await
            .map_err(|e| format!("sqlite: {e}"))?;
        let rows = connection
            .execute("SELECT 1", Vec::<sqlite::Value>::new())
            .await
            .map_err(|e| format!("sqlite: {e}"))?
            .collect()
            .await
            .map_err(|e| format!("sqlite: {e}"))?;
        match rows.first().and_then(|row| row.get::<i64>(0)) {
            Some(1) => Ok(()),
            _ => Err("sqlite: SELECT 1 returned no row".to_string()),
        }
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let connection = pg::Connection::open(url)
            .await
            .map_err(|e| format!("postgres: {e}"))?;
        let rows = connection
            .query("SELECT 1", [])
            .await
            .map_err(|e| format!("postgres: {e}"))?
            .collect()
            .await
            .map_err(|e| format!("postgres: {e}"))?;
        match rows.first().map(|row| &row[0]) {
            Some(pg::DbValue::Int32(1)) => Ok(()),
            _ => Err("postgres: SELECT 1 returned no row".to_string()),
        }
    } else {
        Err("database_url must be empty (embedded SQLite) or a postgres:// URL".to_string())
    }
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

fn json_response(status: StatusCode, body: &Value) -> Response<String> {
    let mut response = Response::new(body.to_string());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    response
}
