//! What browsers get from the edge: CORS only for listed origins, cross-site
//! state changes refused, security headers on every response, and the
//! refresh cookie `Secure` when the client came over https.

use serde_json::Value;

use crate::support::{fixture_host, rc_args, repo_app};

const LISTED: &str = "https://app.example.com";

#[tokio::test]
async fn cors_answers_only_listed_origins() {
    let (_app, host) = fixture_host(&format!(
        "[cors]\nallowed_origins = [\"{LISTED}\"]\nmax_age_secs = 300\n"
    ));
    let client = host.client();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, host.url("/fixture/echo"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let listed = preflight(LISTED).await.unwrap();
    assert!(listed.status().is_success(), "{}", listed.status());
    let headers = listed.headers();
    assert_eq!(headers["access-control-allow-origin"], LISTED);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-max-age"], "300");
    assert!(
        !headers.contains_key("ratelimit-limit"),
        "preflights are not limited"
    );

    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let actual = client
        .get(host.url("/fixture/ok"))
        .header("origin", LISTED)
        .send()
        .await
        .unwrap();
    assert_eq!(actual.headers()["access-control-allow-origin"], LISTED);
}

#[tokio::test]
async fn by_default_no_origin_is_granted_cors() {
    let (_app, host) = fixture_host("");
    let response = host
        .client()
        .get(host.url("/fixture/ok"))
        .header("origin", LISTED)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() {
    let (_app, host) = fixture_host(&format!("[cors]\nallowed_origins = [\"{LISTED}\"]\n"));
    let own = format!("http://{}", host.address());
    let post = |origin: Option<&str>, site: Option<&str>, form: bool| {
        let mut request = host
            .client()
            .post(host.url("/fixture/echo"))
            .header("cookie", "refresh_token=abc");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        if form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=b");
        }
        request.send()
    };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (None, Some("cross-site")),
        (Some("null"), None),
    ] {
        let refused = post(origin, site, true).await.unwrap();
        assert_eq!(refused.status(), 403, "{origin:?} {site:?}");
        let body: Value = refused.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("Cross-site"),
            "{body}"
        );
    }
    for (origin, site) in [
        (Some(own.as_str()), None),
        (Some(LISTED), None),
        (None, Some("same-origin")),
        (None, None),
    ] {
        let allowed = post(origin, site, true).await.unwrap();
        assert_eq!(allowed.status(), 200, "{origin:?} {site:?}");
    }
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let (_app, host) = fixture_host("max_request_body_bytes = 10\n");
    let client = host.client();
    let ok = client.get(host.url("/fixture/ok")).send().await.unwrap();
    let too_large = client
        .post(host.url("/fixture/echo"))
        .body("far more than ten bytes")
        .send()
        .await
        .unwrap();
    let trapped = client.get(host.url("/fixture/trap")).send().await.unwrap();
    for (name, response) in [("ok", &ok), ("413", &too_large), ("500", &trapped)] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{name}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{name}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{name}: {csp}");
        assert!(!headers.contains_key("strict-transport-security"), "{name}");
    }
    assert_eq!(too_large.status(), 413);
    assert_eq!(trapped.status(), 500);
}

#[tokio::test]
async fn the_refresh_cookie_is_secure_when_the_client_used_https() {
    let app = repo_app("");
    app.write("nexa.toml", "trusted_proxies = [\"127.0.0.1\"]\n");
    let rc = rc_args(&app);
    let host = app.start(&rc.each_ref().map(String::as_str));
    let login = |proto: &'static str| {
        host.client()
            .post(host.url("/auth/token"))
            .header("x-forwarded-proto", proto)
            .form(&[
                ("username", "admin"),
                ("password", crate::support::ADMIN_PASSWORD),
            ])
            .send()
    };
    let over_https = login("https").await.unwrap();
    assert_eq!(over_https.status(), 200);
    let cookie = over_https.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(
        over_https
            .headers()
            .contains_key("strict-transport-security")
    );
    let over_http = login("http").await.unwrap();
    assert_eq!(over_http.status(), 200);
    let cookie = over_http.headers()["set-cookie"].to_str().unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
}
