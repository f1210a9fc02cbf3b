//! Reconnect delays: doubling from a first delay up to a cap, each drawn
//! at random from its upper half so that many pools restarted together do
//! not reconnect in step.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let floor = ceiling / 2;
        rand::thread_rng().gen_range(floor..=ceiling)
    }

    /// Attempts since the last reset.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis((100u64 << i).min(1000));
            assert!(*d <= ceiling && *d >= ceiling / 2, "attempt {i}: {d:?}");
        }
        assert_eq!(backoff.attempts(), 8);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
