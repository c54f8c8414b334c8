//! Inbound rate limiting through the real host: the defaults of a plain
//! `nexa up`, clients behind trusted proxies, a budget shared by two host
//! processes through Redis, the fallback when Redis is down, and chained
//! requests left alone.

use serde_json::{Value, json};

use crate::support::{AppDir, Host, fixture_host, rc_args, repo_app, unique};

/// The repository's app with its own nexa.toml, untouched: the limits a
/// default `nexa up` has.
fn default_app() -> (AppDir, Host) {
    let app = repo_app("");
    // Written as is: `AppDir::write` would turn rate limiting off.
    std::fs::copy(
        crate::support::repo_root().join("nexa.toml"),
        app.path("nexa.toml"),
    )
    .unwrap();
    let rc = rc_args(&app);
    let host = app.start(&rc.each_ref().map(String::as_str));
    (app, host)
}

#[tokio::test]
async fn a_default_host_limits_reads_and_failed_logins() {
    let (_app, host) = default_app();
    let client = host.client();
    let response = client.get(host.url("/items/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["ratelimit-limit"], "100");
    assert_eq!(headers["ratelimit-remaining"], "99");
    assert!(headers.contains_key("ratelimit-reset"));
    assert_eq!(
        headers["ratelimit-policy"],
        "600;w=60;burst=100;comment=\"read\""
    );
    // /health is not limited.
    let health = client.get(host.url("/health")).send().await.unwrap();
    assert!(!health.headers().contains_key("ratelimit-limit"));

    let mut refused_at = None;
    for attempt in 1..=40 {
        let response = client
            .post(host.url("/auth/token"))
            .form(&[("username", "admin"), ("password", "wrong")])
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            let retry_after = crate::support::retry_after(response.headers());
            assert!((1..=600).contains(&retry_after), "{retry_after}");
            let body: Value = response.json().await.unwrap();
            assert!(body["detail"].is_string(), "{body}");
            refused_at = Some(attempt);
            break;
        }
        assert_eq!(response.status(), 401);
    }
    let refused_at = refused_at.expect("no 429 within 40 failed logins");
    println!("failed logins from one client were refused from attempt {refused_at}");
}

/// A fixture host with small quotas and `trusted` as its proxies.
fn limited_fixture(trusted: &str, extra: &str) -> (AppDir, Host) {
    fixture_host(&format!(
        "trusted_proxies = [{trusted}]\n[rate_limit]\nenabled = true\n{extra}\n[rate_limit.read]\nper_minute = 3\n"
    ))
}

async fn get_from(host: &Host, forwarded_for: &str) -> reqwest::Response {
    host.client()
        .get(host.url("/fixture/headers"))
        .header("x-forwarded-for", forwarded_for)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let (_app, host) = limited_fixture("\"127.0.0.1\"", "");
    for _ in 0..3 {
        assert_eq!(get_from(&host, "198.51.100.1").await.status(), 200);
    }
    assert_eq!(get_from(&host, "198.51.100.1").await.status(), 429);
    let other = get_from(&host, "198.51.100.2").await;
    assert_eq!(other.status(), 200, "another client behind the proxy");
    assert!(other.headers().contains_key("strict-transport-security"));
    let seen: Value = other.json().await.unwrap();
    assert_eq!(seen["spin-client-addr"][0], "198.51.100.2:0", "{seen}");
    assert!(
        seen["spin-full-url"][0]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{seen}"
    );
}

#[tokio::test]
async fn without_trust_forwarding_headers_are_ignored() {
    let (_app, host) = limited_fixture("", "");
    for n in 1..=3 {
        assert_eq!(
            get_from(&host, &format!("198.51.100.{n}")).await.status(),
            200
        );
    }
    let refused = get_from(&host, "198.51.100.9").await;
    assert_eq!(refused.status(), 429, "one budget: the socket peer's");
    assert!(!refused.headers().contains_key("strict-transport-security"));
    let retry_after = crate::support::retry_after(refused.headers());
    assert!((1..=20).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn two_hosts_share_one_budget_through_redis() {
    let prefix = unique("nexa-test-rl");
    let config = format!(
        "[rate_limit]\nenabled = true\nredis_url = \"redis://127.0.0.1:6379\"\nredis_key_prefix = \"{prefix}:\"\n[rate_limit.read]\nper_minute = 20\n"
    );
    let (_a, first) = fixture_host(&config);
    let (_b, second) = fixture_host(&config);
    let mut allowed = 0;
    for round in 0..20 {
        for host in [&first, &second] {
            let response = host
                .client()
                .get(host.url("/fixture/ok"))
                .send()
                .await
                .unwrap();
            match response.status().as_u16() {
                200 => allowed += 1,
                429 => {}
                other => panic!("round {round}: {other}"),
            }
        }
    }
    println!("two hosts allowed {allowed} of 40 requests against one quota of 20");
    assert!((19..=21).contains(&allowed), "{allowed}");
    let mut redis = ::redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: () = ::redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_limiting_in_process() {
    let (_app, host) = fixture_host(
        "[rate_limit]\nenabled = true\nredis_url = \"redis://127.0.0.1:1\"\n[rate_limit.read]\nper_minute = 2\n",
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            host.client()
                .get(host.url("/fixture/ok"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Logged from a writer thread: it may land just after the responses.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !host.log().contains("Redis is unreachable") {
        assert!(std::time::Instant::now() < deadline, "{}", host.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn chained_requests_are_not_limited_per_client() {
    let (_app, host) = crate::support::chaining_host(
        "\"http://internal.spin.internal\"",
        "[rate_limit]\nenabled = true\n[rate_limit.read]\nper_minute = 1\n",
    );
    // Each outer request is a write; each makes a chained GET, which the
    // read quota of 1 per minute would refuse from the second on.
    for _ in 0..3 {
        let (status, body) = crate::support::post_json(
            &host,
            "/fixture/http",
            &json!({ "url": "http://internal.spin.internal/fixture/ok" }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], 200, "{body}");
    }
    // The positive control: the read quota does apply to client reads.
    let statuses: Vec<u16> = futures::future::join_all(
        (0..2).map(|_| host.client().get(host.url("/fixture/ok")).send()),
    )
    .await
    .into_iter()
    .map(|r| r.unwrap().status().as_u16())
    .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}
