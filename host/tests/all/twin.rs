//! `nexa-twin` beside `nexa up` on the same data (the same Postgres test
//! database, or the same SQLite files in one state dir): the native handlers
//! answer as the components do, each sees what the other wrote, and both
//! share the read cache's key-value store.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::services::TestDatabase;
use crate::support::{
    AppDir, Host, admin_token, on_both_backends, rc_args, repo_app, status_and_json,
};

/// `nexa up` and `nexa-twin` on one app directory and one database.
struct Pair {
    _app: AppDir,
    host: Host,
    twin: Host,
    _db: Option<TestDatabase>,
}

impl Pair {
    fn start(postgres: bool) -> Self {
        let app = repo_app("");
        let rc = rc_args(&app);
        let rc = rc.each_ref().map(String::as_str);
        let db = postgres.then(TestDatabase::create);
        let url = db.as_ref().map(TestDatabase::url);
        let env: Vec<(&str, &str)> = url
            .as_deref()
            .map(|url| vec![("SPIN_VARIABLE_DATABASE_URL", url)])
            .unwrap_or_default();
        let host = app.start_with_env(&rc, &env);
        let twin = app.start_twin(&rc, &env);
        twin.url("/");
        Self {
            _app: app,
            host,
            twin,
            _db: db,
        }
    }

    fn both(&self) -> [(&str, &Host); 2] {
        [("nexa up", &self.host), ("nexa-twin", &self.twin)]
    }
}

async fn create_item(host: &Host, token: &str, name: &str) -> Value {
    let (status, body) = status_and_json(
        host.client()
            .post(host.url("/items/"))
            .bearer_auth(token)
            .json(&json!({ "name": name, "price": 9.5 })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// GET a path: status, `x-cache` (if any) and the JSON answer.
async fn get(host: &Host, path: &str) -> (u16, Option<String>, Value) {
    let response = host.client().get(host.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string());
    (status, cache, response.json().await.unwrap())
}

async fn twin_and_host_agree(postgres: bool) {
    let pair = Pair::start(postgres);

    // Health: both probes healthy on both.
    for (name, host) in pair.both() {
        let response = host.client().get(host.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "operational", "{name}: {body}");
        assert_eq!(body["components"]["database"]["status"], "healthy");
        assert_eq!(body["components"]["cache"]["status"], "healthy");
    }

    // Logins through each; a token from one is honoured by the other (one
    // sessions table, the same jwt_secret variable).
    let host_token = admin_token(&pair.host).await;
    let twin_token = admin_token(&pair.twin).await;
    for (name, host, token) in [
        ("nexa up", &pair.host, &twin_token),
        ("nexa-twin", &pair.twin, &host_token),
    ] {
        let (status, me) =
            status_and_json(host.client().get(host.url("/users/me")).bearer_auth(token)).await;
        assert_eq!((status, &me["username"]), (200, &json!("admin")), "{name}");
    }

    // An item created through one is read through the other, byte for byte.
    let made_by_twin = create_item(&pair.twin, &twin_token, "from the twin").await;
    let made_by_host = create_item(&pair.host, &host_token, "from the host").await;
    for item in [&made_by_twin, &made_by_host] {
        let path = format!("/items/{}", item["id"]);
        let (_, _, through_host) = get(&pair.host, &path).await;
        let (_, _, through_twin) = get(&pair.twin, &path).await;
        assert_eq!(&through_host, item);
        assert_eq!(&through_twin, item);
    }

    // The read cache: one key-value store for both. After a write (a new
    // generation) the first read misses and fills, the other process hits.
    let path = format!("/items/{}", made_by_twin["id"]);
    create_item(&pair.host, &host_token, "a write").await;
    assert_eq!(get(&pair.twin, &path).await.1.as_deref(), Some("miss"));
    assert_eq!(get(&pair.host, &path).await.1.as_deref(), Some("hit"));
    assert_eq!(get(&pair.twin, &path).await.1.as_deref(), Some("hit"));
    create_item(&pair.twin, &twin_token, "another write").await;
    assert_eq!(get(&pair.host, &path).await.1.as_deref(), Some("miss"));
    assert_eq!(get(&pair.twin, &path).await.1.as_deref(), Some("hit"));

    // Errors: the same status and body from both.
    let errors = [
        ("GET", "/items/999999999", None),
        ("GET", "/items/abc", None),
        ("GET", "/items?limit=0", None),
        ("GET", "/users/me", None),
        ("POST", "/items", Some(json!({ "name": "", "price": -1 }))),
        ("DELETE", "/health", None),
        ("GET", "/no/such/path", None),
    ];
    for (method, path, body) in errors {
        let mut answers = Vec::new();
        for (_, host) in pair.both() {
            let mut request = host
                .client()
                .request(method.parse().unwrap(), host.url(path));
            if let Some(body) = &body {
                request = request.bearer_auth(&twin_token);
                request = request.json(body);
            }
            answers.push(status_and_json(request).await);
        }
        assert_eq!(answers[0], answers[1], "{method} {path}");
        assert!(answers[0].0 >= 400, "{method} {path}: {:?}", answers[0]);
    }
    let (status, _, body) = get(&pair.twin, "/items/999999999").await;
    assert_eq!((status, body), (404, json!({ "detail": "Item not found" })));
    let (status, _, body) = get(&pair.twin, "/").await;
    assert_eq!((status, body), (404, json!({ "detail": "Not Found" })));

    // The request id: a sane one is echoed by both, an insane one replaced.
    for (name, host) in pair.both() {
        let response = host
            .client()
            .get(host.url("/items/1"))
            .header("x-request-id", "trace-42")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-42", "{name}");
        let response = host
            .client()
            .get(host.url("/items/1"))
            .header("x-request-id", "not sane!")
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 32, "{name}: {id}");
    }
}

on_both_backends!(twin_and_host_agree);

/// Runs `nexa-twin` expecting it to fail before serving; returns its stderr.
fn twin_failure(app: &AppDir, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_nexa-twin"))
        .arg("-f")
        .arg(app.path("spin.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "nexa-twin served:\n{stderr}");
    assert!(!stderr.contains("Serving http://"), "{stderr}");
    stderr
}

/// The "Error: …" line and its causes.
fn error_report(stderr: &str) -> String {
    let at = stderr.find("Error: ").expect("an error report");
    stderr[at..].trim().to_string()
}

#[test]
fn start_up_errors_read_as_nexa_ups() {
    let app = repo_app("");
    // No runtime config: admin_password and jwt_secret have no value.
    let twin = twin_failure(&app, &[], &[]);
    let host = app.start_failure(&[]);
    assert_eq!(error_report(&twin), error_report(&host));
    assert!(
        twin.contains("variable `admin_password` is required"),
        "{twin}"
    );

    let rc = rc_args(&app);
    let rc = rc.each_ref().map(String::as_str);
    let twin = twin_failure(
        &app,
        &rc,
        &[("SPIN_VARIABLE_DATABASE_URL", "mysql://db.example/app")],
    );
    assert!(
        error_report(&twin).contains("variable database_url"),
        "{twin}"
    );
    assert!(
        twin.contains("must be empty (embedded SQLite) or a postgres:// URL"),
        "{twin}"
    );
    let twin = twin_failure(
        &app,
        &rc,
        &[("SPIN_VARIABLE_DATABASE_URL", "postgres://a,b/app")],
    );
    assert!(twin.contains("only one host may be given"), "{twin}");
}
