//! A component's stdout and stderr, as log lines: each line it prints is one
//! `tracing` event (target `nexa::component`) tagged with the component, the
//! instance, the stream and, when the instance serves exactly one request,
//! that request's id.
//!
//! Lines are rate limited ([`LINE_QUOTA`]) so a chatty component cannot fill
//! the disk: lines over the limit are dropped, counted in
//! `component_output_lines_dropped_total` and summed up in one warning before
//! the next line that gets through. Writing never blocks, fails or traps the
//! guest, whatever happens to its output.

use std::mem;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use prometheus::IntCounter;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::metrics::Metrics;
use crate::telemetry::instance::{InstanceInfo, RequestContext};

/// The `tracing` target of the components' output.
const TARGET: &str = "nexa::component";

/// The longest line logged as one event. A longer line is cut into pieces of
/// this size (at a UTF-8 boundary when there is one), each but the last
/// marked `truncated = true`; it also bounds what is buffered per stream.
pub const MAX_LINE: usize = 16 * 1024;

/// Lines per second a stream of an instance may log, sustained.
pub const LINES_PER_SECOND: NonZeroU32 = NonZeroU32::new(100).unwrap();

/// Lines a stream of an instance may log at once (a start-up banner, a stack
/// trace) before [`LINES_PER_SECOND`] applies.
pub const LINE_BURST: NonZeroU32 = NonZeroU32::new(200).unwrap();

/// The rate limit of each output stream of an instance.
pub const LINE_QUOTA: Quota = Quota::per_second(LINES_PER_SECOND).allow_burst(LINE_BURST);

/// How many bytes a WASI 0.2 `check-write` grants: everything is consumed at
/// once, so this only bounds a single `write` (the size wasmtime-wasi's own
/// stdio grants).
const WRITE_BUDGET: usize = 64 * 1024;

/// Which stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The stream's name, as the `stream` field of its lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One output stream of one instance, as given to the `WasiCtxBuilder`:
/// `wasi.stdout(ComponentOutput::new(instance.clone(), Stream::Stdout))`.
///
/// Every handle the guest opens on the stream (WASI 0.2 `get-stdout`, WASI
/// 0.3 `write-via-stream`) writes into the same line buffer and rate limit;
/// the partial last line is logged when the last of them is dropped, with the
/// store.
pub struct ComponentOutput {
    writer: SharedWriter,
}

type SharedWriter = Arc<Mutex<LineWriter<TracingSink>>>;

impl ComponentOutput {
    /// The `stream` of `instance`, with its own line buffer and rate limit.
    pub fn new(instance: Arc<InstanceInfo>, stream: Stream) -> Self {
        let sink = TracingSink {
            instance,
            stream,
            dropped_lines: None,
        };
        Self {
            writer: Arc::new(Mutex::new(LineWriter::new(sink))),
        }
    }

    fn handle(&self) -> OutputHandle {
        OutputHandle(self.writer.clone())
    }
}

impl IsTerminal for ComponentOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

// Both methods are implemented: `p2_stream`'s default would wrap
// `async_stream` in an `AsyncWriteStream`, which spawns a task per handle and
// buffers behind it, for a write that is synchronous and cheap anyway.
impl StdoutStream for ComponentOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.handle())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.handle())
    }
}

/// One handle the guest holds on a [`ComponentOutput`]: always ready, takes
/// everything at once.
struct OutputHandle(SharedWriter);

impl OutputHandle {
    fn write(&self, bytes: &[u8]) {
        // A poisoned lock only means a subscriber panicked while logging a
        // line: the buffer is still consistent, so go on with it.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes);
    }
}

impl OutputStream for OutputHandle {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        OutputHandle::write(self, &bytes);
        Ok(())
    }

    /// Lines are logged as they end; a partial line waits for its end (or the
    /// end of the instance) rather than being split by the guest's flushes.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

// `Pollable` is declared with `#[async_trait]`; this is the signature that
// attribute generates, written out so the crate does not need `async-trait`.
impl Pollable for OutputHandle {
    fn ready<'life0, 'async_trait>(
        &'life0 mut self,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(()))
    }
}

impl AsyncWrite for OutputHandle {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Where a [`LineWriter`] sends what it makes of the bytes.
trait LineSink {
    /// One line, without its line ending; `truncated` when it was cut at
    /// [`MAX_LINE`] and goes on in the next one.
    fn line(&mut self, line: &str, truncated: bool);
    /// One line was dropped over the rate limit.
    fn dropped(&mut self);
    /// `count` lines were dropped since the last one that got through.
    fn dropped_summary(&mut self, count: u64);
}

/// Logs lines as `tracing` events and counts the dropped ones.
struct TracingSink {
    instance: Arc<InstanceInfo>,
    stream: Stream,
    /// This component's series of the dropped-lines counter, looked up on
    /// the first drop (most instances never drop a line).
    dropped_lines: Option<IntCounter>,
}

impl LineSink for TracingSink {
    fn line(&mut self, line: &str, truncated: bool) {
        let request = self.instance.only_request();
        // `Option` fields are left out of the event when `None`.
        tracing::info!(
            target: TARGET,
            component = %self.instance.component,
            instance = self.instance.id,
            stream = self.stream.as_str(),
            request_id = request.as_ref().map(RequestContext::request_id),
            truncated = truncated.then_some(true),
            "{line}"
        );
    }

    fn dropped(&mut self) {
        let component = &self.instance.component;
        self.dropped_lines
            .get_or_insert_with(|| {
                Metrics::global()
                    .component_output_lines_dropped
                    .with_label_values(&[&**component])
            })
            .inc();
    }

    fn dropped_summary(&mut self, count: u64) {
        tracing::warn!(
            target: TARGET,
            component = %self.instance.component,
            instance = self.instance.id,
            stream = self.stream.as_str(),
            dropped = count,
            "component output over its rate limit: {count} lines dropped"
        );
    }
}

type LineLimiter<C> =
    RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Cuts a byte stream into lines and passes those within the rate limit on
/// to its sink.
struct LineWriter<S: LineSink, C: Clock = DefaultClock> {
    sink: S,
    limiter: LineLimiter<C>,
    /// The start of a line whose end has not been written yet; never longer
    /// than [`MAX_LINE`] between writes.
    pending: Vec<u8>,
    /// Lines dropped since the last one that got through.
    dropped: u64,
}

impl<S: LineSink> LineWriter<S> {
    fn new(sink: S) -> Self {
        Self::with_limiter(sink, RateLimiter::direct(LINE_QUOTA))
    }
}

impl<S: LineSink, C: Clock> LineWriter<S, C> {
    fn with_limiter(sink: S, limiter: LineLimiter<C>) -> Self {
        Self {
            sink,
            limiter,
            pending: Vec::new(),
            dropped: 0,
        }
    }

    fn write(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let line = &bytes[..end];
            if self.pending.is_empty() && line.len() <= MAX_LINE {
                // The common case: a whole line in one write, not copied.
                self.end_line(line);
            } else {
                self.push(line);
                let mut line = mem::take(&mut self.pending);
                self.end_line(&line);
                line.clear();
                self.pending = line;
            }
            bytes = &bytes[end + 1..];
        }
        self.push(bytes);
    }

    /// Appends to the pending line, logging a piece of it whenever it grows
    /// over [`MAX_LINE`].
    fn push(&mut self, mut part: &[u8]) {
        while !part.is_empty() {
            let room = MAX_LINE + 1 - self.pending.len();
            let (now, later) = part.split_at(room.min(part.len()));
            self.pending.extend_from_slice(now);
            part = later;
            if self.pending.len() > MAX_LINE {
                let cut = utf8_cut(&self.pending, MAX_LINE);
                let mut line = mem::take(&mut self.pending);
                self.emit(&line[..cut], true);
                line.drain(..cut);
                self.pending = line;
            }
        }
    }

    fn end_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.emit(line, false);
    }

    fn emit(&mut self, line: &[u8], truncated: bool) {
        if self.limiter.check().is_err() {
            self.dropped = self.dropped.saturating_add(1);
            self.sink.dropped();
            return;
        }
        if self.dropped > 0 {
            self.sink.dropped_summary(mem::take(&mut self.dropped));
        }
        self.sink.line(&String::from_utf8_lossy(line), truncated);
    }
}

impl<S: LineSink, C: Clock> Drop for LineWriter<S, C> {
    /// Logs the partial last line, and what was dropped since the last line
    /// logged, when the instance ends.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = mem::take(&mut self.pending);
            self.end_line(&line);
        }
        if self.dropped > 0 {
            self.sink.dropped_summary(mem::take(&mut self.dropped));
        }
    }
}

/// Where to cut `bytes` (longer than `at`) near `at`: before the UTF-8
/// character `at` falls in, so both pieces stay valid, or at `at` when the
/// bytes there are not UTF-8.
fn utf8_cut(bytes: &[u8], at: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| bytes.get(i).is_some_and(|&b| !is_continuation(b)))
        .filter(|&i| i > 0)
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::task::Waker;
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;
    use http::HeaderValue;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Seen {
        Line(String, bool),
        Dropped,
        Summary(u64),
    }

    #[derive(Clone, Default)]
    struct Recorder(Rc<RefCell<Vec<Seen>>>);

    impl Recorder {
        fn take(&self) -> Vec<Seen> {
            mem::take(&mut *self.0.borrow_mut())
        }

        fn lines(&self) -> Vec<String> {
            self.take()
                .into_iter()
                .map(|seen| match seen {
                    Seen::Line(line, _) => line,
                    other => panic!("not a line: {other:?}"),
                })
                .collect()
        }
    }

    impl LineSink for Recorder {
        fn line(&mut self, line: &str, truncated: bool) {
            self.0.borrow_mut().push(Seen::Line(line.into(), truncated));
        }
        fn dropped(&mut self) {
            self.0.borrow_mut().push(Seen::Dropped);
        }
        fn dropped_summary(&mut self, count: u64) {
            self.0.borrow_mut().push(Seen::Summary(count));
        }
    }

    fn writer(
        quota: Quota,
    ) -> (
        LineWriter<Recorder, FakeRelativeClock>,
        Recorder,
        FakeRelativeClock,
    ) {
        let recorder = Recorder::default();
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
        (
            LineWriter::with_limiter(recorder.clone(), limiter),
            recorder,
            clock,
        )
    }

    fn unlimited() -> (LineWriter<Recorder, FakeRelativeClock>, Recorder) {
        let quota = Quota::per_second(NonZeroU32::new(1000).unwrap())
            .allow_burst(NonZeroU32::new(100_000).unwrap());
        let (writer, recorder, _) = writer(quota);
        (writer, recorder)
    }

    #[test]
    fn lines_split_across_writes_are_joined() {
        let (mut writer, recorder) = unlimited();
        writer.write(b"hel");
        writer.write(b"");
        writer.write(b"lo\nwor");
        assert_eq!(recorder.lines(), ["hello"]);
        writer.write(b"ld\n\nthree\nfour");
        assert_eq!(recorder.lines(), ["world", "", "three"]);
        writer.write(b"\n");
        assert_eq!(recorder.lines(), ["four"]);
    }

    #[test]
    fn crlf_endings_are_stripped() {
        let (mut writer, recorder) = unlimited();
        writer.write(b"one\r\ntwo\r");
        writer.write(b"\nthree\rstill three\n");
        assert_eq!(recorder.lines(), ["one", "two", "three\rstill three"]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced() {
        let (mut writer, recorder) = unlimited();
        writer.write(b"caf\xe9\n");
        assert_eq!(recorder.lines(), ["caf\u{fffd}"]);
    }

    #[test]
    fn a_long_line_is_cut_at_max_line() {
        let (mut writer, recorder) = unlimited();
        writer.write(&[b'x'; 20 * 1024]);
        assert_eq!(
            recorder.take(),
            [Seen::Line("x".repeat(MAX_LINE), true)],
            "the first 16 KiB are logged without waiting for the newline"
        );
        drop(writer);
        assert_eq!(recorder.take(), [Seen::Line("x".repeat(4 * 1024), false)]);

        let (mut writer, recorder) = unlimited();
        let mut line = vec![b'y'; 40_000];
        line.push(b'\n');
        writer.write(&line);
        let lengths: Vec<_> = recorder
            .take()
            .into_iter()
            .map(|seen| match seen {
                Seen::Line(line, truncated) => (line.len(), truncated),
                other => panic!("not a line: {other:?}"),
            })
            .collect();
        assert_eq!(
            lengths,
            [
                (MAX_LINE, true),
                (MAX_LINE, true),
                (40_000 - 2 * MAX_LINE, false)
            ]
        );
    }

    #[test]
    fn a_long_line_is_cut_between_characters() {
        let (mut writer, recorder) = unlimited();
        // One byte then two-byte characters: byte MAX_LINE is inside one.
        let line = format!("a{}\n", "é".repeat(MAX_LINE / 2));
        writer.write(line.as_bytes());
        let seen = recorder.take();
        let [Seen::Line(first, true), Seen::Line(second, false)] = seen.as_slice() else {
            panic!("unexpected {seen:?}");
        };
        assert_eq!(first.len(), MAX_LINE - 1);
        assert_eq!(format!("{first}{second}\n"), line);
    }

    #[test]
    fn lines_over_the_limit_are_dropped_then_summed_up() {
        // A burst of 3, then one line per 100 ms.
        let quota = Quota::per_second(NonZeroU32::new(10).unwrap())
            .allow_burst(NonZeroU32::new(3).unwrap());
        let (mut writer, recorder, clock) = writer(quota);
        writer.write(b"1\n2\n3\n4\n5\n");
        assert_eq!(
            recorder.take(),
            [
                Seen::Line("1".into(), false),
                Seen::Line("2".into(), false),
                Seen::Line("3".into(), false),
                Seen::Dropped,
                Seen::Dropped,
            ]
        );
        clock.advance(Duration::from_millis(100));
        writer.write(b"6\n7\n");
        assert_eq!(
            recorder.take(),
            [
                Seen::Summary(2),
                Seen::Line("6".into(), false),
                Seen::Dropped
            ]
        );
        drop(writer);
        assert_eq!(recorder.take(), [Seen::Summary(1)], "summed up at the end");
    }

    #[test]
    fn a_partial_line_is_logged_when_the_stream_is_dropped() {
        let (mut writer, recorder) = unlimited();
        writer.write(b"done\nno newline\r");
        assert_eq!(recorder.lines(), ["done"]);
        drop(writer);
        assert_eq!(recorder.lines(), ["no newline"]);
    }

    /// What a JSON `tracing` subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        /// Runs `f` with a JSON subscriber writing here.
        fn run(&self, f: impl FnOnce()) {
            let capture = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_writer(move || capture.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, f);
        }

        fn events(&self) -> Vec<serde_json::Value> {
            let output = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            output
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect()
        }
    }

    /// The events of both kinds of handle, as the JSON log format records
    /// them.
    #[test]
    fn lines_are_logged_with_their_instance_and_request() {
        let capture = Capture::default();
        let instance = InstanceInfo::new("greeter".into());
        capture.run(|| {
            let stdout = ComponentOutput::new(instance.clone(), Stream::Stdout);
            let stderr = ComponentOutput::new(instance.clone(), Stream::Stderr);
            let mut p2 = stdout.p2_stream();
            assert!(p2.check_write().unwrap() > 0);
            p2.write(Bytes::from_static(b"hello ")).unwrap();
            p2.flush().unwrap();
            let request = instance.start(RequestContext {
                request_id: HeaderValue::from_static("req-1"),
                trace: None,
            });
            let mut p3 = Box::into_pin(stderr.async_stream());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(
                p3.as_mut().poll_write(&mut cx, b"oops\npartial"),
                Poll::Ready(Ok(12))
            ));
            p2.write(Bytes::from_static(b"world\n")).unwrap();
            drop(request);
            drop(stderr);
            // The stream stays open while the guest holds a handle on it.
            let logged = capture
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            assert_eq!(logged, 2);
            drop(p3);
        });

        let events = capture.events();
        let fields: Vec<_> = events
            .iter()
            .map(|event| {
                assert_eq!(event["target"], TARGET);
                assert_eq!(event["level"], "INFO");
                let fields = &event["fields"];
                assert_eq!(fields["component"], "greeter");
                assert_eq!(fields["instance"], instance.id);
                assert!(fields.get("truncated").is_none());
                (
                    fields["stream"].as_str().unwrap(),
                    fields["message"].as_str().unwrap(),
                    fields.get("request_id").and_then(|id| id.as_str()),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("stderr", "oops", Some("req-1")),
                ("stdout", "hello world", Some("req-1")),
                ("stderr", "partial", None),
            ]
        );
    }

    /// A chatty component, on the real clock and the real counter.
    #[test]
    fn a_chatty_component_is_limited_counted_and_summed_up() {
        let capture = Capture::default();
        let instance = InstanceInfo::new("chatty".into());
        let counter = Metrics::global()
            .component_output_lines_dropped
            .with_label_values(&["chatty"]);
        let before = counter.get();
        capture.run(|| {
            let stdout = ComponentOutput::new(instance.clone(), Stream::Stdout);
            let mut p2 = stdout.p2_stream();
            for i in 0..300 {
                p2.write(Bytes::from(format!("line {i}\n"))).unwrap();
            }
            // Long enough for the limiter to let a line through again.
            std::thread::sleep(Duration::from_millis(50));
            p2.write(Bytes::from_static(b"after\n")).unwrap();
        });

        let events = capture.events();
        let messages: Vec<_> = events
            .iter()
            .map(|event| event["fields"]["message"].as_str().unwrap())
            .collect();
        let [.., summary, after] = events.as_slice() else {
            panic!("too few events: {messages:?}");
        };
        assert_eq!(after["fields"]["message"], "after");
        assert_eq!(summary["level"], "WARN");
        let dropped = summary["fields"]["dropped"].as_u64().unwrap();
        assert!(dropped >= 1, "{messages:?}");
        assert_eq!(
            summary["fields"]["message"],
            format!("component output over its rate limit: {dropped} lines dropped")
        );
        assert_eq!(counter.get() - before, dropped);
        let logged = events.len() as u64 - 2;
        assert!(logged >= LINE_BURST.get().into(), "{logged} lines logged");
        assert_eq!(logged + dropped, 300);
    }
}
