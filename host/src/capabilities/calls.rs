//! Every host call of every capability, recorded in one place.
//!
//! `bindgen!` runs with `tracing: true` (see `build.rs`), so each Spin import
//! a guest calls is wrapped in a TRACE span named [`CALL_SPAN`] with `module`
//! and `function` fields, and ends with a TRACE event whose `result` field
//! holds the outcome. Outbound HTTP, which wasmtime-wasi-http links, opens the
//! same span in its hook. [`CapabilityCallLayer`] is a `tracing` layer that
//! sees only those spans and events: it times each call and counts it by
//! capability, operation and outcome in [`CapabilityCalls`] and in the
//! Prometheus metrics (`capability_calls_total`,
//! `capability_call_duration_seconds`); trace export builds on the same hook.
//! No capability function records anything itself.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use opentelemetry::trace::TraceContextExt;
use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// The name bindgen gives the span around every import call.
pub const CALL_SPAN: &str = "wit-bindgen import";

/// The target of events a capability emits inside its call span to add
/// attributes to the call's trace span (`tracing::trace!(target:
/// SPAN_ATTRIBUTES, "nexa.key_value.hit" = true)`): what the generated
/// "call" event cannot say, such as a lookup's hit or an HTTP status.
pub const SPAN_ATTRIBUTES: &str = "nexa_host::span_attributes";

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Returned normally (an `Ok`, or a function without a result).
    Ok,
    /// Returned the interface's own error variant to the guest.
    Error,
    /// Trapped the guest (a host failure).
    Trap,
}

/// Counters of one operation of one capability.
#[derive(Debug)]
pub struct OperationStats {
    pub capability: String,
    pub operation: String,
    pub ok: AtomicU64,
    pub error: AtomicU64,
    pub trap: AtomicU64,
    /// Time spent in calls, in nanoseconds.
    pub busy_nanos: AtomicU64,
    /// The same, as Prometheus metrics: handles resolved once per call site.
    exported: ExportedStats,
    /// What every trace span of this operation starts with, made once.
    trace: TraceTemplate,
}

/// The name, kind and fixed attributes of an operation's trace spans.
#[derive(Debug)]
struct TraceTemplate {
    name: &'static str,
    kind: opentelemetry::trace::SpanKind,
    attributes: Vec<opentelemetry::KeyValue>,
}

impl TraceTemplate {
    fn new(capability: &str, operation: &str) -> Self {
        use opentelemetry::KeyValue;
        use opentelemetry::trace::SpanKind;
        let short = operation.rsplit(['.', ']']).next().unwrap_or(operation);
        // One per imported function (a fixed, small set): kept for the
        // process's life so a span's name costs no allocation.
        let name: &'static str = Box::leak(format!("{capability} {short}").into_boxed_str());
        let kind = match capability {
            "outbound-http" | "postgres" | "redis" => SpanKind::Client,
            _ => SpanKind::Internal,
        };
        let mut attributes = vec![
            KeyValue::new("nexa.capability", capability.to_string()),
            KeyValue::new("nexa.operation", operation.to_string()),
        ];
        match capability {
            "postgres" => attributes.extend([
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new("db.system.name", "postgresql"),
            ]),
            "sqlite" => attributes.extend([
                KeyValue::new("db.system", "sqlite"),
                KeyValue::new("db.system.name", "sqlite"),
            ]),
            "redis" => attributes.extend([
                KeyValue::new("db.system", "redis"),
                KeyValue::new("db.system.name", "redis"),
                KeyValue::new("db.operation.name", short.to_string()),
            ]),
            "key-value" => attributes.push(KeyValue::new("nexa.key_value.op", short.to_string())),
            _ => {}
        }
        Self {
            name,
            kind,
            attributes,
        }
    }
}

/// One operation's Prometheus series.
#[derive(Debug)]
struct ExportedStats {
    ok: prometheus::IntCounter,
    error: prometheus::IntCounter,
    trap: prometheus::IntCounter,
    duration: prometheus::Histogram,
}

impl ExportedStats {
    fn new(capability: &str, operation: &str) -> Self {
        let metrics = crate::metrics::Metrics::global();
        let calls = |result: &str| {
            metrics
                .capability_calls
                .with_label_values(&[capability, operation, result])
        };
        Self {
            ok: calls("ok"),
            error: calls("error"),
            trap: calls("trap"),
            duration: metrics
                .capability_call_duration
                .with_label_values(&[capability, operation]),
        }
    }
}

/// A snapshot of one operation's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRecord {
    pub capability: String,
    pub operation: String,
    pub ok: u64,
    pub error: u64,
    pub trap: u64,
    pub busy_nanos: u64,
}

/// Call counters of the whole process, keyed by the call site bindgen made
/// (one per imported function), so recording never formats or allocates.
#[derive(Debug, Default)]
pub struct CapabilityCalls {
    operations: RwLock<HashMap<Identifier, Arc<OperationStats>>>,
}

impl CapabilityCalls {
    /// The process's counters (the `tracing` subscriber is process-wide too).
    pub fn global() -> &'static CapabilityCalls {
        static CALLS: OnceLock<CapabilityCalls> = OnceLock::new();
        CALLS.get_or_init(CapabilityCalls::default)
    }

    fn operation(&self, callsite: Identifier, attributes: &Attributes<'_>) -> Arc<OperationStats> {
        if let Some(stats) = self
            .operations
            .read()
            .ok()
            .and_then(|operations| operations.get(&callsite).cloned())
        {
            return stats;
        }
        let mut names = CallNames::default();
        attributes.record(&mut names);
        let capability = capability_name(&names.module).to_string();
        let stats = Arc::new(OperationStats {
            exported: ExportedStats::new(&capability, &names.function),
            trace: TraceTemplate::new(&capability, &names.function),
            capability,
            operation: names.function,
            ok: AtomicU64::new(0),
            error: AtomicU64::new(0),
            trap: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
        });
        match self.operations.write() {
            Ok(mut operations) => operations.entry(callsite).or_insert(stats).clone(),
            Err(_) => stats,
        }
    }

    /// Every operation called so far, sorted by capability and operation.
    pub fn snapshot(&self) -> Vec<OperationRecord> {
        let Ok(operations) = self.operations.read() else {
            return Vec::new();
        };
        let mut records: Vec<OperationRecord> = operations
            .values()
            .map(|stats| OperationRecord {
                capability: stats.capability.clone(),
                operation: stats.operation.clone(),
                ok: stats.ok.load(Ordering::Relaxed),
                error: stats.error.load(Ordering::Relaxed),
                trap: stats.trap.load(Ordering::Relaxed),
                busy_nanos: stats.busy_nanos.load(Ordering::Relaxed),
            })
            .collect();
        // Two call sites may share a name (the same function in two
        // generated paths); merge them.
        records.sort_by(|a, b| (&a.capability, &a.operation).cmp(&(&b.capability, &b.operation)));
        records.dedup_by(|later, kept| {
            let same = later.capability == kept.capability && later.operation == kept.operation;
            if same {
                kept.ok += later.ok;
                kept.error += later.error;
                kept.trap += later.trap;
                kept.busy_nanos += later.busy_nanos;
            }
            same
        });
        records
    }
}

/// The capability a WIT interface belongs to.
fn capability_name(module: &str) -> &str {
    match module {
        "client" | "handler" => "outbound-http",
        other => other,
    }
}

#[derive(Default)]
struct CallNames {
    module: String,
    function: String,
}

impl Visit for CallNames {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "module" => self.module = value.to_string(),
            "function" => self.function = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, text.trim_matches('"'));
    }
}

/// What the layer keeps on a call's span.
struct InFlight {
    stats: Arc<OperationStats>,
    started: Instant,
    outcome: Outcome,
    /// The call's trace span, when tracing is on and the call is a request's.
    trace: Option<opentelemetry::Context>,
}

/// The trace span of the capability call running in the current `tracing`
/// span (outbound HTTP injects it as `traceparent`).
pub fn current_call_trace() -> Option<opentelemetry::Context> {
    tracing::Span::current().with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let extensions = span.extensions();
        extensions.get::<InFlight>()?.trace.clone()
    })?
}

/// The `tracing` layer that records capability calls into [`CapabilityCalls`].
/// Install it with [`CapabilityCallLayer::filter`] so only call spans and their
/// result events are enabled for it (everything else costs it nothing).
pub struct CapabilityCallLayer {
    calls: &'static CapabilityCalls,
}

impl CapabilityCallLayer {
    pub fn new(calls: &'static CapabilityCalls) -> Self {
        Self { calls }
    }

    /// Enables this host's call spans and the events that carry a `result`,
    /// and nothing else: wasmtime-wasi's own bindings make spans of the same
    /// name for WASI plumbing (HTTP fields, clocks, streams), which are no
    /// capability and stay disabled, at no cost.
    pub fn filter<S>() -> impl Filter<S> {
        CallSites
    }
}

/// [`CapabilityCallLayer`]'s filter. It decides by call site alone, so
/// `tracing` caches the answer: a call site no layer wants (the WASI
/// plumbing spans, bindgen's argument events while tracing is off) is
/// disabled once and costs nothing per call. `tracing_subscriber`'s
/// `filter_fn` would be asked again on every span and event.
struct CallSites;

impl CallSites {
    fn wanted(metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        *metadata.level() == tracing::Level::TRACE
            && target.starts_with(concat!(env!("CARGO_CRATE_NAME"), "::"))
            && ((metadata.is_span() && metadata.name() == CALL_SPAN)
                || (metadata.is_event()
                    && (metadata.fields().field("result").is_some()
                        || target == SPAN_ATTRIBUTES
                        || (target.starts_with("nexa_host::spin_bindings")
                            && crate::telemetry::traces::Tracing::get().is_some()))))
    }
}

impl<S> Filter<S> for CallSites {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        Self::wanted(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if Self::wanted(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
}

impl<S> Layer<S> for CapabilityCallLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if attributes.metadata().name() != CALL_SPAN {
            return;
        }
        let stats = self
            .calls
            .operation(attributes.metadata().callsite(), attributes);
        let trace = crate::telemetry::traces::Tracing::get()
            .and_then(|tracing| call_trace(tracing, &stats));
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(InFlight {
                stats,
                started: Instant::now(),
                outcome: Outcome::Ok,
                trace,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let Some(span) = context.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(in_flight) = extensions.get_mut::<InFlight>() else {
            return;
        };
        if event.metadata().fields().field("result").is_some() {
            let mut outcome = OutcomeOf(None);
            event.record(&mut outcome);
            if let Some(outcome) = outcome.0 {
                in_flight.outcome = outcome;
            }
        } else if let Some(trace) = in_flight.trace.as_ref().filter(|t| t.span().is_recording()) {
            // The arguments bindgen logs, or attributes a capability adds
            // (not read for a span sampled out).
            let mut attributes = SpanAttributes::new(&in_flight.stats.capability);
            event.record(&mut attributes);
            trace.span().set_attributes(attributes.into_key_values());
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        let Some(span) = context.span(&id) else {
            return;
        };
        let Some(in_flight) = span.extensions_mut().remove::<InFlight>() else {
            return;
        };
        let stats = &in_flight.stats;
        if let Some(trace) = &in_flight.trace {
            let error = match in_flight.outcome {
                Outcome::Ok => None,
                Outcome::Error => Some("the capability returned an error"),
                Outcome::Trap => Some("the call trapped"),
            };
            crate::telemetry::traces::end(trace, error, Vec::new());
        }
        let (counter, exported) = match in_flight.outcome {
            Outcome::Ok => (&stats.ok, &stats.exported.ok),
            Outcome::Error => (&stats.error, &stats.exported.error),
            Outcome::Trap => (&stats.trap, &stats.exported.trap),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        exported.inc();
        let elapsed = in_flight.started.elapsed();
        stats.exported.duration.observe(elapsed.as_secs_f64());
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        stats.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Starts the trace span of a call by the instance calling into the host,
/// under its request when it serves exactly one, else in a trace of its own
/// linked to each request it serves; none outside a request.
fn call_trace(
    tracing: &crate::telemetry::traces::Tracing,
    stats: &OperationStats,
) -> Option<opentelemetry::Context> {
    use crate::telemetry::instance::{self, Attribution};
    use opentelemetry::KeyValue;

    let instance = instance::calling()?;
    let template = &stats.trace;
    let name = template.name;
    let kind = template.kind.clone();
    let attributes = || {
        let mut attributes = template.attributes.clone();
        attributes.extend([
            KeyValue::new(
                "nexa.component",
                opentelemetry::Value::String(instance.component.clone().into()),
            ),
            KeyValue::new("nexa.instance", instance.id as i64),
        ]);
        attributes
    };
    match instance.attribution() {
        Attribution::One(request) => {
            let parent = request.trace?;
            Some(tracing.child_span(&parent, name, kind, attributes))
        }
        Attribution::Several(requests) => {
            let related: Vec<_> = requests.into_iter().filter_map(|r| r.trace).collect();
            let mut attributes = attributes();
            attributes.push(KeyValue::new(
                "nexa.requests_in_flight",
                related.len() as i64,
            ));
            Some(tracing.linked_span(name, kind, attributes, &related))
        }
        Attribution::None => None,
    }
}

/// Span attributes from a call's arguments (as bindgen logs them) or from a
/// capability's [`SPAN_ATTRIBUTES`] event. A statement is kept without its
/// literal values; other arguments (keys, values, parameters) are not kept.
struct SpanAttributes<'a> {
    capability: &'a str,
    attributes: Vec<opentelemetry::KeyValue>,
}

impl<'a> SpanAttributes<'a> {
    fn new(capability: &'a str) -> Self {
        Self {
            capability,
            attributes: Vec::new(),
        }
    }

    fn into_key_values(self) -> Vec<opentelemetry::KeyValue> {
        self.attributes
    }
}

impl Visit for SpanAttributes<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        use crate::telemetry::traces::{operation_name, strip_values};
        use opentelemetry::KeyValue;
        let name = field.name();
        match (self.capability, name) {
            ("postgres" | "sqlite", "statement") => {
                let statement = strip_values(value);
                if let Some(operation) = operation_name(&statement) {
                    self.attributes
                        .push(KeyValue::new("db.operation.name", operation));
                }
                self.attributes
                    .push(KeyValue::new("db.query.text", statement));
            }
            ("redis", "command") => self.attributes.push(KeyValue::new(
                "db.operation.name",
                value.to_ascii_uppercase(),
            )),
            ("key-value", "label") => self
                .attributes
                .push(KeyValue::new("nexa.key_value.store", value.to_string())),
            (_, name) if name.contains('.') => self
                .attributes
                .push(KeyValue::new(name.to_string(), value.to_string())),
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name().contains('.') {
            self.attributes.push(opentelemetry::KeyValue::new(
                field.name().to_string(),
                value,
            ));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name().contains('.') {
            self.attributes.push(opentelemetry::KeyValue::new(
                field.name().to_string(),
                value,
            ));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_i64(field, i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // bindgen logs arguments with Debug: a string arrives quoted.
        if matches!(field.name(), "statement" | "command" | "label") {
            let text = format!("{value:?}");
            let unquoted = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .map(|t| t.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or(text);
            self.record_str(field, &unquoted);
        }
    }
}

/// Reads the outcome from the start of a `result` field's Debug text:
/// `Ok(Ok(..))`/`Ok(())` → ok, `Ok(Err(..))` → the interface's error,
/// `Err(..)` → a trap. Only the first few bytes are formatted.
struct OutcomeOf(Option<Outcome>);

impl Visit for OutcomeOf {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() != "result" {
            return;
        }
        let mut prefix = Prefix::default();
        let _ = write!(prefix, "{value:?}");
        let text = &prefix.bytes[..prefix.len];
        self.0 = Some(if text.starts_with(b"Ok(Err") {
            Outcome::Error
        } else if text.starts_with(b"Err") {
            Outcome::Trap
        } else {
            Outcome::Ok
        });
    }
}

/// A writer that keeps the first few bytes and then stops the formatting.
#[derive(Default)]
struct Prefix {
    bytes: [u8; 8],
    len: usize,
}

impl fmt::Write for Prefix {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = room.min(text.len());
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        if self.len == self.bytes.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    /// The spans and events as bindgen generates them, through the layer.
    #[tokio::test]
    async fn calls_are_counted_by_capability_operation_and_outcome() {
        let calls: &'static CapabilityCalls = Box::leak(Box::default());
        let subscriber = tracing_subscriber::registry()
            .with(CapabilityCallLayer::new(calls).with_filter(CapabilityCallLayer::filter()));
        let _guard = tracing::subscriber::set_default(subscriber);
        for result in [
            Ok::<Result<u32, String>, String>(Ok(1)),
            Ok(Err("no such store".into())),
            Err("trap".into()),
            Ok(Ok(2)),
        ] {
            let span = tracing::span!(
                tracing::Level::TRACE,
                "wit-bindgen import",
                module = "key-value",
                function = "get",
            );
            async {
                tracing::event!(tracing::Level::TRACE, key = "k", "call");
                tracing::event!(
                    tracing::Level::TRACE,
                    result = tracing::field::debug(&result),
                    "return"
                );
            }
            .instrument(span)
            .await;
        }
        // Not a call: ignored.
        tracing::info_span!("other", module = "x").in_scope(|| {});

        let records = calls.snapshot();
        assert_eq!(records.len(), 1, "{records:?}");
        let get = &records[0];
        assert_eq!(
            (get.capability.as_str(), get.operation.as_str()),
            ("key-value", "get")
        );
        assert_eq!((get.ok, get.error, get.trap), (2, 1, 1));
    }
}
