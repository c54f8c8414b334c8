//! The open-loop schedule: request `i` is due `i / rate` seconds after the
//! start, whatever happened to the requests before it. Latency is measured
//! from that due time, so a server that stalls delays every request queued
//! behind the stall and the percentiles show it (no coordinated omission).

use std::time::Duration;

/// Fixed-rate send times, as offsets from the start of a run.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
}

impl Schedule {
    /// `rate` requests per second; it must be finite and above zero
    /// (the CLI checks; a bad rate here schedules nothing).
    pub fn new(rate: f64) -> Self {
        Self { rate }
    }

    /// When request `ticket` is due, after the start.
    pub fn due(&self, ticket: u64) -> Duration {
        Duration::from_secs_f64(ticket as f64 / self.rate)
    }

    /// How many requests fall due before `span` has passed: the tickets
    /// `0..count` have `due(ticket) < span`.
    pub fn count_within(&self, span: Duration) -> u64 {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return 0;
        }
        // The smallest ticket due at or after `span`, corrected for the
        // rounding of the float product at exact multiples.
        let mut count = (span.as_secs_f64() * self.rate).ceil() as u64;
        while count > 0 && self.due(count - 1) >= span {
            count -= 1;
        }
        while self.due(count) < span {
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_at_a_fixed_interval() {
        let schedule = Schedule::new(200.0);
        assert_eq!(schedule.due(0), Duration::ZERO);
        assert_eq!(schedule.due(1), Duration::from_millis(5));
        assert_eq!(schedule.due(400), Duration::from_secs(2));
    }

    #[test]
    fn a_window_holds_rate_times_its_length() {
        let schedule = Schedule::new(200.0);
        assert_eq!(schedule.count_within(Duration::from_secs(2)), 400);
        // Warm-up then measurement: the measured tickets are the difference.
        let warmup = schedule.count_within(Duration::from_secs(1));
        let total = schedule.count_within(Duration::from_secs(3));
        assert_eq!((warmup, total - warmup), (200, 400));
        // A partial interval still holds the request due at its start.
        assert_eq!(schedule.count_within(Duration::from_micros(1)), 1);
        assert_eq!(schedule.count_within(Duration::ZERO), 0);
        // Rates below one a second and odd ones.
        assert_eq!(Schedule::new(0.5).count_within(Duration::from_secs(5)), 3);
        assert_eq!(Schedule::new(3.0).count_within(Duration::from_secs(1)), 3);
        assert_eq!(Schedule::new(7.0).count_within(Duration::from_secs(10)), 70);
    }

    #[test]
    fn a_rate_of_zero_schedules_nothing() {
        assert_eq!(Schedule::new(0.0).count_within(Duration::from_secs(1)), 0);
        assert_eq!(
            Schedule::new(f64::NAN).count_within(Duration::from_secs(1)),
            0
        );
    }
}
