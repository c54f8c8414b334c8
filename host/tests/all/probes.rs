//! `/livez` and `/readyz` on the admin listener, and `nexa probe`: readiness
//! follows the Postgres and Redis the configuration names (and turns off
//! while the host drains); liveness never depends on them.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::services::{PrivatePostgres, PrivateRedis, free_port};
use crate::support::{app_with, fixture_app, fixture_manifest, start_with_rc, status_and_json};

async fn probe(url: &str) -> Output {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nexa"))
            .args(["probe", &url, "--timeout", "5s"])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn get(url: &str) -> (u16, Value) {
    status_and_json(reqwest::Client::new().get(url)).await
}

/// Polls `/readyz` until it answers `status` (answers are reused for a second).
async fn wait_for_readiness(url: &str, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (now, body) = get(url).await;
        if now == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {now}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readiness_follows_the_configured_backends_and_liveness_does_not() {
    let postgres = PrivatePostgres::start_new();
    let mut redis = PrivateRedis::start_new();
    // The password must never appear in an answer (trust auth ignores it).
    let database_url = format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/postgres",
        postgres.port
    );
    let app = app_with(
        &fixture_manifest(&format!(
            "allowed_outbound_hosts = [\"postgres://127.0.0.1:{}\"]\n[component.fixture.variables]\ndatabase_url = \"{database_url}\"",
            postgres.port
        )),
        // Shared rate limits: the Redis URL comes from the environment.
        "[rate_limit]\nenabled = true\n",
    );
    let host = start_with_rc(
        &app,
        &[(
            "NEXA_RATE_LIMIT_REDIS_URL",
            &format!("redis://127.0.0.1:{}", redis.port),
        )],
    );
    let (livez, readyz) = (host.admin_url("/livez"), host.admin_url("/readyz"));

    let ready = wait_for_readiness(&readyz, 200).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["components"], 2, "{ready}");
    let checks: Vec<(&str, bool)> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(checks, [("postgres", true), ("redis", true)], "{ready}");
    assert!(!ready.to_string().contains("hunter2"), "{ready}");
    let probed = probe(&readyz).await;
    assert!(probed.status.success(), "{probed:?}");

    // Postgres down: not ready, with the cause; still live.
    postgres.stop();
    let not_ready = wait_for_readiness(&readyz, 503).await;
    let detail = not_ready["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("postgres postgres://postgres:***@127.0.0.1:"),
        "{not_ready}"
    );
    assert!(detail.contains("connection refused"), "{not_ready}");
    assert!(!not_ready.to_string().contains("hunter2"), "{not_ready}");
    assert_eq!(
        get(&livez).await,
        (200, serde_json::json!({"status": "live"}))
    );
    assert!(probe(&livez).await.status.success());
    let probed = probe(&readyz).await;
    assert_eq!(probed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&probed.stderr);
    assert!(
        said.contains("503") && said.contains("connection refused"),
        "{said}"
    );

    // Back without a restart of the host.
    postgres.start();
    wait_for_readiness(&readyz, 200).await;

    // The shared rate limits' Redis down: not ready either.
    redis.stop();
    let not_ready = wait_for_readiness(&readyz, 503).await;
    assert!(
        not_ready["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("redis redis://127.0.0.1:{}", redis.port)),
        "{not_ready}"
    );
    assert_eq!(get(&livez).await.0, 200);
}

#[tokio::test]
async fn a_draining_host_is_not_ready_until_it_exits() {
    let app = fixture_app("shutdown_grace_ms = 10000\n");
    let mut host = start_with_rc(&app, &[]);
    let readyz = host.admin_url("/readyz");
    // No backend configured: ready as soon as it serves.
    let ready = wait_for_readiness(&readyz, 200).await;
    assert_eq!(ready["checks"], serde_json::json!([]), "{ready}");

    let slow = tokio::spawn(reqwest::get(host.url("/fixture/sleep/3000")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    host.terminate();
    let draining = wait_for_readiness(&readyz, 503).await;
    assert!(
        draining["detail"]
            .as_str()
            .unwrap()
            .starts_with("shutting down"),
        "{draining}"
    );
    // The request in flight still completes.
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn probe_fails_with_the_cause_when_nothing_answers() {
    let closed = format!("http://127.0.0.1:{}/readyz", free_port());
    let probed = probe(&closed).await;
    assert_eq!(probed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&probed.stderr);
    assert!(said.contains("connection refused"), "{said}");
    let probed = probe("not a url").await;
    assert_eq!(probed.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&probed.stderr).contains("is not a URL"),
        "{probed:?}"
    );
}
