//! `nexa slo`: each SLO's compliance, error budget left and burn rates, read
//! from the series `observability/prometheus/rules/slo.yml` records in
//! Prometheus, with the SLO alerts that are firing.
//!
//! Nothing here restates an objective or an SLI: the objectives come from
//! `component:slo_<slo>_objective:ratio`, the error ratios from
//! `component:slo_<slo>_errors:ratio_rate<window>`, and the windows are the
//! ones the loaded rules record.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail};
use console::style;
use serde::{Deserialize, Serialize};

use super::{PROMETHEUS_URL_ENV, PrometheusClient, Sample, format_duration, spinner, table};

/// `nexa slo`.
#[derive(clap::Args)]
pub struct Args {
    /// Prometheus's URL (it must load observability/prometheus/rules/slo.yml).
    #[arg(long, default_value = "http://127.0.0.1:9090", env = PROMETHEUS_URL_ENV)]
    pub prometheus: String,
    /// The window of compliance and error budget: one of those the rules
    /// record (slo.yml: 5m, 30m, 1h, 2h, 6h, 1d, 3d, 30d).
    #[arg(long, default_value = "30d")]
    pub window: String,
    /// How long to wait for each answer from Prometheus.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The burn-rate windows the table shows (the multi-window alerts' long
/// windows); `--json` has every recorded one.
const TABLE_BURN_WINDOWS: [&str; 4] = ["1h", "6h", "1d", "3d"];

/// What `nexa slo --json` prints.
#[derive(Debug, Serialize)]
pub struct SloReport {
    pub prometheus: String,
    pub window: String,
    pub slos: Vec<SloStatus>,
}

/// One SLO: a component's availability or latency objective.
#[derive(Debug, Serialize)]
pub struct SloStatus {
    pub component: String,
    /// `availability` or `latency`.
    pub slo: String,
    /// The share of requests that must be good, e.g. 0.999.
    pub objective: f64,
    /// Latency SLOs: the threshold a good request is answered within.
    pub threshold_seconds: Option<f64>,
    /// The share of good requests over the window; null when the component
    /// had no requests in it.
    pub compliance: Option<f64>,
    /// The share of the window's error budget still unspent: 1 untouched,
    /// 0 spent, negative overspent.
    pub budget_remaining: Option<f64>,
    /// The same as time at full outage (budget × window); negative overspent.
    pub budget_remaining_seconds: Option<f64>,
    /// The whole budget as time: (1 - objective) × window.
    pub budget_seconds: f64,
    pub exhausted: bool,
    /// Error ratio / (1 - objective) per recorded window ("1h": 2.0 spends
    /// the budget twice as fast as the SLO allows); null without requests.
    pub burn_rates: BTreeMap<String, Option<f64>>,
    /// The SLO's alerts that are pending or firing.
    pub alerts: Vec<SloAlert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SloAlert {
    pub name: String,
    /// `firing` or `pending`.
    pub state: String,
    pub severity: Option<String>,
    pub active_at: Option<String>,
}

/// An entry of `/api/v1/alerts`.
#[derive(Debug, Deserialize)]
struct ActiveAlert {
    labels: BTreeMap<String, String>,
    state: String,
    #[serde(default, rename = "activeAt")]
    active_at: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let prometheus = PrometheusClient::new(&args.prometheus, args.timeout)?;
    let progress = spinner(format!("asking Prometheus at {}", prometheus.base()));
    let fetched = fetch(&prometheus).await;
    progress.finish_and_clear();
    let fetched = fetched?;
    let slos = evaluate(&fetched, &args.window)?;
    let report = SloReport {
        prometheus: prometheus.base().to_string(),
        window: args.window.clone(),
        slos,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    let exhausted: Vec<String> = report
        .slos
        .iter()
        .filter(|s| s.exhausted)
        .map(|s| format!("{} {}", s.component, s.slo))
        .collect();
    if !exhausted.is_empty() {
        bail!(
            "error budget exhausted over {}: {} (see the runbooks in observability/README.md)",
            args.window,
            exhausted.join(", ")
        );
    }
    Ok(())
}

/// What Prometheus has: the raw series and alerts the report is made of.
#[derive(Debug, Default)]
pub struct Fetched {
    pub objectives: Vec<Sample>,
    pub thresholds: Vec<Sample>,
    pub error_ratios: Vec<Sample>,
    /// The names of the recording rules Prometheus has loaded.
    pub recorded: BTreeSet<String>,
    alerts: Vec<ActiveAlert>,
}

async fn fetch(prometheus: &PrometheusClient) -> anyhow::Result<Fetched> {
    let (objectives, thresholds, error_ratios, rules, alerts) = futures::try_join!(
        prometheus.query(r#"{__name__=~"component:slo_[a-z]+_objective:ratio"}"#),
        prometheus.query("component:slo_latency_threshold:seconds"),
        prometheus.query(r#"{__name__=~"component:slo_[a-z]+_errors:ratio_rate.+"}"#),
        prometheus.api("rules", &[("type", "record")]),
        prometheus.api("alerts", &[]),
    )?;
    let recorded = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_array().into_iter().flatten())
        .filter_map(|rule| rule["name"].as_str().map(str::to_string))
        .collect();
    let alerts = serde_json::from_value(alerts["alerts"].clone())
        .context("Prometheus's /api/v1/alerts answer has no alert list")?;
    Ok(Fetched {
        objectives,
        thresholds,
        error_ratios,
        recorded,
        alerts,
    })
}

/// `component:slo_availability_objective:ratio` → `availability`.
fn objective_slo(name: &str) -> Option<&str> {
    name.strip_prefix("component:slo_")?
        .strip_suffix("_objective:ratio")
}

/// `component:slo_latency_errors:ratio_rate1h` → (`latency`, `1h`).
fn error_ratio_slo_window(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("component:slo_")?
        .split_once("_errors:ratio_rate")
}

/// Turns what Prometheus has into one status per SLO, sorted by component
/// and SLO. Fails when the rules are not loaded or do not record `window`.
pub fn evaluate(fetched: &Fetched, window: &str) -> anyhow::Result<Vec<SloStatus>> {
    if fetched.objectives.is_empty() {
        bail!(
            "Prometheus has no SLO objectives (component:slo_*_objective:ratio): load observability/prometheus/rules/slo.yml in its rule_files"
        );
    }
    let recorded_windows: BTreeSet<&str> = fetched
        .recorded
        .iter()
        .filter_map(|name| error_ratio_slo_window(name).map(|(_, w)| w))
        .collect();
    if !recorded_windows.contains(window) {
        let mut known: Vec<&str> = recorded_windows.iter().copied().collect();
        known.sort_by_key(|w| humantime::parse_duration(w).unwrap_or_default());
        bail!(
            "--window {window}: the SLO rules record error ratios over {} only; choose one of them",
            if known.is_empty() {
                "no window".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    let window_seconds = humantime::parse_duration(window)
        .with_context(|| format!("--window {window}: not a duration"))?
        .as_secs_f64();

    let mut slos = Vec::new();
    for objective in &fetched.objectives {
        let (Some(component), Some(slo)) = (
            objective.labels.get("component"),
            objective
                .labels
                .get("__name__")
                .and_then(|name| objective_slo(name)),
        ) else {
            continue;
        };
        let allowed = 1.0 - objective.value;
        let ratio = |wanted: &str| {
            fetched
                .error_ratios
                .iter()
                .find(|sample| {
                    sample.labels.get("component") == Some(component)
                        && sample
                            .labels
                            .get("__name__")
                            .and_then(|name| error_ratio_slo_window(name))
                            == Some((slo, wanted))
                })
                .map(|sample| sample.value)
                .filter(|value| value.is_finite())
        };
        let error_ratio = ratio(window);
        let budget_remaining = error_ratio.map(|errors| 1.0 - errors / allowed);
        let budget_seconds = allowed * window_seconds;
        let burn_rates = recorded_windows
            .iter()
            .map(|w| (w.to_string(), ratio(w).map(|errors| errors / allowed)))
            .collect();
        let alerts = fetched
            .alerts
            .iter()
            .filter(|alert| {
                alert.labels.get("slo").map(String::as_str) == Some(slo)
                    && alert.labels.get("component") == Some(component)
            })
            .map(|alert| SloAlert {
                name: alert.labels.get("alertname").cloned().unwrap_or_default(),
                state: alert.state.clone(),
                severity: alert.labels.get("severity").cloned(),
                active_at: alert.active_at.clone(),
            })
            .collect();
        slos.push(SloStatus {
            component: component.clone(),
            slo: slo.to_string(),
            objective: objective.value,
            threshold_seconds: (slo == "latency")
                .then(|| {
                    fetched
                        .thresholds
                        .iter()
                        .find(|t| t.labels.get("component") == Some(component))
                        .map(|t| t.value)
                })
                .flatten(),
            compliance: error_ratio.map(|errors| 1.0 - errors),
            budget_remaining,
            budget_remaining_seconds: budget_remaining.map(|left| left * budget_seconds),
            budget_seconds,
            exhausted: budget_remaining.is_some_and(|left| left <= 0.0),
            burn_rates,
            alerts,
        });
    }
    slos.sort_by(|a, b| (&a.component, &a.slo).cmp(&(&b.component, &b.slo)));
    Ok(slos)
}

fn percent(ratio: f64) -> String {
    // Enough digits to tell 99.9 % from 99.95 %, no more.
    let text = format!("{:.3}", ratio * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn render(report: &SloReport) -> String {
    let rows: Vec<[String; 10]> = report
        .slos
        .iter()
        .map(|s| {
            let objective = match s.threshold_seconds {
                Some(threshold) => format!(
                    "{} ≤ {}",
                    percent(s.objective),
                    format_duration(Duration::from_secs_f64(threshold))
                ),
                None => percent(s.objective),
            };
            let budget = match (s.budget_remaining, s.budget_remaining_seconds) {
                (Some(left), _) if left <= 0.0 => style(format!("exhausted ({})", percent(left)))
                    .red()
                    .bold()
                    .to_string(),
                (Some(left), Some(seconds)) => format!(
                    "{} ({})",
                    percent(left),
                    format_duration(Duration::from_secs_f64(seconds))
                ),
                _ => "no requests".to_string(),
            };
            let burn = |window: &str| match s.burn_rates.get(window) {
                Some(Some(rate)) => {
                    let text = format!("{rate:.2}");
                    if *rate >= 14.4 {
                        style(text).red().to_string()
                    } else if *rate > 1.0 {
                        style(text).yellow().to_string()
                    } else {
                        text
                    }
                }
                Some(None) => "-".to_string(),
                None => "(not recorded)".to_string(),
            };
            let alerts = s
                .alerts
                .iter()
                .map(|alert| match alert.state.as_str() {
                    "firing" => style(alert.name.clone()).red().to_string(),
                    state => format!("{} ({state})", alert.name),
                })
                .collect::<Vec<_>>()
                .join(" ");
            [
                s.component.clone(),
                s.slo.clone(),
                objective,
                s.compliance
                    .map(percent)
                    .unwrap_or_else(|| "no requests".to_string()),
                budget,
                burn(TABLE_BURN_WINDOWS[0]),
                burn(TABLE_BURN_WINDOWS[1]),
                burn(TABLE_BURN_WINDOWS[2]),
                burn(TABLE_BURN_WINDOWS[3]),
                if alerts.is_empty() {
                    "-".to_string()
                } else {
                    alerts
                },
            ]
        })
        .collect();
    format!(
        "SLOs over {} from {} (burn rate 1 spends the budget exactly in the window)\n{}",
        report.window,
        report.prometheus,
        table(
            &[
                "COMPONENT",
                "SLO",
                "OBJECTIVE",
                "COMPLIANCE",
                "BUDGET LEFT",
                "BURN 1h",
                "BURN 6h",
                "BURN 1d",
                "BURN 3d",
                "ALERTS",
            ],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, component: &str, value: f64) -> Sample {
        Sample {
            labels: BTreeMap::from([
                ("__name__".to_string(), name.to_string()),
                ("component".to_string(), component.to_string()),
            ]),
            value,
        }
    }

    fn fetched() -> Fetched {
        let recorded = ["5m", "1h", "30d"]
            .iter()
            .flat_map(|w| {
                [
                    format!("component:slo_availability_errors:ratio_rate{w}"),
                    format!("component:slo_latency_errors:ratio_rate{w}"),
                ]
            })
            .collect();
        Fetched {
            objectives: vec![
                sample("component:slo_availability_objective:ratio", "items", 0.999),
                sample("component:slo_latency_objective:ratio", "items", 0.99),
                sample("component:slo_availability_objective:ratio", "auth", 0.995),
            ],
            thresholds: vec![sample(
                "component:slo_latency_threshold:seconds",
                "items",
                0.25,
            )],
            error_ratios: vec![
                sample(
                    "component:slo_availability_errors:ratio_rate30d",
                    "items",
                    0.0005,
                ),
                sample(
                    "component:slo_availability_errors:ratio_rate1h",
                    "items",
                    0.0144,
                ),
                sample("component:slo_latency_errors:ratio_rate30d", "items", 0.02),
                sample(
                    "component:slo_availability_errors:ratio_rate30d",
                    "auth",
                    f64::NAN,
                ),
            ],
            recorded,
            alerts: vec![ActiveAlert {
                labels: BTreeMap::from([
                    (
                        "alertname".to_string(),
                        "NexaLatencyBurnRateFast".to_string(),
                    ),
                    ("component".to_string(), "items".to_string()),
                    ("slo".to_string(), "latency".to_string()),
                    ("severity".to_string(), "page".to_string()),
                ]),
                state: "firing".to_string(),
                active_at: None,
            }],
        }
    }

    #[test]
    fn budget_and_burn_rates_follow_from_the_recorded_ratios() {
        let slos = evaluate(&fetched(), "30d").unwrap();
        let names: Vec<(&str, &str)> = slos
            .iter()
            .map(|s| (s.component.as_str(), s.slo.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("auth", "availability"),
                ("items", "availability"),
                ("items", "latency")
            ]
        );
        let availability = &slos[1];
        assert!((availability.compliance.unwrap() - 0.9995).abs() < 1e-12);
        // Half of the 0.1 % allowed is spent: half the budget is left.
        assert!((availability.budget_remaining.unwrap() - 0.5).abs() < 1e-9);
        // 0.1 % of 30 days is 43 min 12 s; half of it remains.
        assert!((availability.budget_seconds - 2592.0).abs() < 1e-6);
        assert!((availability.budget_remaining_seconds.unwrap() - 1296.0).abs() < 1e-6);
        assert!((availability.burn_rates["1h"].unwrap() - 14.4).abs() < 1e-9);
        assert_eq!(availability.burn_rates["5m"], None);
        assert!(!availability.exhausted);
        assert!(availability.alerts.is_empty());

        let latency = &slos[2];
        assert_eq!(latency.threshold_seconds, Some(0.25));
        // 2 % slow against 1 % allowed: the budget is spent twice over.
        assert!((latency.budget_remaining.unwrap() + 1.0).abs() < 1e-9);
        assert!(latency.exhausted);
        assert_eq!(latency.alerts[0].name, "NexaLatencyBurnRateFast");

        // No requests (NaN): no compliance, not exhausted.
        let auth = &slos[0];
        assert_eq!(auth.compliance, None);
        assert!(!auth.exhausted);
    }

    #[test]
    fn a_window_the_rules_do_not_record_is_refused_with_those_they_do() {
        let error = evaluate(&fetched(), "7d").unwrap_err().to_string();
        assert!(error.contains("5m, 1h, 30d"), "{error}");
    }

    #[test]
    fn without_the_rules_the_cause_is_named() {
        let error = evaluate(&Fetched::default(), "30d")
            .unwrap_err()
            .to_string();
        assert!(error.contains("slo.yml"), "{error}");
    }

    #[test]
    fn the_table_shows_exhausted_budgets_and_firing_alerts() {
        let report = SloReport {
            prometheus: "http://127.0.0.1:9090".to_string(),
            window: "30d".to_string(),
            slos: evaluate(&fetched(), "30d").unwrap(),
        };
        let text = console::strip_ansi_codes(&render(&report)).to_string();
        assert!(text.contains("99% ≤ 250.0 ms"), "{text}");
        assert!(text.contains("exhausted (-100%)"), "{text}");
        assert!(text.contains("50% (21m 36s)"), "{text}");
        assert!(text.contains("NexaLatencyBurnRateFast"), "{text}");
        assert!(text.contains("no requests"), "{text}");
    }
}
