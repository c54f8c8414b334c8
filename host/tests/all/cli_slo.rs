//! `nexa slo` against a real Prometheus (the repository's rules, scraping
//! every second) scraping a real `nexa up`: the figures it prints are the
//! ones the traffic the test sent implies.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::prometheus_server::Prometheus;
use crate::services::free_port;
use crate::support::{AppDir, Host};

/// The fixture serving as `items`, a component the SLO rules watch.
const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "slo"
[[trigger.http]]
route = "/fixture/..."
component = "items"
[component.items]
source = "{fixture}"
"#;

async fn nexa(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_nexa"))
            .args(&args)
            .env("NO_COLOR", "1")
            .env_remove("NEXA_PROMETHEUS_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// GETs `path` `times` times, expecting `status`.
async fn send(host: &Host, path: &str, times: usize, status: u16) {
    let client = host.client();
    for _ in 0..times {
        let response = client.get(host.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
}

fn find<'a>(report: &'a serde_json::Value, component: &str, slo: &str) -> &'a serde_json::Value {
    report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["component"] == component && s["slo"] == slo)
        .unwrap_or_else(|| panic!("no {component} {slo} in {report:#}"))
}

fn close(value: &serde_json::Value, expected: f64, tolerance: f64) -> bool {
    value
        .as_f64()
        .is_some_and(|v| (v - expected).abs() <= tolerance)
}

#[tokio::test(flavor = "multi_thread")]
async fn compliance_budget_burn_rates_and_alerts_match_the_traffic_sent() {
    if !Prometheus::installed() {
        println!("skipped: prometheus is not installed");
        return;
    }
    let started = Instant::now();
    let app = AppDir::new(MANIFEST);
    let host = app.start(&[]);
    // Before Prometheus's first scrape: 9 answers and 1 failure, the same
    // proportion as the traffic below, so rate()'s extrapolation at the
    // series' start is the same for both status classes and the ratio exact.
    send(&host, "/fixture/ok", 9, 200).await;
    send(&host, "/fixture/trap", 1, 500).await;
    let admin = host.admin_url("").trim_start_matches("http://").to_string();
    let prometheus = Prometheus::start_fast(&admin)
        .await
        .expect("prometheus is installed");
    let items = r#"sum(http_server_requests_total{job="nexa", component="items"})"#;
    prometheus.wait_for_value(items, 10.0).await;

    // 100 requests: 10 fail (500) and 4 of the 90 answers take 300 ms,
    // beyond items' latency threshold (0.25 s).
    for round in 0..10 {
        send(&host, "/fixture/ok", if round < 4 { 8 } else { 9 }, 200).await;
        if round < 4 {
            send(&host, "/fixture/sleep/300", 1, 200).await;
        }
        send(&host, "/fixture/trap", 1, 500).await;
    }
    prometheus.wait_for_value(items, 110.0).await;
    // Two evaluations after the scrape with every request: the rules and
    // the alerts have seen it.
    prometheus
        .wait_for_value(
            r#"count(ALERTS{alertname="NexaAvailabilityBurnRateFast", component="items", alertstate="firing"})"#,
            1.0,
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let output = nexa(&["slo", "--prometheus", &prometheus.url, "--json"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 10 % failed against the 0.1 % allowed: the budget is gone, exit 1.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error budget exhausted over 30d: items availability"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["window"], "30d");
    assert_eq!(report["prometheus"], prometheus.url);

    let availability = find(&report, "items", "availability");
    assert_eq!(availability["objective"], 0.999);
    assert!(
        close(&availability["compliance"], 0.9, 1e-6),
        "{availability:#}"
    );
    // 1 - 0.1 / 0.001
    assert!(
        close(&availability["budget_remaining"], -99.0, 1e-3),
        "{availability:#}"
    );
    assert_eq!(availability["exhausted"], true);
    // 0.1 % of 30 days.
    assert!(close(&availability["budget_seconds"], 2592.0, 1e-6));
    for window in ["5m", "1h", "6h", "1d", "3d", "30d"] {
        assert!(
            close(&availability["burn_rates"][window], 100.0, 1e-3),
            "burn rate over {window}: {availability:#}"
        );
    }
    let alerts = availability["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["name"] == "NexaAvailabilityBurnRateFast"
                && a["state"] == "firing"
                && a["severity"] == "page"),
        "{availability:#}"
    );

    let latency = find(&report, "items", "latency");
    assert_eq!(latency["objective"], 0.99);
    assert_eq!(latency["threshold_seconds"], 0.25);
    // 4 slow requests of 100 (more on a busy machine). Not exactly 0.96:
    // the bucket and the count started at 10 but grew by 96 and 100, so
    // rate()'s extrapolation to the series' start differs a little between
    // them (a run measured 0.9632).
    let compliance = latency["compliance"].as_f64().unwrap();
    assert!((0.9..=0.97).contains(&compliance), "{latency:#}");
    assert_eq!(latency["exhausted"], true);

    // health and auth had no requests: objectives known, nothing measured.
    for (component, objective) in [("health", 0.999), ("auth", 0.995)] {
        let slo = find(&report, component, "availability");
        assert_eq!(slo["objective"], objective);
        assert!(slo["compliance"].is_null(), "{slo:#}");
        assert_eq!(slo["exhausted"], false);
    }
    assert_eq!(report["slos"].as_array().unwrap().len(), 6);

    // The table says the same for people.
    let output = nexa(&["slo", "--prometheus", &prometheus.url]).await;
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1));
    let row = table
        .lines()
        .find(|line| line.starts_with("items") && line.contains("availability"))
        .unwrap_or_else(|| panic!("{table}"));
    for cell in [
        "99.9%",
        "90%",
        "exhausted (-9900%)",
        "100.00",
        "NexaAvailabilityBurnRateFast",
    ] {
        assert!(row.contains(cell), "{cell} missing from {row:?}\n{table}");
    }

    // A window the rules do not record is refused with those they do.
    let output = nexa(&["slo", "--prometheus", &prometheus.url, "--window", "7d"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("--window 7d") && stderr.contains("5m, 30m, 1h, 2h, 6h, 1d, 3d, 30d"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_or_wrong_prometheus_is_named_with_the_cause() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let output = nexa(&["slo", "--prometheus", &closed]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach Prometheus at {closed}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("Connection refused") || stderr.contains("connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A server that is not Prometheus (a host's admin listener).
    let app = AppDir::new(MANIFEST);
    let host = app.start(&[]);
    let output = nexa(&["slo", "--prometheus", &host.admin_url("")]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is this Prometheus?"), "{stderr}");

    // A usage error is 2.
    let output = nexa(&["slo", "--timeout", "soon"]).await;
    assert_eq!(output.status.code(), Some(2));
}
