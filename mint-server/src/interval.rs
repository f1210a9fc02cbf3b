//! What the quote paths did since the last log summary: counts and a
//! latency histogram, taken and reset by the summary every interval, so the
//! log can say "this many quotes, this p99" without a line per quote.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// An empty histogram of latencies in microseconds: 1 µs to 10 minutes,
/// three significant digits (a relative error under 0.1 %).
pub fn latency_histogram() -> Histogram<u64> {
    // Constant bounds that HdrHistogram accepts: a failure would be a bug
    // in this line.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|e| unreachable!("histogram bounds: {e}"))
}

/// Counts and latencies of one interval.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Quotes created by the Sv2 listener.
    pub created_sv2: u64,
    /// Quotes created by the Redis consumer.
    pub created_redis: u64,
    /// Requests answered with an existing quote (a repeated share).
    pub repeated: u64,
    /// Requests refused with an error code, both paths.
    pub refused: u64,
    /// Time to answer, in microseconds ([`latency_histogram`]).
    latency_us: Histogram<u64>,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            created_sv2: 0,
            created_redis: 0,
            repeated: 0,
            refused: 0,
            latency_us: latency_histogram(),
        }
    }

    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        self.created_sv2 + self.created_redis + self.repeated + self.refused == 0
    }

    /// The answer time at `quantile` (0..=1), in milliseconds; 0 when
    /// nothing was answered.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1e3
    }
}

/// The current interval, shared by every quote path.
pub struct IntervalRecorder(Mutex<Interval>);

impl Default for IntervalRecorder {
    fn default() -> Self {
        IntervalRecorder(Mutex::new(Interval::new()))
    }
}

impl IntervalRecorder {
    fn with(&self, f: impl FnOnce(&mut Interval)) {
        // A panic while holding this lock cannot leave the counts
        // inconsistent in a way that matters to a log line.
        let mut interval = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut interval);
    }

    /// A quote answered after `took`: created on `redis` or Sv2, or
    /// `repeated`.
    pub fn answered(&self, redis: bool, repeated: bool, took: Duration) {
        self.with(|i| {
            match (repeated, redis) {
                (true, _) => i.repeated += 1,
                (false, true) => i.created_redis += 1,
                (false, false) => i.created_sv2 += 1,
            }
            i.latency_us.saturating_record(took.as_micros() as u64);
        });
    }

    /// A request refused.
    pub fn refused(&self) {
        self.with(|i| i.refused += 1);
    }

    /// The interval so far; the next starts empty.
    pub fn take(&self) -> Interval {
        let mut taken = Interval::new();
        self.with(|i| std::mem::swap(i, &mut taken));
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_returns_the_interval_and_starts_a_new_one() {
        let r = IntervalRecorder::default();
        assert!(r.take().is_empty());
        for ms in 1..=100 {
            r.answered(false, false, Duration::from_millis(ms));
        }
        r.answered(true, false, Duration::from_millis(1));
        r.answered(false, true, Duration::from_millis(1));
        r.refused();
        let i = r.take();
        assert_eq!(
            (i.created_sv2, i.created_redis, i.repeated, i.refused),
            (100, 1, 1, 1)
        );
        assert!(
            (i.latency_ms(0.99) - 99.0).abs() < 0.1,
            "{}",
            i.latency_ms(0.99)
        );
        assert!(r.take().is_empty());
    }
}
