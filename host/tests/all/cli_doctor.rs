//! `nexa doctor` reading an app's files as `nexa up` does and reaching what
//! they point at: the machine's Postgres and Redis, a real OTLP receiver, a
//! real Prometheus, and closed or silent ports for the failures.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::prometheus_server::Prometheus;
use crate::services::free_port;
use crate::support::AppDir;
use crate::traces::{Protocol, start_receiver};

/// Two components with Postgres addresses in their variables, as the
/// repository's spin.toml gives them (`database_url`): `api` is allowed to
/// reach its database, `reports` names a database that does not exist and
/// is not allowed to reach it.
const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "doctor"
[variables]
database_url = { required = true, secret = true }
db_host = { default = "127.0.0.1" }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = "/reports/..."
component = "reports"
[component.api]
source = "api.wasm"
allowed_outbound_hosts = ["postgres://{{ db_host }}:5432"]
key_value_stores = ["cache"]
[component.api.variables]
database_url = "{{ database_url }}"
[component.reports]
source = "reports.wasm"
[component.reports.variables]
database_url = "postgres://postgres@127.0.0.1:5432/nexa_doctor_missing?sslmode=disable"
"#;

fn doctor(app: &AppDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexa"));
    command
        .arg("doctor")
        .arg("-f")
        .arg(app.path("spin.toml"))
        .args(args)
        .env("NO_COLOR", "1");
    for name in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_SDK_DISABLED",
        "NEXA_PROMETHEUS_URL",
        "NEXA_RUNTIME_CONFIG_FILE",
        "NEXA_HOST_CONFIG_FILE",
        "SPIN_VARIABLE_DATABASE_URL",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    output
}

fn check<'a>(report: &'a serde_json::Value, name: &str, target: &str) -> &'a serde_json::Value {
    report
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && c["target"].as_str().unwrap().contains(target))
        .unwrap_or_else(|| panic!("no {name} check of {target} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_backends_are_reached_and_failures_name_their_cause() {
    let started = Instant::now();
    let app = AppDir::new(MANIFEST);
    app.write(
        "rc.toml",
        "[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n",
    );
    let closed = free_port();
    app.write(
        "nexa.toml",
        &format!("[rate_limit]\nredis_url = \"redis://127.0.0.1:{closed}\"\n"),
    );
    let (otlp, _received) = start_receiver(Protocol::HttpProtobuf).await;
    let prometheus = Prometheus::start_fast("127.0.0.1:1").await;
    let mut args = vec![
        "--runtime-config-file".to_string(),
        app.path("rc.toml").display().to_string(),
        "--json".to_string(),
    ];
    if let Some(prometheus) = &prometheus {
        args.extend(["--prometheus".to_string(), prometheus.url.clone()]);
    }
    let endpoint = otlp.clone();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        doctor(
            &app,
            &args,
            &[
                (
                    "SPIN_VARIABLE_DATABASE_URL",
                    "postgres://postgres:hunter2@127.0.0.1:5432/postgres?sslmode=disable",
                ),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("hunter2"),
        "a password was printed:\n{stdout}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();

    let postgres = check(&report, "postgres", "/postgres?");
    assert_eq!(postgres["status"], "ok", "{postgres:#}");
    assert_eq!(
        postgres["target"],
        "postgres://postgres:***@127.0.0.1:5432/postgres?sslmode=disable"
    );
    assert_eq!(
        postgres["used_by"],
        serde_json::json!(["component api (database_url)"])
    );
    let latency = postgres["latency_ms"].as_f64().unwrap();
    assert!(latency > 0.0 && latency < 3000.0, "{postgres:#}");

    let missing = check(&report, "postgres", "nexa_doctor_missing");
    assert_eq!(missing["status"], "failed");
    let cause = missing["cause"].as_str().unwrap();
    assert!(
        cause.contains("\"nexa_doctor_missing\" does not exist"),
        "{cause}"
    );
    assert!(
        cause.contains(
            "allowed_outbound_hosts of component reports does not permit postgres://127.0.0.1:5432"
        ),
        "{cause}"
    );

    let redis = check(&report, "redis", ":6379");
    assert_eq!(redis["status"], "ok", "{redis:#}");
    assert_eq!(
        redis["used_by"],
        serde_json::json!(["key_value_store.cache"])
    );
    let refused = check(&report, "redis", &format!(":{closed}"));
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["cause"], "connection refused");
    assert_eq!(
        refused["used_by"],
        serde_json::json!(["nexa.toml [rate_limit] redis_url"])
    );

    let traces = check(&report, "otlp", &otlp);
    assert_eq!(traces["status"], "ok", "{traces:#}");
    assert_eq!(traces["target"], format!("http/protobuf {otlp}/v1/traces"));

    let expected_failures = 2;
    if prometheus.is_some() {
        assert_eq!(check(&report, "prometheus", "http://")["status"], "ok");
    }
    assert!(
        stderr.contains(&format!("{expected_failures} of 6 checks failed")),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_configured_is_skipped_and_a_silent_port_times_out() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"bare\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
         [component.web]\nsource = \"web.wasm\"\n",
    );
    let output = doctor(&app, &[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for (name, reason) in [
        (
            "postgres",
            "no component variable holds a postgres:// address",
        ),
        ("redis", "no Redis in component variables"),
        ("otlp", "OTEL_EXPORTER_OTLP_ENDPOINT is not set"),
        ("prometheus", "no --prometheus"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{stdout}"));
        assert!(line.contains("skipped") && line.contains(reason), "{line}");
    }

    // A port that accepts connections (the kernel's backlog) but never
    // answers: the check gives up after --timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let began = Instant::now();
    let output = doctor(
        &app,
        &["--prometheus", &url, "--timeout", "500ms", "--json"],
        &[],
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let prometheus = check(&report, "prometheus", &url);
    assert_eq!(prometheus["status"], "failed");
    assert!(
        prometheus["cause"].as_str().unwrap().contains("timed out"),
        "{prometheus:#}"
    );
    let latency = prometheus["latency_ms"].as_f64().unwrap();
    assert!((450.0..2000.0).contains(&latency), "{prometheus:#}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 of 4 checks failed"), "{stderr}");

    // A broken file stops it like `nexa up`, naming the file.
    app.write("spin.toml", "spin_manifest_version = 2\n[application\n");
    let output = doctor(&app, &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("spin.toml"));
}
