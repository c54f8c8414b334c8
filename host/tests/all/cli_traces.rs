//! `nexa traces` against Jaeger's query API as answers recorded in its JSON
//! format (`tests/fixtures/jaeger/`: five traces of service `nexa` shaped
//! like the host's spans — a server span named by route, the component
//! under it, capability calls under that, one trace failing with a trap,
//! one with concurrent calls and a chained component), served by a small
//! HTTP server in the test that also records what the CLI asked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query};
use axum::http::StatusCode;

use crate::services::free_port;

const DETAILED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jaeger")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The queries `/api/traces` received.
type Asked = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Serves the recorded answers on a free port; returns its URL.
async fn jaeger() -> (String, Asked) {
    let asked: Asked = Arc::default();
    let log = asked.clone();
    let json =
        |status: StatusCode, body: String| (status, [("content-type", "application/json")], body);
    let app = axum::Router::new()
        .route(
            "/api/services",
            axum::routing::get(
                move || async move { json(StatusCode::OK, fixture("services.json")) },
            ),
        )
        .route(
            "/api/traces",
            axum::routing::get(move |Query(query): Query<HashMap<String, String>>| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(query);
                    json(StatusCode::OK, fixture("traces.json"))
                }
            }),
        )
        .route(
            "/api/traces/{id}",
            axum::routing::get(move |Path(id): Path<String>| async move {
                if id == DETAILED {
                    json(StatusCode::OK, fixture(&format!("trace-{id}.json")))
                } else {
                    json(StatusCode::NOT_FOUND, fixture("trace-not-found.json"))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), asked)
}

async fn nexa(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_nexa"))
                .args(&args)
                .env("NO_COLOR", "1")
                .env_remove("NEXA_JAEGER_URL")
                .output()
                .unwrap()
        }),
    )
    .await
    .expect("nexa traces took more than 20 s")
    .unwrap();
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_summary_counts_errors_p95_and_the_slowest_operations() {
    let (url, asked) = jaeger().await;
    let summary = json(
        &nexa(&[
            "traces",
            "--jaeger",
            &url,
            "--service",
            "nexa",
            "--lookback",
            "2h",
            "--limit",
            "20",
            "--json",
        ])
        .await,
    );
    // What the CLI asked Jaeger for.
    let query = asked.lock().unwrap()[0].clone();
    assert_eq!(query["service"], "nexa");
    assert_eq!(query["limit"], "20");
    assert_eq!(query["lookback"], "7200s");
    let start: u64 = query["start"].parse().unwrap();
    let end: u64 = query["end"].parse().unwrap();
    assert_eq!(
        end - start,
        7_200_000_000,
        "start and end are µs, 2 h apart"
    );

    assert_eq!(summary["traces"], 5);
    // One trace (POST /items/... answered 500 after a trap) failed.
    assert_eq!(summary["errors"], 1);
    assert_eq!(summary["error_ratio"], 0.2);
    // Durations 4, 8, 12, 30 and 50 ms: the nearest-rank p95 is the largest.
    assert_eq!(summary["p95_duration_us"], 50_000);
    let operations: Vec<(&str, u64)> = summary["slowest_operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (
                op["operation"].as_str().unwrap(),
                op["p95_duration_us"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        operations[..6],
        [
            ("POST /auth/token", 50_000),
            ("component auth", 49_800),
            ("POST /items/...", 30_000),
            // 7.6, 11.2 and 29.6 ms: p95 is the slowest of three.
            ("component items", 29_600),
            ("postgres query", 27_000),
            ("GET /items/...", 12_000),
        ]
    );
    let items = &summary["slowest_operations"][3];
    assert_eq!(items["count"], 3);
    assert_eq!(items["errors"], 1);
    assert_eq!(summary["slowest_traces"][0]["root"], "POST /auth/token");
    // 50, 30 (the failed POST) and 12 ms.
    assert_eq!(summary["slowest_traces"][1]["root"], "POST /items/...");
    assert_eq!(summary["slowest_traces"][1]["error"], true);
    assert_eq!(summary["slowest_traces"][2]["trace_id"], DETAILED);

    // The same for people.
    let output = nexa(&["traces", "--jaeger", &url]).await;
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(
            "5 traces of nexa in the last 1h: 1 with errors (20.0%), p95 duration 50.0 ms"
        ),
        "{text}"
    );
    assert!(text.contains(DETAILED), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("component items"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("29.6 ms"), "{line}");
    // Defaults: service nexa, limit 100.
    assert_eq!(asked.lock().unwrap()[1]["limit"], "100");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_shows_its_tree_and_critical_path() {
    let (url, _) = jaeger().await;
    let view = json(&nexa(&["traces", DETAILED, "--jaeger", &url, "--json"]).await);
    assert_eq!(view["trace_id"], DETAILED);
    assert_eq!(view["duration_us"], 12_000);
    assert_eq!(view["error"], false);
    let tree: Vec<(u64, &str)> = view["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["depth"].as_u64().unwrap(),
                s["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tree,
        [
            (0, "GET /items/..."),
            (1, "component items"),
            (2, "postgres query"),
            (2, "key-value get"),
            (2, "outbound-http send"),
            (3, "GET /prices/..."),
            (4, "component pricing"),
        ]
    );
    // Postgres (1-6 ms) and the outbound call (5-11 ms) overlap: the trace
    // waits on Postgres only until the call starts; the key-value read
    // (2-4 ms) lies under Postgres and is off the path.
    let path: Vec<(&str, u64, u64)> = view["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["operation"].as_str().unwrap(),
                s["start_offset_us"].as_u64().unwrap(),
                s["end_offset_us"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        path,
        [
            ("GET /items/...", 0, 300),
            ("component items", 300, 1000),
            ("postgres query", 1000, 5000),
            ("outbound-http send", 5000, 5500),
            ("GET /prices/...", 5500, 5700),
            ("component pricing", 5700, 10300),
            ("GET /prices/...", 10300, 10500),
            ("outbound-http send", 10500, 11000),
            ("component items", 11000, 11500),
            ("GET /items/...", 11500, 12000),
        ]
    );
    let critical: HashMap<&str, u64> = view["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["operation"].as_str().unwrap(),
                s["critical_us"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(critical["key-value get"], 0);
    assert_eq!(critical["postgres query"], 4000);
    assert_eq!(critical.values().sum::<u64>(), 12_000);

    let output = nexa(&["traces", DETAILED, "--jaeger", &url]).await;
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("trace {DETAILED}: 7 spans, 12.0 ms")),
        "{text}"
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().trim_start_matches("◆ ").starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    assert!(line("postgres query").contains("◆"), "{text}");
    assert!(!line("key-value get").contains("◆"), "{text}");
    assert!(
        text.contains("Critical path (◆): GET /items/... 300 µs → component items 700 µs → postgres query 4.0 ms"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_say_what_went_wrong() {
    let (url, _) = jaeger().await;
    let unknown = nexa(&["traces", "--jaeger", &url, "--service", "shop"]).await;
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr.contains("no traces of service \"shop\" (it has: jaeger-all-in-one, nexa)"),
        "{stderr}"
    );

    let missing = nexa(&[
        "traces",
        "0123456789abcdef0123456789abcdef",
        "--jaeger",
        &url,
    ])
    .await;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr.contains("trace not found (code 404)"), "{stderr}");

    let bad = nexa(&["traces", "not-a-trace", "--jaeger", &url]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a trace id"));

    let closed = format!("http://127.0.0.1:{}", free_port());
    let down = nexa(&["traces", "--jaeger", &closed]).await;
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("cannot reach Jaeger's query API at {closed}"))
            && stderr.contains("onnection refused"),
        "{stderr}"
    );

    let usage = nexa(&["traces", "--limit", "many"]).await;
    assert_eq!(usage.status.code(), Some(2));
}
