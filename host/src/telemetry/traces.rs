//! OpenTelemetry traces, exported over OTLP.
//!
//! Configured only by the standard `OTEL_*` environment variables: on when
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set (and `OTEL_SDK_DISABLED` is not `true`), with the protocol from
//! `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` (`grpc` or `http/protobuf`, the
//! default), and headers, timeout, service name, resource attributes,
//! sampler and batch sizes read by the OpenTelemetry SDK itself. Off, the
//! per-request cost is one atomic load ([`Tracing::get`]).
//!
//! Export is batched: a span ends into a bounded queue and is sent from the
//! SDK's own thread. A span that finds the queue full is dropped and counted
//! (`trace_spans_dropped_total`), so a slow or dead collector never holds a
//! request; shutdown waits for the last batch at most
//! `trace_shutdown_timeout_ms`.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor, Tracer,
};

use crate::metrics::Metrics;

/// The response header that carries the request's trace (W3C Trace Context
/// level 2): `00-<trace id>-<server span id>-<flags>`.
pub const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");

/// The process's tracer, when tracing is on.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: Tracer,
    propagator: TraceContextPropagator,
    pub endpoint: String,
    pub protocol: Protocol,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Where spans are exported, as the `OTEL_*` environment says (`nexa up`
/// exports there; `nexa doctor` checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    /// As the environment gives it.
    pub endpoint: String,
    pub protocol: Protocol,
    /// From `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, which is used as it is;
    /// the base `OTEL_EXPORTER_OTLP_ENDPOINT` gets `/v1/traces` over HTTP.
    pub traces_specific: bool,
}

impl OtlpTarget {
    /// `None` when tracing is off: no endpoint, or `OTEL_SDK_DISABLED=true`.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let (endpoint, traces_specific) = match env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(endpoint) => (endpoint, true),
            None => match env("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(endpoint) => (endpoint, false),
                None => return Ok(None),
            },
        };
        let protocol = match env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported: use \"grpc\" or \"http/protobuf\""
            ),
        };
        Ok(Some(Self {
            endpoint,
            protocol,
            traces_specific,
        }))
    }

    /// Where the exporter sends spans: for HTTP the URL it POSTs to, for
    /// gRPC the server.
    pub fn traces_url(&self) -> String {
        match self.protocol {
            Protocol::HttpProtobuf if !self.traces_specific => {
                format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
            }
            _ => self.endpoint.clone(),
        }
    }
}

impl Tracing {
    /// The tracer, when [`Tracing::start_from_env`] turned tracing on.
    #[inline]
    pub fn get() -> Option<&'static Tracing> {
        TRACING.get()
    }

    /// Reads the `OTEL_*` environment and starts exporting, or returns
    /// `Ok(None)` when no endpoint is set. Call inside the tokio runtime:
    /// exports run on it.
    pub fn start_from_env() -> anyhow::Result<Option<&'static Tracing>> {
        let Some(OtlpTarget {
            endpoint, protocol, ..
        }) = OtlpTarget::from_env()?
        else {
            return Ok(None);
        };
        // The exporters read endpoint, headers and timeout from the same
        // variables themselves.
        let exporter = match protocol {
            Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build(),
            Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build(),
        }
        .map_err(|error| anyhow::anyhow!("building the OTLP exporter for {endpoint}: {error}"))?;

        let max_queue_size = env("OTEL_BSP_MAX_QUEUE_SIZE")
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(2048);
        let queued = Arc::new(AtomicUsize::new(0));
        let exporter = OnRuntime {
            exporter: Arc::new(exporter),
            runtime: tokio::runtime::Handle::current(),
            queued: queued.clone(),
        };
        let batches = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(max_queue_size)
                    .build(),
            )
            .build();
        let processor = BoundedQueue {
            inner: batches,
            queued,
            capacity: max_queue_size,
        };
        // The SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without
        // either naming the service, it is "nexa" (not "unknown_service").
        let mut resource = opentelemetry_sdk::Resource::builder()
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
        if env("OTEL_SERVICE_NAME").is_none()
            && !env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="))
        {
            resource = resource.with_service_name("nexa");
        }
        let resource = resource.build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("nexa");
        let tracing = Tracing {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            endpoint,
            protocol,
        };
        let tracing = TRACING.get_or_init(|| tracing);
        // Call sites seen before this decided without tracing (bindgen's
        // argument events): ask the filters again.
        ::tracing::callsite::rebuild_interest_cache();
        Ok(Some(tracing))
    }

    /// Exports what is queued and stops, waiting at most `timeout`.
    pub async fn shutdown(timeout: Duration) {
        let Some(tracing) = Tracing::get() else {
            return;
        };
        let provider = tracing.provider.clone();
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout)).await;
        match done {
            Ok(Ok(())) => tracing::info!("traces flushed"),
            Ok(Err(error)) => tracing::warn!(%error, "traces not all exported at shutdown"),
            Err(error) => tracing::warn!(%error, "trace shutdown failed"),
        }
    }

    /// The trace context a client sent (`traceparent`/`tracestate`), if any.
    pub fn extract(&self, headers: &HeaderMap) -> Context {
        self.propagator
            .extract_with_context(&Context::new(), &HeaderExtractor(headers))
    }

    /// Writes `context`'s span as `traceparent`/`tracestate` into `headers`.
    pub fn inject(&self, context: &Context, headers: &mut HeaderMap) {
        self.propagator
            .inject_context(context, &mut HeaderInjector(headers));
    }

    /// Starts the server span of one request (named after its route
    /// template, HTTP semantic conventions), under the client's trace when
    /// its headers carry one. `attributes` is called only when the span is
    /// sampled: a request sampled out builds none.
    pub fn server_span(
        &self,
        headers: &HeaderMap,
        method: &http::Method,
        route: Option<&str>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Context {
        let parent = self.extract(headers);
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.as_str().to_string(),
        };
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start_with_context(&self.tracer, &parent);
        let context = parent.with_span(span);
        let span = context.span();
        if span.is_recording() {
            let mut attributes = attributes();
            attributes.push(KeyValue::new(
                "http.request.method",
                method.as_str().to_string(),
            ));
            if let Some(route) = route {
                attributes.push(KeyValue::new("http.route", route.to_string()));
            }
            span.set_attributes(attributes);
        }
        context
    }

    /// Starts a child span of `parent`; `attributes` is called only when the
    /// span is sampled. A parent sampled out still gets a (non-recording)
    /// child, so what the child calls out to carries the trace context.
    pub fn child_span(
        &self,
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(&self.tracer, parent);
        let context = parent.with_span(span);
        let span = context.span();
        if span.is_recording() {
            span.set_attributes(attributes());
        }
        context
    }

    /// Starts a span in a trace of its own that links to `related` (a
    /// capability call that could belong to any of several requests).
    pub fn linked_span(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        related: &[Context],
    ) -> Context {
        let links = related
            .iter()
            .map(|context| {
                opentelemetry::trace::Link::with_context(context.span().span_context().clone())
            })
            .collect();
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&self.tracer, &Context::new());
        Context::new().with_span(span)
    }
}

/// `traceresponse` for a request's server span.
pub fn traceresponse(context: &Context) -> Option<HeaderValue> {
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    HeaderValue::from_str(&format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    ))
    .ok()
}

/// The trace and span ids of `context`'s span, as logs print them.
pub fn ids(context: &Context) -> Option<(String, String)> {
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// Ends the span of `context` with `status` (an error for 5xx and failures).
pub fn end(context: &Context, error: Option<&str>, attributes: Vec<KeyValue>) {
    let span = context.span();
    span.set_attributes(attributes);
    if let Some(description) = error {
        span.set_status(Status::error(description.to_string()));
    }
    span.end();
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// In front of the SDK's batch processor: refuses a span when `capacity`
/// spans are already waiting, and counts it, so drops are visible in
/// `/metrics` (the SDK only logs them at shutdown). The SDK's own queue has
/// the same capacity and so never drops one itself.
#[derive(Debug)]
struct BoundedQueue {
    inner: BatchSpanProcessor,
    /// Spans ended and not yet handed to the exporter.
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl SpanProcessor for BoundedQueue {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < self.capacity).then_some(queued + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            Metrics::global().trace_spans_dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Runs the OTLP exporter's requests on the host's tokio runtime: the SDK
/// exports from a thread of its own, where tonic and hyper find no reactor.
#[derive(Debug)]
struct OnRuntime<E> {
    exporter: Arc<E>,
    runtime: tokio::runtime::Handle,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter + 'static> SpanExporter for OnRuntime<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len();
        self.queued.fetch_sub(spans, Ordering::AcqRel);
        let exporter = self.exporter.clone();
        let export = self
            .runtime
            .spawn(async move { exporter.export(batch).await });
        async move {
            let metrics = Metrics::global();
            match export.await {
                Ok(Ok(())) => {
                    metrics.trace_spans_exported.inc_by(spans as u64);
                    Ok(())
                }
                Ok(Err(error)) => {
                    metrics.trace_export_failures.inc();
                    metrics.trace_spans_dropped.inc_by(spans as u64);
                    Err(error)
                }
                Err(error) => {
                    metrics.trace_export_failures.inc();
                    metrics.trace_spans_dropped.inc_by(spans as u64);
                    Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                        error.to_string(),
                    ))
                }
            }
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    /// The provider sets the resource (service name...) once, when it is
    /// built, before any export holds a second reference.
    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        match Arc::get_mut(&mut self.exporter) {
            Some(exporter) => exporter.set_resource(resource),
            None => tracing::warn!("the trace resource was set while an export was running"),
        }
    }
}

/// A statement as a span shows it: string and number literals replaced by
/// `?`, so values a guest inlined do not leave the host.
pub fn strip_values(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len());
    let mut chars = statement.chars().peekable();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // A quoted literal; '' inside is an escaped quote.
                while let Some(next) = chars.next() {
                    if next == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                out.push('?');
                previous = Some('?');
            }
            c if c.is_ascii_digit()
                && !previous.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '$') =>
            {
                while chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_digit() || *n == '.' || *n == 'e' || *n == 'E')
                {
                    chars.next();
                }
                out.push('?');
                previous = Some('?');
            }
            c => {
                out.push(c);
                previous = Some(c);
            }
        }
    }
    out
}

/// The first keyword of a statement (`SELECT`, `INSERT`…), upper-cased.
pub fn operation_name(statement: &str) -> Option<String> {
    let word: String = statement
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    (!word.is_empty()).then(|| word.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_stripped_and_placeholders_kept() {
        assert_eq!(
            strip_values("SELECT * FROM items WHERE id = $1 AND name = 'o''brien' LIMIT 10"),
            "SELECT * FROM items WHERE id = $1 AND name = ? LIMIT ?"
        );
        assert_eq!(strip_values("SELECT 1.5e3, t2.c"), "SELECT ?, t2.c");
        assert_eq!(operation_name("  select 1"), Some("SELECT".into()));
        assert_eq!(operation_name("(1)"), None);
    }
}
