//! The users component through the real host: registration and its rules,
//! the caller's profile, who may see whom, and the registration race.

use serde_json::{Value, json};

use crate::contract::Contract;
use crate::support::{Host, on_both_backends, repo_app, start_on};

async fn register(host: &Host, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = host.client().post(host.url("/users")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.checked().send().await;
    (response.status().as_u16(), response.json())
}

/// As `register`, for a body the document forbids on purpose.
async fn register_invalid(host: &Host, body: Value) -> (u16, Value) {
    let request = host.client().post(host.url("/users")).json(&body);
    let response = request.checked().invalid_request().send().await;
    (response.status().as_u16(), response.json())
}

async fn token(host: &Host, username: &str, password: &str) -> String {
    let response = host
        .client()
        .post(host.url("/auth/token"))
        .form(&[("username", username), ("password", password)])
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 200, "login {username}");
    let body = response.json();
    body["access_token"].as_str().unwrap().to_string()
}

async fn get(host: &Host, path: &str, token: &str) -> (u16, Value) {
    let response = host
        .client()
        .get(host.url(path))
        .bearer_auth(token)
        .checked()
        .send()
        .await;
    (response.status().as_u16(), response.json())
}

fn alice() -> Value {
    json!({ "email": "alice@example.com", "username": "alice", "password": "alice-password" })
}

on_both_backends!(
    registration_profiles_and_permissions,
    registration_can_be_disabled_except_for_admins,
    the_duplicate_registration_race_has_one_winner,
);

async fn registration_profiles_and_permissions(postgres: bool) {
    let app = repo_app("");
    let (_db, host) = start_on(&app, postgres);

    let (status, created) = register(&host, alice(), None).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["role"], "user");
    assert!(created.get("hashed_password").is_none() && created.get("password").is_none());
    let (status, body) = register(
        &host,
        json!({ "email": "ALICE@example.com", "username": "alice2", "password": "12345678" }),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["detail"]),
        (409, &json!("Email already registered"))
    );
    let (status, body) = register(
        &host,
        json!({ "email": "a2@example.com", "username": "alice", "password": "12345678" }),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["detail"]),
        (409, &json!("Username already taken"))
    );
    let (status, body) = register_invalid(
        &host,
        json!({ "email": "x", "username": "x", "password": "x" }),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"].as_array().unwrap().len(), 3);
    let (status, _) = register(&host, json!({ "email": "m@example.com", "username": "mallory", "password": "12345678", "role": "admin" }), None).await;
    assert_eq!(status, 403, "a non-admin cannot choose a role");

    let alice_token = token(&host, "alice", "alice-password").await;
    let admin_token = token(&host, "admin", "admin-dev-password").await;
    let (status, me) = get(&host, "/users/me", &alice_token).await;
    assert_eq!((status, &me["username"]), (200, &json!("alice")));
    let alice_id = me["id"].as_i64().unwrap();
    assert_eq!(
        get(&host, &format!("/users/{alice_id}"), &alice_token)
            .await
            .0,
        200
    );
    assert_eq!(get(&host, "/users/1", &alice_token).await.0, 403);
    let (status, body) = get(&host, "/users", &alice_token).await;
    assert_eq!(
        (status, &body["detail"]),
        (403, &json!("Not enough permissions"))
    );
    let (status, all) = get(&host, "/users?limit=10", &admin_token).await;
    assert_eq!(status, 200);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(
        get(&host, "/users/9999", &admin_token).await,
        (404, json!({ "detail": "User not found" }))
    );
    let (status, body) = register(&host, json!({ "email": "ops@example.com", "username": "ops", "password": "12345678", "role": "admin" }), Some(&admin_token)).await;
    assert_eq!((status, &body["role"]), (201, &json!("admin")));
    let anonymous = host
        .client()
        .get(host.url("/users/me"))
        .checked()
        .send()
        .await;
    assert_eq!(anonymous.status(), 401);
}

async fn registration_can_be_disabled_except_for_admins(postgres: bool) {
    let app = repo_app("");
    let rc = std::fs::read_to_string(app.path("rc.toml"))
        .unwrap()
        .replace(
            "[variables_provider.values]",
            "[variables_provider.values]\nallow_registration = \"false\"",
        );
    app.write("rc.toml", &rc);
    let (_db, host) = start_on(&app, postgres);
    let (status, body) = register(&host, alice(), None).await;
    assert_eq!(
        (status, &body["detail"]),
        (403, &json!("Registration is disabled"))
    );
    let admin = token(&host, "admin", "admin-dev-password").await;
    assert_eq!(register(&host, alice(), Some(&admin)).await.0, 201);
}

async fn the_duplicate_registration_race_has_one_winner(postgres: bool) {
    let app = repo_app("");
    let (_db, host) = start_on(&app, postgres);
    // Warm up: the first request creates the schema.
    assert_eq!(
        host.client()
            .get(host.url("/items"))
            .checked()
            .send()
            .await
            .status(),
        200
    );
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = host.client();
        let url = host.url("/users");
        let body = json!({ "email": "race@example.com", "username": format!("racer{i}"), "password": "12345678" });
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&body)
                .checked()
                .send()
                .await
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
}
