//! `nexa logs`: the host's JSON log (`<state-dir>/logs/nexa.log` and the
//! files it was rotated to), filtered by component, level, request id, trace
//! id and time; a compact line per event for people, or the lines as the host
//! wrote them (`--json`). `--follow` keeps printing what the host appends,
//! across rotation and truncation.
//!
//! Following polls: one `stat` and one read every [`POLL_EVERY`]. The host
//! writes its log in batches every 50 ms anyway, so a file-system watcher
//! (inotify through `notify`) would show lines barely sooner, and it would
//! still need the `stat` to tell a rotation from an append; polling also
//! works where inotify does not reach (NFS, some container mounts).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::AppArgs;
use crate::telemetry::logs::{LOG_FILE_KEEP, LogFile};

/// How often `--follow` looks for new lines, a rotation or a truncation.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// Lines printed first when neither `--lines` nor `--since` says.
const DEFAULT_LINES: usize = 50;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub app: AppArgs,
    /// Read this log file (and its rotated PATH.1 … PATH.4) instead of the
    /// state directory's logs/nexa.log.
    #[arg(long, value_name = "PATH", conflicts_with = "state_dir")]
    pub file: Option<PathBuf>,
    /// Keep printing matching lines as the host writes them, across
    /// rotation and truncation, until interrupted (as `tail -F`; `-f` is
    /// `--from`).
    #[arg(short = 'F', long)]
    pub follow: bool,
    /// Print the last N matching lines first (0: none); rotated files are
    /// read when N needs them. Default: 50, or all of them with --since.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,
    /// Only lines whose `component` field is this component id.
    #[arg(long, value_name = "ID")]
    pub component: Option<String>,
    /// Only lines at this level or above (`warn` shows warn and error).
    #[arg(long, value_enum, ignore_case = true)]
    pub level: Option<Level>,
    /// Only the lines of this request (the `request_id` field, which
    /// responses carry as `x-request-id`).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Only the lines of this trace (the `trace_id` field, 32 hex digits).
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// Only lines since then: a duration ago (`90s`, `10m`, `2h 30m`) or an
    /// RFC 3339 time (`2026-12-03T07:00:00Z`).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Print the matching lines exactly as the host wrote them (JSON lines).
    #[arg(long)]
    pub json: bool,
}

/// A log level, least severe first.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The `level` field as the host writes it (`INFO`), in any case.
    fn of_line(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// `--since`: now minus a duration, or a point in time.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
        return Ok(Utc::now() - ago);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            format!("{text:?} is neither a duration (10m, 2h 30m) nor an RFC 3339 time (2026-12-03T07:00:00Z)")
        })
}

/// One line of the log: the JSON object it holds, when it is one.
struct LogLine {
    raw: String,
    fields: Option<Fields>,
}

impl LogLine {
    fn parse(bytes: &[u8]) -> Self {
        let raw = String::from_utf8_lossy(bytes)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        let fields = serde_json::from_str(&raw).ok();
        Self { raw, fields }
    }
}

/// A JSON object's fields in the order the host wrote them (serde_json's map
/// sorts them, and the host puts the request's ids first for a reason).
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
}

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

/// Which lines to show.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub component: Option<String>,
    pub level: Option<Level>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.component.is_none()
            && self.level.is_none()
            && self.request_id.is_none()
            && self.trace_id.is_none()
            && self.since.is_none()
    }

    /// A line that is not JSON has no fields to match: it is shown (raw)
    /// only when nothing filters.
    fn matches(&self, line: &LogLine) -> bool {
        let Some(fields) = &line.fields else {
            return self.is_empty();
        };
        let equals = |wanted: &Option<String>, name: &str| {
            wanted
                .as_deref()
                .is_none_or(|wanted| fields.text(name) == Some(wanted))
        };
        let level_ok = self.level.is_none_or(|minimum| {
            fields
                .text("level")
                .and_then(Level::of_line)
                .is_some_and(|level| level >= minimum)
        });
        let trace_ok = self.trace_id.as_deref().is_none_or(|wanted| {
            fields
                .text("trace_id")
                .is_some_and(|id| id.eq_ignore_ascii_case(wanted))
        });
        let since_ok = self.since.is_none_or(|since| {
            fields
                .text("timestamp")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|time| time >= since)
        });
        equals(&self.component, "component")
            && equals(&self.request_id, "request_id")
            && level_ok
            && trace_ok
            && since_ok
    }
}

/// How matching lines are printed.
#[derive(Clone, Copy)]
enum Style {
    /// As the host wrote them.
    Json,
    /// One compact line per event.
    Human,
}

impl Style {
    fn render(self, line: &LogLine) -> String {
        match (self, &line.fields) {
            (Style::Human, Some(fields)) => human(fields),
            _ => line.raw.clone(),
        }
    }
}

/// `07:11:28.123 INFO  nexa::access [req-1] request method=GET status=200`:
/// time (UTC), level (coloured on a terminal), target, request id, message,
/// then the other fields in the order the host wrote them.
fn human(fields: &Fields) -> String {
    const SHOWN_FIRST: &[&str] = &["timestamp", "level", "target", "request_id", "message"];
    let mut out = String::new();
    if let Some(time) = fields.text("timestamp") {
        match DateTime::parse_from_rfc3339(time) {
            Ok(time) => out.push_str(
                &time
                    .with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M:%S%.3f")
                    .to_string(),
            ),
            Err(_) => out.push_str(time),
        }
        out.push(' ');
    }
    let level = fields.text("level").unwrap_or("-");
    let padded = format!("{level:<5}");
    let coloured = match Level::of_line(level) {
        Some(Level::Error) => console::style(padded).red().bold(),
        Some(Level::Warn) => console::style(padded).yellow(),
        Some(Level::Info) => console::style(padded).green(),
        Some(Level::Debug) => console::style(padded).blue(),
        Some(Level::Trace) | None => console::style(padded).dim(),
    };
    out.push_str(&coloured.to_string());
    if let Some(target) = fields.text("target") {
        out.push(' ');
        out.push_str(&console::style(target).dim().to_string());
    }
    if let Some(id) = fields.get("request_id") {
        out.push_str(&format!(" [{}]", plain(id)));
    }
    if let Some(message) = fields.get("message") {
        out.push(' ');
        out.push_str(&plain(message));
    }
    for (name, value) in &fields.0 {
        if !SHOWN_FIRST.contains(&name.as_str()) {
            out.push_str(&format!(" {name}={}", quoted_if_needed(value)));
        }
    }
    out
}

/// A string as itself; anything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A field value for `key=value`: quoted when it would not read as one word.
fn quoted_if_needed(value: &Value) -> String {
    match value {
        Value::String(text)
            if !text.is_empty()
                && !text
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '=') =>
        {
            text.clone()
        }
        other => other.to_string(),
    }
}

/// `nexa logs`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let path = match &args.file {
        Some(file) => file.clone(),
        None => LogFile::path_in(&args.app.state_dir()?),
    };
    let filter = Filter {
        component: args.component.clone(),
        level: args.level,
        request_id: args.request_id.clone(),
        trace_id: args.trace_id.clone(),
        since: args.since,
    };
    let wanted = args.lines.unwrap_or(if args.since.is_some() {
        usize::MAX
    } else {
        DEFAULT_LINES
    });
    let style = if args.json { Style::Json } else { Style::Human };
    let follow = args.follow;
    tokio::task::spawn_blocking(move || show(&path, &filter, wanted, style, follow)).await?
}

/// Prints the last `wanted` matching lines, then (following) what comes.
fn show(
    path: &Path,
    filter: &Filter,
    wanted: usize,
    style: Style,
    follow: bool,
) -> anyhow::Result<()> {
    let mut out = Printer::new(style);
    let current = match File::open(path) {
        Ok(file) => Some(file),
        Err(error) if error.kind() == io::ErrorKind::NotFound && follow => None,
        Err(error) if error.kind() == io::ErrorKind::NotFound => anyhow::bail!(
            "no log at {}: has `nexa up` run with this state directory? (choose it with --state-dir or -f, or name the file with --file)",
            path.display()
        ),
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", path.display()));
        }
    };
    let mut tail = Tail::new(path, current);
    let spinner = super::spinner(format!("reading {}", path.display()));
    let history = tail.history(filter, wanted);
    spinner.finish_and_clear();
    for line in history? {
        if !out.print(&line)? {
            return Ok(());
        }
    }
    if !follow {
        return Ok(());
    }
    if tail.file.is_none() {
        eprintln!("waiting for {} to appear…", path.display());
    }
    loop {
        let mut lines = tail.read_new()?;
        if lines.is_empty() {
            std::thread::sleep(POLL_EVERY);
            lines = tail.notice_rotation_or_truncation()?;
        }
        for line in lines {
            if filter.matches(&line) && !out.print(&line)? {
                return Ok(());
            }
        }
    }
}

/// Writes lines to stdout; `Ok(false)` once the reader has gone (a closed
/// pipe, as under `| head`), which ends the command quietly.
struct Printer {
    style: Style,
    stdout: io::Stdout,
}

impl Printer {
    fn new(style: Style) -> Self {
        Self {
            style,
            stdout: io::stdout(),
        }
    }

    fn print(&mut self, line: &LogLine) -> anyhow::Result<bool> {
        let mut out = self.stdout.lock();
        match writeln!(out, "{}", self.style.render(line)).and_then(|()| out.flush()) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(error) => Err(error).context("writing to stdout"),
        }
    }
}

/// The log file being read, from where the last read stopped.
struct Tail {
    path: PathBuf,
    file: Option<File>,
    /// Which file `file` is, to notice when `path` names another one.
    identity: Option<FileIdentity>,
    /// Bytes of `file` consumed so far.
    position: u64,
    /// The start of a line whose end is not written yet.
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: &Path, file: Option<File>) -> Self {
        let identity = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .and_then(|m| identity(&m));
        Self {
            path: path.to_path_buf(),
            file,
            identity,
            position: 0,
            partial: Vec::new(),
        }
    }

    /// The last `wanted` matching lines, oldest first: from the current file
    /// (read to its end, so following goes on from there, with nothing lost
    /// or repeated), then as many rotated files, newest first, as it takes.
    fn history(&mut self, filter: &Filter, wanted: usize) -> anyhow::Result<Vec<LogLine>> {
        let mut kept = VecDeque::new();
        let current: Vec<LogLine> = self.read_new()?;
        keep_last(&mut kept, current, filter, wanted);
        for n in 1..=LOG_FILE_KEEP {
            if kept.len() >= wanted {
                break;
            }
            let rotated = rotated_path(&self.path, n);
            let file = match File::open(&rotated) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => break,
                Err(error) => {
                    return Err(error).with_context(|| format!("reading {}", rotated.display()));
                }
            };
            let lines = read_lines(BufReader::new(file))
                .with_context(|| format!("reading {}", rotated.display()))?;
            keep_last(&mut kept, lines, filter, wanted);
        }
        Ok(kept.into())
    }

    /// The complete lines appended since the last read.
    fn read_new(&mut self) -> anyhow::Result<Vec<LogLine>> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        let mut lines = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(error).with_context(|| format!("reading {}", self.path.display()));
                }
            };
            self.position += n as u64;
            self.partial.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(end) = self.partial[start..].iter().position(|b| *b == b'\n') {
                lines.push(LogLine::parse(&self.partial[start..start + end]));
                start += end + 1;
            }
            self.partial.drain(..start);
        }
        Ok(lines)
    }

    /// Switches to the new file when the host has rotated the log (renamed
    /// it to `.1` and started another), returning what was written to the
    /// old one since the last read; starts over when the file was truncated.
    fn notice_rotation_or_truncation(&mut self) -> anyhow::Result<Vec<LogLine>> {
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            // Between the rename and the new file: keep the old one for now.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", self.path.display()));
            }
        };
        let replaced = self.file.is_none() || identity(&metadata) != self.identity;
        if replaced {
            let mut rest = self.read_new()?;
            if !self.partial.is_empty() {
                rest.push(LogLine::parse(&std::mem::take(&mut self.partial)));
            }
            let file = File::open(&self.path)
                .with_context(|| format!("reading {}", self.path.display()))?;
            self.identity = file.metadata().ok().and_then(|m| identity(&m));
            self.file = Some(file);
            self.position = 0;
            return Ok(rest);
        }
        if metadata.len() < self.position {
            if let Some(file) = self.file.as_mut() {
                file.seek(SeekFrom::Start(0))
                    .with_context(|| format!("reading {}", self.path.display()))?;
            }
            self.position = 0;
            self.partial.clear();
        }
        Ok(Vec::new())
    }
}

/// Adds the last of `lines` that match to the front of `kept`, up to `wanted` in all.
fn keep_last(kept: &mut VecDeque<LogLine>, lines: Vec<LogLine>, filter: &Filter, wanted: usize) {
    for line in lines.into_iter().rev().filter(|l| filter.matches(l)) {
        if kept.len() >= wanted {
            break;
        }
        kept.push_front(line);
    }
}

/// Every line of a rotated file (whole: the host wrote it out before renaming).
fn read_lines(mut reader: impl BufRead) -> io::Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    let mut bytes = Vec::new();
    while reader.read_until(b'\n', &mut bytes)? > 0 {
        lines.push(LogLine::parse(&bytes));
        bytes.clear();
    }
    Ok(lines)
}

/// `nexa.log` → `nexa.log.1`: where `file-rotate` (the host's rotator) moves
/// the log at its `n`th rotation back.
fn rotated_path(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Tells files apart across renames: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity(u64, u64);

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    Some(FileIdentity(metadata.dev(), metadata.ino()))
}

/// Elsewhere only truncation is noticed.
#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> Option<FileIdentity> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = r#"{"timestamp":"2026-12-03T07:11:28.123456Z","level":"INFO","target":"nexa::access","request_id":"r-1","trace_id":"0AF7651916CD43DD8448EB211C80319C","span_id":"b7ad6b7169203331","message":"request","method":"GET","path":"/items/","component":"items","status":200,"duration_ms":1.5}"#;
    const WARNING: &str = r#"{"timestamp":"2026-12-03T07:12:00Z","level":"WARN","target":"nexa_host::edge","message":"slow client","client":"127.0.0.1:5000"}"#;

    fn line(text: &str) -> LogLine {
        LogLine::parse(text.as_bytes())
    }

    #[test]
    fn filters_match_fields_levels_and_times() {
        let (access, warning, raw) = (line(ACCESS), line(WARNING), line("not json {"));
        let all = Filter::default();
        assert!(all.matches(&access) && all.matches(&warning) && all.matches(&raw));

        let items = Filter {
            component: Some("items".into()),
            ..Filter::default()
        };
        assert!(items.matches(&access) && !items.matches(&warning) && !items.matches(&raw));

        let warn = Filter {
            level: Some(Level::Warn),
            ..Filter::default()
        };
        assert!(!warn.matches(&access) && warn.matches(&warning));
        let info = Filter {
            level: Some(Level::Info),
            ..Filter::default()
        };
        assert!(info.matches(&access) && info.matches(&warning));

        let request = Filter {
            request_id: Some("r-1".into()),
            ..Filter::default()
        };
        assert!(request.matches(&access) && !request.matches(&warning));
        // Trace ids are hex: either case matches.
        let trace = Filter {
            trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
            ..Filter::default()
        };
        assert!(trace.matches(&access) && !trace.matches(&warning));

        let since = Filter {
            since: Some(parse_since("2026-12-03T07:11:30Z").unwrap()),
            ..Filter::default()
        };
        assert!(!since.matches(&access) && since.matches(&warning));
    }

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let ten_minutes_ago = parse_since("10m").unwrap();
        let expected = Utc::now() - chrono::Duration::minutes(10);
        assert!((ten_minutes_ago - expected).num_seconds().abs() <= 1);
        assert_eq!(
            parse_since("2026-12-03T08:00:00+01:00").unwrap(),
            parse_since("2026-12-03T07:00:00Z").unwrap()
        );
        let error = parse_since("yesterday").unwrap_err();
        assert!(error.contains("RFC 3339"), "{error}");
    }

    #[test]
    fn a_human_line_keeps_the_hosts_field_order() {
        console::set_colors_enabled(false);
        assert_eq!(
            Style::Human.render(&line(ACCESS)),
            "2026-12-03 07:11:28.123 INFO  nexa::access [r-1] request \
             trace_id=0AF7651916CD43DD8448EB211C80319C span_id=b7ad6b7169203331 \
             method=GET path=/items/ component=items status=200 duration_ms=1.5"
        );
        assert_eq!(
            Style::Human.render(&line(
                r#"{"level":"ERROR","message":"boom","detail":"two words","empty":""}"#
            )),
            r#"ERROR boom detail="two words" empty="""#
        );
        // Not JSON, or JSON but no object: shown as it is.
        assert_eq!(
            Style::Human.render(&line("Serving http://x")),
            "Serving http://x"
        );
        assert_eq!(Style::Human.render(&line("[1,2]")), "[1,2]");
        assert_eq!(Style::Json.render(&line(ACCESS)), ACCESS);
    }

    #[test]
    fn levels_parse_in_any_case() {
        assert_eq!(Level::of_line("WARN"), Some(Level::Warn));
        assert_eq!(Level::of_line("error"), Some(Level::Error));
        assert_eq!(Level::of_line("loud"), None);
        assert!(Level::Error > Level::Warn && Level::Info > Level::Debug);
    }

    fn write(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
        range
            .map(|n| format!(r#"{{"level":"INFO","message":"line {n}"}}"#))
            .collect()
    }

    fn messages(lines: &[LogLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                l.fields
                    .as_ref()
                    .unwrap()
                    .text("message")
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn history_reaches_into_rotated_files_only_as_far_as_needed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nexa.log");
        write(&rotated_path(&path, 2), &numbered(0..3));
        write(&rotated_path(&path, 1), &numbered(3..6));
        write(&path, &numbered(6..8));
        let history = |wanted| {
            let mut tail = Tail::new(&path, Some(File::open(&path).unwrap()));
            messages(&tail.history(&Filter::default(), wanted).unwrap())
        };
        assert_eq!(history(2), ["line 6", "line 7"]);
        assert_eq!(history(4), ["line 4", "line 5", "line 6", "line 7"]);
        assert_eq!(history(100).len(), 8);
        assert!(history(0).is_empty());
    }

    #[test]
    fn a_tail_follows_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nexa.log");
        write(&path, &numbered(0..2));
        let mut tail = Tail::new(&path, Some(File::open(&path).unwrap()));
        assert_eq!(tail.history(&Filter::default(), 10).unwrap().len(), 2);

        // An append, the last line not finished yet.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(file, "{}\n{{\"message\":\"hal", numbered(2..3)[0]).unwrap();
        assert_eq!(messages(&tail.read_new().unwrap()), ["line 2"]);
        writeln!(file, "f\"}}").unwrap();
        assert_eq!(messages(&tail.read_new().unwrap()), ["half"]);

        // Rotation: a last line lands in the old file, then it is renamed
        // and a new one started.
        writeln!(file, "{}", numbered(3..4)[0]).unwrap();
        drop(file);
        std::fs::rename(&path, rotated_path(&path, 1)).unwrap();
        // Between the rename and the new file the old one is kept.
        assert!(tail.notice_rotation_or_truncation().unwrap().is_empty());
        write(&path, &numbered(4..5));
        let mut seen = messages(&tail.read_new().unwrap());
        seen.extend(messages(&tail.notice_rotation_or_truncation().unwrap()));
        seen.extend(messages(&tail.read_new().unwrap()));
        assert_eq!(seen, ["line 3", "line 4"]);

        // Truncation: start over from the top.
        std::fs::write(&path, "").unwrap();
        assert!(tail.notice_rotation_or_truncation().unwrap().is_empty());
        write(&path, &numbered(5..6));
        assert_eq!(messages(&tail.read_new().unwrap()), ["line 5"]);
    }
}
