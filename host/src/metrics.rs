//! Prometheus metrics of the host (the `prometheus` crate), served as text on
//! the admin listener's `/metrics`. Labels are route templates, component
//! ids, capability and operation names and small fixed sets (status class,
//! method, outcome), never a raw path or a client: their number is bounded by
//! the app, not by its traffic.
//!
//! One registry per process, like the `tracing` subscriber whose capability
//! hook ([`crate::capabilities::calls`]) records into it.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Request-duration buckets: they include every SLO threshold
/// (health 0.1 s, items 0.25 s, auth 1 s; see `observability/`).
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Capability-call buckets: from a key-value hit to a slow query.
const CALL_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every metric of the host.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub active_requests: IntGauge,
    pub shed: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub rate_limit_redis_fallbacks: IntCounter,
    pub instantiations: IntCounterVec,
    pub instance_reuses: IntCounterVec,
    pub live_instances: IntGaugeVec,
    pub traps: IntCounterVec,
    pub artifact_cache_hits: IntCounter,
    pub artifact_cache_misses: IntCounter,
    pub compile_seconds: Histogram,
    pub capability_calls: IntCounterVec,
    pub capability_call_duration: HistogramVec,
    pub key_value_lookups: IntCounterVec,
    pub postgres_pool_connections: IntGaugeVec,
    pub postgres_pool_acquire: Histogram,
    pub redis_connection_up: IntGaugeVec,
    pub trace_spans_exported: IntCounter,
    pub trace_spans_dropped: IntCounter,
    pub trace_export_failures: IntCounter,
    pub component_output_lines_dropped: IntCounterVec,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let metric = HistogramVec::new(opts, labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let metric = Histogram::with_opts(opts).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

impl Metrics {
    /// The process's metrics.
    pub fn global() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(Metrics::new)
    }

    fn new() -> Self {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            r.register(Box::new(process)).expect("registered once");
        }
        let build = IntGaugeVec::new(
            Opts::new("nexa_build_info", "The host's version; always 1."),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        r.register(Box::new(build)).expect("registered once");
        let active_requests =
            IntGauge::new("http_server_active_requests", "Requests being handled now.")
                .expect("valid metric");
        r.register(Box::new(active_requests.clone()))
            .expect("registered once");
        Self {
            requests: counter_vec(
                &r,
                "http_server_requests_total",
                "Requests answered, by spin.toml route, method, status class and component.",
                &["route", "method", "status_class", "component"],
            ),
            request_duration: histogram_vec(
                &r,
                "http_server_request_duration_seconds",
                "Time to the response's head, by route, method and component.",
                &["route", "method", "component"],
                REQUEST_BUCKETS,
            ),
            active_requests,
            shed: counter_vec(
                &r,
                "requests_shed_total",
                "Requests or connections refused to protect the host (overloaded, connections, timeout).",
                &["reason"],
            ),
            rate_limited: counter_vec(
                &r,
                "rate_limited_total",
                "Requests refused with 429 by the host's rate limiter, by class.",
                &["class"],
            ),
            rate_limit_redis_fallbacks: counter(
                &r,
                "rate_limit_redis_fallbacks_total",
                "Rate-limit checks made in-process because Redis did not answer.",
            ),
            instantiations: counter_vec(
                &r,
                "component_instantiations_total",
                "Component instances created.",
                &["component"],
            ),
            instance_reuses: counter_vec(
                &r,
                "component_instance_reuses_total",
                "Requests served by an instance that had served one before.",
                &["component"],
            ),
            live_instances: gauge_vec(
                &r,
                "component_live_instances",
                "Component instances alive now.",
                &["component"],
            ),
            traps: counter_vec(
                &r,
                "component_traps_total",
                "Requests a component failed, by kind (trap, deadline, memory).",
                &["component", "kind"],
            ),
            artifact_cache_hits: counter(
                &r,
                "artifact_cache_hits_total",
                "Components loaded from the artifact cache.",
            ),
            artifact_cache_misses: counter(
                &r,
                "artifact_cache_misses_total",
                "Components compiled because the artifact cache had none.",
            ),
            compile_seconds: histogram(
                &r,
                "component_compile_seconds",
                "Time to compile one component.",
                &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            ),
            capability_calls: counter_vec(
                &r,
                "capability_calls_total",
                "Host calls of the components, by capability, operation and result (ok, error, trap).",
                &["capability", "op", "result"],
            ),
            capability_call_duration: histogram_vec(
                &r,
                "capability_call_duration_seconds",
                "Time in host calls, by capability and operation.",
                &["capability", "op"],
                CALL_BUCKETS,
            ),
            key_value_lookups: counter_vec(
                &r,
                "key_value_lookups_total",
                "Key-value gets, by result (hit, miss).",
                &["result"],
            ),
            postgres_pool_connections: gauge_vec(
                &r,
                "postgres_pool_connections",
                "Postgres pool connections by state (idle, used), summed over pools.",
                &["state"],
            ),
            postgres_pool_acquire: histogram(
                &r,
                "postgres_pool_acquire_seconds",
                "Time a guest's open waited for a pooled Postgres connection.",
                CALL_BUCKETS,
            ),
            redis_connection_up: gauge_vec(
                &r,
                "redis_connection_up",
                "Whether the last command on a Redis address (credentials removed) succeeded.",
                &["address"],
            ),
            trace_spans_exported: counter(
                &r,
                "trace_spans_exported_total",
                "Spans the OTLP collector accepted.",
            ),
            trace_spans_dropped: counter(
                &r,
                "trace_spans_dropped_total",
                "Spans not exported: the export queue was full, or the collector failed or did not answer.",
            ),
            trace_export_failures: counter(
                &r,
                "trace_export_failures_total",
                "OTLP export requests that failed or timed out.",
            ),
            component_output_lines_dropped: counter_vec(
                &r,
                "component_output_lines_dropped_total",
                "Lines a component wrote to stdout/stderr beyond its log rate limit.",
                &["component"],
            ),
            registry: r,
        }
    }

    /// Creates, at zero, every series of a fixed label set, so dashboards and
    /// `increase()` see them before their first event (a trap counted from
    /// nothing would be missed by `increase`).
    pub fn declare(&self, components: &[&str]) {
        for reason in ["overloaded", "connections", "timeout"] {
            self.shed.with_label_values(&[reason]);
        }
        for class in ["login", "register", "write", "read"] {
            self.rate_limited.with_label_values(&[class]);
        }
        for result in ["hit", "miss"] {
            self.key_value_lookups.with_label_values(&[result]);
        }
        for component in components {
            self.instantiations.with_label_values(&[component]);
            self.instance_reuses.with_label_values(&[component]);
            self.live_instances.with_label_values(&[component]);
            self.component_output_lines_dropped
                .with_label_values(&[component]);
            for kind in ["trap", "deadline", "memory"] {
                self.traps.with_label_values(&[component, kind]);
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// One component's instance series, resolved when it is loaded: an
/// instance records into them without a label lookup.
#[derive(Debug, Clone)]
pub struct InstanceSeries {
    pub instantiations: IntCounter,
    pub reuses: IntCounter,
    pub live: IntGauge,
}

impl InstanceSeries {
    pub fn new(metrics: &Metrics, component: &str) -> Self {
        Self {
            instantiations: metrics.instantiations.with_label_values(&[component]),
            reuses: metrics.instance_reuses.with_label_values(&[component]),
            live: metrics.live_instances.with_label_values(&[component]),
        }
    }
}

/// The request series of one route: its labels, and the counter and
/// histogram of each method and status class, each resolved on first use
/// and then kept, so recording a request hashes no label and allocates
/// nothing. Lives as long as the route table that owns it.
#[derive(Debug)]
pub struct RequestSeries {
    route: String,
    component: String,
    by_method: [MethodSeries; METHODS.len()],
}

#[derive(Debug, Default)]
struct MethodSeries {
    /// One per status class, 1xx to 5xx.
    requests: [OnceLock<IntCounter>; 5],
    duration: OnceLock<Histogram>,
}

/// The method label values; methods outside the standard set share `other`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

fn method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::POST => 2,
        http::Method::PUT => 3,
        http::Method::PATCH => 4,
        http::Method::DELETE => 5,
        http::Method::OPTIONS => 6,
        _ => 7,
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl RequestSeries {
    /// The series of requests routed to `route` (the template as spin.toml
    /// declares it) and served by `component`.
    pub fn new(route: &str, component: &str) -> Self {
        Self {
            route: route.to_string(),
            component: component.to_string(),
            by_method: Default::default(),
        }
    }

    /// Requests that matched no route.
    pub fn unmatched() -> &'static RequestSeries {
        static UNMATCHED: OnceLock<RequestSeries> = OnceLock::new();
        UNMATCHED.get_or_init(|| RequestSeries::new("unmatched", "none"))
    }

    pub fn route(&self) -> &str {
        &self.route
    }

    pub fn component(&self) -> &str {
        &self.component
    }

    /// Records one answered request in `metrics`.
    pub fn record(
        &self,
        metrics: &Metrics,
        method: &http::Method,
        status: http::StatusCode,
        elapsed: Duration,
    ) {
        let index = method_index(method);
        let method_label = METHODS[index];
        let series = &self.by_method[index];
        let class = usize::from((status.as_u16() / 100).clamp(1, 5) - 1);
        series.requests[class]
            .get_or_init(|| {
                metrics.requests.with_label_values(&[
                    self.route.as_str(),
                    method_label,
                    STATUS_CLASSES[class],
                    self.component.as_str(),
                ])
            })
            .inc();
        series
            .duration
            .get_or_init(|| {
                metrics.request_duration.with_label_values(&[
                    self.route.as_str(),
                    method_label,
                    self.component.as_str(),
                ])
            })
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_labelled_by_template_and_class() {
        let metrics = Metrics::new();
        let series = RequestSeries::new("/items/...", "items");
        series.record(
            &metrics,
            &http::Method::GET,
            http::StatusCode::NOT_FOUND,
            Duration::from_millis(3),
        );
        series.record(
            &metrics,
            &http::Method::from_bytes(b"BREW").unwrap(),
            http::StatusCode::OK,
            Duration::from_millis(3),
        );
        series.record(
            &metrics,
            &http::Method::GET,
            http::StatusCode::NOT_FOUND,
            Duration::from_millis(3),
        );
        let text = metrics.render();
        assert!(
            text.contains(
                r#"http_server_requests_total{component="items",method="GET",route="/items/...",status_class="4xx"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="other""#), "{text}");
        assert!(text.contains(r#"le="0.25""#), "{text}");
        assert!(text.contains("nexa_build_info"), "{text}");
    }
}
