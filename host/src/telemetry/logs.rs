//! The host's logs: `tracing` events as JSON lines on stderr (or a human
//! format when stderr is a terminal; `NEXA_LOG_FORMAT=json|text` chooses),
//! filtered `RUST_LOG`-style, and the same JSON lines appended to
//! `<state-dir>/logs/nexa.log`, rotated by size, once the state directory is
//! known ([`LogFile::open`]).
//!
//! A JSON line carries the fields of the request it belongs to
//! (`request_id`, `trace_id`, `span_id`: the fields of the [`REQUEST_SPAN`]
//! around it) beside its own, flat:
//! `{"timestamp":…,"level":"INFO","target":"nexa::access","request_id":…,"message":"request",…}`.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::capabilities::calls::{CALL_SPAN, CapabilityCallLayer, CapabilityCalls};

/// The span around each request; its fields go on every line logged inside.
pub const REQUEST_SPAN: &str = "request";

/// `nexa.log` is rotated past this size; this many old files are kept.
pub const LOG_FILE_MAX_BYTES: usize = 16 * 1024 * 1024;
pub const LOG_FILE_KEEP: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

impl Format {
    /// `NEXA_LOG_FORMAT`, else text on a terminal and JSON otherwise.
    pub fn from_env() -> Self {
        match std::env::var("NEXA_LOG_FORMAT").as_deref() {
            Ok("json") => Format::Json,
            Ok("text") => Format::Text,
            _ if io::stderr().is_terminal() => Format::Text,
            _ => Format::Json,
        }
    }
}

/// Installs the process's subscriber: stderr in `format`, the log file
/// (silent until opened) in JSON, and the capability-call recorder.
pub fn init(format: Format) {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn"))
    };
    // The capability-call spans carry guest arguments and results (variable
    // values among them): never printed, whatever RUST_LOG says.
    let not_a_capability_call = || {
        tracing_subscriber::filter::filter_fn(|metadata| {
            !metadata.target().starts_with("nexa_host::spin_bindings")
                && metadata.name() != CALL_SPAN
        })
    };
    // JSON on stderr: each line is formatted once and written to both.
    let (stderr, file) = match format {
        Format::Json => (
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(io::stderr.and(LogFile::writer))
                .boxed(),
            None,
        ),
        Format::Text => (
            tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
                .boxed(),
            Some(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(LogFile::writer)
                    .with_filter(filter().and(not_a_capability_call())),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(
            RequestFieldsLayer.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                metadata.is_span() && metadata.name() == REQUEST_SPAN
            })),
        )
        .with(stderr.with_filter(filter().and(not_a_capability_call())))
        .with(file)
        .with((!super::bypassed()).then(|| {
            CapabilityCallLayer::new(CapabilityCalls::global())
                .with_filter(CapabilityCallLayer::filter())
        }))
        .init();
}

/// `<state-dir>/logs/nexa.log`: JSON lines written from a background thread
/// (a request never waits for the disk), rotated at [`LOG_FILE_MAX_BYTES`].
/// Lines logged before it is opened are kept (up to 256 KiB) and written
/// first.
pub struct LogFile {
    state: Mutex<FileState>,
}

enum FileState {
    Pending(Vec<u8>),
    Open(NonBlocking),
    Off,
}

const PENDING_MAX_BYTES: usize = 256 * 1024;

static LOG_FILE: OnceLock<LogFile> = OnceLock::new();
static LOG_FILE_GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

impl LogFile {
    pub fn global() -> &'static LogFile {
        LOG_FILE.get_or_init(|| LogFile {
            state: Mutex::new(FileState::Pending(Vec::new())),
        })
    }

    /// The log file of a state directory.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("logs").join("nexa.log")
    }

    /// Starts appending to `path` (rotating it by size); returns an error
    /// when it cannot be created, and logging goes on to stderr only.
    pub fn open(path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Fail here, with the reason, rather than inside the rotator.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let rotating = file_rotate::FileRotate::new(
            path,
            file_rotate::suffix::AppendCount::new(LOG_FILE_KEEP),
            file_rotate::ContentLimit::BytesSurpassed(LOG_FILE_MAX_BYTES),
            file_rotate::compression::Compression::None,
            None,
        );
        let (mut writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(true)
            .thread_name("nexa-log-file")
            .finish(rotating);
        let file = LogFile::global();
        let mut state = file.state.lock().unwrap_or_else(|e| e.into_inner());
        if let FileState::Pending(early) = &*state {
            let _ = writer.write_all(early);
        }
        *state = FileState::Open(writer);
        *LOG_FILE_GUARD.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
        Ok(())
    }

    /// A writer to the file (the subscriber's `MakeWriter`).
    pub fn writer() -> LogFileWriter<'static> {
        LogFileWriter(LogFile::global())
    }

    /// Stops buffering early lines (no file will be opened).
    pub fn disable() {
        let file = LogFile::global();
        *file.state.lock().unwrap_or_else(|e| e.into_inner()) = FileState::Off;
    }

    /// Writes what is queued to the file (at exit).
    pub fn flush() {
        LOG_FILE_GUARD
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

pub struct LogFileWriter<'a>(&'a LogFile);

impl Write for LogFileWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *state {
            FileState::Open(writer) => writer.write(bytes),
            FileState::Pending(early) => {
                if early.len() + bytes.len() <= PENDING_MAX_BYTES {
                    early.extend_from_slice(bytes);
                }
                Ok(bytes.len())
            }
            FileState::Off => Ok(bytes.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The fields of a [`REQUEST_SPAN`], kept as JSON for [`JsonLines`].
struct RequestFields(Map<String, Value>);

/// Keeps each request span's fields (also those recorded later) in the
/// span, where [`JsonLines`] finds them.
struct RequestFieldsLayer;

impl<S> Layer<S> for RequestFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = JsonFields(Map::new());
        attributes.record(&mut fields);
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(RequestFields(fields.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        if let Some(span) = context.span(id)
            && let Some(RequestFields(fields)) = span.extensions_mut().get_mut::<RequestFields>()
        {
            let mut recorded = JsonFields(std::mem::take(fields));
            values.record(&mut recorded);
            *fields = recorded.0;
        }
    }
}

/// One JSON object per event, the request's fields and the event's flat.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::String(metadata.level().to_string()));
        line.insert(
            "target".into(),
            Value::String(metadata.target().to_string()),
        );
        if let Some(scope) = context.event_scope() {
            for span in scope.from_root() {
                if let Some(RequestFields(fields)) = span.extensions().get::<RequestFields>() {
                    line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut fields = JsonFields(line);
        event.record(&mut fields);
        let text = serde_json::to_string(&fields.0).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_json_line_carries_its_request_fields_flat() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(RequestFieldsLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                REQUEST_SPAN,
                request_id = "r1",
                trace_id = tracing::field::Empty
            );
            span.record("trace_id", "t1");
            span.in_scope(|| tracing::info!(status = 200u64, route = "/items/...", "request"));
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["request_id"], "r1");
        assert_eq!(line["trace_id"], "t1");
        assert_eq!(line["status"], 200);
        assert_eq!(line["route"], "/items/...");
        assert_eq!(line["message"], "request");
        assert_eq!(line["level"], "INFO");
    }
}
