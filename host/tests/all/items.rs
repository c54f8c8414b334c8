//! The items component through the real host, on embedded SQLite and on
//! PostgreSQL: seeded data, pages, validation, and writes with tokens forged
//! here (the auth component issues real ones).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::contract::{Checked, Contract, Exchange};
use crate::services::TestDatabase;
use crate::support::{AppDir, Backend, Host, rc_args, repo_app, start_on};

const SECRET: &str = "dev-only-secret-change-me-0123456789abcdef";

struct Api {
    app: AppDir,
    host: Host,
    backend: Backend,
}

impl Api {
    fn start(postgres: bool) -> Self {
        let app = repo_app("");
        let (backend, host) = start_on(&app, postgres);
        Self { app, host, backend }
    }

    /// Runs SQL against the app's database, as an operator would.
    fn sql(&self, sql: &str) -> String {
        match &self.backend {
            Backend::Postgres(db) => db.sql(sql),
            Backend::Sqlite => {
                let output = std::process::Command::new("python3")
                    .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print('\\n'.join('|'.join(str(v) for v in row) for row in r))"])
                    .arg(self.app.path(".spin/sqlite_db.db"))
                    .arg(sql)
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                String::from_utf8_lossy(&output.stdout).trim().to_string()
            }
        }
    }

    /// A user with an open session, and a token for it.
    fn user(&self, username: &str, role: &str) -> (i64, String) {
        self.sql(&format!(
            "INSERT INTO users (email, username, hashed_password, role) VALUES ('{username}@example.com', '{username}', 'x', '{role}')"
        ));
        let id: i64 = self
            .sql(&format!(
                "SELECT id FROM users WHERE username = '{username}'"
            ))
            .parse()
            .unwrap();
        let session = format!("session-{username}");
        self.sql(&format!(
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ('{session}', {id}, '2999-01-01T00:00:00Z')"
        ));
        (id, token(id, username, role, &session, 600))
    }

    /// A request, checked against openapi.json when sent.
    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Exchange {
        let mut request = self
            .host
            .client()
            .request(method.parse().unwrap(), self.host.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.checked()
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        answer(self.request(method, path, token, body).send().await)
    }

    /// As `send`, for a body the document forbids on purpose.
    async fn send_invalid(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let request = self.request(method, path, token, Some(body));
        answer(request.invalid_request().send().await)
    }
}

fn answer(response: Checked) -> (u16, Value, reqwest::header::HeaderMap) {
    (
        response.status().as_u16(),
        response.json(),
        response.headers().clone(),
    )
}

fn token(user: i64, username: &str, role: &str, session: &str, ttl: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "sub": user.to_string(), "username": username, "role": role,
        "iat": now, "exp": now + ttl, "jti": session, "iss": "nexa", "aud": "nexa-api",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn reads(api: &Api) {
    let (status, all, _) = api.send("GET", "/items", None, None).await;
    assert_eq!(status, 200, "{all}");
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Laptop",
            "Smartphone",
            "Headphones",
            "Tablet",
            "Smartwatch",
            "Camera",
            "Monitor",
            "Keyboard",
            "Mouse",
            "Speakers"
        ]
    );
    assert_eq!(all[5]["is_available"], false);
    let (_, slash, _) = api.send("GET", "/items/", None, None).await;
    assert_eq!(slash, all, "with and without the trailing slash");
    let (_, page, _) = api.send("GET", "/items?skip=2&limit=3", None, None).await;
    let ids: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 4, 5]);
    let (_, newest, _) = api
        .send("GET", "/items?order=desc&skip=1&limit=3", None, None)
        .await;
    let ids: Vec<i64> = newest
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [9, 8, 7], "newest first, paged from the newest");
    let (status, bad_order, _) = api.send("GET", "/items?order=up", None, None).await;
    assert_eq!(status, 422);
    assert_eq!(bad_order["detail"][0]["loc"], json!(["query", "order"]));

    let (status, laptop, _) = api.send("GET", "/items/1", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(laptop["name"], "Laptop");
    for key in [
        "id",
        "name",
        "description",
        "price",
        "is_available",
        "owner_id",
        "created_at",
        "updated_at",
    ] {
        assert!(laptop.get(key).is_some(), "{key} missing: {laptop}");
    }
    let (status, missing, _) = api.send("GET", "/items/9999", None, None).await;
    assert_eq!(
        (status, missing),
        (404, json!({ "detail": "Item not found" }))
    );
    let (status, bad, _) = api.send("GET", "/items?limit=0&skip=-1", None, None).await;
    assert_eq!(status, 422);
    let locs: Vec<&Value> = bad["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["loc"])
        .collect();
    assert_eq!(
        locs,
        [&json!(["query", "limit"]), &json!(["query", "skip"])],
        "in the query's order"
    );
    let (status, _, headers) = api.send("DELETE", "/items", None, None).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET, HEAD, POST");
}

async fn writes(api: &Api) {
    // The first request creates the schema and seeds it.
    assert_eq!(api.send("GET", "/items", None, None).await.0, 200);
    let (admin_token, (alice, alice_token), (_, bob_token)) = {
        let admin = token(1, "admin", "admin", "session-admin", 600);
        api.sql("INSERT INTO sessions (id, user_id, expires_at) VALUES ('session-admin', 1, '2999-01-01T00:00:00Z')");
        (admin, api.user("alice", "user"), api.user("bob", "user"))
    };
    let new =
        json!({ "name": "Lamp 💡 '); DROP TABLE items;--", "price": "12.5", "description": null });

    // Who may write.
    let (status, body, headers) = api.send("POST", "/items", None, Some(new.clone())).await;
    assert_eq!(
        (status, &body["detail"]),
        (401, &json!("Not authenticated"))
    );
    assert_eq!(headers["www-authenticate"], "Bearer");
    let expired = token(alice, "alice", "user", "session-alice", -10);
    // Right claims, signed with another secret.
    let forged = {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({
            "sub": alice.to_string(), "username": "alice", "role": "admin", "iat": now, "exp": now + 600,
            "jti": "session-alice", "iss": "nexa", "aud": "nexa-api",
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"an-attackers-guess-at-the-secret-0123"),
        )
        .unwrap()
    };
    for bad in [expired.as_str(), forged.as_str(), "garbage"] {
        let (status, body, _) = api
            .send("POST", "/items", Some(bad), Some(new.clone()))
            .await;
        assert_eq!(
            (status, &body["detail"]),
            (401, &json!("Invalid authentication credentials"))
        );
    }

    let (status, created, headers) = api
        .send("POST", "/items", Some(&alice_token), Some(new.clone()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(headers["location"], format!("/items/{id}"));
    assert_eq!(created["owner_id"], alice);
    assert_eq!(
        created["name"], "Lamp 💡 '); DROP TABLE items;--",
        "stored verbatim"
    );
    assert_eq!(created["is_available"], true);
    let raw = api
        .host
        .client()
        .get(api.host.url(&format!("/items/{id}")))
        .checked()
        .send()
        .await
        .text();
    assert!(raw.contains("\"price\":12.50"), "two decimals: {raw}");

    let path = format!("/items/{id}");
    let (status, body, _) = api
        .send(
            "PATCH",
            &path,
            Some(&bob_token),
            Some(json!({ "price": 1 })),
        )
        .await;
    assert_eq!(
        (status, &body["detail"]),
        (403, &json!("Not enough permissions"))
    );
    let (status, patched, _) = api
        .send(
            "PATCH",
            &path,
            Some(&alice_token),
            Some(json!({ "price": 99999999.99 })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], created["name"]);
    let (status, replaced, _) = api
        .send(
            "PUT",
            &path,
            Some(&admin_token),
            Some(json!({ "name": "Desk lamp", "price": 20 })),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (replaced["name"].clone(), replaced["description"].clone()),
        (json!("Desk lamp"), Value::Null)
    );

    // An admin may give an item away, but only to a user who exists (422
    // owner_not_found, as the document says, on both backends).
    let unknown_owner = json!({ "name": "Gift", "price": 1, "owner_id": 999_999 });
    for (method, target) in [("POST", "/items"), ("PATCH", path.as_str())] {
        let (status, body, _) = api
            .send(
                method,
                target,
                Some(&admin_token),
                Some(unknown_owner.clone()),
            )
            .await;
        assert_eq!(status, 422, "{method}: {body}");
        assert_eq!(body["detail"][0]["type"], "owner_not_found");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "owner_id"]));
    }

    // Bad input never changes anything.
    for invalid in [
        json!({ "name": "x", "price": 1, "owner_id": 0 }),
        json!({ "name": "x", "price": 1, "owner_id": null }),
        json!({ "name": "x", "price": "100000000" }),
        json!({ "name": "x", "price": "1e2" }),
        json!({ "name": " \t ", "price": 1 }),
    ] {
        let (status, body, _) = api
            .send_invalid("POST", "/items", Some(&admin_token), invalid.clone())
            .await;
        assert_eq!(status, 422, "{invalid}: {body}");
    }
    let (status, body, _) = api
        .send_invalid(
            "PATCH",
            &path,
            Some(&alice_token),
            json!({ "price": 12.345 }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "price"]));
    let response = api
        .host
        .client()
        .post(api.host.url("/items"))
        .bearer_auth(&alice_token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .checked()
        .invalid_request()
        .send()
        .await;
    assert_eq!(response.status(), 422);
    let body = response.json();
    assert_eq!(body["detail"][0]["type"], "json_invalid");
    let response = api
        .host
        .client()
        .post(api.host.url("/items"))
        .bearer_auth(&alice_token)
        .header("content-type", "text/plain")
        .body("name=x")
        .checked()
        .invalid_request()
        .send()
        .await;
    assert_eq!(response.status(), 415);
    let (_, after, _) = api.send("GET", &path, None, None).await;
    assert_eq!(after["price"], json!(20.0));

    // A revoked session ends the token at once.
    api.sql(
        "UPDATE sessions SET revoked = TRUE WHERE id = 'session-bob'"
            .replace(
                "TRUE",
                if matches!(api.backend, Backend::Sqlite) {
                    "1"
                } else {
                    "TRUE"
                },
            )
            .as_str(),
    );
    let (status, _, _) = api
        .send("POST", "/items", Some(&bob_token), Some(new.clone()))
        .await;
    assert_eq!(status, 401);

    // 20 concurrent creates: 20 rows, no 500.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = api.host.client();
        let url = api.host.url("/items");
        let token = alice_token.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "name": format!("bulk {i}"), "price": i }))
                .checked()
                .send()
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().status(), 201);
    }
    assert_eq!(
        api.sql("SELECT count(*) FROM items WHERE name LIKE 'bulk %'"),
        "20"
    );

    let (status, _, _) = api.send("DELETE", &path, Some(&bob_token), None).await;
    assert_eq!(status, 401);
    let (status, _, _) = api.send("DELETE", &path, Some(&alice_token), None).await;
    assert_eq!(status, 204);
    let (status, _, _) = api.send("GET", &path, None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn reads_on_sqlite() {
    reads(&Api::start(false)).await;
}

#[tokio::test]
async fn reads_on_postgres() {
    reads(&Api::start(true)).await;
}

#[tokio::test]
async fn writes_on_sqlite() {
    writes(&Api::start(false)).await;
}

#[tokio::test]
async fn writes_on_postgres() {
    writes(&Api::start(true)).await;
}

// ---- the read cache ------------------------------------------------------------

async fn get_cached(host: &Host, path: &str) -> (String, Value) {
    let response = host.client().get(host.url(path)).checked().send().await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["x-cache"].to_str().unwrap().to_string();
    (cache, response.json())
}

#[tokio::test]
async fn reads_are_cached_until_a_write_commits() {
    let api = Api::start(false);
    let (first, item) = get_cached(&api.host, "/items/1").await;
    assert_eq!(first, "miss");
    let (second, again) = get_cached(&api.host, "/items/1").await;
    assert_eq!((second.as_str(), &again), ("hit", &item));
    let (_, _) = get_cached(&api.host, "/items?limit=5").await;
    assert_eq!(get_cached(&api.host, "/items?limit=5").await.0, "hit");

    let admin = token(1, "admin", "admin", "session-admin", 600);
    api.sql("INSERT INTO sessions (id, user_id, expires_at) VALUES ('session-admin', 1, '2999-01-01T00:00:00Z')");
    let (status, _, _) = api
        .send(
            "PATCH",
            "/items/1",
            Some(&admin),
            Some(json!({ "price": "1.25" })),
        )
        .await;
    assert_eq!(status, 200);
    let (after, fresh) = get_cached(&api.host, "/items/1").await;
    assert_eq!(
        (after.as_str(), &fresh["price"]),
        ("miss", &json!(1.25)),
        "no stale read after a write"
    );
    let (list_after, page) = get_cached(&api.host, "/items?limit=5").await;
    assert_eq!(
        (list_after.as_str(), &page[0]["price"]),
        ("miss", &json!(1.25))
    );
}

#[tokio::test]
async fn hosts_sharing_a_redis_cache_never_serve_stale_reads() {
    // A Redis of this test's own: the cache's keys are the app's, not the test's.
    let redis = crate::services::PrivateRedis::start_new();
    let db = TestDatabase::create();
    let start = || {
        let app = repo_app(&format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url()
        ));
        let rc = rc_args(&app);
        let rc = rc.each_ref().map(String::as_str);
        let host = app.start_with_env(&rc, &[("SPIN_VARIABLE_DATABASE_URL", &db.url())]);
        (app, host)
    };
    let (_a_app, a) = start();
    let (_b_app, b) = start();
    let api_a = Api {
        app: _a_app,
        host: a,
        backend: Backend::Sqlite,
    };
    assert_eq!(get_cached(&api_a.host, "/items/2").await.0, "miss");
    assert_eq!(
        get_cached(&b, "/items/2").await.0,
        "hit",
        "one cache for both hosts"
    );

    db.sql("INSERT INTO sessions (id, user_id, expires_at) VALUES ('session-admin', 1, '2999-01-01T00:00:00Z')");
    let admin = token(1, "admin", "admin", "session-admin", 600);
    for round in 0..5 {
        let price = format!("{}.50", 10 + round);
        let (status, _, _) = api_a
            .send(
                "PATCH",
                "/items/2",
                Some(&admin),
                Some(json!({ "price": price })),
            )
            .await;
        assert_eq!(status, 200);
        let (_, on_b) = get_cached(&b, "/items/2").await;
        assert_eq!(
            on_b["price"].as_f64(),
            price.parse::<f64>().ok(),
            "round {round}"
        );
        let (cache, _) = get_cached(&b, "/items/2").await;
        assert_eq!(cache, "hit");
    }
    db.assert_app_schema_here();
}

#[tokio::test]
async fn losing_the_cache_store_only_costs_speed() {
    let app =
        repo_app("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    for _ in 0..2 {
        let (cache, item) = get_cached(&host, "/items/1").await;
        assert_eq!((cache.as_str(), &item["name"]), ("miss", &json!("Laptop")));
    }
}
