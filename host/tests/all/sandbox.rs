//! A component reaches only what it was granted: Postgres connect options
//! cannot leave the allow-listed host (no `host=`/`hostaddr=` sockets, no
//! file-reading options, nothing from the host's `PG*` environment), SQLite
//! cannot reach other files, and a chained request passes the edge pipeline.
//! Each refusal has its positive control beside it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    AppDir, Host, SECRET_RUNTIME_CONFIG, fixture_manifest, fixture_with, post_json,
};

const GRANT: &str = "allowed_outbound_hosts = [\"postgres://127.0.0.1:5432\"]";
const GOOD: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

async fn pg(host: &Host, address: &str, sql: &str) -> (u16, Value) {
    post_json(
        host,
        "/fixture/pg",
        &json!({ "address": address, "sql": sql }),
    )
    .await
}

#[tokio::test]
async fn postgres_connect_options_cannot_leave_the_grant() {
    let (_app, host) = fixture_with(GRANT, "");
    let (status, body) = pg(&host, GOOD, "SELECT 1 AS one").await;
    assert_eq!(status, 200, "the positive control: {body}");
    for (address, named) in [
        // Confirmed on the old host: this ran over the server's Unix socket.
        (
            "postgres://postgres@127.0.0.1:5432/postgres?host=/var/run/postgresql",
            "\"host\"",
        ),
        (
            "postgres://postgres@127.0.0.1:5432/postgres?hostaddr=127.0.0.2",
            "\"hostaddr\"",
        ),
        (
            "postgres://postgres@127.0.0.1:5432/postgres?sslkey=/etc/ssl/private/x.key",
            "\"sslkey\"",
        ),
        (
            "postgres://postgres@127.0.0.1:5432/postgres?sslcert=/etc/passwd",
            "\"sslcert\"",
        ),
        (
            "postgres://postgres@127.0.0.1:5432/postgres?sslrootcert=/etc/passwd",
            "\"sslrootcert\"",
        ),
        (
            "postgres://postgres@127.0.0.1:5432/postgres?passfile=/root/.pgpass",
            "\"passfile\"",
        ),
        (
            "postgres://postgres@127.0.0.1:5432,127.0.0.1:5433/postgres",
            "one host",
        ),
        (
            "host=127.0.0.1 port=5432 user=postgres hostaddr=10.9.9.9",
            "\"hostaddr\"",
        ),
        ("host=/var/run/postgresql user=postgres", "Unix"),
    ] {
        let (status, body) = pg(&host, address, "SELECT 1").await;
        assert_eq!(status, 409, "{address} was allowed: {body}");
        assert_eq!(
            body["error"]["kind"], "connection-failed",
            "{address}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{address}: {message}");
    }
}

#[tokio::test]
async fn the_hosts_pg_environment_never_reaches_a_component() {
    let app = AppDir::new(&fixture_manifest(GRANT));
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    let host = app.start_with_env(
        &[
            "--runtime-config-file",
            app.path("rc.toml").to_str().unwrap(),
        ],
        &[
            ("PGAPPNAME", "leaked-from-the-host"),
            ("PGOPTIONS", "-c search_path=leaked"),
            ("PGSSLCERT", "/etc/passwd"),
        ],
    );
    let (status, body) = pg(
        &host,
        GOOD,
        "SELECT current_setting('application_name') AS app, current_setting('search_path') AS path",
    )
    .await;
    assert_eq!(status, 200, "{body}\n{}", host.log());
    let row = &body["rows"][0];
    assert_eq!(row[0], json!({ "str": "" }), "{body}");
    assert!(!row[1].to_string().contains("leaked"), "{body}");
    assert!(host.log().contains("PGAPPNAME"), "{}", host.log());
}

async fn sqlite(host: &Host, sql: &str) -> (u16, Value) {
    post_json(host, "/fixture/sqlite/default", &json!({ "sql": sql })).await
}

#[tokio::test]
async fn sqlite_statements_cannot_reach_other_files() {
    let (app, host) = fixture_with("sqlite_databases = [\"default\"]", "");
    let (status, body) = sqlite(&host, "CREATE TABLE t (x INTEGER)").await;
    assert_eq!(status, 200, "the positive control: {body}");
    let outside = app.path("outside.db");
    for (sql, reason) in [
        (
            format!("ATTACH DATABASE '{}' AS other", outside.display()),
            "ATTACH",
        ),
        (
            format!("ATTACH 'file:{}?mode=rwc' AS other", outside.display()),
            "ATTACH",
        ),
        (format!("VACUUM INTO '{}'", outside.display()), "ATTACH"),
        (
            "SELECT load_extension('/tmp/nope.so')".to_string(),
            "load_extension",
        ),
        ("PRAGMA journal_mode = DELETE".to_string(), "journal_mode"),
        (
            "PRAGMA temp_store_directory = '/tmp'".to_string(),
            "temp_store_directory",
        ),
    ] {
        let (status, body) = sqlite(&host, &sql).await;
        assert_eq!(status, 409, "{sql} was allowed: {body}");
        let error = body["sqlite_error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{sql}: {error}");
        assert!(!outside.exists(), "{sql} created the file");
    }
    for sql in [
        "ATTACH ':memory:' AS scratch",
        "PRAGMA foreign_keys = ON",
        "PRAGMA table_info(t)",
        "PRAGMA journal_mode",
    ] {
        let (status, body) = sqlite(&host, sql).await;
        assert_eq!(status, 200, "{sql}: {body}");
    }
}

#[tokio::test]
async fn allow_attach_file_permits_attaching_as_in_spin() {
    let (app, host) = fixture_with(
        "sqlite_databases = [\"default\"]",
        "[sqlite_database.default]\ntype = \"spin\"\nallow_attach_file = true\n",
    );
    let other = app.path("other.db");
    let (status, body) = sqlite(&host, &format!("ATTACH '{}' AS other", other.display())).await;
    assert_eq!(status, 200, "{body}");
    assert!(other.exists());
}

fn chaining_app(nexa_toml: &str) -> (AppDir, Host) {
    crate::support::chaining_host("\"http://internal.spin.internal\"", nexa_toml)
}

async fn chain(host: &Host, path: &str) -> (u16, Value) {
    let url = format!("http://internal.spin.internal{path}");
    post_json(host, "/fixture/http", &json!({ "url": url })).await
}

#[tokio::test]
async fn chained_requests_pass_the_edge_pipeline() {
    // One slot for the whole app: the caller holds it, so a chained request
    // that took a second one would wait and be shed.
    let (_app, host) = chaining_app(
        "max_concurrent_requests = 1\nqueue_timeout_ms = 100\nrequest_timeout_ms = 1500\n",
    );
    let (status, body) = chain(&host, "/fixture/headers").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200, "no deadlock on the held slot: {body}");
    let seen: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert!(
        seen["x-request-id"][0]
            .as_str()
            .is_some_and(|id| id.len() >= 16),
        "{seen}"
    );
    assert_eq!(
        seen["spin-full-url"][0],
        "http://internal.spin.internal/fixture/headers"
    );
    assert_eq!(seen["spin-client-addr"][0], "127.0.0.1:0");

    // The deadline applies to the callee too: its endless loop is expired
    // within the request timeout (it had 60 s, the outbound first-byte
    // timeout, before), while the caller answers the client 504.
    let started = Instant::now();
    let response = host
        .client()
        .post(host.url("/fixture/http"))
        .json(&json!({ "url": "http://internal.spin.internal/fixture/loop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let expired = |log: &str| {
        crate::support::logged(
            log,
            &[
                ("message", "request failed".into()),
                ("component", "internal".into()),
            ],
        )
    };
    while !expired(&host.log()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "the chained endless loop was expired after {:?}",
        started.elapsed()
    );
}
