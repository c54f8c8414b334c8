//! Live swap and rollback through the admin API: a real host, real builds
//! of the fixture component (`v1`, and `v2` built for these tests), real
//! HTTP under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{AppDir, Host, component, fixture_app, fixture_version, start_with_rc};

const TOKEN: &str = "a-long-random-admin-token-for-swaps";

fn start(app: &AppDir) -> Host {
    start_with_rc(app, &[("NEXA_ADMIN_TOKEN", TOKEN)])
}

async fn admin(
    host: &Host,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .request(method, host.admin_url(path))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn version(host: &Host) -> String {
    let response = reqwest::get(host.url("/fixture/version")).await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

fn digest_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
    )
}

#[tokio::test]
async fn a_swap_serves_the_new_version_and_rollback_the_old_and_a_restart_keeps_it() {
    let v2 = fixture_version("v2");
    let v1_digest = digest_of(&component("fixture"));
    let v2_digest = digest_of(&v2);
    let app = fixture_app("");
    let mut host = start(&app);
    assert_eq!(version(&host).await, "v1");

    let (status, swapped) = admin(
        &host,
        reqwest::Method::PUT,
        "/admin/components/fixture",
        std::fs::read(&v2).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{swapped}");
    assert_eq!(swapped["digest"], v2_digest);
    assert_eq!(swapped["replaced"], v1_digest);
    assert_eq!(version(&host).await, "v2");
    let (_, listed) = admin(&host, reqwest::Method::GET, "/admin/components", vec![]).await;
    let fixture = &listed["components"][1];
    assert_eq!(fixture["digest"], v2_digest, "{listed}");
    assert_eq!(fixture["previous_versions"], serde_json::json!([v1_digest]));
    // The accepted bytes are in the content-addressed store.
    let stored = app.path(&format!(
        ".spin/components/sha256/{}.wasm",
        v2_digest.trim_start_matches("sha256:")
    ));
    assert_eq!(std::fs::read(&stored).unwrap(), std::fs::read(&v2).unwrap());

    let (status, rolled) = admin(
        &host,
        reqwest::Method::POST,
        "/admin/components/fixture/rollback",
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["digest"], v1_digest);
    assert_eq!(version(&host).await, "v1");
    let (status, nothing) = admin(
        &host,
        reqwest::Method::POST,
        "/admin/components/fixture/rollback",
        vec![],
    )
    .await;
    assert_eq!(status, 409, "{nothing}");
    assert!(
        nothing["detail"]
            .as_str()
            .unwrap()
            .contains("no earlier version"),
        "{nothing}"
    );

    // Swapped again with the CLI, then restarted: it comes back with v2 and
    // says so.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nexa"))
            .arg("components")
            .args(args)
            .args(["--admin", &host.admin_url("")])
            .env("NEXA_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let swapped = cli(&["swap", "fixture", v2.to_str().unwrap()]);
    assert!(swapped.status.success(), "{swapped:?}");
    let said = String::from_utf8(swapped.stdout).unwrap();
    assert_eq!(
        said.trim(),
        format!(
            "fixture: now serving {} (was {})",
            &v2_digest[7..19],
            &v1_digest[7..19]
        )
    );
    assert_eq!(version(&host).await, "v2");
    let refused = cli(&["swap", "fixture", "/nonexistent.wasm"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("/nonexistent.wasm"));
    let garbage = app.path("garbage.wasm");
    std::fs::write(&garbage, b"not wasm").unwrap();
    let refused = cli(&["swap", "fixture", garbage.to_str().unwrap(), "--json"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("422"),
        "{refused:?}"
    );
    assert_eq!(version(&host).await, "v2");
    host.terminate_and_wait();
    let host = start(&app);
    assert_eq!(version(&host).await, "v2");
    assert!(
        host.log()
            .contains("serving the version last activated through the admin API"),
        "{}",
        host.log()
    );
    let (_, listed) = admin(&host, reqwest::Method::GET, "/admin/components", vec![]).await;
    assert_eq!(listed["components"][1]["digest"], v2_digest);
}

#[tokio::test]
async fn a_bad_component_is_refused_with_the_reason_and_nothing_changes() {
    let app = fixture_app("");
    let host = start(&app);
    let not_wasm = b"this is no component".to_vec();
    let (status, refused) = admin(
        &host,
        reqwest::Method::PUT,
        "/admin/components/fixture",
        not_wasm,
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("nothing changed"),
        "{refused}"
    );

    // A core module, not a component.
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let (status, refused) = admin(
        &host,
        reqwest::Method::PUT,
        "/admin/components/fixture",
        core_module,
    )
    .await;
    assert_eq!(status, 422, "{refused}");

    // A component whose imports are outside the Nexa world.
    let sockets = std::fs::read(component("fixture-sockets")).unwrap();
    let (status, refused) = admin(
        &host,
        reqwest::Method::PUT,
        "/admin/components/fixture",
        sockets,
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("fixture"),
        "{refused}"
    );

    let (status, unknown) = admin(
        &host,
        reqwest::Method::PUT,
        "/admin/components/nope",
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, 404, "{unknown}");

    assert_eq!(version(&host).await, "v1");
    let (_, listed) = admin(&host, reqwest::Method::GET, "/admin/components", vec![]).await;
    assert_eq!(
        listed["components"][1]["previous_versions"],
        serde_json::json!([])
    );
    // Nothing refused entered the component store.
    assert!(!app.path(".spin/components").exists());
}

/// The host's resident memory, in KiB.
fn resident_kib(host: &Host) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn swaps_under_load_fail_no_request() {
    let v2 = std::fs::read(fixture_version("v2")).unwrap();
    let app = fixture_app("");
    let host = Arc::new(start(&app));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    // Warm: instances made before anything is measured.
    for _ in 0..50 {
        version(&host).await;
    }
    let resident_before = resident_kib(&host);

    // ~1,000 requests a second from 20 clients, each paced at 50 a second.
    let running = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (client, host, running) = (client.clone(), host.clone(), running.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while running.load(Ordering::Relaxed) {
                tick.tick().await;
                let sent = started.elapsed();
                let outcome = match client.get(host.url("/fixture/version")).send().await {
                    Ok(response) if response.status() == 200 => {
                        response.text().await.map_err(|e| e.to_string())
                    }
                    Ok(response) => Err(format!("status {}", response.status())),
                    Err(error) => Err(error.to_string()),
                };
                seen.push((sent, outcome));
            }
            seen
        }));
    }
    // v1 → v2 → rollback (v1) → v2 over 10 s, each change given time to be seen.
    let mut changes = Vec::new();
    for (step, expect) in [("swap", "v2"), ("rollback", "v1"), ("swap", "v2")] {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let asked = started.elapsed();
        let (status, body) = match step {
            "swap" => {
                admin(
                    &host,
                    reqwest::Method::PUT,
                    "/admin/components/fixture",
                    v2.clone(),
                )
                .await
            }
            _ => {
                admin(
                    &host,
                    reqwest::Method::POST,
                    "/admin/components/fixture/rollback",
                    vec![],
                )
                .await
            }
        };
        assert_eq!(status, 200, "{step}: {body}");
        changes.push((asked, started.elapsed(), expect));
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    running.store(false, Ordering::Relaxed);
    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed();

    let failures: Vec<_> = seen
        .iter()
        .filter(|(_, outcome)| outcome.is_err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Every request sent after a change returned was served by the version
    // that change made current, and every one sent before it was asked for
    // by the version before (while a change is under way, either).
    for (sent, outcome) in &seen {
        let served = outcome.as_deref().unwrap();
        let mut expected = "v1";
        for (asked, returned, made) in &changes {
            if sent >= returned || (sent >= asked && served == *made) {
                expected = made;
            }
        }
        assert_eq!(served, expected, "sent at {sent:?}; changes {changes:?}");
    }
    let rate = seen.len() as f64 / elapsed.as_secs_f64();
    assert!(rate > 500.0, "only {rate:.0} requests a second");

    let resident_swapped = resident_kib(&host);
    // Old versions' idle instances expire (idle_instance_timeout_ms, 1 s).
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let resident_drained = resident_kib(&host);
    println!(
        "swaps under load: {} requests in {:.1} s ({rate:.0}/s), none failed; resident memory {} MiB before, {} MiB after the swaps, {} MiB drained",
        seen.len(),
        elapsed.as_secs_f64(),
        resident_before / 1024,
        resident_swapped / 1024,
        resident_drained / 1024,
    );
    assert!(
        resident_drained < resident_before + 512 * 1024,
        "resident memory kept growing"
    );
}
