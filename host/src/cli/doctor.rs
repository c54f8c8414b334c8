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
use crate::backends::{Backend, backends_of, cause};
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
#[derive(Debug, Clone)]
enum Probe {
    /// Postgres or Redis: connect (authenticating), `SELECT 1` or `PING`.
    Backend(Backend),
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

/// What to check, read from the app's files and the environment.
fn plan(
    files: &AppFiles,
    otlp: Option<OtlpTarget>,
    prometheus: Option<&str>,
) -> anyhow::Result<Vec<Planned>> {
    let mut plans: Vec<Planned> = backends_of(files)?
        .into_iter()
        .map(|backend| Planned {
            name: backend.kind.as_str(),
            target: backend.target.clone(),
            used_by: backend.used_by.clone(),
            problems: backend.problems.clone(),
            probe: Ok(Probe::Backend(backend)),
        })
        .collect();
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
        Probe::Backend(backend) => backend.reach().await,
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
                probe: Ok(Probe::Backend(Backend::at(
                    crate::backends::BackendKind::Redis,
                    &format!("redis://127.0.0.1:{port}"),
                ))),
                problems: Vec::new(),
            },
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(report.status, "failed");
        assert_eq!(report.cause.as_deref(), Some("connection refused"));
    }
}
