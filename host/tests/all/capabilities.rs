//! The Spin capabilities through the fixture component: key-value (embedded
//! and Redis, with label allow-lists), SQLite, variables.

use serde_json::{Value, json};

use crate::support::{
    AppDir, SECRET_RUNTIME_CONFIG, fixture_host, fixture_manifest, get_json, unique,
};

#[tokio::test]
async fn key_value_round_trip_on_the_embedded_store() {
    let (_app, host) = fixture_host("");
    let client = host.client();
    let url = |key: &str| host.url(&format!("/fixture/kv/default/{key}"));

    let missing = client.get(url("a")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    for (key, value) in [("b", "2"), ("a", "1"), ("a", "one")] {
        let response = client.put(url(key)).body(value).send().await.unwrap();
        assert_eq!(response.status(), 204);
    }
    assert_eq!(
        client
            .get(url("a"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "one"
    );
    assert_eq!(client.head(url("b")).send().await.unwrap().status(), 200);
    let (_, keys) = get_json(&host, "/fixture/kv-keys/default").await;
    assert_eq!(keys["keys"], json!(["a", "b"]));
    assert_eq!(client.delete(url("a")).send().await.unwrap().status(), 204);
    assert_eq!(client.get(url("a")).send().await.unwrap().status(), 404);
    assert_eq!(client.head(url("a")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn key_value_on_redis_shares_state_across_hosts() {
    let manifest = fixture_manifest("key_value_stores = [\"default\", \"shared\"]");
    let runtime_config = format!(
        "{SECRET_RUNTIME_CONFIG}\n[key_value_store.shared]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n"
    );
    let first_app = AppDir::new(&manifest);
    first_app.write("rc.toml", &runtime_config);
    let second_app = AppDir::new(&manifest);
    second_app.write("rc.toml", &runtime_config);
    let first = first_app.start(&[
        "--runtime-config-file",
        first_app.path("rc.toml").to_str().unwrap(),
    ]);
    let second = second_app.start(&[
        "--runtime-config-file",
        second_app.path("rc.toml").to_str().unwrap(),
    ]);
    let client = first.client();
    let key = unique("nexa-test-kv");

    let put = client
        .put(first.url(&format!("/fixture/kv/shared/{key}")))
        .body("from-first")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let got = client
        .get(second.url(&format!("/fixture/kv/shared/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "from-first");
    // The embedded `default` store is per host: nothing leaks between them.
    client
        .put(first.url(&format!("/fixture/kv/default/{key}")))
        .body("local")
        .send()
        .await
        .unwrap();
    let other = client
        .get(second.url(&format!("/fixture/kv/default/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    let deleted = client
        .delete(second.url(&format!("/fixture/kv/shared/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = client
        .get(first.url(&format!("/fixture/kv/shared/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn key_value_labels_outside_the_allow_list_are_denied() {
    // `audit` is defined in the runtime config but not granted to the fixture.
    let app = AppDir::new(&fixture_manifest("key_value_stores = [\"default\"]"));
    app.write(
        "rc.toml",
        &format!("{SECRET_RUNTIME_CONFIG}\n[key_value_store.audit]\ntype = \"spin\"\npath = \"audit.db\"\n"),
    );
    let host = app.start(&[
        "--runtime-config-file",
        app.path("rc.toml").to_str().unwrap(),
    ]);
    let client = host.client();
    for label in ["audit", "undefined-anywhere"] {
        let response = client
            .get(host.url(&format!("/fixture/kv/{label}/k")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 409);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["kv_error"], "access-denied", "{label}: {body}");
    }
}

#[tokio::test]
async fn sqlite_executes_statements_with_parameters() {
    let (_app, host) = fixture_host("");
    let client = host.client();
    let sql = |sql: &str, params: Value| {
        client
            .post(host.url("/fixture/sqlite/default"))
            .json(&json!({ "sql": sql, "params": params }))
            .send()
    };
    let created = sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, score REAL, raw BLOB)",
        json!([]),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 200);
    let inserted: Value = sql(
        "INSERT INTO notes (body, score, raw) VALUES (?, ?, ?)",
        json!(["héllo'; DROP TABLE notes; --", 2.5, [0, 159, 255]]),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(inserted["changes"], 1, "{inserted}");
    assert_eq!(inserted["last_insert_rowid"], 1, "{inserted}");
    let rows: Value = sql(
        "SELECT id, body, score, raw, NULL AS empty FROM notes WHERE id = ?",
        json!([1]),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        rows["columns"],
        json!(["id", "body", "score", "raw", "empty"]),
        "{rows}"
    );
    assert_eq!(
        rows["rows"],
        json!([[1, "héllo'; DROP TABLE notes; --", 2.5, { "blob": [0, 159, 255] }, null]])
    );
    let error: Value = sql("SELECT * FROM no_such_table", json!([]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        error["sqlite_error"]
            .as_str()
            .unwrap()
            .contains("no such table"),
        "{error}"
    );
}

#[tokio::test]
async fn sqlite_databases_outside_the_allow_list_are_denied() {
    let (_app, host) = fixture_host("");
    let response = host
        .client()
        .post(host.url("/fixture/sqlite/reports"))
        .json(&json!({ "sql": "SELECT 1" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(
        body["sqlite_error"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{body}"
    );
}

#[tokio::test]
async fn variables_are_templated_from_providers() {
    let (_app, host) = fixture_host("");
    let (_, message) = get_json(&host, "/fixture/var/message").await;
    assert_eq!(message["value"], "hello, swordfish");
    // App variables are not visible unless the component maps them.
    let (_, undefined) = get_json(&host, "/fixture/var/greeting").await;
    assert!(
        undefined["error"].as_str().unwrap().contains("Undefined"),
        "{undefined}"
    );
    let (_, invalid) = get_json(&host, "/fixture/var/Not-A-Name").await;
    assert!(
        invalid["error"].as_str().unwrap().contains("InvalidName"),
        "{invalid}"
    );
}

/// Spin's order: the runtime config's providers as listed, then the
/// `SPIN_VARIABLE_*` environment last; an explicit env provider counts at its
/// place in the list.
#[tokio::test]
async fn variable_providers_are_consulted_in_spins_order() {
    let app = AppDir::new(&fixture_manifest(
        "variables = { message = \"{{ greeting }}, {{ secret_word }}\" }",
    ));
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    app.write(
        "env-first.toml",
        &format!("[[variables_provider]]\ntype = \"env\"\n{SECRET_RUNTIME_CONFIG}"),
    );
    let env = [
        ("SPIN_VARIABLE_GREETING", "greeting-from-env"),
        ("SPIN_VARIABLE_SECRET_WORD", "secret-from-env"),
    ];
    // The static provider wins for what it defines; the environment fills the rest.
    let host = app.start_with_env(
        &[
            "--runtime-config-file",
            app.path("rc.toml").to_str().unwrap(),
        ],
        &env,
    );
    let (_, message) = get_json(&host, "/fixture/var/message").await;
    assert_eq!(message["value"], "greeting-from-env, swordfish");
    drop(host);

    let host = app.start_with_env(
        &[
            "--runtime-config-file",
            app.path("env-first.toml").to_str().unwrap(),
        ],
        &env,
    );
    let (_, message) = get_json(&host, "/fixture/var/message").await;
    assert_eq!(message["value"], "greeting-from-env, secret-from-env");
}

/// Every capability call passes through one hook (bindgen's tracing spans,
/// recorded by the host): the host's shutdown summary counts them by
/// capability, operation and outcome.
#[tokio::test]
async fn capability_calls_are_recorded_in_one_place() {
    let (_app, mut host) = fixture_host("");
    let client = host.client();
    let url = host.url("/fixture/kv/default/recorded");
    let put = client.put(&url).body("v").send().await.unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let (_, message) = get_json(&host, "/fixture/var/message").await;
    assert!(message["value"].is_string(), "{message}");
    let (_, denied) = get_json(&host, "/fixture/kv/not-granted/x").await;
    assert!(denied.to_string().contains("access-denied"), "{denied}");

    let log = host.terminate_and_wait();
    let line = |capability: &str, operation: &str| {
        crate::support::events(&log)
            .into_iter()
            .find(|line| {
                line["message"] == "capability calls"
                    && line["capability"] == capability
                    && line["operation"] == operation
            })
            .unwrap_or_else(|| panic!("no record of {capability} {operation}:\n{log}"))
    };
    assert_eq!(line("key-value", "[method]store.set")["ok"], 1, "{log}");
    assert_eq!(line("key-value", "[method]store.get")["ok"], 1, "{log}");
    assert_eq!(line("variables", "get")["ok"], 1, "{log}");
    // The refused open is the interface's error, not a trap.
    let open = line("key-value", "[static]store.open");
    assert_eq!(
        (&open["error"], &open["trap"]),
        (&1.into(), &0.into()),
        "{open}"
    );
    // WASI plumbing (HTTP fields and the like) is not a capability.
    assert!(
        !crate::support::logged(&log, &[("capability", "types".into())]),
        "{log}"
    );
    // Values never reach the log.
    assert!(!log.contains("swordfish"), "{log}");
}
