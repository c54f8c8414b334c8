//! The HTTP edge: the real app's health and fallback components, request ids,
//! Spin's request headers, body limits and graceful shutdown.

use std::time::Duration;

use serde_json::Value;

use crate::contract::Contract;
use crate::support::{AppDir, fixture_host, rc_args, repo_app};

#[tokio::test]
async fn health_is_operational_on_embedded_backends() {
    let app = repo_app("");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    let response = host
        .client()
        .get(host.url("/health"))
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json();
    assert_eq!(body["status"], "operational", "{body}");
    assert_eq!(
        body["components"]["database"]["status"], "healthy",
        "{body}"
    );
    assert_eq!(body["components"]["cache"]["status"], "healthy", "{body}");
    assert!(body["components"]["database"]["latency_ms"].is_number());
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.contains('T'),
        "{timestamp}"
    );

    let response = host
        .client()
        .post(host.url("/health"))
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn health_uses_redis_when_the_runtime_config_maps_the_store() {
    let app =
        repo_app("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    let body: Value = host
        .client()
        .get(host.url("/health"))
        .checked()
        .send()
        .await
        .json();
    assert_eq!(body["components"]["cache"]["status"], "healthy", "{body}");
}

#[tokio::test]
async fn health_is_degraded_when_the_cache_is_unreachable() {
    // Nothing listens on port 1: every operation fails fast.
    let app =
        repo_app("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    let response = host
        .client()
        .get(host.url("/health"))
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 503);
    let response_id = response.headers()["x-request-id"].clone();
    let body: Value = response.json();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["components"]["cache"]["status"], "unhealthy", "{body}");
    assert!(
        body["components"]["cache"].get("error").is_none() && !body.to_string().contains("redis"),
        "backend errors are logged, not answered: {body}"
    );
    assert_eq!(
        body["components"]["database"]["status"], "healthy",
        "{body}"
    );
    // The detail is in the log, with the request id.
    let id = response_id.to_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !host
        .log()
        .lines()
        .any(|line| line.contains("cache probe failed") && line.contains(&id))
    {
        assert!(std::time::Instant::now() < deadline, "{}", host.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unknown_paths_get_a_json_404_from_the_fallback() {
    let app = repo_app("");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    for path in ["/nope", "/index.html", "/elsewhere/42/deep?x=1"] {
        let response = host.client().get(host.url(path)).checked().send().await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(response.headers().contains_key("x-request-id"));
        assert_eq!(response.text(), r#"{"detail":"Not Found"}"#);
    }
}

#[tokio::test]
async fn without_a_catch_all_the_host_answers_404_in_json() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/health\"\ncomponent = \"health\"\n[component.health]\nsource = \"{health}\"\nkey_value_stores = [\"default\"]\nsqlite_databases = [\"default\"]\nvariables = { database_url = \"\" }\n",
    );
    let host = app.start(&[]);
    let response = host
        .client()
        .get(host.url("/missing"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "Not Found");
    assert_eq!(body["request_id"], "trace-42");
}

#[tokio::test]
async fn request_ids_are_kept_when_sane_and_replaced_otherwise() {
    let (_app, host) = fixture_host("");
    let client = host.client();
    let sane = "req-1.A_b";
    let response = client
        .get(host.url("/fixture/headers"))
        .header("x-request-id", sane)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], sane);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["x-request-id"][0], sane, "the component sees the id");

    for bad in ["has space", "semi;colon", &"x".repeat(129)] {
        let response = client
            .get(host.url("/fixture/headers"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_ne!(echoed, bad);
        assert_eq!(echoed.len(), 32, "{echoed}");
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["x-request-id"][0], echoed.as_str());
    }
}

#[tokio::test]
async fn spin_headers_are_set_by_the_host_and_spoofed_ones_overwritten() {
    let (_app, host) = fixture_host("");
    let response = host
        .client()
        .get(host.url("/fixture/headers?q=1"))
        .header("spin-client-addr", "6.6.6.6:666")
        .header("Spin-Path-Info", "/evil")
        .header("spin-path-match-id", "evil")
        .header("spin-matched-route", "/evil/...")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    let one = |name: &str| -> String {
        let values = seen[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} missing: {seen}"));
        assert_eq!(
            values.len(),
            1,
            "{name} must be overwritten, not appended: {seen}"
        );
        values[0].as_str().unwrap().to_string()
    };
    assert!(one("spin-client-addr").starts_with("127.0.0.1:"));
    assert_eq!(one("spin-path-info"), "/headers");
    assert_eq!(one("spin-matched-route"), "/fixture/...");
    assert_eq!(one("spin-component-route"), "/fixture");
    assert_eq!(one("spin-raw-component-route"), "/fixture/...");
    assert_eq!(one("spin-base-path"), "/");
    assert_eq!(
        one("spin-full-url"),
        format!("http://{}/fixture/headers?q=1", host.address())
    );
    assert!(seen.get("spin-path-match-id").is_none(), "{seen}");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let (_app, host) = fixture_host("max_request_body_bytes = 1024\n");
    let response = host
        .client()
        .put(host.url("/fixture/kv/default/big"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("1024"), "{body}");
}

/// A body sent in chunks (no Content-Length) that outgrows the limit is a
/// JSON 413 from the host, not a failure inside the component.
#[tokio::test]
async fn chunked_bodies_over_the_limit_get_the_json_413() {
    fn chunked(chunks: usize) -> reqwest::Body {
        reqwest::Body::wrap_stream(futures::stream::iter(
            (0..chunks).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 512])),
        ))
    }
    let app = repo_app("");
    let nexa_toml = std::fs::read_to_string(app.path("nexa.toml")).unwrap();
    app.write(
        "nexa.toml",
        &format!("max_request_body_bytes = 4096\n{nexa_toml}"),
    );
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    // The host answers as soon as the limit is passed and closes the
    // connection without reading the rest (no lingering close): a client
    // still writing chunks may then see a broken pipe before it reads the
    // 413. Only that error is retried.
    let mut attempts = 0;
    let response = loop {
        attempts += 1;
        match host
            .client()
            .post(host.url("/users/"))
            .header("content-type", "application/json")
            .header("x-request-id", "chunked-1")
            .body(chunked(16))
            .send()
            .await
        {
            Ok(response) => break response,
            Err(error) if attempts < 5 && format!("{error:?}").contains("BodyWrite") => continue,
            Err(error) => panic!("{error:?}"),
        }
    };
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-request-id"], "chunked-1");
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("4096"), "{body}");
    assert_eq!(body["request_id"], "chunked-1");

    // Positive control: a chunked body under the limit reaches the component
    // (which answers for itself: the registration is refused, not 413).
    let response = host
        .client()
        .post(host.url("/users/"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter([Ok::<
            _,
            std::io::Error,
        >(
            b"{}".to_vec(),
        )])))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), 413);
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits() {
    let (_app, mut host) = fixture_host("");
    let client = host.client();
    let slow = tokio::spawn(client.get(host.url("/fixture/sleep/1500")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    host.terminate();
    let response = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slept");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = host.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "host did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(host.log().contains("shutting down"), "{}", host.log());
}
