//! The host's logs: `tracing` events as JSON lines on stderr (or a human
//! format when stderr is a terminal; `NEXA_LOG_FORMAT=json|text` chooses),
//! filtered `RUST_LOG`-style, and the same JSON lines appended to
//! `<state-dir>/logs/nexa.log`, rotated by size, once the state directory is
//! known ([`LogFile::open`]).
//!
//! A JSON line carries the fields of the request it belongs to
//! (`request_id`, `trace_id`, `span_id`: the [`RequestFields`] of the task
//! serving the request, see [`in_request`]) beside its own, flat:
//! `{"timestamp":…,"level":"INFO","target":"nexa::access","request_id":…,"message":"request",…}`.

use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::capabilities::calls::{CALL_SPAN, CapabilityCallLayer, CapabilityCalls};

tokio::task_local! {
    /// The request the current task serves: its fields go on every line
    /// logged while it is polled. A task-local rather than a `tracing` span:
    /// it costs a swap per poll instead of a trip through every layer.
    static REQUEST_FIELDS: RequestFields;
}

/// What ties a log line to its request.
#[derive(Debug, Clone)]
pub struct RequestFields {
    pub request_id: String,
    /// The trace and span ids, hex, when the request is traced.
    pub trace: Option<(String, String)>,
}

impl RequestFields {
    fn write_json(&self, line: &mut JsonFields) {
        line.push_str_field("request_id", &self.request_id);
        if let Some((trace_id, span_id)) = &self.trace {
            line.push_str_field("trace_id", trace_id);
            line.push_str_field("span_id", span_id);
        }
    }
}

/// Runs `future` as the handling of the request `fields` describe.
pub async fn in_request<F: Future>(fields: RequestFields, future: F) -> F::Output {
    REQUEST_FIELDS.scope(fields, future).await
}

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
    let stderr_writer = || Output::Stderr;
    // JSON on stderr: each line is formatted once and written to both.
    let (stderr, file) = match format {
        Format::Json => (
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(|| Output::Both)
                .boxed(),
            None,
        ),
        Format::Text => (
            tracing_subscriber::fmt::layer()
                .fmt_fields(TextFields::default())
                .with_writer(stderr_writer)
                .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
                .boxed(),
            Some(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(|| Output::File)
                    .with_filter(filter().and(not_a_capability_call())),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(stderr.with_filter(filter().and(not_a_capability_call())))
        .with(file)
        .with((!super::bypassed()).then(|| {
            CapabilityCallLayer::new(CapabilityCalls::global())
                .with_filter(CapabilityCallLayer::filter())
        }))
        .init();
    // `init` bridges the `log` crate at the most verbose level any layer
    // enables (TRACE, for the capability-call spans): every `log::trace!` in
    // a dependency would then reach the subscriber only to be filtered out.
    // Let through only what RUST_LOG can print.
    let level = match filter().max_level_hint() {
        Some(tracing_subscriber::filter::LevelFilter::OFF) => log::LevelFilter::Off,
        Some(tracing_subscriber::filter::LevelFilter::ERROR) => log::LevelFilter::Error,
        Some(tracing_subscriber::filter::LevelFilter::WARN) => log::LevelFilter::Warn,
        Some(tracing_subscriber::filter::LevelFilter::INFO) => log::LevelFilter::Info,
        Some(tracing_subscriber::filter::LevelFilter::DEBUG) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    log::set_max_level(level);
}

/// Where log lines go. Writing one only appends it to a buffer; a thread of
/// its own writes the buffers out every [`FLUSH_EVERY`] (or sooner when one
/// fills), so a request never waits for a disk or a pipe and a busy host
/// neither makes one syscall nor wakes a thread per line.
#[derive(Clone, Copy)]
enum Output {
    Stderr,
    File,
    Both,
}

/// How often the writer thread writes out what was logged.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer past this is written out at once; past [`MAX_BUFFERED`] lines
/// are dropped (and counted) until the writer catches up.
const FLUSH_AT: usize = 256 * 1024;
const MAX_BUFFERED: usize = 8 * 1024 * 1024;

/// `<state-dir>/logs/nexa.log`, rotated past this size; older files kept.
pub const LOG_FILE_MAX_BYTES: usize = 16 * 1024 * 1024;
pub const LOG_FILE_KEEP: usize = 4;

struct Buffers {
    stderr: Vec<u8>,
    file: Vec<u8>,
    file_state: FileState,
    dropped: u64,
    /// [`flush`] asks for generation n; the writer says which it has done.
    flush_requested: u64,
    flush_done: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileState {
    /// Until [`LogFile::open`]: what is logged meanwhile waits (up to
    /// [`FLUSH_AT`]) and is written first.
    Pending,
    Open,
    Off,
}

struct Sink {
    buffers: Mutex<Buffers>,
    /// Only the writer thread writes to it.
    file: Mutex<Option<file_rotate::FileRotate<file_rotate::suffix::AppendCount>>>,
    wake: Condvar,
    flushed: Condvar,
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    static WRITER: std::sync::Once = std::sync::Once::new();
    let sink = SINK.get_or_init(|| Sink {
        buffers: Mutex::new(Buffers {
            stderr: Vec::new(),
            file: Vec::new(),
            file_state: FileState::Pending,
            dropped: 0,
            flush_requested: 0,
            flush_done: 0,
        }),
        file: Mutex::new(None),
        wake: Condvar::new(),
        flushed: Condvar::new(),
    });
    WRITER.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("nexa-log-writer".into())
            .spawn(move || write_out_forever(sink));
    });
    sink
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer thread: every [`FLUSH_EVERY`] (sooner when a buffer fills or
/// [`flush`] asks), takes the buffers and writes them out, unlocked.
fn write_out_forever(sink: &'static Sink) {
    loop {
        let (stderr, file, dropped, generation) = {
            let buffers = lock(&sink.buffers);
            let mut buffers = sink
                .wake
                .wait_timeout_while(buffers, FLUSH_EVERY, |b| {
                    b.flush_requested == b.flush_done
                        && b.stderr.len() < FLUSH_AT
                        && b.file.len() < FLUSH_AT
                })
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
            let file = if buffers.file_state == FileState::Open {
                std::mem::take(&mut buffers.file)
            } else {
                Vec::new()
            };
            (
                std::mem::take(&mut buffers.stderr),
                file,
                std::mem::take(&mut buffers.dropped),
                buffers.flush_requested,
            )
        };
        if dropped > 0 {
            crate::progress::write_stderr(
                format!("(log: {dropped} lines dropped: the writer fell behind)\n").as_bytes(),
            );
        }
        if !stderr.is_empty() {
            crate::progress::write_stderr(&stderr);
        }
        if !file.is_empty()
            && let Some(rotating) = lock(&sink.file).as_mut()
        {
            let _ = rotating.write_all(&file);
            let _ = rotating.flush();
        }
        let mut buffers = lock(&sink.buffers);
        if buffers.flush_done < generation {
            buffers.flush_done = generation;
            sink.flushed.notify_all();
        }
    }
}

impl Output {
    fn append(self, bytes: &[u8]) {
        let sink = sink();
        let mut buffers = lock(&sink.buffers);
        if buffers.stderr.len() + buffers.file.len() + bytes.len() > MAX_BUFFERED {
            buffers.dropped += 1;
            return;
        }
        if matches!(self, Output::Stderr | Output::Both) {
            buffers.stderr.extend_from_slice(bytes);
        }
        let keep_for_file = match buffers.file_state {
            FileState::Open => true,
            FileState::Pending => buffers.file.len() + bytes.len() <= FLUSH_AT,
            FileState::Off => false,
        };
        if matches!(self, Output::File | Output::Both) && keep_for_file {
            buffers.file.extend_from_slice(bytes);
        }
        let full = buffers.stderr.len() >= FLUSH_AT
            || (buffers.file_state == FileState::Open && buffers.file.len() >= FLUSH_AT);
        drop(buffers);
        if full {
            sink.wake.notify_one();
        }
    }
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Prints a plain line on stderr in order with the log lines before it
/// (the "Serving http://…" lines that scripts wait for), at once.
pub fn print(line: &str) {
    Output::Stderr.append(format!("{line}\n").as_bytes());
    flush();
}

/// Writes out everything logged so far (at start-up milestones and at exit);
/// waits at most a second.
pub fn flush() {
    let sink = sink();
    let mut buffers = lock(&sink.buffers);
    buffers.flush_requested += 1;
    let generation = buffers.flush_requested;
    sink.wake.notify_one();
    let _ = sink
        .flushed
        .wait_timeout_while(buffers, Duration::from_secs(1), |b| {
            b.flush_done < generation
        });
}

/// The log file of a state directory.
pub struct LogFile;

impl LogFile {
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("logs").join("nexa.log")
    }

    /// Starts appending to `path` (rotating it by size), first what was
    /// logged before; an error when it cannot be created, and logging goes
    /// on to stderr only.
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
        let sink = sink();
        *lock(&sink.file) = Some(rotating);
        lock(&sink.buffers).file_state = FileState::Open;
        Ok(())
    }

    /// No file will be opened: stop keeping lines for it.
    pub fn disable() {
        let mut buffers = lock(&sink().buffers);
        buffers.file_state = FileState::Off;
        buffers.file.clear();
    }
}

/// The human format's fields: the event's, then its request's.
#[derive(Default)]
struct TextFields(DefaultFields);

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        self.0.format_fields(writer.by_ref(), fields)?;
        REQUEST_FIELDS
            .try_with(|request| {
                write!(writer, " request_id={}", request.request_id)?;
                if let Some((trace_id, _)) = &request.trace {
                    write!(writer, " trace_id={trace_id}")?;
                }
                Ok(())
            })
            .unwrap_or(Ok(()))
    }
}

/// One JSON object per event, the request's fields and the event's flat,
/// written straight into the line (this runs once per request, for the
/// access line: no map, no second pass).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = JsonFields(String::with_capacity(256));
        line.0.push_str("{\"timestamp\":\"");
        // humantime writes RFC 3339 directly; chrono's strftime parses its
        // pattern on every line.
        let _ = write!(
            line.0,
            "{}",
            humantime::format_rfc3339_micros(std::time::SystemTime::now())
        );
        line.0.push_str("\",\"level\":\"");
        line.0.push_str(metadata.level().as_str());
        line.0.push('"');
        line.push_str_field("target", metadata.target());
        let _ = REQUEST_FIELDS.try_with(|request| request.write_json(&mut line));
        event.record(&mut line);
        line.0.push('}');
        writeln!(writer, "{}", line.0)
    }
}

/// `,"name":value` pairs appended to a JSON object being written.
struct JsonFields(String);

impl JsonFields {
    fn push_key(&mut self, name: &str) {
        self.0.push(',');
        push_json_string(&mut self.0, name);
        self.0.push(':');
    }

    fn push_str_field(&mut self, name: &str, value: &str) {
        self.push_key(name);
        push_json_string(&mut self.0, value);
    }
}

/// Appends `text` as a JSON string.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_str_field(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push_key(field.name());
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push_key(field.name());
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push_key(field.name());
        if value.is_finite() {
            // ryu: the shortest round-tripping form, several times faster
            // than `Display` (every access line has a duration).
            self.0.push_str(ryu::Buffer::new().format_finite(value));
        } else {
            self.0.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push_key(field.name());
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push_str_field(field.name(), &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
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

    fn captured_lines(
        format: impl FnOnce(Captured) -> Box<dyn Subscriber + Send + Sync>,
    ) -> String {
        let captured = Captured::default();
        let subscriber = format(captured.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any request");
            let fields = RequestFields {
                request_id: "r1".into(),
                trace: Some(("t1".into(), "s1".into())),
            };
            runtime.block_on(in_request(fields, async {
                tokio::task::yield_now().await;
                tracing::info!(
                    status = 200u64,
                    route = "/items/...",
                    duration_ms = 1.5,
                    "request"
                );
            }));
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_json_line_carries_its_request_fields_flat() {
        let text = captured_lines(|writer| {
            Box::new(
                tracing_subscriber::registry().with(
                    tracing_subscriber::fmt::layer()
                        .event_format(JsonLines)
                        .with_writer(move || writer.clone()),
                ),
            )
        });
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "outside any request");
        assert!(lines[0].get("request_id").is_none(), "{text}");
        let line = &lines[1];
        assert_eq!(line["request_id"], "r1");
        assert_eq!(line["trace_id"], "t1");
        assert_eq!(line["span_id"], "s1");
        assert_eq!(line["status"], 200);
        assert_eq!(line["duration_ms"], 1.5);
        assert_eq!(line["route"], "/items/...");
        assert_eq!(line["message"], "request");
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{text}");
    }

    #[test]
    fn a_text_line_ends_with_its_request_fields() {
        let text = captured_lines(|writer| {
            Box::new(
                tracing_subscriber::registry().with(
                    tracing_subscriber::fmt::layer()
                        .fmt_fields(TextFields::default())
                        .with_ansi(false)
                        .with_writer(move || writer.clone()),
                ),
            )
        });
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("outside any request"), "{text}");
        assert!(
            lines[1].ends_with(
                "request status=200 route=\"/items/...\" duration_ms=1.5 request_id=r1 trace_id=t1"
            ),
            "{text}"
        );
    }
}
