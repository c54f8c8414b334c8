//! `nexa doctor`: can the backends the app is configured with be reached
//! from here? Postgres and Redis as spin.toml, the runtime config and
//! nexa.toml point components at them (read as `nexa up` reads them), the
//! OTLP endpoint from the `OTEL_*` environment, and Prometheus when named.
//! Every check runs at once, each within `--timeout`, and reports its
//! latency or the cause of its failure as the real error tells it.

use std::time::{Duration, Instant};

use anyhow::bail;
use console::style;
use serde::Serialize;

use super::{PROMETHEUS_URL_ENV, PrometheusClient, spinner, table};
use crate::app::AppFiles;
use crate::capabilities::allowed_hosts::AllowedHosts;
use crate::capabilities::key_value::KeyValueStoreSection;
use crate::capabilities::postgres::address::parse_address;
use crate::capabilities::variables::{Template, VariablesState, providers};
use crate::telemetry::traces::{OtlpTarget, Protocol};

/// `nexa doctor`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub app: super::AppArgs,
    /// Prometheus's URL. Without it, the Prometheus check is skipped.
    #[arg(long, env = PROMETHEUS_URL_ENV)]
    pub prometheus: Option<String>,
    /// How long each check may take.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One check's outcome (`nexa doctor --json` prints a list of them).
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// `postgres`, `redis`, `otlp` or `prometheus`.
    pub name: &'static str,
    /// The address, with any password replaced by `***`.
    pub target: String,
    /// `ok`, `failed` or `skipped` (not configured).
    pub status: &'static str,
    pub latency_ms: Option<f64>,
    /// Why it failed, or why it was skipped.
    pub cause: Option<String>,
    /// What in the configuration points at it.
    pub used_by: Vec<String>,
}

/// How to reach one target.
#[derive(Debug, Clone, PartialEq)]
enum Probe {
    /// Connect (authenticating) and run `SELECT 1`.
    Postgres(String),
    /// Connect and `PING`.
    Redis(String),
    /// POST an empty export request; any 2xx means a collector took it.
    OtlpHttp(String),
    /// Open a TCP connection to the gRPC server.
    OtlpGrpc(String),
    /// `GET /-/ready`.
    Prometheus(String),
}

/// A check to run, or to report as skipped.
#[derive(Debug)]
struct Planned {
    name: &'static str,
    target: String,
    used_by: Vec<String>,
    /// `Err`: skipped, with the reason.
    probe: Result<Probe, String>,
    /// Found while planning: a reason to fail even if the probe succeeds.
    problems: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let files = args.app.files()?;
    let plans = plan(&files, OtlpTarget::from_env()?, args.prometheus.as_deref())?;
    let progress = spinner(format!("checking {} backends", plans.len()));
    let reports = futures::future::join_all(
        plans
            .into_iter()
            .map(|planned| execute(planned, args.timeout)),
    )
    .await;
    progress.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", render(&reports));
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.status == "failed")
        .map(|r| format!("{} {}", r.name, r.target))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} checks failed: {}",
            failed.len(),
            reports.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; the
/// key=value form's `password=` likewise.
fn redact(address: &str) -> String {
    if let Ok(mut url) = url::Url::parse(address)
        && url.password().is_some()
    {
        let _ = url.set_password(Some("***"));
        return url.to_string();
    }
    address
        .split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_postgres(value: &str) -> bool {
    value.starts_with("postgres://")
        || value.starts_with("postgresql://")
        || (value.contains("host=") && parse_address(value).is_ok())
}

fn is_redis(value: &str) -> bool {
    value.starts_with("redis://") || value.starts_with("rediss://")
}

/// Adds `used_by` to the check of `target` (one per address), creating it.
fn add_use(
    plans: &mut Vec<Planned>,
    name: &'static str,
    address: &str,
    probe: Probe,
    used_by: String,
) -> usize {
    let target = redact(address);
    match plans
        .iter()
        .position(|p| p.name == name && p.target == target)
    {
        Some(i) => {
            plans[i].used_by.push(used_by);
            i
        }
        None => {
            plans.push(Planned {
                name,
                target,
                used_by: vec![used_by],
                probe: Ok(probe),
                problems: Vec::new(),
            });
            plans.len() - 1
        }
    }
}

/// What to check, read from the app's files and the environment.
fn plan(
    files: &AppFiles,
    otlp: Option<OtlpTarget>,
    prometheus: Option<&str>,
) -> anyhow::Result<Vec<Planned>> {
    let manifest = &files.manifest.manifest;
    let variables = VariablesState::new(manifest.variables.clone(), providers(&files.runtime)?);
    let mut plans = Vec::new();
    // Components reach Postgres and Redis through addresses in their
    // variables (spin.toml's `database_url = "{{ database_url }}"`), within
    // their allowed_outbound_hosts.
    for (id, component) in &manifest.component {
        let allowed =
            AllowedHosts::parse(&component.allowed_outbound_hosts, &variables).map_err(|e| {
                anyhow::anyhow!("{}: component {id}: {e}", files.manifest.path.display())
            })?;
        for (name, text) in &component.variables {
            let value = Template::parse(text)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    t.render(|v| variables.resolve(v))
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}: component {id} variable {name}: {e}",
                        files.manifest.path.display()
                    )
                })?;
            let value = value.trim();
            let used_by = format!("component {id} ({name})");
            let (index, scheme, host, port) = if is_postgres(value) {
                let index = add_use(
                    &mut plans,
                    "postgres",
                    value,
                    Probe::Postgres(value.to_string()),
                    used_by,
                );
                let Ok(address) = parse_address(value) else {
                    continue;
                };
                (index, "postgres", address.host, Some(address.port))
            } else if is_redis(value) {
                let index = add_use(
                    &mut plans,
                    "redis",
                    value,
                    Probe::Redis(value.to_string()),
                    used_by,
                );
                let Ok(url) = url::Url::parse(value) else {
                    continue;
                };
                (
                    index,
                    "redis",
                    url.host_str().unwrap_or_default().to_string(),
                    url.port(),
                )
            } else {
                continue;
            };
            if !allowed.allows(scheme, &host, port) {
                plans[index].problems.push(format!(
                    "allowed_outbound_hosts of component {id} does not permit {scheme}://{host}:{}",
                    port.map(|p| p.to_string()).unwrap_or_default()
                ));
            }
        }
    }
    for (label, store) in &files.runtime.config.key_value_store {
        if let KeyValueStoreSection::Redis { url } = store {
            add_use(
                &mut plans,
                "redis",
                url,
                Probe::Redis(url.clone()),
                format!("key_value_store.{label}"),
            );
        }
    }
    let rate_limit = &files.host.rate_limit;
    if rate_limit.enabled
        && let Some(url) = &rate_limit.redis_url
    {
        add_use(
            &mut plans,
            "redis",
            url,
            Probe::Redis(url.clone()),
            "nexa.toml [rate_limit] redis_url".to_string(),
        );
    }
    for (name, what) in [
        (
            "postgres",
            "no component variable holds a postgres:// address",
        ),
        (
            "redis",
            "no Redis in component variables, key-value stores or [rate_limit]",
        ),
    ] {
        if !plans.iter().any(|p| p.name == name) {
            plans.push(skipped(name, what));
        }
    }
    plans.push(match otlp {
        Some(otlp) => Planned {
            name: "otlp",
            target: format!("{} {}", otlp.protocol.as_str(), otlp.traces_url()),
            used_by: vec![if otlp.traces_specific {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_string()
            } else {
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_string()
            }],
            probe: Ok(match otlp.protocol {
                Protocol::HttpProtobuf => Probe::OtlpHttp(otlp.traces_url()),
                Protocol::Grpc => Probe::OtlpGrpc(otlp.traces_url()),
            }),
            problems: Vec::new(),
        },
        None => skipped(
            "otlp",
            "tracing is off: OTEL_EXPORTER_OTLP_ENDPOINT is not set",
        ),
    });
    plans.push(match prometheus {
        Some(url) => Planned {
            name: "prometheus",
            target: url.to_string(),
            used_by: vec!["--prometheus".to_string()],
            probe: Ok(Probe::Prometheus(url.to_string())),
            problems: Vec::new(),
        },
        None => skipped(
            "prometheus",
            "no --prometheus (or NEXA_PROMETHEUS_URL) given",
        ),
    });
    Ok(plans)
}

fn skipped(name: &'static str, reason: &str) -> Planned {
    Planned {
        name,
        target: "-".to_string(),
        used_by: Vec::new(),
        probe: Err(reason.to_string()),
        problems: Vec::new(),
    }
}

async fn execute(planned: Planned, timeout: Duration) -> CheckReport {
    let Planned {
        name,
        target,
        used_by,
        probe,
        problems,
    } = planned;
    let probe = match probe {
        Ok(probe) => probe,
        Err(reason) => {
            return CheckReport {
                name,
                target,
                status: "skipped",
                latency_ms: None,
                cause: Some(reason),
                used_by,
            };
        }
    };
    let started = Instant::now();
    let outcome = match tokio::time::timeout(timeout, reach(&probe, timeout)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "timed out after {}",
            humantime::format_duration(timeout)
        )),
    };
    let latency = started.elapsed().as_secs_f64() * 1e3;
    let cause = match (outcome, problems.is_empty()) {
        (Ok(()), true) => None,
        (Ok(()), false) => Some(format!("reachable, but {}", problems.join("; "))),
        (Err(cause), _) => Some(
            std::iter::once(cause)
                .chain(problems)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    CheckReport {
        name,
        target,
        status: if cause.is_none() { "ok" } else { "failed" },
        latency_ms: Some((latency * 100.0).round() / 100.0),
        cause,
        used_by,
    }
}

/// Reaches the target once; `Err` is the cause, for people.
async fn reach(probe: &Probe, timeout: Duration) -> Result<(), String> {
    match probe {
        Probe::Postgres(address) => {
            use sqlx::{Connection, Executor};
            let address = parse_address(address).map_err(|e| format!("bad address: {e}"))?;
            let mut connection = sqlx::postgres::PgConnection::connect_with(&address.options)
                .await
                .map_err(|e| cause(&e))?;
            connection
                .execute("SELECT 1")
                .await
                .map_err(|e| cause(&e))?;
            let _ = connection.close().await;
            Ok(())
        }
        Probe::Redis(url) => {
            let client = redis::Client::open(url.as_str()).map_err(|e| cause(&e))?;
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| cause(&e))?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(|e| cause(&e))?;
            if pong != "PONG" {
                return Err(format!("PING answered {pong:?}"));
            }
            Ok(())
        }
        Probe::OtlpHttp(url) => {
            let http = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| cause(&e))?;
            // An ExportTraceServiceRequest without spans encodes as no bytes.
            let response = http
                .post(url)
                .header("content-type", "application/x-protobuf")
                .body(Vec::new())
                .send()
                .await
                .map_err(|e| cause(&e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!(
                    "the collector answered {status} (is this the OTLP/HTTP traces endpoint?)"
                ));
            }
            Ok(())
        }
        Probe::OtlpGrpc(endpoint) => {
            let url = url::Url::parse(endpoint).map_err(|e| format!("bad endpoint: {e}"))?;
            let host = url.host_str().unwrap_or_default().to_string();
            let port = url.port_or_known_default().unwrap_or(4317);
            tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| cause(&e))?;
            Ok(())
        }
        Probe::Prometheus(url) => {
            let prometheus = PrometheusClient::new(url, timeout).map_err(|e| e.to_string())?;
            prometheus.ready().await.map_err(|e| {
                let root = e.root_cause();
                match e.chain().find_map(|c| c.downcast_ref::<reqwest::Error>()) {
                    Some(reqwest) => cause(reqwest),
                    None => root.to_string(),
                }
            })
        }
    }
}

/// The cause of a failed connection, in words: `connection refused`,
/// `DNS: ...`, `authentication failed: ...`, `timed out`, or the error
/// itself, found by walking the error's sources to the one that knows.
fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    let mut io_kind = None;
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        match source {
            Some(next) => {
                chain.push(next.to_string());
                current = next;
                source = next.source();
            }
            None => break,
        }
    }
    let text = chain.join(": ");
    let lower = text.to_ascii_lowercase();
    let deepest = chain.last().cloned().unwrap_or_default();
    if io_kind == Some(std::io::ErrorKind::ConnectionRefused)
        || lower.contains("connection refused")
    {
        "connection refused".to_string()
    } else if lower.contains("lookup address")
        || lower.contains("dns error")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
    {
        format!("DNS: cannot resolve the host ({deepest})")
    } else if lower.contains("authentication failed")
        || lower.contains("noauth")
        || lower.contains("wrongpass")
        || lower.contains("invalid password")
        || lower.contains("invalid username-password")
    {
        format!("authentication failed: {deepest}")
    } else if io_kind == Some(std::io::ErrorKind::TimedOut) || lower.contains("timed out") {
        "timed out".to_string()
    } else {
        text
    }
}

fn render(reports: &[CheckReport]) -> String {
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|r| {
            let status = match r.status {
                "ok" => style("ok").green().to_string(),
                "failed" => style("failed").red().bold().to_string(),
                other => style(other).dim().to_string(),
            };
            let detail = match &r.cause {
                Some(cause) => cause.clone(),
                None => format!("used by {}", r.used_by.join(", ")),
            };
            [
                r.name.to_string(),
                r.target.clone(),
                status,
                r.latency_ms
                    .map(|ms| format!("{ms:.1} ms"))
                    .unwrap_or_else(|| "-".to_string()),
                detail,
            ]
        })
        .collect();
    table(&["CHECK", "TARGET", "STATUS", "LATENCY", "DETAIL"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_output() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app?sslmode=disable"),
            "postgres://app:***@db:5432/app?sslmode=disable"
        );
        assert_eq!(
            redact("host=db user=app password=s3cret dbname=app"),
            "host=db user=app password=*** dbname=app"
        );
        assert_eq!(redact("redis://:pw@cache:6379"), "redis://:***@cache:6379");
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
    }

    #[test]
    fn causes_are_read_from_the_error_chain() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(cause(&refused), "connection refused");
        let dns = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert!(cause(&dns).starts_with("DNS: "), "{}", cause(&dns));
        let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(cause(&timeout), "timed out");
        let other = std::io::Error::other("something else");
        assert_eq!(cause(&other), "something else");
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let report = execute(
            Planned {
                name: "redis",
                target: format!("redis://127.0.0.1:{port}"),
                used_by: vec!["test".to_string()],
                probe: Ok(Probe::Redis(format!("redis://127.0.0.1:{port}"))),
                problems: Vec::new(),
            },
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(report.status, "failed");
        assert_eq!(report.cause.as_deref(), Some("connection refused"));
    }
}
