//! `nexa bench URL`: the built-in load generator. Closed loop (N
//! connections, each sending when its answer is in) or open loop (a fixed
//! rate, latency from each request's due time: no coordinated omission);
//! HDR histogram percentiles; `--compare URL` runs two targets alternately
//! and gives the ratios B/A.
//!
//! The engine is a library: build a [`Plan`] (a [`Target`], a [`Load`], a
//! duration) and `measure(&plan, &live).await` returns a [`Report`].

mod client;
mod load;
mod report;
mod schedule;

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use console::style;
use http::header::{HeaderName, HeaderValue};
use indicatif::{ProgressBar, ProgressStyle};

pub use client::{Target, TargetError};
pub use load::{Live, Load, Plan, measure};
pub use report::{Comparison, Errors, Figures, Latency, Ratios, Report, Side, median};
pub use schedule::Schedule;

use super::table;

/// `nexa bench`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The URL to load (http:// only).
    pub url: String,
    /// Connections, each its own keep-alive HTTP/1.1 connection. Closed
    /// loop: each sends its next request when the previous answer is read.
    /// Open loop (--rate): the most requests in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,
    /// Open loop: this many requests a second on a fixed schedule, latency
    /// counted from each request's due time (a stalled server shows in the
    /// percentiles instead of hiding). Without it: closed loop.
    #[arg(long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// How long requests are measured (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub duration: Duration,
    /// How long the same load runs first, unrecorded (`0s` for none).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// How long a request may take before it counts as a timeout (from its
    /// due time in an open loop).
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub timeout: Duration,
    /// The request method. Default: GET, or POST with --body/--body-file.
    #[arg(long, value_parser = parse_method)]
    pub method: Option<http::Method>,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The request body.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// A file whose bytes are the request body.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Fill `{id}` in the URL (and in --compare's) with each id of this
    /// inclusive range in turn, `START..END` (e.g. `1..5000`), so requests
    /// name many resources instead of one (to read past a cache).
    #[arg(long, value_parser = parse_ids)]
    pub ids: Option<RangeInclusive<u64>>,
    /// A second target (B) to compare with URL (A): the two are run
    /// alternately, --rounds rounds each, and the report gives each one's
    /// medians and the ratios B/A.
    #[arg(long)]
    pub compare: Option<String>,
    /// Rounds per target with --compare.
    #[arg(long, default_value_t = 3, requires = "compare", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    /// The share of failed requests (connect/IO errors, timeouts, statuses
    /// other than 2xx/3xx) above which the run exits with status 1.
    #[arg(long, default_value_t = 0.01, value_parser = error_ratio)]
    pub max_error_ratio: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `nexa bench`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let body = match (&args.body, &args.body_file) {
        (Some(text), _) => Bytes::from(text.clone()),
        (None, Some(path)) => Bytes::from(
            std::fs::read(path).with_context(|| format!("--body-file {}", path.display()))?,
        ),
        (None, None) => Bytes::new(),
    };
    let has_body = args.body.is_some() || args.body_file.is_some();
    let method = args.method.clone().unwrap_or(if has_body {
        http::Method::POST
    } else {
        http::Method::GET
    });
    let connections = args.connections as usize;
    let load = match args.rate {
        Some(rate) => Load::Open { rate, connections },
        None => Load::Closed { connections },
    };
    let plan_for = |target: Target| Plan {
        target,
        load,
        duration: args.duration,
        warmup: args.warmup,
        timeout: args.timeout,
    };
    let target = |url: String| {
        let (method, headers, body) = (method.clone(), args.headers.clone(), body.clone());
        let ids = args.ids.clone();
        async move {
            match ids {
                Some(ids) => Target::with_ids(&url, ids, method, headers, body).await,
                None => Target::new(&url, method, headers, body).await,
            }
        }
    };
    let a = plan_for(target(args.url.clone()).await?);
    let Some(compare) = args.compare.clone() else {
        let report = watched(&a, "").await;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", describe_run(&report, &a));
        }
        return check_errors(&[&report], args.max_error_ratio);
    };
    let b = plan_for(target(compare).await?);
    let (mut a_rounds, mut b_rounds) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let label = |side| format!("round {round}/{} {side} ", args.rounds);
        a_rounds.push(watched(&a, &label("A")).await);
        b_rounds.push(watched(&b, &label("B")).await);
    }
    let comparison = Comparison::new(a_rounds, b_rounds);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{}", describe_comparison(&comparison, &a));
    }
    let all: Vec<&Report> = comparison
        .a
        .rounds
        .iter()
        .chain(&comparison.b.rounds)
        .collect();
    check_errors(&all, args.max_error_ratio)
}

/// Runs `plan` under a progress bar on stderr (hidden when stderr is not a
/// terminal): elapsed time, the current rate, errors.
async fn watched(plan: &Plan, label: &str) -> Report {
    let live = Arc::new(Live::default());
    let total = plan.warmup + plan.duration;
    let bar = ProgressBar::new(total.as_millis() as u64).with_prefix(label.to_string());
    bar.set_style(
        ProgressStyle::with_template("{prefix}[{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let ticker = tokio::spawn(follow(bar.clone(), live.clone(), plan.warmup, total));
    let report = measure(plan, &live).await;
    ticker.abort();
    bar.finish_and_clear();
    report
}

/// Updates `bar` four times a second from the run's live counters.
async fn follow(bar: ProgressBar, live: Arc<Live>, warmup: Duration, total: Duration) {
    let started = Instant::now();
    let (mut last_requests, mut last_tick) = (0, started);
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let elapsed = now - started;
        let requests = live.requests.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let rate = (requests - last_requests) as f64 / (now - last_tick).as_secs_f64().max(1e-3);
        (last_requests, last_tick) = (requests, now);
        let phase = if elapsed < warmup { "warm-up, " } else { "" };
        bar.set_position(elapsed.min(total).as_millis() as u64);
        bar.set_message(format!(
            "{:.1}/{:.1} s, {phase}{rate:.0} req/s, {errors} errors",
            elapsed.as_secs_f64(),
            total.as_secs_f64()
        ));
    }
}

/// Fails when a report's errors are above `max_ratio` of its requests, or
/// it has no request or no answer at all, naming the cause.
fn check_errors(reports: &[&Report], max_ratio: f64) -> anyhow::Result<()> {
    for report in reports {
        let (requests, errors) = (report.requests, &report.errors);
        anyhow::ensure!(
            requests > 0,
            "no request to {} was due in the measured window: raise --duration or --rate",
            report.url
        );
        let first = report.first_error.as_deref().unwrap_or("no detail");
        // Without a single answer there is nothing to measure, whatever
        // --max-error-ratio allows.
        anyhow::ensure!(
            report.answered > 0,
            "none of the {requests} requests to {} was answered: {first}; check that the target is up and the URL is right",
            report.url
        );
        let ratio = errors.ratio(requests);
        anyhow::ensure!(
            ratio <= max_ratio,
            "{} of {requests} requests to {} failed ({:.2} %: {}; first: {first}), above --max-error-ratio {max_ratio}",
            errors.total,
            report.url,
            ratio * 100.0,
            error_kinds(errors),
        );
    }
    Ok(())
}

fn error_kinds(errors: &Errors) -> String {
    format!(
        "connect {}, io {}, timeout {}, status {}",
        errors.connect, errors.io, errors.timeout, errors.status
    )
}

/// The load in words: `closed loop, 16 connections`.
fn describe_load(load: &Load) -> String {
    match *load {
        Load::Closed { connections } => format!("closed loop, {connections} connections"),
        Load::Open { rate, connections } => {
            format!("open loop, {rate} req/s, at most {connections} in flight")
        }
    }
}

fn describe_window(plan: &Plan) -> String {
    let duration = humantime::format_duration(plan.duration);
    if plan.warmup.is_zero() {
        format!("{duration}, no warm-up")
    } else {
        format!(
            "{duration} after {} of warm-up",
            humantime::format_duration(plan.warmup)
        )
    }
}

/// One run, for people.
fn describe_run(report: &Report, plan: &Plan) -> String {
    let mut out = format!(
        "{} {}: {}, {}\n\n",
        style(&report.method).bold(),
        style(&report.url).bold(),
        describe_load(&plan.load),
        describe_window(plan),
    );
    out.push_str(&format!(
        "requests    {} in {:.2} s, {:.1} req/s answered\n",
        report.requests, report.elapsed_s, report.throughput
    ));
    out.push_str(&format!("errors      {}\n", describe_errors(report)));
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, count)| format!("{status} × {count}"))
        .collect();
    let statuses = if statuses.is_empty() {
        "no answer".to_string()
    } else {
        statuses.join(", ")
    };
    out.push_str(&format!("statuses    {statuses}\n\n"));
    let named = report.latency_us.named();
    let header = named.map(|(name, _)| name.to_uppercase());
    let row = named.map(|(_, micros)| format_micros(micros));
    out.push_str("latency (answered requests)\n");
    out.push_str(&table(&header.each_ref().map(String::as_str), &[row]));
    out
}

/// `0` or `12 (0.02 %: connect 0, io 2, timeout 0, status 10; first: …)`.
fn describe_errors(report: &Report) -> String {
    let errors = &report.errors;
    if errors.total == 0 {
        return style("0").green().to_string();
    }
    let mut text = format!(
        "{} ({:.2} %: {}",
        errors.total,
        errors.ratio(report.requests) * 100.0,
        error_kinds(errors)
    );
    if let Some(first) = &report.first_error {
        text.push_str(&format!("; first: {first}"));
    }
    text.push(')');
    style(text).red().to_string()
}

/// A comparison, for people: each target's medians and the ratios B/A.
fn describe_comparison(comparison: &Comparison, plan: &Plan) -> String {
    let rounds = comparison.a.rounds.len();
    let mut out = format!(
        "A = {}\nB = {}\n{}, {rounds} rounds each of {}; medians over the rounds:\n\n",
        style(&comparison.a.url).bold(),
        style(&comparison.b.url).bold(),
        describe_load(&plan.load),
        describe_window(plan),
    );
    let side_row = |name: &str, side: &Side| {
        let m = &side.median;
        let errors: u64 = side.rounds.iter().map(|r| r.errors.total).sum();
        [
            name.to_string(),
            format!("{:.1}", m.throughput),
            format_micros(m.p50_us),
            format_micros(m.p90_us),
            format_micros(m.p99_us),
            format_micros(m.p99_9_us),
            format_micros(m.max_us),
            errors.to_string(),
        ]
    };
    let ratio = |value: Option<f64>| value.map_or("-".to_string(), |r| format!("{r:.3}"));
    let r = &comparison.ratio;
    let rows = [
        side_row("A", &comparison.a),
        side_row("B", &comparison.b),
        [
            "B/A".to_string(),
            ratio(r.throughput),
            ratio(r.p50),
            ratio(r.p90),
            ratio(r.p99),
            ratio(r.p99_9),
            ratio(r.max),
            String::new(),
        ],
    ];
    out.push_str(&table(
        &[
            "TARGET", "REQ/S", "P50", "P90", "P99", "P99.9", "MAX", "ERRORS",
        ],
        &rows,
    ));
    out
}

/// Microseconds for people: `850 µs`, `2.95 ms`, `1.20 s`.
fn format_micros(micros: f64) -> String {
    if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1_000_000.0 {
        format!("{:.2} ms", micros / 1_000.0)
    } else {
        format!("{:.2} s", micros / 1_000_000.0)
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be more than zero".to_string());
    }
    Ok(duration)
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected requests per second, a number above zero".to_string()),
    }
}

fn error_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("expected a share of the requests, from 0 to 1".to_string()),
    }
}

fn parse_method(text: &str) -> Result<http::Method, String> {
    http::Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{text:?} is not an HTTP method"))
}

/// `Name: value` → a header (the value's surrounding spaces dropped).
/// `START..END`, both inclusive, START <= END.
fn parse_ids(text: &str) -> Result<RangeInclusive<u64>, String> {
    let usage = || format!("{text:?}: expected START..END, e.g. 1..5000");
    let (start, end) = text.split_once("..").ok_or_else(usage)?;
    let number = |n: &str| n.trim().parse::<u64>().map_err(|_| usage());
    let (start, end) = (number(start)?, number(end.trim_start_matches('='))?);
    if start > end {
        return Err(format!("{text:?}: START is past END"));
    }
    Ok(start..=end)
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("{value:?} is not a valid header value"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_an_inclusive_range() {
        assert_eq!(parse_ids("1..5000").unwrap(), 1..=5000);
        assert_eq!(parse_ids("7..=7").unwrap(), 7..=7);
        assert!(parse_ids("5..1").unwrap_err().contains("past END"));
        assert!(parse_ids("1-5").is_err());
        assert!(parse_ids("a..b").is_err());
    }

    #[tokio::test]
    async fn a_target_with_ids_names_each_in_turn() {
        let target = Target::with_ids(
            "http://127.0.0.1:9/items/{id}?x=1",
            3..=5,
            http::Method::GET,
            Vec::new(),
            Bytes::new(),
        )
        .await
        .unwrap();
        let paths: Vec<String> = (0..4).map(|_| target.request_uri().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/items/3?x=1",
                "/items/4?x=1",
                "/items/5?x=1",
                "/items/3?x=1"
            ]
        );
        assert_eq!(target.url, "http://127.0.0.1:9/items/{id}?x=1");
        let missing = Target::with_ids(
            "http://127.0.0.1:9/items/1",
            1..=2,
            http::Method::GET,
            Vec::new(),
            Bytes::new(),
        )
        .await;
        assert!(matches!(missing, Err(TargetError::NoIdPlaceholder(_))));
    }

    #[test]
    fn headers_are_name_colon_value() {
        let (name, value) = parse_header("Content-Type:  application/json ").unwrap();
        assert_eq!(name, "content-type");
        assert_eq!(value, "application/json");
        let (_, value) = parse_header("Authorization: Bearer a:b").unwrap();
        assert_eq!(value, "Bearer a:b");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn flags_reject_what_cannot_be_run() {
        assert!(positive_rate("0").is_err());
        assert!(positive_rate("-5").is_err());
        assert!(positive_rate("inf").is_err());
        assert_eq!(positive_rate("2.5"), Ok(2.5));
        assert!(positive_duration("0s").is_err());
        assert_eq!(positive_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(error_ratio("1.5").is_err());
        assert_eq!(error_ratio("0"), Ok(0.0));
        assert_eq!(parse_method("post"), Ok(http::Method::POST));
    }

    #[test]
    fn latencies_read_in_the_unit_that_fits() {
        assert_eq!(format_micros(850.0), "850 µs");
        assert_eq!(format_micros(2_950.0), "2.95 ms");
        assert_eq!(format_micros(1_200_000.0), "1.20 s");
    }

    fn report(requests: u64, failed: u64) -> Report {
        Report {
            url: "http://127.0.0.1:1/".into(),
            method: "GET".into(),
            mode: "closed".into(),
            connections: 1,
            rate: None,
            elapsed_s: 1.0,
            requests,
            answered: requests - failed,
            throughput: 1.0,
            errors: Errors {
                total: failed,
                connect: failed,
                ..Errors::default()
            },
            statuses: Default::default(),
            latency_us: Latency::default(),
            first_error: (failed > 0).then(|| "connection refused to 127.0.0.1:1".into()),
        }
    }

    #[test]
    fn the_error_ratio_decides_the_exit_status() {
        assert!(check_errors(&[&report(100, 0)], 0.01).is_ok());
        assert!(check_errors(&[&report(100, 1)], 0.01).is_ok());
        let above = check_errors(&[&report(100, 2)], 0.01)
            .unwrap_err()
            .to_string();
        assert!(
            above.contains("2 of 100") && above.contains("connect 2"),
            "{above}"
        );
        let all = check_errors(&[&report(7, 7)], 1.0).unwrap_err().to_string();
        assert!(
            all.contains("none of the 7 requests")
                && all.contains("connection refused to 127.0.0.1:1"),
            "{all}"
        );
        assert!(check_errors(&[&report(0, 0)], 1.0).is_err());
    }
}
