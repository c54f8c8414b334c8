//! What a run measured: counts, errors by kind, statuses and latency
//! percentiles; and the comparison of two targets over several rounds.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, from 1 µs up to an hour, with 3
/// significant digits (a 0.1 % bucket error at any magnitude).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The outcome of one measured run (warm-up excluded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub url: String,
    pub method: String,
    /// `closed` (each connection sends when its answer is in) or `open`
    /// (a fixed rate).
    pub mode: String,
    pub connections: usize,
    /// Requests per second asked for (open loop only).
    pub rate: Option<f64>,
    /// The measured window, in seconds: the `--duration`, plus the time
    /// the last request in flight took to come back.
    pub elapsed_s: f64,
    /// Requests attempted in the measured window, failed ones included.
    pub requests: u64,
    /// Requests that got an HTTP answer, whatever its status.
    pub answered: u64,
    /// Answered requests per second.
    pub throughput: f64,
    pub errors: Errors,
    /// How many answers had each status.
    pub statuses: BTreeMap<u16, u64>,
    /// Percentiles of the answered requests' latency, in microseconds.
    pub latency_us: Latency,
    /// The first failure seen, in words (`connection refused to 127.0.0.1:1`).
    pub first_error: Option<String>,
}

/// Failed requests by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    pub total: u64,
    /// The TCP connection could not be opened.
    pub connect: u64,
    /// The connection broke while sending or reading.
    pub io: u64,
    /// No complete answer within `--timeout`.
    pub timeout: u64,
    /// Answers whose status is not 2xx or 3xx.
    pub status: u64,
}

impl Errors {
    /// The share of `requests` that failed, 0 when there were none.
    pub fn ratio(&self, requests: u64) -> f64 {
        if requests == 0 {
            0.0
        } else {
            self.total as f64 / requests as f64
        }
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let at = |q: f64| histogram.value_at_quantile(q) as f64;
        Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p99_9: at(0.999),
            max: histogram.max() as f64,
            mean: histogram.mean(),
        }
    }

    /// The percentiles with their names, in order (for tables).
    pub fn named(&self) -> [(&'static str, f64); 5] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p99_9),
            ("max", self.max),
        ]
    }
}

/// A target's figures over the rounds of a comparison: the median of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub throughput: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p99_9_us: f64,
    pub max_us: f64,
}

impl Figures {
    /// The median of each figure over `rounds`.
    pub fn median_of(rounds: &[Report]) -> Self {
        let of = |figure: fn(&Report) -> f64| median(rounds.iter().map(figure).collect());
        Self {
            throughput: of(|r| r.throughput),
            p50_us: of(|r| r.latency_us.p50),
            p90_us: of(|r| r.latency_us.p90),
            p99_us: of(|r| r.latency_us.p99),
            p99_9_us: of(|r| r.latency_us.p99_9),
            max_us: of(|r| r.latency_us.max),
        }
    }

    /// Each of `b`'s figures divided by `a`'s (throughput above 1: B serves
    /// more; latency above 1: B is slower). A figure of A at 0 gives no
    /// ratio (`null` in JSON) rather than infinity.
    pub fn ratio(b: &Self, a: &Self) -> Ratios {
        Ratios {
            throughput: ratio(b.throughput, a.throughput),
            p50: ratio(b.p50_us, a.p50_us),
            p90: ratio(b.p90_us, a.p90_us),
            p99: ratio(b.p99_us, a.p99_us),
            p99_9: ratio(b.p99_9_us, a.p99_9_us),
            max: ratio(b.max_us, a.max_us),
        }
    }
}

/// B/A for each figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    pub throughput: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p99_9: Option<f64>,
    pub max: Option<f64>,
}

/// One target of a comparison: every round's report and the medians.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Side {
    pub url: String,
    pub median: Figures,
    pub rounds: Vec<Report>,
}

impl Side {
    pub fn new(rounds: Vec<Report>) -> Self {
        Self {
            url: rounds.first().map(|r| r.url.clone()).unwrap_or_default(),
            median: Figures::median_of(&rounds),
            rounds,
        }
    }
}

/// Two targets run alternately, A then B, round after round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
    /// B's medians divided by A's.
    pub ratio: Ratios,
}

impl Comparison {
    pub fn new(a: Vec<Report>, b: Vec<Report>) -> Self {
        let (a, b) = (Side::new(a), Side::new(b));
        let ratio = Figures::ratio(&b.median, &a.median);
        Self { a, b, ratio }
    }
}

/// The middle value (the mean of the two middle ones for an even count);
/// 0 for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn ratio(b: f64, a: f64) -> Option<f64> {
    (a > 0.0 && b.is_finite()).then(|| b / a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(throughput: f64, p50: f64) -> Report {
        Report {
            url: "http://a/".into(),
            method: "GET".into(),
            mode: "closed".into(),
            connections: 1,
            rate: None,
            elapsed_s: 1.0,
            requests: 1,
            answered: 1,
            throughput,
            errors: Errors::default(),
            statuses: BTreeMap::new(),
            latency_us: Latency {
                p50,
                ..Latency::default()
            },
            first_error: None,
        }
    }

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0]), 3.0);
        assert_eq!(median(vec![9.0, 1.0, 5.0]), 5.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut histogram = new_histogram();
        for micros in 1..=1000 {
            histogram.record(micros).unwrap();
        }
        let latency = Latency::from_histogram(&histogram);
        assert_eq!(latency.p50, 500.0);
        assert_eq!(latency.p90, 900.0);
        assert_eq!(latency.p99, 990.0);
        assert_eq!(latency.p99_9, 999.0);
        assert_eq!(latency.max, 1000.0);
        assert!((latency.mean - 500.5).abs() < 0.5, "{}", latency.mean);
        // Three significant digits: 123,456 µs is kept to within 0.1 %.
        let mut histogram = new_histogram();
        histogram.record(123_456).unwrap();
        let max = Latency::from_histogram(&histogram).max;
        assert!((max - 123_456.0).abs() / 123_456.0 < 0.001, "{max}");
        assert_eq!(
            Latency::from_histogram(&new_histogram()),
            Latency::default()
        );
    }

    #[test]
    fn a_comparison_divides_b_medians_by_a_medians() {
        let a = vec![
            report(100.0, 10.0),
            report(300.0, 30.0),
            report(200.0, 20.0),
        ];
        let b = vec![report(50.0, 40.0), report(150.0, 60.0), report(100.0, 20.0)];
        let comparison = Comparison::new(a, b);
        assert_eq!(comparison.a.median.throughput, 200.0);
        assert_eq!(comparison.b.median.throughput, 100.0);
        assert_eq!(comparison.ratio.throughput, Some(0.5));
        assert_eq!(comparison.ratio.p50, Some(2.0));
        // A's p90 is 0 in every round: no ratio rather than infinity.
        assert_eq!(comparison.ratio.p90, None);
        assert_eq!(comparison.a.url, "http://a/");
        assert_eq!(comparison.b.rounds.len(), 3);
    }

    #[test]
    fn the_error_ratio_is_a_share_of_the_requests() {
        let errors = Errors {
            total: 5,
            status: 5,
            ..Errors::default()
        };
        assert_eq!(errors.ratio(100), 0.05);
        assert_eq!(Errors::default().ratio(0), 0.0);
    }
}
