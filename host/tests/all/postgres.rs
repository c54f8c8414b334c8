//! `spin:postgres` through the fixture against the real PostgreSQL: every WIT
//! type both ways, errors, allow-lists, pooling and recovery after an outage.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::services::{PrivatePostgres, TestDatabase};
use crate::support::{
    AppDir, Host, app_with, chaining_manifest, fixture_with, post_json, start_with_rc,
};

fn start(allowed: &str, runtime_extra: &str) -> (AppDir, Host) {
    fixture_with(
        &format!("allowed_outbound_hosts = [{allowed}]"),
        runtime_extra,
    )
}

async fn pg(host: &Host, body: Value) -> (u16, Value) {
    post_json(host, "/fixture/pg", &body).await
}

async fn query(host: &Host, db: &TestDatabase, sql: &str, params: Value) -> Value {
    let (status, body) = pg(
        host,
        json!({ "address": db.url(), "sql": sql, "params": params }),
    )
    .await;
    assert_eq!(status, 200, "{sql}: {body}");
    body
}

/// Each WIT type: (column type, value sent, value expected back, column type reported).
fn typed_values() -> Vec<(&'static str, Value, Value, &'static str)> {
    vec![
        (
            "boolean",
            json!({"boolean": true}),
            json!({"boolean": true}),
            "boolean",
        ),
        ("\"char\"", json!({"int8": 65}), json!({"int8": 65}), "int8"),
        (
            "smallint",
            json!({"int16": -32768}),
            json!({"int16": -32768}),
            "int16",
        ),
        (
            "integer",
            json!({"int32": 2147483647}),
            json!({"int32": 2147483647}),
            "int32",
        ),
        (
            "bigint",
            json!({"int64": i64::MIN}),
            json!({"int64": i64::MIN}),
            "int64",
        ),
        (
            "real",
            json!({"floating32": 1.5}),
            json!({"floating32": 1.5}),
            "floating32",
        ),
        (
            "double precision",
            json!({"floating64": -2.25}),
            json!({"floating64": -2.25}),
            "floating64",
        ),
        (
            "text",
            json!({"str": "héllo 'quoted' 🚀"}),
            json!({"str": "héllo 'quoted' 🚀"}),
            "str",
        ),
        (
            "varchar(20)",
            json!({"str": "varchar"}),
            json!({"str": "varchar"}),
            "str",
        ),
        (
            "char(5)",
            json!({"str": "ab"}),
            json!({"str": "ab   "}),
            "str",
        ),
        (
            "bytea",
            json!({"binary": [0, 1, 255]}),
            json!({"binary": [0, 1, 255]}),
            "binary",
        ),
        (
            "date",
            json!({"date": [2024, 2, 29]}),
            json!({"date": [2024, 2, 29]}),
            "date",
        ),
        (
            "time",
            json!({"time": [23, 59, 58, 123456000]}),
            json!({"time": [23, 59, 58, 123456000]}),
            "time",
        ),
        (
            "timestamp",
            json!({"datetime": [1999, 12, 31, 23, 59, 59, 999999000]}),
            json!({"datetime": [1999, 12, 31, 23, 59, 59, 999999000]}),
            "datetime",
        ),
        (
            "timestamptz",
            json!({"timestamp": 1700000000}),
            json!({"timestamp": 1700000000}),
            "timestamp",
        ),
        (
            "uuid",
            json!({"uuid": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}),
            json!({"uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}),
            "uuid",
        ),
        (
            "jsonb",
            json!({"jsonb": "{\"bb\": [1, 2], \"a\": null}"}),
            json!({"jsonb": "{\"a\": null, \"bb\": [1, 2]}"}),
            "jsonb",
        ),
        (
            "json",
            json!({"jsonb": "{\"z\":1, \"a\":2}"}),
            json!({"jsonb": "{\"z\":1, \"a\":2}"}),
            "jsonb",
        ),
        (
            "numeric(20,6)",
            json!({"decimal": "12345678901234.5"}),
            json!({"decimal": "12345678901234.500000"}),
            "decimal",
        ),
        (
            "int4range",
            json!({"range-int32": [[1, "inclusive"], [10, "exclusive"]]}),
            json!({"range-int32": [[1, "inclusive"], [10, "exclusive"]]}),
            "rangeint32",
        ),
        (
            "int8range",
            json!({"range-int64": [[-5, "exclusive"], null]}),
            json!({"range-int64": [[-4, "inclusive"], null]}),
            "rangeint64",
        ),
        (
            "numrange",
            json!({"range-decimal": [["1.5", "inclusive"], ["2.5", "inclusive"]]}),
            json!({"range-decimal": [["1.5", "inclusive"], ["2.5", "inclusive"]]}),
            "rangedecimal",
        ),
        (
            "integer[]",
            json!({"array-int32": [1, null, 3]}),
            json!({"array-int32": [1, null, 3]}),
            "arrayint32",
        ),
        (
            "bigint[]",
            json!({"array-int64": [9007199254740993i64, null]}),
            json!({"array-int64": [9007199254740993i64, null]}),
            "arrayint64",
        ),
        (
            "numeric[]",
            json!({"array-decimal": ["1.10", null]}),
            json!({"array-decimal": ["1.10", null]}),
            "arraydecimal",
        ),
        (
            "text[]",
            json!({"array-str": ["a", null, "c"]}),
            json!({"array-str": ["a", null, "c"]}),
            "arraystr",
        ),
        (
            "interval",
            json!({"interval": [3600000000i64, 2, 14]}),
            json!({"interval": [3600000000i64, 2, 14]}),
            "interval",
        ),
    ]
}

#[tokio::test]
async fn every_type_round_trips_through_the_real_server() {
    let db = TestDatabase::create();
    let (_app, host) = start("\"postgres://127.0.0.1:5432\"", "");
    let values = typed_values();
    let columns: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, (ty, ..))| format!("c{i} {ty}"))
        .collect();
    db.sql(&format!(
        "CREATE TABLE every_type (id serial PRIMARY KEY, {})",
        columns.join(", ")
    ));
    let names: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
    let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
    let insert = format!(
        "INSERT INTO every_type ({}) VALUES ({})",
        names.join(", "),
        placeholders.join(", ")
    );

    // Each value in; each value back, for both query paths.
    let params: Vec<Value> = values.iter().map(|(_, sent, ..)| sent.clone()).collect();
    let (status, inserted) = pg(
        &host,
        json!({ "address": db.url(), "op": "execute", "sql": insert, "params": params }),
    )
    .await;
    assert_eq!(status, 200, "{inserted}");
    assert_eq!(inserted["affected"], 1);
    let select = format!("SELECT {} FROM every_type ORDER BY id", names.join(", "));
    for op in ["query", "query-sync"] {
        let (status, result) = pg(
            &host,
            json!({ "address": db.url(), "op": op, "sql": select }),
        )
        .await;
        assert_eq!(status, 200, "{op}: {result}");
        for (i, (ty, _, expected, data_type)) in values.iter().enumerate() {
            assert_eq!(result["rows"][0][i], *expected, "{op}: column {ty}");
            assert_eq!(
                result["columns"][i]["type"], *data_type,
                "{op}: column {ty}"
            );
        }
    }

    // NULL in every column.
    let nulls: Vec<Value> = values.iter().map(|_| json!("db-null")).collect();
    let (status, _) = pg(
        &host,
        json!({ "address": db.url(), "op": "execute", "sql": insert, "params": nulls }),
    )
    .await;
    assert_eq!(status, 200);
    let result = query(&host, &db, &format!("{select} OFFSET 1"), json!([])).await;
    assert!(
        result["rows"][0]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v == "db-null"),
        "{result}"
    );

    // Values come back by the type the server reports, also as parameters
    // echoed by SELECT $1 (the server infers the parameter's type).
    let echoed = query(
        &host,
        &db,
        "SELECT $1::int8 + 1 AS widened",
        json!([{ "int32": 41 }]),
    )
    .await;
    assert_eq!(echoed["rows"][0][0], json!({ "int64": 42 }));
}

#[tokio::test]
async fn types_without_a_wit_variant_are_unsupported_with_their_bytes() {
    let db = TestDatabase::create();
    let (_app, host) = start("\"postgres://127.0.0.1:5432\"", "");
    let result = query(
        &host,
        &db,
        "SELECT '127.0.0.1'::inet AS address, 42::oid AS id",
        json!([]),
    )
    .await;
    assert_eq!(
        result["columns"][0],
        json!({ "name": "address", "type": "other:inet" })
    );
    assert_eq!(result["columns"][1]["type"], "other:oid");
    // inet's binary form: family (2 = AF_INET), bits, is_cidr, length, bytes.
    assert_eq!(
        result["rows"][0][0],
        json!({ "unsupported": [2, 32, 0, 4, 127, 0, 0, 1] })
    );
    assert_eq!(
        result["rows"][0][1],
        json!({ "unsupported": [0, 0, 0, 42] })
    );
    // Columns are described even when no row comes back.
    let empty = query(&host, &db, "SELECT 1::int4 AS one WHERE false", json!([])).await;
    assert_eq!(
        empty["columns"],
        json!([{ "name": "one", "type": "int32" }])
    );
    assert_eq!(empty["rows"], json!([]));
}

#[tokio::test]
async fn errors_carry_the_servers_fields() {
    let db = TestDatabase::create();
    let (_app, host) = start("\"postgres://127.0.0.1:5432\"", "");
    db.sql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)");
    let address = db.url();

    let (status, body) = pg(&host, json!({ "address": address, "sql": "SELEC 1" })).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["kind"], "query-failed");
    assert_eq!(body["error"]["code"], "42601", "{body}");
    assert_eq!(body["error"]["severity"], "ERROR");

    let (_, body) = pg(
        &host,
        json!({ "address": address, "sql": "SELECT * FROM missing" }),
    )
    .await;
    assert_eq!(body["error"]["code"], "42P01", "{body}");

    let insert = "INSERT INTO items (id, name) VALUES ($1, $2)";
    let params = json!([{ "int32": 1 }, { "str": "a" }]);
    pg(
        &host,
        json!({ "address": address, "op": "execute", "sql": insert, "params": params }),
    )
    .await;
    let (_, body) = pg(
        &host,
        json!({ "address": address, "op": "execute", "sql": insert, "params": params }),
    )
    .await;
    assert_eq!(body["error"]["code"], "23505", "{body}");
    assert!(
        body["error"]["extras"]
            .as_array()
            .unwrap()
            .contains(&json!(["constraint", "items_pkey"])),
        "{body}"
    );

    // Parameters that do not fit: bad-parameter for query, value-conversion-failed for execute.
    let (_, body) = pg(
        &host,
        json!({ "address": address, "sql": "SELECT $1::int4", "params": [{ "str": "x" }] }),
    )
    .await;
    assert_eq!(body["error"]["kind"], "bad-parameter", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("$1"),
        "{body}"
    );
    let (_, body) = pg(&host, json!({ "address": address, "sql": "SELECT $1::uuid", "params": [{ "uuid": "not-a-uuid" }] })).await;
    assert_eq!(body["error"]["kind"], "bad-parameter", "{body}");
    let (_, body) = pg(&host, json!({ "address": address, "op": "execute", "sql": "SELECT $1::int4", "params": [{ "int64": 1 }] })).await;
    assert_eq!(body["error"]["kind"], "value-conversion-failed", "{body}");
    let (_, body) = pg(
        &host,
        json!({ "address": address, "sql": "SELECT $1::int4", "params": [] }),
    )
    .await;
    assert_eq!(body["error"]["kind"], "bad-parameter", "{body}");
    // Nothing was corrupted on the way.
    assert_eq!(db.sql("SELECT count(*) FROM items"), "1");
}

#[tokio::test]
async fn addresses_outside_the_allow_list_are_refused() {
    let db = TestDatabase::create();
    let (_app, host) = start("\"postgres://db.example.com:5432\"", "");
    let (status, body) = pg(&host, json!({ "address": db.url(), "sql": "SELECT 1" })).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["kind"], "connection-failed");
    assert_eq!(
        body["error"]["message"],
        "address postgres://127.0.0.1:5432 is not permitted"
    );
    // Key=value addresses are checked too.
    let kv = format!(
        "host=127.0.0.1 port=5432 user=postgres dbname={} sslmode=disable",
        db.name
    );
    let (_, body) = pg(&host, json!({ "address": kv, "sql": "SELECT 1" })).await;
    assert_eq!(
        body["error"]["message"],
        "address postgres://127.0.0.1:5432 is not permitted"
    );
    assert_eq!(db.connections(), 0);
}

#[tokio::test]
async fn connections_are_pooled_reset_and_bounded() {
    let db = TestDatabase::create();
    let (_app, host) = start(
        "\"postgres://127.0.0.1:5432\"",
        "[outbound_pg]\nmax_connections = 4\n",
    );
    let pid = |body: &Value| body["rows"][0][0]["int32"].as_i64().unwrap();

    // Sequential requests reuse one server connection, and find it clean.
    let first = query(&host, &db, "SELECT pg_backend_pid()", json!([])).await;
    let dirty =
        json!({ "address": db.url(), "op": "execute", "sql": "CREATE TEMP TABLE scratch (x int)" });
    assert_eq!(pg(&host, dirty).await.0, 200);
    query(
        &host,
        &db,
        "SELECT set_config('application_name', 'dirty', false)",
        json!([]),
    )
    .await;
    for _ in 0..5 {
        let again = query(&host, &db, "SELECT pg_backend_pid(), current_setting('application_name'), to_regclass('pg_temp.scratch')::text", json!([])).await;
        assert_eq!(pid(&again), pid(&first), "{again}");
        assert_ne!(
            again["rows"][0][1],
            json!({ "str": "dirty" }),
            "settings are reset: {again}"
        );
        assert_eq!(
            again["rows"][0][2], "db-null",
            "temp tables are dropped: {again}"
        );
    }

    // 64 concurrent requests share at most max_connections server connections.
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let client = host.client();
        let url = host.url("/fixture/pg");
        let body =
            json!({ "address": db.url(), "sql": "SELECT pg_backend_pid(), pg_sleep(0.02)::text" });
        tasks.push(tokio::spawn(async move {
            client.post(url).json(&body).send().await
        }));
    }
    let mut pids = std::collections::HashSet::new();
    let mut peak = 0;
    for task in tasks {
        peak = peak.max(db.connections());
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        pids.insert(pid(&body));
    }
    assert!(pids.len() <= 4, "{} server connections used", pids.len());
    assert!(peak <= 4, "{peak} server connections seen");
    assert!(db.connections() <= 4);
}

/// A released connection goes straight back to its pool after plain
/// statements (its last statement is still the guest's: no reset, no ping),
/// and is reset first after anything that may have changed the session.
#[tokio::test]
async fn only_a_changed_session_is_reset_on_release() {
    let db = TestDatabase::create();
    let (_app, host) = start("\"postgres://127.0.0.1:5432\"", "");
    let pid = |body: &Value| body["rows"][0][0]["int32"].as_i64().unwrap();
    let last_statement = |pid: i64| {
        db.sql(&format!(
            "SELECT query FROM pg_stat_activity WHERE pid = {pid}"
        ))
    };
    let is_reset =
        |statement: &str| statement.starts_with("SET client_min_messages = error; ROLLBACK;");

    let plain = pid(&query(&host, &db, "SELECT pg_backend_pid()", json!([])).await);
    assert_eq!(last_statement(plain), "SELECT pg_backend_pid()");
    let write = "INSERT INTO scratch SELECT pg_backend_pid()";
    db.sql("CREATE TABLE scratch (pid int)");
    let (status, body) = pg(
        &host,
        json!({ "address": db.url(), "op": "execute", "sql": write }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let writer: i64 = db.sql("SELECT pid FROM scratch").parse().unwrap();
    assert_eq!(writer, plain, "sequential requests share the connection");
    assert_eq!(last_statement(plain), write);

    for changes in [
        "SELECT pg_backend_pid(), set_config('application_name', 'dirty', false)",
        "SELECT pg_backend_pid(), pg_advisory_lock(42)",
    ] {
        let used = pid(&query(&host, &db, changes, json!([])).await);
        assert_eq!(used, plain);
        let last = last_statement(used);
        assert!(is_reset(&last), "{changes}: then {last}");
    }
    for changes in ["SET search_path = nowhere", "BEGIN"] {
        let (status, body) = pg(
            &host,
            json!({ "address": db.url(), "op": "execute", "sql": changes }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let last = last_statement(plain);
        assert!(is_reset(&last), "{changes}: then {last}");
        let state = db.sql(&format!(
            "SELECT state FROM pg_stat_activity WHERE pid = {plain}"
        ));
        assert_eq!(state, "idle", "{changes}: no transaction left open");
        let after = query(
            &host,
            &db,
            "SELECT pg_backend_pid(), current_setting('search_path')",
            json!([]),
        )
        .await;
        assert_eq!(pid(&after), plain);
        assert_eq!(
            after["rows"][0][1],
            json!({ "str": "\"$user\", public" }),
            "{after}"
        );
    }
}

/// Two components on one address never get each other's server
/// connections: the pools are per component, so one cannot see session
/// state another left (nor, on a plain release, would it be reset).
#[tokio::test]
async fn components_never_share_a_server_connection() {
    let db = TestDatabase::create();
    let mut manifest =
        chaining_manifest("\"postgres://127.0.0.1:5432\", \"http://internal.spin.internal\"");
    manifest.push_str("allowed_outbound_hosts = [\"postgres://127.0.0.1:5432\"]\n");
    let app = app_with(&manifest, "");
    let host = start_with_rc(&app, &[]);
    let pid = |body: &Value| body["rows"][0][0]["int32"].as_i64().unwrap();
    let (mut outer, mut inner) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for _ in 0..10 {
        outer.insert(pid(&query(
            &host,
            &db,
            "SELECT pg_backend_pid()",
            json!([]),
        )
        .await));
        let url = format!(
            "http://internal.spin.internal/fixture/pg-pid/5432/{}",
            db.name
        );
        let (status, body) = post_json(&host, "/fixture/http", &json!({ "url": url })).await;
        assert_eq!(
            (status, body["status"].as_u64()),
            (200, Some(200)),
            "{body}"
        );
        let answer: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
        inner.insert(pid(&answer));
    }
    assert!(outer.is_disjoint(&inner), "shared: {outer:?} and {inner:?}");
    assert_eq!((outer.len(), inner.len()), (1, 1), "each reuses its own");
}

#[tokio::test]
async fn many_rows_stream_to_the_guest() {
    let db = TestDatabase::create();
    let (_app, host) = start("\"postgres://127.0.0.1:5432\"", "");
    let result = query(
        &host,
        &db,
        "SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g",
        json!([]),
    )
    .await;
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 20000);
    assert_eq!(rows[19999][0], json!({ "int32": 20000 }));
}

#[tokio::test]
async fn a_stopped_database_fails_fast_and_recovers_without_a_restart() {
    let server = PrivatePostgres::start_new();
    let db = TestDatabase::create_on(server.port);
    let (_app, host) = start(&format!("\"postgres://127.0.0.1:{}\"", server.port), "");
    query(&host, &db, "SELECT 1", json!([])).await;

    server.stop();
    let started = Instant::now();
    let (status, body) = pg(&host, json!({ "address": db.url(), "sql": "SELECT 1" })).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 409, "{body}");
    assert!(
        matches!(
            body["error"]["kind"].as_str(),
            Some("connection-failed" | "query-failed")
        ),
        "{body}"
    );
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    // Within the acquire timeout, every time.
    let started = Instant::now();
    let (status, body) = pg(&host, json!({ "address": db.url(), "sql": "SELECT 1" })).await;
    assert_eq!(status, 409, "{body}");
    assert!(started.elapsed() < Duration::from_secs(8));

    server.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = pg(
            &host,
            json!({ "address": db.url(), "sql": "SELECT 2::int4" }),
        )
        .await;
        if status == 200 {
            assert_eq!(body["rows"][0][0], json!({ "int32": 2 }));
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn health_probes_postgres_when_database_url_says_so() {
    use crate::contract::Contract;

    let db = TestDatabase::create();
    let app = crate::support::repo_app("");
    let rc = crate::support::rc_args(&app);
    let rc = rc.each_ref().map(String::as_str);
    let healthy = app.start_with_env(&rc, &[("SPIN_VARIABLE_DATABASE_URL", &db.url())]);
    let response = healthy
        .client()
        .get(healthy.url("/health"))
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json();
    assert_eq!(
        body["components"]["database"]["status"], "healthy",
        "{body}"
    );
    drop(healthy);

    // A database the allow-list does not cover (db_host/db_port not set with it).
    let denied = app.start_with_env(
        &rc,
        &[(
            "SPIN_VARIABLE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5999/x?sslmode=disable",
        )],
    );
    let response = denied
        .client()
        .get(denied.url("/health"))
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json();
    assert_eq!(
        body["components"]["database"]["status"], "unhealthy",
        "{body}"
    );
    assert!(
        body["components"]["database"].get("error").is_none() && !body.to_string().contains("5999"),
        "backend errors are logged, not answered: {body}"
    );
}

#[tokio::test]
async fn connection_builder_verifies_tls_with_a_custom_ca_root() {
    // The machine's PostgreSQL serves TLS with Debian's self-signed snakeoil
    // certificate (for "localhost"): only a client given it as CA root can
    // verify the server.
    let server_certificate = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let Ok(pem) = std::fs::read_to_string(server_certificate) else {
        panic!(
            "{server_certificate} is missing: PostgreSQL's TLS set-up differs from Debian's default"
        );
    };
    let db = TestDatabase::create();
    let (_app, host) = start("\"postgres://localhost:5432\"", "");
    let address = format!(
        "postgres://postgres@localhost:5432/{}?sslmode=verify-full",
        db.name
    );
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

    let (status, body) = pg(
        &host,
        json!({ "address": address, "sql": sql, "ca_root": pem }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rows"][0][0],
        json!({ "boolean": true }),
        "the connection is encrypted"
    );

    // Without the CA root the server cannot be verified.
    let (status, body) = pg(&host, json!({ "address": address, "sql": sql })).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["kind"], "connection-failed", "{body}");

    let (_, body) = pg(
        &host,
        json!({ "address": address, "sql": sql, "ca_root": "not a certificate" }),
    )
    .await;
    assert_eq!(body["error"]["kind"], "other", "{body}");
}
