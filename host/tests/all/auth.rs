//! The auth component through the real host: tokens from form, multipart and
//! JSON logins, refresh rotation and reuse detection, logout, throttling.

use serde_json::{Value, json};

use crate::support::{Host, rc_args, repo_app};

const ADMIN_PASSWORD: &str = "admin-dev-password";

async fn login(host: &Host, form: &[(&str, &str)]) -> reqwest::Response {
    host.client()
        .post(host.url("/auth/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn create_item(host: &Host, access: &str) -> u16 {
    host.client()
        .post(host.url("/items"))
        .bearer_auth(access)
        .json(&json!({ "name": "from a real token", "price": 1 }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn refresh(host: &Host, token: &str) -> reqwest::Response {
    host.client()
        .post(host.url("/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn token_refresh_and_logout() {
    let app = repo_app("");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));

    // Three ways to send credentials.
    let response = login(
        &host,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/auth"),
        "{cookie}"
    );
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 1800);
    assert!(cookie.starts_with(&format!(
        "refresh_token={};",
        tokens["refresh_token"].as_str().unwrap()
    )));
    let json_login = host
        .client()
        .post(host.url("/auth/token"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_login.status(), 200);
    let multipart = reqwest::multipart::Form::new()
        .text("username", "admin")
        .text("password", ADMIN_PASSWORD);
    let multipart_login = host
        .client()
        .post(host.url("/auth/token"))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(multipart_login.status(), 200);

    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(create_item(&host, access).await, 201);

    // Refresh rotates: the new token works once, the old one never again,
    // and presenting the old one revokes the session.
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let rotated = refresh(&host, &first).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let replay = refresh(&host, &first).await;
    assert_eq!(replay.status(), 401);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["detail"], "Invalid refresh token");
    assert_eq!(
        refresh(&host, &second).await.status(),
        401,
        "the session was revoked"
    );
    assert_eq!(
        create_item(&host, access).await,
        401,
        "so were its access tokens"
    );

    // The cookie alone refreshes, with an empty body.
    let fresh: Value = login(
        &host,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await
    .json()
    .await
    .unwrap();
    let by_cookie = host
        .client()
        .post(host.url("/auth/refresh"))
        .header(
            "cookie",
            format!("refresh_token={}", fresh["refresh_token"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let by_cookie: Value = by_cookie.json().await.unwrap();

    // Logout ends the session at once and clears the cookie.
    let access = by_cookie["access_token"].as_str().unwrap();
    let logout = host
        .client()
        .post(host.url("/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(create_item(&host, access).await, 401);
    let again = host
        .client()
        .post(host.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
}

#[tokio::test]
async fn bad_logins_are_refused_then_throttled() {
    let app = repo_app("");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));

    let response = login(&host, &[("username", "admin"), ("password", "wrong")]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "Incorrect username or password");
    let unknown = login(&host, &[("username", "nobody"), ("password", "whatever")]).await;
    assert_eq!(unknown.status(), 401);
    let missing = login(&host, &[("username", "admin")]).await;
    assert_eq!(missing.status(), 422);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "password"]));
    let text = host
        .client()
        .post(host.url("/auth/token"))
        .header("content-type", "text/plain")
        .body("admin")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let get = host
        .client()
        .get(host.url("/auth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");

    // Five failures in all (one above, four here), then the right password is
    // refused too, with an honest Retry-After.
    for _ in 0..4 {
        login(&host, &[("username", "admin"), ("password", "wrong")]).await;
    }
    let locked = login(
        &host,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(locked.status(), 429);
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((290..=300).contains(&retry_after), "{retry_after}");
}
