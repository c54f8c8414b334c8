//! A misbehaving component fails only its own requests: trap → 500, endless
//! loop → 504, unbounded allocation → 500, while a healthy route keeps
//! answering; overload sheds with 503 + Retry-After.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{app_with, fixture_host, fixture_manifest, start_with_rc};

async fn assert_host_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    body
}

/// Fires `n` requests at `/fixture/ok` while `during` runs; all must succeed.
async fn healthy_requests_meanwhile(host: &crate::support::Host, n: usize) {
    let client = host.client();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let request = client.get(host.url("/fixture/ok")).send();
        tasks.push(tokio::spawn(request));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
    }
}

#[tokio::test]
async fn a_trap_fails_that_request_only() {
    let (_app, host) = fixture_host("");
    let client = host.client();
    let (trapped, _) = tokio::join!(
        client.get(host.url("/fixture/trap")).send(),
        healthy_requests_meanwhile(&host, 20)
    );
    let body = assert_host_error(trapped.unwrap(), 500).await;
    assert!(
        !body["detail"].as_str().unwrap().contains("wasm"),
        "no internals: {body}"
    );
    // The host goes on serving, with a fresh instance.
    healthy_requests_meanwhile(&host, 5).await;
    // The instance is disposed of in the background: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host.log().contains("instance retired after a fault") {
        assert!(Instant::now() < deadline, "{}", host.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_endless_loop_times_out_with_504() {
    let (_app, host) = fixture_host("request_timeout_ms = 1000\n");
    let client = host.client();
    let started = Instant::now();
    let (looped, _) = tokio::join!(
        client.get(host.url("/fixture/loop")).send(),
        healthy_requests_meanwhile(&host, 30)
    );
    let elapsed = started.elapsed();
    assert_host_error(looped.unwrap(), 504).await;
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    healthy_requests_meanwhile(&host, 5).await;
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit_and_fails_with_500() {
    let (_app, host) = fixture_host("max_instance_memory_bytes = 33554432\n");
    let client = host.client();
    let (allocated, _) = tokio::join!(
        client.get(host.url("/fixture/alloc")).send(),
        healthy_requests_meanwhile(&host, 20)
    );
    assert_host_error(allocated.unwrap(), 500).await;
    healthy_requests_meanwhile(&host, 5).await;
}

#[tokio::test]
async fn overload_is_shed_with_503_and_retry_after() {
    let (_app, host) = fixture_host("max_concurrent_requests = 2\nqueue_timeout_ms = 50\n");
    let client = host.client();
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.get(host.url("/fixture/sleep/1500")).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let shed = client.get(host.url("/fixture/ok")).send().await.unwrap();
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_host_error(shed, 503).await;
    for task in slow {
        assert_eq!(task.await.unwrap().unwrap().status(), 200);
    }
    // Slots come back once the slow requests finish.
    let response = client.get(host.url("/fixture/ok")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_component_limit_queues_and_sheds_only_that_component() {
    let (_app, host) =
        fixture_host("[component.fixture]\nmax_concurrent_requests = 1\nqueue_timeout_ms = 100\n");
    let client = host.client();
    let slow = tokio::spawn(client.get(host.url("/fixture/sleep/1000")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = client.get(host.url("/fixture/ok")).send().await.unwrap();
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_host_error(shed, 503).await;
    // Other components are not limited.
    let other = client.get(host.url("/elsewhere")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        client
            .get(host.url("/fixture/ok"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// `max_concurrent_requests_when_alone`: a limited component runs wider
/// only while no other component's request is admitted nor was recently. Here `sleeper` (the
/// fixture again, on `/fixture/sleep/...`) runs one request at a time, two
/// while alone.
#[tokio::test]
async fn a_component_runs_wider_only_while_alone() {
    let mut manifest = fixture_manifest("");
    manifest.push_str(
        "[[trigger.http]]\nroute = \"/fixture/sleep/...\"\ncomponent = \"sleeper\"\n\
         [component.sleeper]\nsource = \"{fixture}\"\n",
    );
    let app = app_with(
        &manifest,
        "request_timeout_ms = 3000\n[component.sleeper]\nmax_concurrent_requests = 1\n\
         max_concurrent_requests_when_alone = 2\nqueue_timeout_ms = 10000\n",
    );
    let host = start_with_rc(&app, &[]);
    let client = host.client();
    let sleeps = |n: usize| {
        let requests: Vec<_> = (0..n)
            .map(|_| client.get(host.url("/fixture/sleep/600")).send())
            .collect();
        async move {
            let started = Instant::now();
            for response in futures::future::join_all(requests).await {
                assert_eq!(response.unwrap().status(), 200);
            }
            started.elapsed()
        }
    };
    // Whatever ran before (start-up probes) counts as another component's
    // request seen at the first check; alone once that is QUIET ago.
    sleeps(2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let two_alone = sleeps(2).await;
    assert!(
        two_alone < Duration::from_millis(1100),
        "two at once: {two_alone:?}"
    );
    let three_alone = sleeps(3).await;
    assert!(
        three_alone >= Duration::from_millis(1200),
        "never three: {three_alone:?}"
    );

    // Another component's request in flight (a body that trickles until the
    // deadline cuts it): one at a time.
    let trickle = tokio::spawn(
        client
            .get(host.url("/fixture/trickle"))
            .send()
            .await
            .unwrap()
            .bytes(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let two_beside = sleeps(2).await;
    assert!(
        two_beside >= Duration::from_millis(1200),
        "one at a time: {two_beside:?}"
    );
    assert!(trickle.await.unwrap().is_err(), "cut at the deadline");
}
