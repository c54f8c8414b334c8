//! Running a plan: N connection tasks, each its own keep-alive connection,
//! sending in a closed loop (next request when the answer is in) or on an
//! open-loop schedule; each records into a histogram of its own, merged at
//! the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::client::{Connection, Outcome, Target};
use super::report::{Errors, Latency, Report, new_histogram};
use super::schedule::Schedule;

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// `connections` connections, each sending its next request as soon as
    /// the previous answer is read.
    Closed { connections: usize },
    /// `rate` requests a second on a fixed schedule, at most `connections`
    /// in flight; latency counts from each request's due time.
    Open { rate: f64, connections: usize },
}

impl Load {
    pub fn connections(&self) -> usize {
        match *self {
            Load::Closed { connections } | Load::Open { connections, .. } => connections,
        }
    }
}

/// One run against one target.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub load: Load,
    /// How long requests are recorded.
    pub duration: Duration,
    /// How long the same load runs before, unrecorded (connections open,
    /// caches and instances warm up).
    pub warmup: Duration,
    /// How long a request may take: from its send in a closed loop, from
    /// its due time in an open loop.
    pub timeout: Duration,
}

/// Counters a caller can read while a run goes on (for a progress bar);
/// warm-up included.
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

/// What one connection task saw in the measured window.
struct Tally {
    histogram: Histogram<u64>,
    requests: u64,
    errors: Errors,
    statuses: BTreeMap<u16, u64>,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            histogram: new_histogram(),
            requests: 0,
            errors: Errors::default(),
            statuses: BTreeMap::new(),
            first_error: None,
            last_done: None,
        }
    }

    /// Counts a request that started (or was due) at `start`.
    fn record(&mut self, outcome: Outcome, start: Instant, done: Instant) {
        self.requests += 1;
        self.last_done = Some(done);
        let error = match outcome {
            Outcome::Answered(status) => {
                let micros = done.saturating_duration_since(start).as_micros();
                self.histogram
                    .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
                *self.statuses.entry(status.as_u16()).or_default() += 1;
                if status.is_success() || status.is_redirection() {
                    return;
                }
                self.errors.status += 1;
                format!("status {status}")
            }
            Outcome::Connect(message) => {
                self.errors.connect += 1;
                message
            }
            Outcome::Io(message) => {
                self.errors.io += 1;
                message
            }
            Outcome::Timeout => {
                self.errors.timeout += 1;
                "timed out".to_string()
            }
        };
        self.errors.total += 1;
        self.first_error.get_or_insert(error);
    }

    fn merge(&mut self, other: Tally) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.requests += other.requests;
        let (a, b) = (&mut self.errors, other.errors);
        a.total += b.total;
        a.connect += b.connect;
        a.io += b.io;
        a.timeout += b.timeout;
        a.status += b.status;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last_done = self.last_done.max(other.last_done);
    }
}

/// The times of a run, fixed when it starts.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    /// Warm-up ends and recording begins.
    measured_from: Instant,
    end: Instant,
}

/// Runs `plan` and reports its measured window. Failures are counted in
/// the report, never returned: a run against a dead target reports every
/// request as a connect error. `live` counts as the run goes.
pub async fn measure(plan: &Plan, live: &Arc<Live>) -> Report {
    let start = Instant::now();
    let clock = Clock {
        start,
        measured_from: start + plan.warmup,
        end: start + plan.warmup + plan.duration,
    };
    let shared = Arc::new(plan.clone());
    let next_ticket = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.load.connections() {
        let (plan, next_ticket, live) = (shared.clone(), next_ticket.clone(), live.clone());
        tasks.spawn(async move {
            match plan.load {
                Load::Closed { .. } => closed_loop(&plan, clock, &live).await,
                Load::Open { rate, .. } => {
                    let schedule = Schedule::new(rate);
                    open_loop(&plan, schedule, &next_ticket, clock, &live).await
                }
            }
        });
    }
    let mut tally = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        // A connection task does not panic on the network's input; if one
        // did anyway, the others' figures still stand.
        if let Ok(part) = joined {
            tally.merge(part);
        }
    }
    report(plan, clock, tally)
}

/// Sends request after request on one connection until the run ends.
async fn closed_loop(plan: &Plan, clock: Clock, live: &Live) -> Tally {
    let mut connection = Connection::new(&plan.target);
    let mut tally = Tally::new();
    loop {
        let sent = Instant::now();
        if sent >= clock.end {
            return tally;
        }
        let outcome = connection.send(sent + plan.timeout).await;
        let done = Instant::now();
        let failed = count_live(live, &outcome);
        if sent >= clock.measured_from {
            tally.record(outcome, sent, done);
        }
        if failed {
            pause_after_failure(clock.end).await;
        }
    }
}

/// Takes the next due request of the schedule, sends it at its due time
/// (at once if it is late), until every request due before the end is
/// done. All connections share the schedule: a free one takes the next
/// due request, so a stalled connection delays only what it holds, and a
/// stalled server delays everything, as a real client population would see.
async fn open_loop(
    plan: &Plan,
    schedule: Schedule,
    next_ticket: &AtomicU64,
    clock: Clock,
    live: &Live,
) -> Tally {
    let warmup_tickets = schedule.count_within(plan.warmup);
    let tickets = schedule.count_within(plan.warmup + plan.duration);
    let mut connection = Connection::new(&plan.target);
    let mut tally = Tally::new();
    loop {
        let ticket = next_ticket.fetch_add(1, Ordering::Relaxed);
        if ticket >= tickets {
            return tally;
        }
        let due = clock.start + schedule.due(ticket);
        tokio::time::sleep_until(due).await;
        // The timeout counts from the due time too: a request that could
        // not even be sent in time has already failed.
        let deadline = due + plan.timeout;
        let outcome = if Instant::now() >= deadline {
            Outcome::Timeout
        } else {
            connection.send(deadline).await
        };
        let done = Instant::now();
        let failed = count_live(live, &outcome);
        if ticket >= warmup_tickets {
            tally.record(outcome, due, done);
        }
        if failed {
            pause_after_failure(clock.end).await;
        }
    }
}

/// Counts a request in the live counters; true if it failed without an
/// answer (a connect or I/O error, a timeout).
fn count_live(live: &Live, outcome: &Outcome) -> bool {
    live.requests.fetch_add(1, Ordering::Relaxed);
    let failed = match outcome {
        Outcome::Answered(status) => !(status.is_success() || status.is_redirection()),
        _ => true,
    };
    if failed {
        live.errors.fetch_add(1, Ordering::Relaxed);
    }
    !matches!(outcome, Outcome::Answered(_))
}

/// After a connection failure the connection waits a little before the
/// next try, so a dead target is not hammered with connects in a hot loop
/// (and the error count stays a count of attempts that mean something).
async fn pause_after_failure(end: Instant) {
    let pause = Instant::now() + Duration::from_millis(10);
    tokio::time::sleep_until(pause.min(end)).await;
}

fn report(plan: &Plan, clock: Clock, tally: Tally) -> Report {
    // Requests in flight at the end are waited for and counted, so the
    // window stretches to the last answer.
    let window_end = tally.last_done.unwrap_or(clock.end).max(clock.end);
    let elapsed = window_end.duration_since(clock.measured_from).as_secs_f64();
    let answered: u64 = tally.statuses.values().sum();
    let (mode, rate) = match plan.load {
        Load::Closed { .. } => ("closed", None),
        Load::Open { rate, .. } => ("open", Some(rate)),
    };
    Report {
        url: plan.target.url.clone(),
        method: plan.target.method.to_string(),
        mode: mode.to_string(),
        connections: plan.load.connections(),
        rate,
        elapsed_s: elapsed,
        requests: tally.requests,
        answered,
        throughput: if elapsed > 0.0 {
            answered as f64 / elapsed
        } else {
            0.0
        },
        errors: tally.errors,
        statuses: tally.statuses,
        latency_us: Latency::from_histogram(&tally.histogram),
        first_error: tally.first_error,
    }
}
