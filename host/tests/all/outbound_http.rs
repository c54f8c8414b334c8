//! Outbound HTTP from a component: allow-lists, real requests through the
//! pooled client, and service chaining to `<component>.spin.internal`.

use serde_json::{Value, json};

use crate::support::{AppDir, Host, chaining_host};

fn start(allowed: &str) -> (AppDir, Host) {
    chaining_host(allowed, "")
}

async fn get(host: &Host, url: &str) -> (u16, Value) {
    crate::support::post_json(host, "/fixture/http", &json!({ "url": url })).await
}

#[tokio::test]
async fn service_chaining_reaches_private_components_in_process() {
    let (_app, host) =
        start("\"http://internal.spin.internal\", \"http://fallback.spin.internal\"");
    let (status, body) = get(&host, "http://internal.spin.internal/fixture/echo/deep?x=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200);
    let echoed: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["path"], "/fixture/echo/deep");
    assert_eq!(echoed["path_info"], "/fixture/echo/deep");

    let (_, body) = get(&host, "http://fallback.spin.internal/anything").await;
    assert_eq!(body["status"], 404);
    assert_eq!(body["body"], r#"{"detail":"Not Found"}"#);

    // The private component has no public route.
    let response = host
        .client()
        .get(host.url("/fixture/echo/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the public fixture answers");
    let direct = host
        .client()
        .get(host.url("/internal"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 404);
}

#[tokio::test]
async fn requests_outside_the_allow_list_are_denied() {
    let (_app, host) = start("\"http://fallback.spin.internal\"");
    for url in [
        "http://internal.spin.internal/fixture/ok",
        "http://127.0.0.1:9/",
        "https://example.com/",
    ] {
        let (status, body) = get(&host, url).await;
        assert_eq!(status, 409, "{url}");
        assert!(
            body["error"]["kind"]
                .as_str()
                .unwrap()
                .contains("HttpRequestDenied"),
            "{url}: {body}"
        );
    }
}

#[tokio::test]
async fn real_requests_go_through_the_pooled_client() {
    // A second host serves as the remote end, over a real socket.
    let (_remote_app, remote) = crate::support::fixture_host("");
    let remote_port = remote.address().rsplit(':').next().unwrap().to_string();
    let (_app, host) = start(&format!("\"http://127.0.0.1:{remote_port}\""));
    for _ in 0..3 {
        let (status, body) = get(&host, &remote.url("/fixture/ok")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], 200);
        assert_eq!(body["body"], "ok");
        assert!(body["headers"]["x-request-id"].is_string(), "{body}");
    }
    // Nothing listens here: a connection error, not a hang.
    let closed = crate::services::free_port();
    let (_app2, other) = start(&format!("\"http://127.0.0.1:{closed}\""));
    let (status, body) = get(&other, &format!("http://127.0.0.1:{closed}/")).await;
    assert_eq!(status, 409);
    assert!(
        body["error"]["kind"]
            .as_str()
            .unwrap()
            .contains("Connection"),
        "{body}"
    );
}
