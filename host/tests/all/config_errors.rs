//! Start-up refuses bad configuration with a message that names the file,
//! the key and the fix, before it binds the socket.

use crate::support::{AppDir, SECRET_RUNTIME_CONFIG, component, fixture_manifest};

fn rc_args(app: &AppDir) -> Vec<String> {
    vec![
        "--runtime-config-file".to_string(),
        app.path("rc.toml").display().to_string(),
    ]
}

fn fail(app: &AppDir) -> String {
    let args = rc_args(app);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    app.start_failure(&args)
}

#[test]
fn unknown_manifest_key() {
    let app = AppDir::new(&fixture_manifest("allowed_http_hostz = []"));
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    let stderr = fail(&app);
    assert!(stderr.contains("spin.toml"), "{stderr}");
    assert!(stderr.contains("allowed_http_hostz"), "{stderr}");
}

#[test]
fn unknown_runtime_config_key() {
    let app = AppDir::new(&fixture_manifest(""));
    app.write(
        "rc.toml",
        &format!(
            "{SECRET_RUNTIME_CONFIG}\n[key_value_store.default]\ntype = \"spin\"\nfile = \"x.db\"\n"
        ),
    );
    let stderr = fail(&app);
    assert!(stderr.contains("rc.toml"), "{stderr}");
    assert!(stderr.contains("file"), "{stderr}");
}

#[test]
fn unknown_host_config_key() {
    let app = AppDir::new(&fixture_manifest(""));
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    app.write("nexa.toml", "request_timeout = 5\n");
    let stderr = fail(&app);
    assert!(stderr.contains("nexa.toml"), "{stderr}");
    assert!(stderr.contains("request_timeout"), "{stderr}");
}

#[test]
fn missing_runtime_config_file() {
    let app = AppDir::new(&fixture_manifest(""));
    let stderr = fail(&app);
    assert!(stderr.contains("rc.toml"), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn missing_component_file() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"ghost\"\n[component.ghost]\nsource = \"ghost.wasm\"\n",
    );
    app.write("rc.toml", "");
    let stderr = fail(&app);
    assert!(stderr.contains("ghost.wasm"), "{stderr}");
    assert!(stderr.contains("nexa build"), "{stderr}");
}

#[test]
fn missing_required_variable() {
    let app = AppDir::new(&fixture_manifest(""));
    app.write("rc.toml", "");
    let stderr = fail(&app);
    assert!(stderr.contains("secret_word"), "{stderr}");
    assert!(stderr.contains("SPIN_VARIABLE_SECRET_WORD"), "{stderr}");
}

#[test]
fn undefined_store_label() {
    let app = AppDir::new(&fixture_manifest("key_value_stores = [\"sessions\"]"));
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    let stderr = fail(&app);
    assert!(stderr.contains("\"fixture\""), "{stderr}");
    assert!(stderr.contains("[key_value_store.sessions]"), "{stderr}");
}

#[test]
fn route_to_undeclared_component() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"nobody\"\n",
    );
    app.write("rc.toml", "");
    let stderr = fail(&app);
    assert!(stderr.contains("[component.nobody]"), "{stderr}");
}

#[test]
fn component_importing_sockets_is_refused() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"raw-net\"\n[component.raw-net]\nsource = \"{fixture-sockets}\"\n",
    );
    app.write("rc.toml", "");
    let stderr = fail(&app);
    assert!(stderr.contains("\"raw-net\""), "{stderr}");
    assert!(stderr.contains("wasi:sockets/"), "{stderr}");
}

#[test]
fn check_component_reports_the_forbidden_interface() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nexa"))
        .arg("check-component")
        .arg(component("fixture-sockets"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wasi:sockets/"), "{stderr}");
    assert!(stderr.contains("fixture-sockets"), "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nexa"))
        .arg("check-component")
        .arg(component("health"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn host_config_naming_an_unknown_component() {
    let app = AppDir::new(&fixture_manifest(""));
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    app.write(
        "nexa.toml",
        "[component.nope]\nmax_concurrent_requests = 1\n",
    );
    let stderr = fail(&app);
    assert!(stderr.contains("[component.nope]"), "{stderr}");
}

#[test]
fn zero_limits_are_refused_naming_the_key() {
    for (nexa_toml, table) in [
        ("max_concurrent_requests = 0\n", None),
        (
            "[component.fixture]\nmax_concurrent_requests = 0\n",
            Some("[component.fixture]"),
        ),
    ] {
        let app = AppDir::new(&fixture_manifest(""));
        app.write("rc.toml", SECRET_RUNTIME_CONFIG);
        app.write("nexa.toml", nexa_toml);
        let stderr = fail(&app);
        assert!(stderr.contains("nexa.toml"), "{stderr}");
        assert!(stderr.contains("key `max_concurrent_requests`"), "{stderr}");
        assert!(stderr.contains("nonzero"), "{stderr}");
        if let Some(table) = table {
            assert!(stderr.contains(table), "{stderr}");
        }
    }
}
