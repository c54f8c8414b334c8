//! `spin:redis` through the fixture against real Redis servers: every
//! operation, allow-lists, one shared connection per address, recovery.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::services::PrivateRedis;
use crate::support::{AppDir, Host, fixture_with, post_json, unique};

fn start(allowed: &str) -> (AppDir, Host) {
    fixture_with(&format!("allowed_outbound_hosts = [{allowed}]"), "")
}

async fn redis(host: &Host, body: Value) -> (u16, Value) {
    post_json(host, "/fixture/redis", &body).await
}

/// Deletes the test's keys on the shared Redis when the test ends.
struct Keys(Vec<String>);

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "del"])
            .args(&self.0)
            .output();
    }
}

#[tokio::test]
async fn every_operation_works_on_the_shared_redis() {
    let (_app, host) = start("\"redis://127.0.0.1:6379\"");
    let address = "redis://127.0.0.1:6379";
    let key = unique("nexa-test-redis");
    let (counter, set, list) = (format!("{key}-n"), format!("{key}-s"), format!("{key}-l"));
    let _cleanup = Keys(vec![
        key.clone(),
        counter.clone(),
        set.clone(),
        list.clone(),
    ]);
    let op = |body: Value| redis(&host, body);

    assert_eq!(
        op(json!({ "address": address, "op": "get", "key": key }))
            .await
            .1,
        json!({ "value": null })
    );
    assert_eq!(
        op(json!({ "address": address, "op": "set", "key": key, "value": "v1" }))
            .await
            .0,
        200
    );
    assert_eq!(
        op(json!({ "address": address, "op": "get", "key": key }))
            .await
            .1,
        json!({ "value": "v1" })
    );
    assert_eq!(
        op(json!({ "address": address, "op": "incr", "key": counter }))
            .await
            .1,
        json!({ "value": 1 })
    );
    assert_eq!(
        op(json!({ "address": address, "op": "incr", "key": counter }))
            .await
            .1,
        json!({ "value": 2 })
    );
    let added =
        op(json!({ "address": address, "op": "sadd", "key": set, "values": ["b", "a", "b"] }))
            .await;
    assert_eq!(added.1, json!({ "value": 2 }));
    let members = op(json!({ "address": address, "op": "smembers", "key": set })).await;
    assert_eq!(members.1, json!({ "value": ["a", "b"] }));
    let removed =
        op(json!({ "address": address, "op": "srem", "key": set, "values": ["a", "z"] })).await;
    assert_eq!(removed.1, json!({ "value": 1 }));
    assert_eq!(
        op(json!({ "address": address, "op": "publish", "key": key, "value": "hi" }))
            .await
            .0,
        200
    );

    // execute: status, integers, bulk strings, nil, and nested arrays flattened.
    let exec = |command: &str, args: Value| json!({ "address": address, "op": "execute", "command": command, "args": args });
    assert_eq!(
        op(exec("SET", json!([key, "v2"]))).await.1,
        json!({ "value": [{ "status": "OK" }] })
    );
    assert_eq!(
        op(exec("INCRBY", json!([counter, 40]))).await.1,
        json!({ "value": [{ "int64": 42 }] })
    );
    assert_eq!(
        op(exec("RPUSH", json!([list, "x", "y"]))).await.1,
        json!({ "value": [{ "int64": 2 }] })
    );
    assert_eq!(
        op(exec("MGET", json!([key, format!("{key}-missing")])))
            .await
            .1,
        json!({ "value": [{ "binary": "v2" }, "nil"] })
    );
    assert_eq!(
        op(exec("LRANGE", json!([list, 0, -1]))).await.1,
        json!({ "value": [{ "binary": "x" }, { "binary": "y" }] })
    );

    // Errors from the server are `other` with its message; nothing else changes.
    let (status, body) = op(json!({ "address": address, "op": "incr", "key": key })).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["kind"], "other");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an integer"),
        "{body}"
    );
    assert_eq!(
        op(json!({ "address": address, "op": "get", "key": key }))
            .await
            .1,
        json!({ "value": "v2" })
    );

    let deleted =
        op(json!({ "address": address, "op": "del", "keys": [key, counter, set, list] })).await;
    assert_eq!(deleted.1, json!({ "value": 4 }));
}

#[tokio::test]
async fn addresses_outside_the_allow_list_are_refused() {
    let (_app, host) = start("\"redis://cache.example.com:6379\"");
    for address in ["redis://127.0.0.1:6379", "redis://127.0.0.1", "not a url"] {
        let (status, body) = redis(
            &host,
            json!({ "address": address, "op": "get", "key": "k" }),
        )
        .await;
        assert_eq!(status, 409, "{address}");
        assert_eq!(
            body["error"]["kind"], "invalid-address",
            "{address}: {body}"
        );
    }
}

#[tokio::test]
async fn one_connection_per_address_serves_every_request() {
    let server = PrivateRedis::start_new();
    let (_app, host) = start(&format!("\"{}\"", server.url()));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let client = host.client();
        let url = host.url("/fixture/redis");
        let body = json!({ "address": server.url(), "op": "incr", "key": format!("k{}", i % 4) });
        tasks.push(tokio::spawn(async move {
            client.post(url).json(&body).send().await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), 200);
    }
    for _ in 0..20 {
        let (status, _) = redis(
            &host,
            json!({ "address": server.url(), "op": "get", "key": "k0" }),
        )
        .await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        server.clients(),
        1,
        "one multiplexed connection for the address"
    );
}

#[tokio::test]
async fn a_stopped_redis_fails_fast_and_recovers_without_a_restart() {
    let mut server = PrivateRedis::start_new();
    let (_app, host) = start(&format!("\"{}\"", server.url()));
    let set = json!({ "address": server.url(), "op": "set", "key": "k", "value": "1" });
    assert_eq!(redis(&host, set.clone()).await.0, 200);

    server.stop();
    let started = Instant::now();
    let (status, body) = redis(&host, set.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["kind"], "other");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );

    server.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = redis(&host, set.clone()).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, body) = redis(
        &host,
        json!({ "address": server.url(), "op": "get", "key": "k" }),
    )
    .await;
    assert_eq!(body, json!({ "value": "1" }));
}
