//! The auth component through the real host: tokens from form, multipart and
//! JSON logins, refresh rotation and reuse detection, a session's absolute
//! lifetime, logout, throttling per (username, client) and per username.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;

use crate::contract::{Checked, Contract};
use crate::support::{Host, on_both_backends, repo_app, start_on};

use crate::support::ADMIN_PASSWORD;

async fn login(host: &Host, form: &[(&str, &str)]) -> Checked {
    host.client()
        .post(host.url("/auth/token"))
        .form(form)
        .checked()
        .send()
        .await
}

/// A client whose connections come from `127.0.0.<n>`, so the host sees
/// another client address (all of 127.0.0.0/8 is loopback on Linux; the
/// default client's is 127.0.0.1).
fn client_at(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .local_address(IpAddr::from([127, 0, 0, n]))
        .build()
        .unwrap()
}

async fn login_from(host: &Host, n: u8, form: &[(&str, &str)]) -> Checked {
    client_at(n)
        .post(host.url("/auth/token"))
        .form(form)
        .checked()
        .send()
        .await
}

/// A runtime config section giving the auth variable `name` the value `value`
/// (after the development values, which do not set it).
fn variable(name: &str, value: &str) -> String {
    format!(
        "[[variables_provider]]\ntype = \"static\"\n[variables_provider.values]\n{name} = \"{value}\"\n"
    )
}

/// The `Max-Age` of a `Set-Cookie` value.
fn max_age(set_cookie: &str) -> u64 {
    set_cookie
        .split("; ")
        .find_map(|attribute| attribute.strip_prefix("Max-Age="))
        .unwrap_or_else(|| panic!("no Max-Age in {set_cookie}"))
        .parse()
        .unwrap()
}

async fn create_item(host: &Host, access: &str) -> u16 {
    host.client()
        .post(host.url("/items"))
        .bearer_auth(access)
        .json(&json!({ "name": "from a real token", "price": 1 }))
        .checked()
        .send()
        .await
        .status()
        .as_u16()
}

async fn refresh(host: &Host, token: &str) -> Checked {
    host.client()
        .post(host.url("/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .checked()
        .send()
        .await
}

on_both_backends!(
    token_refresh_and_logout,
    sessions_end_at_their_absolute_lifetime,
    bad_logins_are_refused_then_throttled,
    concurrent_refreshes_of_one_token_have_one_winner,
    parallel_guessing_is_throttled,
    many_clients_make_the_username_wait_briefly,
);

async fn token_refresh_and_logout(postgres: bool) {
    let app = repo_app("");
    let (_db, host) = start_on(&app, postgres);

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
    let tokens = response.json();
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
        .checked()
        .send()
        .await;
    assert_eq!(json_login.status(), 200);
    let multipart = reqwest::multipart::Form::new()
        .text("username", "admin")
        .text("password", ADMIN_PASSWORD);
    let multipart_login = host
        .client()
        .post(host.url("/auth/token"))
        .multipart(multipart)
        .checked()
        .send()
        .await;
    assert_eq!(multipart_login.status(), 200);
    // Extra fields are ignored whatever their names, even ones a strict
    // multipart parser refuses (urllib3 sends ESC and DEL unescaped).
    let odd_names = reqwest::multipart::Form::new()
        .percent_encode_noop()
        .text("grant_type", "password")
        .text("\u{1b}[0m\u{7f}", "ignored")
        .text("username", "admin")
        .text("password", ADMIN_PASSWORD);
    let odd_login = host
        .client()
        .post(host.url("/auth/token"))
        .multipart(odd_names)
        .checked()
        .send()
        .await;
    assert_eq!(odd_login.status(), 200, "{}", odd_login.text());

    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(create_item(&host, access).await, 201);

    // Refresh rotates: the new token works once, the old one never again,
    // and presenting the old one revokes the session.
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let rotated = refresh(&host, &first).await;
    assert_eq!(rotated.status(), 200);
    let rotated = rotated.json();
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let replay = refresh(&host, &first).await;
    assert_eq!(replay.status(), 401);
    let body = replay.json();
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
    let fresh = login(
        &host,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await
    .json();
    let by_cookie = host
        .client()
        .post(host.url("/auth/refresh"))
        .header(
            "cookie",
            format!("refresh_token={}", fresh["refresh_token"].as_str().unwrap()),
        )
        .checked()
        .send()
        .await;
    assert_eq!(by_cookie.status(), 200);
    let by_cookie = by_cookie.json();

    // Logout ends the session at once and clears the cookie.
    let access = by_cookie["access_token"].as_str().unwrap();
    let logout = host
        .client()
        .post(host.url("/auth/logout"))
        .bearer_auth(access)
        .checked()
        .send()
        .await;
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
        .checked()
        .send()
        .await;
    assert_eq!(again.status(), 401);
}

/// With `refresh_session_max_seconds` = 3, a session cannot be refreshed
/// past 3 s after its login, though each refresh token is good for a week;
/// the cookies' `Max-Age` never outlasts it.
async fn sessions_end_at_their_absolute_lifetime(postgres: bool) {
    let app = repo_app(&variable("refresh_session_max_seconds", "3"));
    let (_db, host) = start_on(&app, postgres);
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
    assert_eq!(max_age(&cookie), 3, "{cookie}");
    let first = response.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    let refreshed = refresh(&host, &first).await;
    assert_eq!(refreshed.status(), 200);
    let cookie = refreshed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        max_age(&cookie) <= 3,
        "what is left of the session: {cookie}"
    );
    let second = refreshed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let late = refresh(&host, &second).await;
    assert_eq!(late.status(), 401);
    assert_eq!(late.json()["detail"], "Invalid refresh token");
}

async fn bad_logins_are_refused_then_throttled(postgres: bool) {
    let app = repo_app("");
    let (_db, host) = start_on(&app, postgres);

    let response = login(&host, &[("username", "admin"), ("password", "wrong")]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body = response.json();
    assert_eq!(body["detail"], "Incorrect username or password");
    let unknown = login(&host, &[("username", "nobody"), ("password", "whatever")]).await;
    assert_eq!(unknown.status(), 401);
    // Longer than any registration allows: refused, and counted nowhere.
    let long_name = "a".repeat(51);
    let overlong = login(
        &host,
        &[("username", long_name.as_str()), ("password", "whatever")],
    )
    .await;
    assert_eq!(overlong.status(), 401);
    assert_eq!(overlong.json()["detail"], "Incorrect username or password");
    let missing = host
        .client()
        .post(host.url("/auth/token"))
        .form(&[("username", "admin")])
        .checked()
        .invalid_request()
        .send()
        .await;
    assert_eq!(missing.status(), 422);
    let body = missing.json();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "password"]));
    let text = host
        .client()
        .post(host.url("/auth/token"))
        .header("content-type", "text/plain")
        .body("admin")
        .checked()
        .invalid_request()
        .send()
        .await;
    assert_eq!(text.status(), 415);
    let get = host
        .client()
        .get(host.url("/auth/token"))
        .checked()
        .send()
        .await;
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");

    // Five failures in all from this client (one above, four here), then the
    // right password is refused too from this client, with an honest
    // Retry-After.
    for _ in 0..4 {
        login(&host, &[("username", "admin"), ("password", "wrong")]).await;
    }
    let locked = login(
        &host,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(locked.status(), 429);
    let retry_after = crate::support::retry_after(locked.headers());
    assert!((290..=300).contains(&retry_after), "{retry_after}");
    // Only this client is locked out of `admin`: the admin logs in from
    // another address.
    let elsewhere = login_from(
        &host,
        2,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(elsewhere.status(), 200);
}

async fn admin_refresh_token(host: &Host) -> String {
    let response = login(host, &[("username", "admin"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(response.status(), 200);
    let body = response.json();
    body["refresh_token"].as_str().unwrap().to_string()
}

async fn concurrent_refreshes_of_one_token_have_one_winner(postgres: bool) {
    let app = repo_app("");
    let (_db, host) = start_on(&app, postgres);
    let token = admin_refresh_token(&host).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = host.client();
        let url = host.url("/auth/refresh");
        let body = json!({ "refresh_token": token });
        tasks.push(tokio::spawn(async move {
            let response = client.post(url).json(&body).checked().send().await;
            (response.status().as_u16(), response.json())
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (200, body) => winners.push(body["refresh_token"].as_str().unwrap().to_string()),
            (401, body) => assert_eq!(body["detail"], "Invalid refresh token"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one refresh of one token wins");
    // The losers presented an already-rotated token: that ends the whole
    // session, so even the winner's new token is refused now.
    assert_eq!(refresh(&host, &winners[0]).await.status(), 401);
}

async fn parallel_guessing_is_throttled(postgres: bool) {
    let app = repo_app("");
    // Without the repository's one-login-at-a-time limit, so the guesses
    // really run at once: the throttle alone must hold the line.
    app.write("nexa.toml", "");
    let (_db, host) = start_on(&app, postgres);
    // Warm up: the first request creates the schema.
    let items = host.client().get(host.url("/items")).checked().send().await;
    assert_eq!(items.status(), 200);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = host.client();
        let url = host.url("/auth/token");
        let guess = format!("guess-{i}");
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .form(&[("username", "admin"), ("password", guess.as_str())])
                .checked()
                .send()
                .await;
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (response.status().as_u16(), retry_after)
        }));
    }
    let (mut refused, mut throttled) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (401, None) => refused += 1,
            // Refused by this client's lockout at `admin`, until its window ends.
            (429, Some(seconds)) if (290..=300).contains(&seconds) => throttled += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        refused, 5,
        "login_max_failures guesses are checked, no more"
    );
    assert_eq!(throttled, 15);
    // From this client the right password is refused too until the lockout
    // ends...
    let locked = login(
        &host,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(locked.status(), 429);
    // ...but the guesser has locked out only itself: the admin logs in from
    // another address (the guesses refused by the lockout never counted
    // against the username's own limit).
    let elsewhere = login_from(
        &host,
        2,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(elsewhere.status(), 200);
}

/// Failures from many clients at one username make every login at it wait,
/// the right password too, but only for the rest of a short window
/// (`login_user_window_seconds`, 60 s), never for the pair's lockout.
async fn many_clients_make_the_username_wait_briefly(postgres: bool) {
    let app = repo_app(&variable("login_user_max_failures", "3"));
    let (_db, host) = start_on(&app, postgres);
    for n in 2..=4 {
        let response = login_from(&host, n, &[("username", "admin"), ("password", "wrong")]).await;
        assert_eq!(response.status(), 401, "a first failure from 127.0.0.{n}");
    }
    let waiting = login_from(
        &host,
        5,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(waiting.status(), 429);
    let retry_after = crate::support::retry_after(waiting.headers());
    println!("Retry-After at the per-username limit: {retry_after} s");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another username is not affected.
    let other = login_from(&host, 5, &[("username", "nobody"), ("password", "x")]).await;
    assert_eq!(other.status(), 401);
}
