//! `nexa logs` reading a real host's log file: filters by request id,
//! component and level return exactly the lines they should; `--follow`
//! prints what is logged after it started, across rotation and truncation.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Host, fixture_host, unique};

fn nexa_logs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nexa"))
        .arg("logs")
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout_lines(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "nexa logs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// GETs `path` with `x-request-id: id`; returns the status.
async fn request(host: &Host, path: &str, id: &str) -> u16 {
    host.client()
        .get(host.url(path))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The log file's lines once its access line for each of `ids` is written
/// (the host writes the file every 50 ms).
async fn file_lines_once_logged(file: &Path, ids: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let logged = |id: &&str| {
            text.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .any(|line| line["target"] == "nexa::access" && line["request_id"] == *id)
        };
        if ids.iter().all(logged) {
            return text.lines().map(str::to_string).collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} lacks an access line of {ids:?}:\n{text}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A line printed with `--json`: the host's JSON, unchanged.
fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// The lines of `all` (the file as read) for which `keep` holds.
fn lines_where(all: &[String], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    all.iter()
        .filter(|line| serde_json::from_str(line).is_ok_and(|v| keep(&v)))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_return_exactly_the_lines_asked_for() {
    let (app, host) = fixture_host("");
    let (printing, ok, trapping, fallback) = (
        unique("print"),
        unique("ok"),
        unique("trap"),
        unique("fallback"),
    );
    assert_eq!(request(&host, "/fixture/print/2", &printing).await, 200);
    assert_eq!(request(&host, "/fixture/ok", &ok).await, 200);
    assert_eq!(request(&host, "/fixture/trap", &trapping).await, 500);
    assert_eq!(request(&host, "/no-such-page", &fallback).await, 404);
    let file = app.path(".spin/logs/nexa.log");
    let all = file_lines_once_logged(&file, &[&printing, &ok, &trapping, &fallback]).await;
    let manifest = app.path("spin.toml");
    let from = ["-f", manifest.to_str().unwrap()];
    let logs = |extra: &[&str]| {
        let mut args = from.to_vec();
        args.extend_from_slice(extra);
        stdout_lines(&nexa_logs(&args))
    };

    // A request id: exactly the file's lines of that request, unchanged.
    let of_request = lines_where(&all, |l| l["request_id"] == printing.as_str());
    assert!(
        of_request.len() >= 4,
        "access + 2 stdout lines + stderr: {of_request:#?}"
    );
    assert_eq!(
        logs(&["--request-id", &printing, "--json", "-n", "1000"]),
        of_request
    );
    let messages: Vec<Value> = of_request
        .iter()
        .map(|l| json(l)["message"].clone())
        .collect();
    assert!(messages.contains(&"fixture line 1".into()), "{messages:?}");

    // A component: its access lines and its output, no other component's.
    let fixture = logs(&["--component", "fixture", "--json", "-n", "1000"]);
    let requests: Vec<Value> = fixture
        .iter()
        .map(|l| json(l)["request_id"].clone())
        .collect();
    for id in [&printing, &ok, &trapping] {
        assert!(
            requests.contains(&id.as_str().into()),
            "{id} missing: {fixture:#?}"
        );
    }
    assert!(
        !requests.contains(&fallback.as_str().into()),
        "{fixture:#?}"
    );
    assert!(fixture.iter().all(|l| json(l)["component"] == "fixture"));
    assert_eq!(fixture, lines_where(&all, |l| l["component"] == "fixture"));

    // A level: the trap's warning (and any other warning or error), never info.
    let warnings = logs(&["--level", "WARN", "--json", "-n", "1000"]);
    assert!(
        warnings
            .iter()
            .any(|l| json(l)["request_id"] == trapping.as_str()
                && json(l)["message"] == "request failed"),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .all(|l| ["WARN", "ERROR"].contains(&json(l)["level"].as_str().unwrap())),
        "{warnings:#?}"
    );
    let trap_warnings = logs(&["--level", "warn", "--request-id", &trapping, "--json"]);
    let expected = lines_where(&all, |l| {
        l["request_id"] == trapping.as_str() && (l["level"] == "WARN" || l["level"] == "ERROR")
    });
    assert!(!expected.is_empty());
    assert_eq!(trap_warnings, expected);
    let of_trap = lines_where(&all, |l| l["request_id"] == trapping.as_str());
    assert!(
        of_trap.len() > expected.len(),
        "the trap's INFO access line is left out"
    );

    // -n: the last N of what matches.
    let last_two = logs(&["--component", "fixture", "--json", "-n", "2"]);
    assert_eq!(last_two, fixture[fixture.len() - 2..]);

    // For people: one compact line, no colour codes when stdout is a pipe.
    let human = logs(&["--request-id", &ok]);
    assert_eq!(human.len(), 1, "{human:#?}");
    assert_eq!(
        lines_where(&all, |l| l["request_id"] == ok.as_str()).len(),
        1
    );
    let line = &human[0];
    assert!(
        line.contains(" INFO  nexa::access [")
            && line.contains(&format!("[{ok}] request "))
            && line.contains("path=/fixture/ok")
            && line.contains("status=200"),
        "{line}"
    );
    assert!(!line.contains('\u{1b}'), "{line:?}");

    // --since: a time after every line leaves nothing; a duration ago, all of them.
    assert!(logs(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        logs(&["--since", "1h", "--request-id", &printing, "--json"]),
        of_request
    );
}

/// A `nexa logs --follow` child whose stdout lines arrive on a channel;
/// killed when dropped.
struct Follower {
    child: Child,
    lines: Receiver<String>,
}

impl Follower {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nexa"))
            .args(["logs", "--follow"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line, within 10 s.
    fn next(&self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("nexa logs --follow printed nothing in 10 s"),
            Err(RecvTimeoutError::Disconnected) => panic!("nexa logs --follow exited"),
        }
    }

    /// Nothing more within `wait`.
    fn assert_quiet(&self, wait: Duration) {
        if let Ok(line) = self.lines.recv_timeout(wait) {
            panic!("unexpected line: {line}");
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_prints_a_request_made_after_it_started() {
    let (app, host) = fixture_host("");
    let state_dir = app.path(".spin");
    let before = unique("before");
    assert_eq!(request(&host, "/fixture/ok", &before).await, 200);
    file_lines_once_logged(&state_dir.join("logs/nexa.log"), &[&before]).await;

    let follower = Follower::start(&[
        "--state-dir",
        state_dir.to_str().unwrap(),
        "--component",
        "fixture",
        "--json",
        "-n",
        "1",
    ]);
    // The last line logged before it started, then what comes.
    assert_eq!(json(&follower.next())["request_id"], before.as_str());
    let after = unique("after");
    assert_eq!(request(&host, "/fixture/ok", &after).await, 200);
    let line = json(&follower.next());
    assert_eq!(line["request_id"], after.as_str());
    assert_eq!(line["target"], "nexa::access");
    // Another component's request is filtered out.
    assert_eq!(request(&host, "/elsewhere", &unique("fallback")).await, 404);
    follower.assert_quiet(Duration::from_millis(600));
}

fn event(message: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-12-03T07:00:00Z","level":"INFO","target":"nexa_host","message":"{message}"}}"#
    )
}

fn append(path: &Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// The host's rotation (nexa.log renamed to nexa.log.1, a new nexa.log
/// begun) and a truncation, done by hand so that they happen at once.
#[test]
fn following_survives_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logs/nexa.log");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    append(&file, &[event("old"), event("last before start")]);
    let follower = Follower::start(&["--file", file.to_str().unwrap(), "-n", "1", "--json"]);
    assert_eq!(follower.next(), event("last before start"));

    append(&file, &[event("appended")]);
    assert_eq!(follower.next(), event("appended"));

    // Rotation: the last lines of the old file are still printed, then the new file's.
    append(&file, &[event("just before rotation")]);
    std::fs::rename(&file, rotated(&file, 1)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&file, &[event("first after rotation")]);
    assert_eq!(follower.next(), event("just before rotation"));
    assert_eq!(follower.next(), event("first after rotation"));
    append(&file, &[event("second after rotation")]);
    assert_eq!(follower.next(), event("second after rotation"));

    // Truncation: read again from the top.
    std::fs::write(&file, "").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    append(&file, &[event("after truncation")]);
    assert_eq!(follower.next(), event("after truncation"));
    follower.assert_quiet(Duration::from_millis(500));
}

#[test]
fn odd_lines_are_shown_raw_and_mistakes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nexa.log");
    // Rotated files are read when -n needs them.
    append(&rotated(&file, 1), &[event("in the rotated file")]);
    let mut text = format!("{}\nnot json at all\n", event("current"));
    text.push_str("{\"truncated\": \n");
    std::fs::write(&file, text.as_bytes()).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"\xff\xfe invalid utf-8\n");
    std::fs::write(&file, bytes).unwrap();

    let path = file.to_str().unwrap();
    let lines = stdout_lines(&nexa_logs(&["--file", path, "--json"]));
    assert_eq!(
        lines,
        [
            event("in the rotated file"),
            event("current"),
            "not json at all".to_string(),
            "{\"truncated\": ".to_string(),
            "\u{fffd}\u{fffd} invalid utf-8".to_string(),
        ]
    );
    let human = stdout_lines(&nexa_logs(&["--file", path, "-n", "4"]));
    assert_eq!(human[0], "2026-12-03 07:00:00.000 INFO  nexa_host current");
    assert_eq!(human[1], "not json at all");
    // A filter cannot match a line without fields.
    let filtered = stdout_lines(&nexa_logs(&["--file", path, "--level", "info"]));
    assert_eq!(
        filtered,
        [
            "2026-12-03 07:00:00.000 INFO  nexa_host in the rotated file",
            "2026-12-03 07:00:00.000 INFO  nexa_host current"
        ]
    );

    let missing = nexa_logs(&["--state-dir", dir.path().join("nowhere").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no log at") && stderr.contains("--state-dir"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    for usage in [
        &["--file", path, "--level", "loud"][..],
        &["--file", path, "--since", "yesterday"],
        &["--file", path, "--state-dir", "x"],
        &["--file", path, "-n", "-3"],
    ] {
        let output = nexa_logs(usage);
        assert_eq!(output.status.code(), Some(2), "{usage:?}: {output:?}");
    }
}
