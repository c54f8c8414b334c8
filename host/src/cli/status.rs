//! `nexa status`: how a running host is doing, now — its health, and per
//! component the version serving, live instances, request rate, p99 and
//! error ratio. Rates come from two scrapes of `/metrics` an `--interval`
//! apart (what happened in between, not since start-up); the components
//! from the admin API. Exits 1 (after the report) when the health URL does
//! not answer 2xx.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::{AdminClient, short_digest, table};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub admin: super::AdminArgs,
    /// The URL whose answer says whether the host is healthy (any 2xx is).
    #[arg(
        long,
        default_value = "http://127.0.0.1:3000/health",
        env = "NEXA_HEALTH_URL"
    )]
    pub health: String,
    /// How long to watch traffic for the rates (humantime: 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `nexa status --json` prints.
#[derive(Debug, Serialize)]
pub struct Status {
    pub health: Health,
    pub interval_seconds: f64,
    pub components: Vec<ComponentStatus>,
    /// All components together.
    pub total: Traffic,
}

#[derive(Debug, Serialize)]
pub struct Health {
    /// `GET /health`'s status code; `None` when it could not be reached.
    pub status: Option<u16>,
    pub latency_ms: Option<f64>,
    /// Why it is not healthy, when it is not.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ComponentStatus {
    pub id: String,
    pub digest: String,
    pub live_instances: i64,
    pub previous_versions: usize,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// Requests answered during the interval.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Traffic {
    pub requests: f64,
    pub requests_per_second: f64,
    /// 5xx answers over all answers; `None` without requests.
    pub error_ratio: Option<f64>,
    /// From the duration histogram's buckets (their upper bound, as
    /// Prometheus's histogram_quantile interpolates); `None` without requests.
    pub p99_ms: Option<f64>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.admin.url)?;
    let before = Scrape::read(&client).await?;
    let started = Instant::now();
    let health = health(&args.health).await;
    let elapsed = started.elapsed();
    if elapsed < args.interval {
        tokio::time::sleep(args.interval - elapsed).await;
    }
    let after = Scrape::read(&client).await?;
    let seconds = after.at.duration_since(before.at).as_secs_f64();
    let components = client.components().await?;
    let status = Status {
        health,
        interval_seconds: seconds,
        components: components
            .into_iter()
            .map(|c| ComponentStatus {
                traffic: traffic(&before, &after, Some(&c.id), seconds),
                id: c.id,
                digest: c.digest,
                live_instances: c.live_instances,
                previous_versions: c.previous_versions.len(),
            })
            .collect(),
        total: traffic(&before, &after, None, seconds),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    // After the report: scripts can trust the exit status alone.
    match &status.health.error {
        Some(error) => anyhow::bail!("the host is not healthy: {error}"),
        None => Ok(()),
    }
}

async fn health(url: &str) -> Health {
    let started = Instant::now();
    let answer = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
    match answer {
        Ok(response) => {
            let status = response.status();
            Health {
                status: Some(status.as_u16()),
                latency_ms,
                error: (!status.is_success()).then(|| format!("GET {url} answered {status}")),
            }
        }
        Err(error) => Health {
            status: None,
            latency_ms: None,
            error: Some(format!("GET {url}: {}", root_cause(&error))),
        },
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// One read of the host's request counters and duration buckets.
struct Scrape {
    at: Instant,
    /// (component, status class) → requests.
    requests: BTreeMap<(String, String), f64>,
    /// (component, upper bound) → requests at most that long.
    buckets: BTreeMap<(String, OrderedBound), f64>,
}

/// A bucket's upper bound in seconds, ordered (`+Inf` last).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedBound(f64);
impl Eq for OrderedBound {}
impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Scrape {
    async fn read(client: &AdminClient) -> anyhow::Result<Self> {
        let text = client.text("/metrics").await?;
        let at = Instant::now();
        Self::parse(&text, at)
    }

    fn parse(text: &str, at: Instant) -> anyhow::Result<Self> {
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .context("/metrics is not the Prometheus text format")?;
        let mut requests = BTreeMap::new();
        let mut buckets = BTreeMap::new();
        for sample in scrape.samples {
            let component = sample.labels.get("component").unwrap_or("").to_string();
            match (sample.metric.as_str(), &sample.value) {
                ("http_server_requests_total", prometheus_parse::Value::Counter(count)) => {
                    let class = sample.labels.get("status_class").unwrap_or("").to_string();
                    *requests.entry((component, class)).or_default() += count;
                }
                (
                    "http_server_request_duration_seconds",
                    prometheus_parse::Value::Histogram(counts),
                ) => {
                    for count in counts {
                        *buckets
                            .entry((component.clone(), OrderedBound(count.less_than)))
                            .or_default() += count.count;
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            at,
            requests,
            buckets,
        })
    }
}

/// The traffic of `component` (all when `None`) between two scrapes.
fn traffic(before: &Scrape, after: &Scrape, component: Option<&str>, seconds: f64) -> Traffic {
    let wanted = |c: &str| component.is_none_or(|id| id == c);
    let mut total = 0.0;
    let mut errors = 0.0;
    for ((c, class), count) in &after.requests {
        if !wanted(c) {
            continue;
        }
        let delta = count
            - before
                .requests
                .get(&(c.clone(), class.clone()))
                .unwrap_or(&0.0);
        total += delta;
        if class == "5xx" {
            errors += delta;
        }
    }
    let mut cumulative: BTreeMap<OrderedBound, f64> = BTreeMap::new();
    for ((c, bound), count) in &after.buckets {
        if wanted(c) {
            let delta = count - before.buckets.get(&(c.clone(), *bound)).unwrap_or(&0.0);
            *cumulative.entry(*bound).or_default() += delta;
        }
    }
    Traffic {
        requests: total,
        requests_per_second: if seconds > 0.0 { total / seconds } else { 0.0 },
        error_ratio: (total > 0.0).then(|| errors / total),
        p99_ms: quantile(&cumulative, 0.99).map(|seconds| seconds * 1e3),
    }
}

/// The `q` quantile of a cumulative histogram, interpolated linearly within
/// its bucket as Prometheus's `histogram_quantile` does; the highest finite
/// bound when it falls in `+Inf`.
fn quantile(cumulative: &BTreeMap<OrderedBound, f64>, q: f64) -> Option<f64> {
    let total = *cumulative.values().last()?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower_bound, mut lower_count) = (0.0, 0.0);
    for (bound, count) in cumulative {
        if *count >= rank {
            if bound.0.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            let fraction = if in_bucket > 0.0 {
                (rank - lower_count) / in_bucket
            } else {
                1.0
            };
            return Some(lower_bound + (bound.0 - lower_bound) * fraction);
        }
        (lower_bound, lower_count) = (bound.0, *count);
    }
    Some(lower_bound)
}

fn render(status: &Status) -> String {
    let health = match (&status.health.error, status.health.latency_ms) {
        (None, Some(ms)) => format!("{} ({ms:.1} ms)", console::style("healthy").green()),
        (Some(error), _) => format!("{}: {error}", console::style("unhealthy").red().bold()),
        (None, None) => "unknown".to_string(),
    };
    let per_second = |t: &Traffic| format!("{:.1}/s", t.requests_per_second);
    let ratio = |t: &Traffic| {
        t.error_ratio
            .map_or("-".to_string(), |r| format!("{:.2} %", r * 100.0))
    };
    let p99 = |t: &Traffic| t.p99_ms.map_or("-".to_string(), |ms| format!("{ms:.1} ms"));
    let mut rows: Vec<[String; 7]> = status
        .components
        .iter()
        .map(|c| {
            [
                c.id.clone(),
                short_digest(&c.digest).to_string(),
                c.previous_versions.to_string(),
                c.live_instances.to_string(),
                per_second(&c.traffic),
                p99(&c.traffic),
                ratio(&c.traffic),
            ]
        })
        .collect();
    rows.push([
        "(all)".to_string(),
        String::new(),
        String::new(),
        String::new(),
        per_second(&status.total),
        p99(&status.total),
        ratio(&status.total),
    ]);
    format!(
        "Health: {health}\nTraffic over the last {:.1} s:\n{}",
        status.interval_seconds,
        table(
            &[
                "COMPONENT",
                "DIGEST",
                "ROLLBACKS",
                "LIVE",
                "RATE",
                "P99",
                "ERRORS"
            ],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# TYPE http_server_requests_total counter
http_server_requests_total{component="items",method="GET",route="/items/...",status_class="2xx"} 10
http_server_requests_total{component="items",method="GET",route="/items/...",status_class="5xx"} 1
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{component="items",method="GET",route="/items/...",le="0.001"} 5
http_server_request_duration_seconds_bucket{component="items",method="GET",route="/items/...",le="0.01"} 11
http_server_request_duration_seconds_bucket{component="items",method="GET",route="/items/...",le="+Inf"} 11
http_server_request_duration_seconds_sum{component="items",method="GET",route="/items/..."} 0.02
http_server_request_duration_seconds_count{component="items",method="GET",route="/items/..."} 11
"#;

    const AFTER: &str = r#"# TYPE http_server_requests_total counter
http_server_requests_total{component="items",method="GET",route="/items/...",status_class="2xx"} 100
http_server_requests_total{component="items",method="GET",route="/items/...",status_class="5xx"} 11
http_server_requests_total{component="health",method="GET",route="/health",status_class="2xx"} 89
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{component="items",method="GET",route="/items/...",le="0.001"} 5
http_server_request_duration_seconds_bucket{component="items",method="GET",route="/items/...",le="0.01"} 111
http_server_request_duration_seconds_bucket{component="items",method="GET",route="/items/...",le="+Inf"} 111
http_server_request_duration_seconds_sum{component="items",method="GET",route="/items/..."} 0.5
http_server_request_duration_seconds_count{component="items",method="GET",route="/items/..."} 111
"#;

    #[test]
    fn traffic_is_what_happened_between_the_scrapes() {
        let now = Instant::now();
        let before = Scrape::parse(BEFORE, now).unwrap();
        let after = Scrape::parse(AFTER, now).unwrap();
        let items = traffic(&before, &after, Some("items"), 10.0);
        assert_eq!(items.requests, 100.0);
        assert_eq!(items.requests_per_second, 10.0);
        assert_eq!(items.error_ratio, Some(0.1));
        // All 100 new requests fell in (1 ms, 10 ms]: p99 is 99 % of the way.
        let p99 = items.p99_ms.unwrap();
        assert!((p99 - 9.91).abs() < 1e-6, "{p99}");
        let all = traffic(&before, &after, None, 10.0);
        assert_eq!(all.requests, 189.0);
        assert_eq!(all.error_ratio, Some(10.0 / 189.0));
        let idle = traffic(&after, &after, Some("items"), 10.0);
        assert_eq!((idle.error_ratio, idle.p99_ms), (None, None));
    }

    #[test]
    fn a_quantile_in_the_overflow_bucket_is_the_highest_finite_bound() {
        let cumulative = BTreeMap::from([
            (OrderedBound(0.5), 1.0),
            (OrderedBound(f64::INFINITY), 100.0),
        ]);
        assert_eq!(quantile(&cumulative, 0.99), Some(0.5));
    }
}
