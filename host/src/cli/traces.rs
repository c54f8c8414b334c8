//! `nexa traces`: recent traces from Jaeger's query API — how many, how many
//! failed, p95 duration, the slowest operations — or one trace as a span
//! tree with its critical path marked.
//!
//! The critical path is the chain of spans that determines when the trace
//! ends (as Jaeger's UI computes it): from a span's end, walk back to the
//! child that finished last, through it, then on from where that child
//! started; time no child covers is the span's own. Concurrent children
//! that finish earlier are off the path: making them faster would not end
//! the trace sooner.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use console::style;
use serde::{Deserialize, Serialize};

use super::{format_duration, spinner, table};

/// `nexa traces [TRACE_ID]`.
#[derive(clap::Args)]
pub struct Args {
    /// One trace to show as a span tree with its critical path; without it,
    /// a summary of recent traces.
    pub trace_id: Option<String>,
    /// Jaeger's query API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:16686",
        env = "NEXA_JAEGER_URL"
    )]
    pub jaeger: String,
    /// The service whose traces to summarize (the host's OTEL_SERVICE_NAME).
    #[arg(long, default_value = "nexa")]
    pub service: String,
    /// How far back to look for traces.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub lookback: Duration,
    /// The most traces to fetch.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// How many of the slowest operations to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// How long to wait for Jaeger's answer.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A trace as Jaeger's query API returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<Span>,
    #[serde(default)]
    pub processes: HashMap<String, Process>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(rename = "operationName")]
    pub operation: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Microseconds since the Unix epoch.
    #[serde(rename = "startTime")]
    pub start: u64,
    /// Microseconds.
    pub duration: u64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, rename = "processID")]
    pub process_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub kind: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Process {
    #[serde(rename = "serviceName")]
    pub service: String,
}

/// Jaeger's envelope: `{"data": ..., "errors": [{"code", "msg"}]}`.
#[derive(Debug, Deserialize)]
struct Answer<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Option<Vec<AnswerError>>,
}

#[derive(Debug, Deserialize)]
struct AnswerError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    msg: String,
}

impl Span {
    fn end(&self) -> u64 {
        self.start + self.duration
    }

    /// Failed as OpenTelemetry marks it (`otel.status_code` ERROR, which
    /// Jaeger also turns into `error=true`).
    pub fn is_error(&self) -> bool {
        self.tags.iter().any(|tag| match tag.key.as_str() {
            "error" => tag.value == true || tag.value == "true",
            "otel.status_code" => tag.value == "ERROR",
            _ => false,
        })
    }

    /// The parent within `trace`: the CHILD_OF (or FOLLOWS_FROM) reference
    /// to a span of the same trace.
    fn parent<'a>(&'a self, trace: &Trace) -> Option<&'a str> {
        self.references
            .iter()
            .filter(|r| r.trace_id == trace.trace_id)
            .filter(|r| trace.spans.iter().any(|s| s.span_id == r.span_id))
            .min_by_key(|r| r.kind != "CHILD_OF")
            .map(|r| r.span_id.as_str())
    }
}

impl Trace {
    fn start(&self) -> u64 {
        self.spans.iter().map(|s| s.start).min().unwrap_or(0)
    }

    /// From the first span's start to the last span's end, in µs.
    pub fn duration(&self) -> u64 {
        let end = self.spans.iter().map(Span::end).max().unwrap_or(0);
        end.saturating_sub(self.start())
    }

    /// The span without a parent in the trace that started first.
    fn root(&self) -> Option<&Span> {
        self.spans
            .iter()
            .filter(|s| s.parent(self).is_none())
            .min_by_key(|s| (s.start, std::cmp::Reverse(s.duration)))
    }

    fn service(&self, span: &Span) -> String {
        self.processes
            .get(&span.process_id)
            .map(|p| p.service.clone())
            .unwrap_or_default()
    }
}

/// What `nexa traces --json` prints.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub service: String,
    pub lookback_seconds: u64,
    pub traces: usize,
    /// Traces with at least one failed span.
    pub errors: usize,
    pub error_ratio: Option<f64>,
    pub p95_duration_us: Option<u64>,
    /// By p95 duration, slowest first.
    pub slowest_operations: Vec<OperationStats>,
    /// The slowest traces, slowest first (at most five), to look into.
    pub slowest_traces: Vec<TraceBrief>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct OperationStats {
    pub service: String,
    pub operation: String,
    pub count: usize,
    pub errors: usize,
    pub p95_duration_us: u64,
    pub max_duration_us: u64,
}

#[derive(Debug, Serialize)]
pub struct TraceBrief {
    pub trace_id: String,
    pub root: String,
    pub spans: usize,
    pub duration_us: u64,
    pub error: bool,
}

/// The nearest-rank percentile of `values` (sorted here).
pub fn percentile(values: &mut [u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

pub fn summarize(service: &str, lookback: Duration, traces: &[Trace], top: usize) -> Summary {
    let errors = traces
        .iter()
        .filter(|t| t.spans.iter().any(Span::is_error))
        .count();
    let mut durations: Vec<u64> = traces.iter().map(Trace::duration).collect();
    let mut by_operation: BTreeMap<(String, String), (Vec<u64>, usize)> = BTreeMap::new();
    for trace in traces {
        for span in &trace.spans {
            let entry = by_operation
                .entry((trace.service(span), span.operation.clone()))
                .or_default();
            entry.0.push(span.duration);
            entry.1 += usize::from(span.is_error());
        }
    }
    let mut slowest_operations: Vec<OperationStats> = by_operation
        .into_iter()
        .map(
            |((service, operation), (mut durations, errors))| OperationStats {
                service,
                operation,
                count: durations.len(),
                errors,
                p95_duration_us: percentile(&mut durations, 95.0).unwrap_or(0),
                max_duration_us: durations.last().copied().unwrap_or(0),
            },
        )
        .collect();
    slowest_operations
        .sort_by_key(|op| std::cmp::Reverse((op.p95_duration_us, op.max_duration_us)));
    slowest_operations.truncate(top);
    let mut slowest_traces: Vec<TraceBrief> = traces
        .iter()
        .map(|t| TraceBrief {
            trace_id: t.trace_id.clone(),
            root: t.root().map(|s| s.operation.clone()).unwrap_or_default(),
            spans: t.spans.len(),
            duration_us: t.duration(),
            error: t.spans.iter().any(Span::is_error),
        })
        .collect();
    slowest_traces.sort_by_key(|t| std::cmp::Reverse(t.duration_us));
    slowest_traces.truncate(5);
    Summary {
        service: service.to_string(),
        lookback_seconds: lookback.as_secs(),
        traces: traces.len(),
        errors,
        error_ratio: (!traces.is_empty()).then(|| errors as f64 / traces.len() as f64),
        p95_duration_us: percentile(&mut durations, 95.0),
        slowest_operations,
        slowest_traces,
    }
}

/// A stretch of the critical path: `span` (an index into the trace's
/// spans) was what the trace waited on from `start` to `end` (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub span: usize,
    pub start: u64,
    pub end: u64,
}

/// The critical path from `root`, in time order.
pub fn critical_path(trace: &Trace, root: usize) -> Vec<Segment> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); trace.spans.len()];
    let index: HashMap<&str, usize> = trace
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    for (i, span) in trace.spans.iter().enumerate() {
        if let Some(parent) = span.parent(trace).and_then(|p| index.get(p)) {
            children[*parent].push(i);
        }
    }
    let mut path = Vec::new();
    let root_span = &trace.spans[root];
    walk(trace, &children, root, root_span.end(), &mut path);
    path.reverse();
    path
}

/// Pushes `span`'s part of the path, latest first, up to `until` (where its
/// parent stopped waiting on it).
fn walk(trace: &Trace, children: &[Vec<usize>], span: usize, until: u64, path: &mut Vec<Segment>) {
    let this = &trace.spans[span];
    let mut cursor = this.end().min(until);
    let mut by_end = children[span].clone();
    by_end.sort_by_key(|&c| std::cmp::Reverse(trace.spans[c].end()));
    for child in by_end {
        let child_span = &trace.spans[child];
        // Children that start after the cursor overlap a later one, or
        // (clock skew) the parent's end: off the path from here.
        if child_span.start >= cursor || child_span.end() <= this.start {
            continue;
        }
        let child_end = child_span.end().min(cursor);
        if cursor > child_end {
            path.push(Segment {
                span,
                start: child_end,
                end: cursor,
            });
        }
        walk(trace, children, child, child_end, path);
        cursor = child_span.start.max(this.start);
        if cursor <= this.start {
            break;
        }
    }
    if cursor > this.start {
        path.push(Segment {
            span,
            start: this.start,
            end: cursor,
        });
    }
}

/// What `nexa traces TRACE_ID --json` prints.
#[derive(Debug, Serialize)]
pub struct TraceView {
    pub trace_id: String,
    pub duration_us: u64,
    pub error: bool,
    /// Depth first, children by start time.
    pub spans: Vec<SpanView>,
    /// In time order: which span the trace waited on, from when to when
    /// (µs from the trace's start).
    pub critical_path: Vec<SegmentView>,
}

#[derive(Debug, Serialize)]
pub struct SpanView {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub depth: usize,
    pub service: String,
    pub operation: String,
    pub start_offset_us: u64,
    pub duration_us: u64,
    pub error: bool,
    /// The time this span itself is on the critical path.
    pub critical_us: u64,
}

#[derive(Debug, Serialize)]
pub struct SegmentView {
    pub span_id: String,
    pub operation: String,
    pub start_offset_us: u64,
    pub end_offset_us: u64,
}

pub fn view(trace: &Trace) -> anyhow::Result<TraceView> {
    let root = trace
        .root()
        .with_context(|| format!("trace {} has no spans", trace.trace_id))?;
    let root_index = trace
        .spans
        .iter()
        .position(|s| std::ptr::eq(s, root))
        .unwrap_or(0);
    let path = critical_path(trace, root_index);
    let mut critical = vec![0u64; trace.spans.len()];
    for segment in &path {
        critical[segment.span] += segment.end - segment.start;
    }
    let trace_start = trace.start();
    // Depth first from every parentless span (the root first), children by start.
    let mut children: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
    for (i, span) in trace.spans.iter().enumerate() {
        children.entry(span.parent(trace)).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| (trace.spans[i].start, i));
    }
    let mut order = Vec::new();
    let mut stack: Vec<(usize, usize)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|&i| (i, 0))
        .collect();
    while let Some((i, depth)) = stack.pop() {
        order.push((i, depth));
        if let Some(kids) = children.get(&Some(trace.spans[i].span_id.as_str())) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    let spans = order
        .into_iter()
        .map(|(i, depth)| {
            let span = &trace.spans[i];
            SpanView {
                span_id: span.span_id.clone(),
                parent_span_id: span.parent(trace).map(str::to_string),
                depth,
                service: trace.service(span),
                operation: span.operation.clone(),
                start_offset_us: span.start - trace_start,
                duration_us: span.duration,
                error: span.is_error(),
                critical_us: critical[i],
            }
        })
        .collect();
    Ok(TraceView {
        trace_id: trace.trace_id.clone(),
        duration_us: trace.duration(),
        error: trace.spans.iter().any(Span::is_error),
        spans,
        critical_path: path
            .iter()
            .map(|segment| SegmentView {
                span_id: trace.spans[segment.span].span_id.clone(),
                operation: trace.spans[segment.span].operation.clone(),
                start_offset_us: segment.start - trace_start,
                end_offset_us: segment.end - trace_start,
            })
            .collect(),
    })
}

/// A client of Jaeger's query API (`/api/...`).
struct Jaeger {
    base: String,
    http: reqwest::Client,
}

impl Jaeger {
    fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--jaeger {base:?}: expected an http:// or https:// URL"
        );
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { base, http })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .with_context(|| format!("cannot reach Jaeger's query API at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer: Answer<T> = serde_json::from_str(&text).with_context(|| {
            format!(
                "Jaeger at {} answered {status} to {path} with something that is not its query API's JSON (is --jaeger the query service, port 16686?)",
                self.base
            )
        })?;
        if let Some(error) = answer.errors.as_ref().and_then(|e| e.first()) {
            bail!(
                "Jaeger at {} answered {path} with an error: {} (code {})",
                self.base,
                error.msg,
                error.code
            );
        }
        if !status.is_success() {
            bail!("Jaeger at {} answered {status} to {path}", self.base);
        }
        answer
            .data
            .with_context(|| format!("Jaeger at {} answered {path} without data", self.base))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let jaeger = Jaeger::new(&args.jaeger, args.timeout)?;
    let progress = spinner(format!("asking Jaeger at {}", jaeger.base));
    let outcome = match &args.trace_id {
        Some(id) => one_trace(&jaeger, id, args.json).await,
        None => recent_traces(&jaeger, &args).await,
    };
    progress.finish_and_clear();
    let output = outcome?;
    print!("{output}");
    Ok(())
}

async fn one_trace(jaeger: &Jaeger, id: &str, json: bool) -> anyhow::Result<String> {
    anyhow::ensure!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id:?} is not a trace id (hex digits, as in a traceresponse header or a log line's trace_id)"
    );
    let traces: Vec<Trace> = jaeger.get(&format!("/api/traces/{id}"), &[]).await?;
    let trace = traces
        .into_iter()
        .next()
        .with_context(|| format!("Jaeger at {} has no trace {id}", jaeger.base))?;
    let view = view(&trace)?;
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(&view)?)
    } else {
        render_view(&view)
    })
}

async fn recent_traces(jaeger: &Jaeger, args: &Args) -> anyhow::Result<String> {
    let services: Vec<String> = jaeger.get("/api/services", &[]).await?;
    if !services.contains(&args.service) {
        bail!(
            "Jaeger at {} has no traces of service {:?} (it has: {}); pass --service, or check the host's OTEL_SERVICE_NAME and OTEL_EXPORTER_OTLP_ENDPOINT",
            jaeger.base,
            args.service,
            if services.is_empty() {
                "none".to_string()
            } else {
                services.join(", ")
            }
        );
    }
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let start = end.saturating_sub(args.lookback);
    // As Jaeger's UI asks: start and end in µs, the lookback as a hint.
    let traces: Vec<Trace> = jaeger
        .get(
            "/api/traces",
            &[
                ("service", args.service.clone()),
                ("start", start.as_micros().to_string()),
                ("end", end.as_micros().to_string()),
                ("lookback", format!("{}s", args.lookback.as_secs().max(1))),
                ("limit", args.limit.to_string()),
            ],
        )
        .await?;
    let summary = summarize(&args.service, args.lookback, &traces, args.top);
    Ok(if args.json {
        format!("{}\n", serde_json::to_string_pretty(&summary)?)
    } else {
        render_summary(&summary)
    })
}

fn micros(us: u64) -> String {
    format_duration(Duration::from_micros(us))
}

fn render_summary(summary: &Summary) -> String {
    let lookback = humantime::format_duration(Duration::from_secs(summary.lookback_seconds));
    let mut out = format!(
        "{} traces of {} in the last {lookback}",
        summary.traces, summary.service
    );
    if summary.traces == 0 {
        out.push('\n');
        return out;
    }
    let ratio = summary.error_ratio.unwrap_or_default() * 100.0;
    let errors = format!("{} with errors ({ratio:.1}%)", summary.errors);
    let errors = if summary.errors > 0 {
        style(errors).red().to_string()
    } else {
        errors
    };
    out.push_str(&format!(
        ": {errors}, p95 duration {}\n\nSlowest operations\n",
        micros(summary.p95_duration_us.unwrap_or(0))
    ));
    let rows: Vec<[String; 6]> = summary
        .slowest_operations
        .iter()
        .map(|op| {
            [
                op.operation.clone(),
                op.service.clone(),
                op.count.to_string(),
                op.errors.to_string(),
                micros(op.p95_duration_us),
                micros(op.max_duration_us),
            ]
        })
        .collect();
    out.push_str(&table(
        &["OPERATION", "SERVICE", "SPANS", "ERRORS", "P95", "MAX"],
        &rows,
    ));
    out.push_str("\nSlowest traces (nexa traces TRACE_ID for the span tree)\n");
    let rows: Vec<[String; 5]> = summary
        .slowest_traces
        .iter()
        .map(|t| {
            [
                t.trace_id.clone(),
                t.root.clone(),
                t.spans.to_string(),
                micros(t.duration_us),
                if t.error {
                    style("error").red().to_string()
                } else {
                    "ok".to_string()
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &["TRACE", "ROOT", "SPANS", "DURATION", "STATUS"],
        &rows,
    ));
    out
}

fn render_view(view: &TraceView) -> String {
    let mut out = format!(
        "trace {}: {} spans, {}{}\n",
        view.trace_id,
        view.spans.len(),
        micros(view.duration_us),
        if view.error {
            style(", with errors").red().to_string()
        } else {
            String::new()
        }
    );
    let rows: Vec<[String; 6]> = view
        .spans
        .iter()
        .map(|span| {
            let on_path = span.critical_us > 0;
            let marker = if on_path { "◆ " } else { "  " };
            let name = format!("{}{marker}{}", "  ".repeat(span.depth), span.operation);
            [
                if on_path {
                    style(name).bold().to_string()
                } else {
                    name
                },
                span.service.clone(),
                format!("+{}", micros(span.start_offset_us)),
                micros(span.duration_us),
                if on_path {
                    micros(span.critical_us)
                } else {
                    "-".to_string()
                },
                if span.error {
                    style("error").red().to_string()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &["SPAN", "SERVICE", "START", "DURATION", "CRITICAL", "STATUS"],
        &rows,
    ));
    out.push_str("\nCritical path (◆): ");
    let mut chain: Vec<String> = Vec::new();
    for segment in &view.critical_path {
        let label = format!(
            "{} {}",
            segment.operation,
            micros(segment.end_offset_us - segment.start_offset_us)
        );
        chain.push(label);
    }
    out.push_str(&chain.join(" → "));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: Option<&str>, start: u64, duration: u64) -> Span {
        Span {
            span_id: id.to_string(),
            operation: id.to_string(),
            references: parent
                .map(|p| Reference {
                    kind: "CHILD_OF".to_string(),
                    trace_id: "t".to_string(),
                    span_id: p.to_string(),
                })
                .into_iter()
                .collect(),
            start,
            duration,
            tags: Vec::new(),
            process_id: "p1".to_string(),
        }
    }

    fn trace(spans: Vec<Span>) -> Trace {
        Trace {
            trace_id: "t".to_string(),
            spans,
            processes: HashMap::from([(
                "p1".to_string(),
                Process {
                    service: "nexa".to_string(),
                },
            )]),
        }
    }

    fn path_of(trace: &Trace) -> Vec<(String, u64, u64)> {
        let root = trace
            .spans
            .iter()
            .position(|s| s.references.is_empty())
            .unwrap();
        critical_path(trace, root)
            .into_iter()
            .map(|s| (trace.spans[s.span].span_id.clone(), s.start, s.end))
            .collect()
    }

    fn owned(path: &[(&str, u64, u64)]) -> Vec<(String, u64, u64)> {
        path.iter()
            .map(|(s, a, b)| (s.to_string(), *a, *b))
            .collect()
    }

    #[test]
    fn the_critical_path_follows_the_child_that_ends_last_through_overlaps() {
        // root 0-100; a 10-60 and b 20-90 run concurrently; c 30-80 in b.
        let t = trace(vec![
            span("root", None, 0, 100),
            span("a", Some("root"), 10, 50),
            span("b", Some("root"), 20, 70),
            span("c", Some("b"), 30, 50),
        ]);
        assert_eq!(
            path_of(&t),
            owned(&[
                ("root", 0, 10),
                ("a", 10, 20),
                ("b", 20, 30),
                ("c", 30, 80),
                ("b", 80, 90),
                ("root", 90, 100),
            ])
        );
        // Every instant of the trace is on the path exactly once.
        let total: u64 = path_of(&t).iter().map(|(_, a, b)| b - a).sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn a_child_hidden_by_a_longer_sibling_is_off_the_path() {
        // d 40-50 lies inside e 30-70: the trace never waits on d.
        let t = trace(vec![
            span("root", None, 0, 100),
            span("e", Some("root"), 30, 40),
            span("d", Some("root"), 40, 10),
        ]);
        assert_eq!(
            path_of(&t),
            owned(&[("root", 0, 30), ("e", 30, 70), ("root", 70, 100)])
        );
    }

    #[test]
    fn a_child_outliving_its_parent_is_cut_at_the_parents_end() {
        // An async child that ends after its parent (fire and forget).
        let t = trace(vec![
            span("root", None, 0, 50),
            span("late", Some("root"), 40, 100),
        ]);
        assert_eq!(path_of(&t), owned(&[("root", 0, 40), ("late", 40, 50)]));
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&mut [], 95.0), None);
        assert_eq!(percentile(&mut [5, 1, 3], 95.0), Some(5));
        let mut hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&mut hundred, 95.0), Some(95));
        assert_eq!(percentile(&mut hundred, 50.0), Some(50));
    }

    #[test]
    fn errors_are_read_from_either_tag() {
        let mut failed = span("x", None, 0, 1);
        failed.tags.push(Tag {
            key: "otel.status_code".to_string(),
            value: serde_json::json!("ERROR"),
        });
        assert!(failed.is_error());
        let mut flagged = span("y", None, 0, 1);
        flagged.tags.push(Tag {
            key: "error".to_string(),
            value: serde_json::json!(true),
        });
        assert!(flagged.is_error());
        assert!(!span("z", None, 0, 1).is_error());
    }
}
