//! The operator's day with a running host: `POST /admin/reload` (and
//! `nexa reload`), `nexa up --watch` rebuilding and swapping a component,
//! and `nexa status` reading the admin API and `/metrics`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{AppDir, Host, app_with, component, fixture_version, start_with_rc};

const TOKEN: &str = "a-long-random-admin-token-for-operators";

/// The fixture (with the `greeting` variable) at `/fixture/...` under the
/// id `fixture_id`, the fallback at `/...`.
fn manifest(fixture_id: &str, greeting: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "test"
[variables]
greeting = {{ default = "{greeting}" }}
secret_word = {{ required = true, secret = true }}
[[trigger.http]]
route = "/fixture/..."
component = "{fixture_id}"
[[trigger.http]]
route = "/..."
component = "fallback"
[component.{fixture_id}]
source = "{{fixture}}"
variables = {{ greeting = "{{{{ greeting }}}}" }}
[component.fallback]
source = "{{fallback}}"
"#
    )
}

/// Runs the real `nexa` with the admin token set.
fn nexa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nexa"))
        .args(args)
        .env("NEXA_ADMIN_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .output()
        .expect("running nexa")
}

fn json_of(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "nexa failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

async fn greeting(host: &Host) -> serde_json::Value {
    let response = reqwest::get(host.url("/fixture/var/greeting"))
        .await
        .unwrap();
    response.json().await.unwrap()
}

async fn reload(host: &Host) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(host.admin_url("/admin/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn write_manifest(app: &AppDir, text: &str) {
    let text = text
        .replace("{fixture}", &component("fixture").display().to_string())
        .replace("{fallback}", &component("fallback").display().to_string());
    app.write("spin.toml", &text);
}

#[tokio::test]
async fn a_reload_applies_changed_routes_components_and_variables_at_once() {
    let app = app_with(&manifest("fixture", "hello"), "");
    let host = start_with_rc(&app, &[("NEXA_ADMIN_TOKEN", TOKEN)]);
    assert_eq!(greeting(&host).await["value"], "hello");

    // Nothing changed: nothing is replaced.
    let (status, unchanged) = reload(&host).await;
    assert_eq!(status, 200, "{unchanged}");
    assert_eq!(unchanged["applied"], false, "{unchanged}");

    // The route now goes to a component of another id, and the greeting
    // changed: both are applied by one reload, through the CLI.
    write_manifest(&app, &manifest("renamed", "hi there"));
    let admin = host.admin_url("");
    let outcome = json_of(&nexa(&["reload", "--admin", &admin, "--json"]));
    assert_eq!(outcome["applied"], true, "{outcome}");
    assert_eq!(outcome["components_added"], serde_json::json!(["renamed"]));
    assert_eq!(
        outcome["components_removed"],
        serde_json::json!(["fixture"])
    );
    assert_eq!(
        outcome["routes_added"],
        serde_json::json!(["/fixture/... -> renamed"])
    );
    assert_eq!(
        outcome["routes_removed"],
        serde_json::json!(["/fixture/... -> fixture"])
    );
    assert_eq!(
        outcome["variables_changed"],
        serde_json::json!(["greeting"])
    );
    assert_eq!(outcome["runtime_config_changed"], false);
    assert_eq!(greeting(&host).await["value"], "hi there");
    let listed = json_of(&nexa(&["components", "list", "--admin", &admin, "--json"]));
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fallback", "renamed"]);

    // The people's form says what changed.
    write_manifest(&app, &manifest("renamed", "good day"));
    let said = nexa(&["reload", "--admin", &admin]);
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(said.contains("variables changed: greeting"), "{said}");
    assert_eq!(greeting(&host).await["value"], "good day");
}

#[tokio::test]
async fn a_reload_that_cannot_be_applied_changes_nothing() {
    let app = app_with(&manifest("fixture", "hello"), "");
    let host = start_with_rc(&app, &[("NEXA_ADMIN_TOKEN", TOKEN)]);
    let broken = [
        // A component whose .wasm is missing: the new set cannot be readied.
        manifest("fixture", "hi").replace("{fixture}", "/nonexistent/fixture.wasm"),
        // A grant that does not parse.
        manifest("fixture", "hi").replace(
            "variables = {",
            "allowed_outbound_hosts = [\"not a url\"]\nvariables = {",
        ),
        // Not TOML.
        "spin_manifest_version = ".to_string(),
    ];
    for text in broken {
        write_manifest(&app, &text);
        let (status, body) = reload(&host).await;
        assert_eq!(status, 422, "{text}\n{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("reload refused, nothing changed:"),
            "{body}"
        );
        assert_eq!(greeting(&host).await["value"], "hello");
    }
    let admin = host.admin_url("");
    let refused = nexa(&["reload", "--admin", &admin]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("422"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn watch_rebuilds_a_changed_component_and_swaps_it_in() {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "watched"
[[trigger.http]]
route = "/fixture/..."
component = "fixture"
[[trigger.http]]
route = "/..."
component = "fallback"
[component.fixture]
source = "current.wasm"
[component.fixture.build]
# The "build" picks the version which.txt names.
command = "cp \"$(cat which.txt)\" current.wasm"
watch = ["which.txt"]
[component.fallback]
source = "{fallback}"
"#,
    );
    std::fs::copy(component("fixture"), app.path("v1.wasm")).unwrap();
    std::fs::copy(fixture_version("v2"), app.path("v2.wasm")).unwrap();
    std::fs::copy(component("fixture"), app.path("current.wasm")).unwrap();
    app.write("which.txt", "v1.wasm");
    let host = app.start_with_env(&["--watch"], &[("NEXA_ADMIN_TOKEN", TOKEN)]);
    let version = || async {
        reqwest::get(host.url("/fixture/version"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(version().await, "v1", "{}", host.log());
    let admin = host.admin_url("");
    let fallback_before = fallback_of(&admin);

    app.write("which.txt", "v2.wasm");
    let deadline = Instant::now() + Duration::from_secs(20);
    while version().await != "v2" {
        assert!(Instant::now() < deadline, "not swapped:\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The new version serves as soon as it is swapped in; the line saying so
    // is written just after, so wait for it rather than racing it.
    while !host.log().contains("watch: rebuilt and swapped in") {
        assert!(Instant::now() < deadline, "no swap logged:\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The other component was not touched.
    assert_eq!(fallback_of(&admin), fallback_before);

    // A failing build leaves the running version serving.
    app.write("which.txt", "missing.wasm");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !host.log().contains("watch: the build failed") {
        assert!(
            Instant::now() < deadline,
            "no build failure:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(version().await, "v2");
}

/// The fallback's digest and load time, as `nexa components list` says.
fn fallback_of(admin: &str) -> (serde_json::Value, serde_json::Value) {
    let listed = json_of(&nexa(&["components", "list", "--admin", admin, "--json"]));
    let fallback = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "fallback")
        .unwrap()
        .clone();
    (fallback["digest"].clone(), fallback["loaded_at"].clone())
}

#[tokio::test]
async fn status_reports_health_and_the_traffic_of_its_interval() {
    let app = app_with(&manifest("fixture", "hello"), "");
    let host = start_with_rc(&app, &[("NEXA_ADMIN_TOKEN", TOKEN)]);
    let (admin, health) = (host.admin_url(""), host.url("/fixture/ok"));
    let status = std::thread::spawn(move || {
        nexa(&[
            "status",
            "--admin",
            &admin,
            "--health",
            &health,
            "--interval",
            "3s",
            "--json",
        ])
    });
    // Inside the interval: 50 answers, 10 of them 500s (a trapping handler).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let client = reqwest::Client::new();
    for i in 0..60 {
        let path = if i % 6 == 0 {
            "/fixture/trap"
        } else {
            "/fixture/ok"
        };
        client.get(host.url(path)).send().await.unwrap();
    }
    let report = json_of(&status.join().unwrap());
    assert!(
        report["interval_seconds"].as_f64().unwrap() >= 3.0,
        "{report}"
    );
    assert_eq!(report["health"]["status"], 200, "{report}");
    assert!(report["health"]["error"].is_null(), "{report}");
    let fixture = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "fixture")
        .unwrap();
    let ratio = fixture["error_ratio"].as_f64().unwrap();
    assert!((ratio - 10.0 / 61.0).abs() < 1e-9, "{report}");
    assert!(fixture["p99_ms"].as_f64().unwrap() > 0.0, "{report}");
    assert!(fixture["digest"].as_str().unwrap().starts_with("sha256:"));
    // The health check went to the fixture too, before the 60.
    assert_eq!(fixture["requests"], 61.0, "{report}");
    assert_eq!(report["total"]["requests"], 61.0, "{report}");

    // An unhealthy host: the report, then exit status 1 with the cause.
    let admin = host.admin_url("");
    let unhealthy = nexa(&[
        "status",
        "--admin",
        &admin,
        "--health",
        "http://127.0.0.1:1/health",
        "--interval",
        "0s",
        "--json",
    ]);
    assert_eq!(unhealthy.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&unhealthy.stdout).unwrap();
    assert!(report["health"]["status"].is_null(), "{report}");
    assert!(
        String::from_utf8_lossy(&unhealthy.stderr).contains("the host is not healthy"),
        "{}",
        String::from_utf8_lossy(&unhealthy.stderr)
    );

    let unreachable = nexa(&[
        "status",
        "--admin",
        "http://127.0.0.1:1",
        "--interval",
        "0s",
    ]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the admin listener"),
        "{}",
        String::from_utf8_lossy(&unreachable.stderr)
    );
}
