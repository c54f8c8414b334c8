//! Progress for work that takes seconds (`nexa build`, compiling components
//! at start-up): an indicatif bar when stderr is a terminal, plain lines
//! elsewhere (CI logs and scripts read those). While a bar is on screen the
//! log writer prints through [`write_stderr`], above the bar, so a log line
//! never tears it.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar on screen now, if any (one at a time: these run one after another).
static ON_SCREEN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Whether the steps of a [`Progress`] are also printed as lines when no bar
/// can be drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Print each step (a build: its lines are the only trace of it).
    Print,
    /// Say nothing (start-up compiles: the log already records each one).
    Quiet,
}

/// A counted task of `len` steps.
pub struct Progress {
    bar: ProgressBar,
    lines: Lines,
}

impl Progress {
    /// A bar titled `title` on a terminal's stderr; hidden otherwise.
    pub fn new(len: u64, title: &'static str, lines: Lines) -> Self {
        let target = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::drawn_to(target, len, title, lines)
    }

    /// Never drawn: only `lines` (a rebuild inside a serving host).
    pub fn plain(lines: Lines) -> Self {
        Self::drawn_to(ProgressDrawTarget::hidden(), 0, "", lines)
    }

    fn drawn_to(target: ProgressDrawTarget, len: u64, title: &'static str, lines: Lines) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), target)
            .with_prefix(title)
            .with_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:20}] {pos}/{len} {wide_msg} {elapsed}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(100));
            *lock() = Some(bar.clone());
        }
        Self { bar, lines }
    }

    /// Starts the next step, described by `message`.
    pub fn start(&self, message: impl Into<Cow<'static, str>>) {
        let message = message.into();
        if self.bar.is_hidden() {
            if self.lines == Lines::Print {
                eprintln!("{message}");
            }
        } else {
            self.bar.set_message(message);
        }
    }

    /// A line to keep on screen (a step's result, a child process's output).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.bar.is_hidden() {
            if self.lines == Lines::Print {
                eprintln!("{}", line.as_ref());
            }
        } else {
            self.bar.println(line);
        }
    }

    /// The current step is done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_hidden() {
            lock().take();
            self.bar.finish_and_clear();
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    ON_SCREEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `bytes` to stderr, above the bar when one is on screen.
pub fn write_stderr(bytes: &[u8]) {
    let write = || {
        let mut out = std::io::stderr().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    };
    let bar = lock().clone();
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}
