//! New connections per source per second: a token bucket for each source.

use std::collections::HashMap;
use std::time::Instant;

use super::source::Source;

/// Sources tracked at once. Buckets that have refilled are forgotten when
/// this is reached; if none has, new sources are refused until one does,
/// so a flood from very many addresses cannot grow the table.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets: each source may open `burst` connections at once and
/// `rate` per second after that.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<Source, Bucket>,
    max_sources: usize,
}

impl RateLimiter {
    pub(crate) fn new(rate: u64, burst: u64) -> Self {
        Self::with_capacity(rate, burst, MAX_SOURCES)
    }

    fn with_capacity(rate: u64, burst: u64, max_sources: usize) -> Self {
        RateLimiter {
            rate: rate as f64,
            burst: (burst as f64).max(1.0),
            buckets: HashMap::new(),
            max_sources,
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Takes one token of `source`'s bucket if it has one.
    pub(crate) fn allow(&mut self, source: Source, now: Instant) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.max_sources {
            let burst = self.burst;
            let limiter = &*self;
            let full: Vec<Source> = limiter
                .buckets
                .iter()
                .filter(|(_, b)| limiter.refilled(b, now) >= burst)
                .map(|(s, _)| *s)
                .collect();
            for source in full {
                self.buckets.remove(&source);
            }
            if self.buckets.len() >= self.max_sources {
                return false;
            }
        }
        let burst = self.burst;
        let bucket = *self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = self.refilled(&bucket, now);
        let (tokens, allowed) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        self.buckets.insert(source, Bucket { tokens, at: now });
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn source(n: u8) -> Source {
        Source::V4([10, 0, 0, n])
    }

    #[test]
    fn a_burst_then_the_rate() {
        let mut limiter = RateLimiter::new(10, 5);
        let t0 = Instant::now();
        let allowed = (0..20).filter(|_| limiter.allow(source(1), t0)).count();
        assert_eq!(allowed, 5);
        // 10 per second: one more after 100 ms, not before.
        assert!(!limiter.allow(source(1), t0 + Duration::from_millis(50)));
        assert!(limiter.allow(source(1), t0 + Duration::from_millis(110)));
        // Another source has its own bucket.
        assert!(limiter.allow(source(2), t0));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_idle_sources() {
        let mut limiter = RateLimiter::with_capacity(1, 1, 2);
        let t0 = Instant::now();
        assert!(limiter.allow(source(1), t0));
        assert!(limiter.allow(source(2), t0));
        // Full, and neither bucket has refilled: a third source waits.
        assert!(!limiter.allow(source(3), t0));
        // After a second both have refilled and are forgotten.
        assert!(limiter.allow(source(3), t0 + Duration::from_secs(1)));
        assert!(limiter.buckets.len() <= 2);
    }
}
