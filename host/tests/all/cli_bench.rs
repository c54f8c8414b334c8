//! `nexa bench` against real hosts: closed and open loop, the comparison of
//! two targets, and the exit status for refused targets and failing routes.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{fixture_host, unique};

/// Runs `nexa bench ARGS`, killed if it outlives `limit`.
fn bench(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexa"))
        .arg("bench")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nexa bench");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("nexa bench {args:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs `nexa bench ARGS --json` and returns its exit code and report.
fn bench_json(args: &[&str], limit: Duration) -> (Option<i32>, Value, String) {
    let output = bench(&[args, &["--json"]].concat(), limit);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {:?}, stderr {stderr}", output.stdout));
    (output.status.code(), report, stderr)
}

/// `url` then the whitespace-separated `flags`.
fn args<'a>(url: &'a str, flags: &'a str) -> Vec<&'a str> {
    std::iter::once(url)
        .chain(flags.split_whitespace())
        .collect()
}

/// Runs `nexa bench ARGS --json`, expecting exit status 0; its report.
fn bench_ok(args: &[&str]) -> Value {
    let (code, report, stderr) = bench_json(args, Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
    report
}

/// A short run: 300 ms on 2 connections, no warm-up.
const SHORT: &str = "--duration 300ms --warmup 0s --connections 2";

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{value} is not a count"))
}

fn micros(report: &Value, percentile: &str) -> f64 {
    report["latency_us"][percentile].as_f64().unwrap()
}

#[test]
fn a_closed_loop_reports_ordered_percentiles_and_no_errors() {
    let (_app, host) = fixture_host("");
    let url = host.url("/fixture/ok");
    let report = bench_ok(&args(&url, "--connections 4 --duration 1s --warmup 200ms"));
    assert_eq!(report["mode"], "closed");
    assert_eq!(report["connections"], 4);
    assert_eq!(report["url"], url);
    let requests = count(&report["requests"]);
    assert!(requests > 0, "{report}");
    assert_eq!(count(&report["answered"]), requests, "{report}");
    assert_eq!(count(&report["errors"]["total"]), 0, "{report}");
    assert_eq!(count(&report["statuses"]["200"]), requests, "{report}");
    assert_eq!(report["first_error"], Value::Null);
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    assert!((1.0..2.0).contains(&elapsed), "{report}");
    let throughput = report["throughput"].as_f64().unwrap();
    assert!(
        (throughput - requests as f64 / elapsed).abs() < 1e-6,
        "{report}"
    );
    let percentiles: Vec<f64> = ["p50", "p90", "p99", "p99_9", "max"]
        .iter()
        .map(|p| micros(&report, p))
        .collect();
    assert!(percentiles[0] > 0.0, "{report}");
    assert!(
        percentiles.windows(2).all(|pair| pair[0] <= pair[1]),
        "{percentiles:?}"
    );
    // A /fixture/ok answer takes well under the 10 s timeout.
    assert!(percentiles[4] < 1_000_000.0, "{report}");

    // The same for people: the load, the counts and a latency table, no
    // colour when stdout is not a terminal.
    let output = bench(
        &[&url, "--duration", "300ms", "--warmup", "0s"],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!(
            "GET {url}: closed loop, 16 connections, 300ms, no warm-up"
        )),
        "{text}"
    );
    assert!(text.contains("\nerrors      0\n"), "{text}");
    assert!(text.contains("statuses    200 × "), "{text}");
    assert!(text.contains("P50  ") && text.contains("P99.9"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "colour without a terminal: {text:?}"
    );
}

#[test]
fn an_open_loop_sends_at_the_rate_asked() {
    let (_app, host) = fixture_host("");
    let url = host.url("/fixture/ok");
    let report = bench_ok(&args(&url, "--rate 200 --duration 2s --warmup 200ms"));
    assert_eq!(report["mode"], "open");
    assert_eq!(report["rate"], 200.0);
    let requests = count(&report["requests"]);
    assert!(
        (380..=420).contains(&requests),
        "{requests} requests: {report}"
    );
    assert_eq!(count(&report["errors"]["total"]), 0, "{report}");
    let throughput = report["throughput"].as_f64().unwrap();
    assert!((180.0..=210.0).contains(&throughput), "{report}");
}

#[test]
fn an_open_loop_counts_the_wait_behind_a_slow_server() {
    // One connection to a handler that takes 20 ms can answer about 50
    // requests a second; asked for 100, each request waits for the ones
    // before it, and latency from the due time grows to about a second.
    // A closed loop on the same route reports only the 20 ms service time:
    // that difference is the coordinated omission the open loop avoids.
    let (_app, host) = fixture_host("");
    let url = host.url("/fixture/sleep/20");
    let common = "--connections 1 --warmup 0s";
    let open = bench_ok(&args(&url, &format!("{common} --rate 100 --duration 1s")));
    assert_eq!(count(&open["requests"]), 100, "{open}");
    assert_eq!(count(&open["answered"]), 100, "{open}");
    assert!(micros(&open, "p99") > 400_000.0, "{open}");
    assert!(micros(&open, "p50") > 100_000.0, "{open}");

    let closed = bench_ok(&args(&url, &format!("{common} --duration 500ms")));
    assert!(micros(&closed, "p50") >= 20_000.0, "{closed}");
    assert!(
        micros(&closed, "p99") * 4.0 < micros(&open, "p99"),
        "closed {closed}\nopen {open}"
    );
}

#[test]
fn compare_runs_two_hosts_and_gives_ratios() {
    let (_app_a, a) = fixture_host("");
    let (_app_b, b) = fixture_host("");
    let (url_a, url_b) = (a.url("/fixture/ok"), b.url("/fixture/ok"));
    let flags =
        format!("--compare {url_b} --rounds 2 --connections 2 --duration 400ms --warmup 100ms");
    let comparison = bench_ok(&args(&url_a, &flags));
    for (side, url) in [("a", &url_a), ("b", &url_b)] {
        let side = &comparison[side];
        assert_eq!(side["url"], *url);
        let rounds = side["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 2, "{side}");
        for round in rounds {
            assert_eq!(round["url"], *url);
            assert!(count(&round["requests"]) > 0, "{round}");
            assert_eq!(count(&round["errors"]["total"]), 0, "{round}");
        }
        // The median of two rounds is their mean.
        let mean = (rounds[0]["throughput"].as_f64().unwrap()
            + rounds[1]["throughput"].as_f64().unwrap())
            / 2.0;
        let median = side["median"]["throughput"].as_f64().unwrap();
        assert!((median - mean).abs() < 1e-6, "{side}");
        assert!(median > 0.0);
    }
    let ratio = |figure: &str, median: &str| {
        let expected = comparison["b"]["median"][median].as_f64().unwrap()
            / comparison["a"]["median"][median].as_f64().unwrap();
        let actual = comparison["ratio"][figure].as_f64().unwrap();
        assert!((actual - expected).abs() < 1e-9, "{figure}: {comparison}");
        actual
    };
    // The same build on two hosts of the same machine: the same ballpark.
    let throughput = ratio("throughput", "throughput");
    assert!((0.2..5.0).contains(&throughput), "{comparison}");
    ratio("p50", "p50_us");
    ratio("p99", "p99_us");
    ratio("p99_9", "p99_9_us");

    // For people: both targets, then a table with the ratio row.
    let output = bench(
        &[
            &url_a,
            "--compare",
            &url_b,
            "--rounds",
            "1",
            "--duration",
            "200ms",
            "--warmup",
            "0s",
        ],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(&format!("A = {url_a}\nB = {url_b}\n")),
        "{text}"
    );
    assert!(text.contains("1 rounds each"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(rows[rows.len() - 4].starts_with("TARGET  REQ/S"), "{text}");
    assert!(rows[rows.len() - 3].starts_with("A  "), "{text}");
    assert!(rows[rows.len() - 1].starts_with("B/A  "), "{text}");
}

#[test]
fn a_refused_target_exits_1_with_the_cause() {
    let (code, report, stderr) =
        bench_json(&args("http://127.0.0.1:1/", SHORT), Duration::from_secs(10));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("connection refused to 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let requests = count(&report["requests"]);
    assert!(requests > 0, "{report}");
    assert_eq!(count(&report["errors"]["connect"]), requests, "{report}");
    assert_eq!(count(&report["answered"]), 0, "{report}");
}

#[test]
fn answers_other_than_2xx_and_3xx_count_as_errors() {
    let (_app, host) = fixture_host("");
    let missing = host.url("/fixture/no-such-route");
    let (code, report, stderr) = bench_json(&args(&missing, SHORT), Duration::from_secs(10));
    assert_eq!(code, Some(1), "{stderr}");
    let requests = count(&report["requests"]);
    assert!(requests > 0);
    assert_eq!(count(&report["errors"]["status"]), requests, "{report}");
    assert_eq!(count(&report["statuses"]["404"]), requests, "{report}");
    assert_eq!(report["first_error"], "status 404 Not Found");
    assert!(
        stderr.contains(&format!("{requests} of {requests} requests"))
            && stderr.contains("--max-error-ratio 0.01"),
        "{stderr}"
    );
    // Allowed by --max-error-ratio: the same run exits 0.
    bench_ok(&args(&missing, &format!("{SHORT} --max-error-ratio 1")));
    // A handler that traps answers 500.
    let trap = host.url("/fixture/trap");
    let (code, report, _) = bench_json(&args(&trap, SHORT), Duration::from_secs(10));
    assert_eq!(code, Some(1));
    assert!(count(&report["statuses"]["500"]) > 0, "{report}");
    assert_eq!(
        count(&report["errors"]["status"]),
        count(&report["requests"]),
        "{report}"
    );
}

#[tokio::test]
async fn method_headers_and_body_file_shape_every_request() {
    let (app, host) = fixture_host("");
    let key = unique("bench");
    let url = host.url(&format!("/fixture/kv/default/{key}"));
    app.write("body.txt", "sent by nexa bench");
    let body = app.path("body.txt");
    let flags = format!("--method PUT --body-file {} {SHORT}", body.display());
    // With `Connection: close` the host closes each connection after its
    // answer: the bench reconnects without counting a failure.
    let report = bench_ok(&[&args(&url, &flags)[..], &["-H", "Connection: close"]].concat());
    assert_eq!(report["method"], "PUT");
    let requests = count(&report["requests"]);
    assert!(requests > 0);
    assert_eq!(count(&report["statuses"]["204"]), requests, "{report}");
    let stored = host.client().get(&url).send().await.unwrap();
    assert_eq!(stored.text().await.unwrap(), "sent by nexa bench");
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["http://127.0.0.1:1/", "--rate", "0"][..],
        &["http://127.0.0.1:1/", "-H", "no colon"],
        &["http://127.0.0.1:1/", "--rounds", "2"],
        &["http://127.0.0.1:1/", "--duration", "soon"],
        &["http://127.0.0.1:1/", "--body", "x", "--body-file", "y"],
        &["http://127.0.0.1:1/", "--max-error-ratio", "2"],
    ] {
        let output = bench(args, Duration::from_secs(5));
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    }
    let output = bench(&["https://127.0.0.1:1/"], Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only http:// URLs"), "{stderr}");
}
