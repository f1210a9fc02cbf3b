//! The one retry policy: which answers a sender may try again, where, and
//! how long to wait between tries. The pool's client and the mint's Redis
//! consumer both follow it, so the two paths agree with each other and
//! with the table in `docs/protocol.md` (section 5).

use std::time::Duration;

use secp256k1::rand::Rng;

use crate::error_code::ErrorCode;

/// What to do with a request the mint refused with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The refusal is final: sending the same request again gives the
    /// same answer.
    Never,
    /// Send it again after a backoff, on any connection (the mint is busy
    /// or failed internally for a moment).
    Later,
    /// Send it again on another connection, at once: this one is closing
    /// (the mint is shutting down).
    Elsewhere,
}

impl ErrorCode {
    /// What a sender does with a request refused with this code.
    pub fn retry(self) -> Retry {
        match self {
            ErrorCode::MintBusy | ErrorCode::InternalError => Retry::Later,
            ErrorCode::ShuttingDown => Retry::Elsewhere,
            ErrorCode::MalformedRequest
            | ErrorCode::UnknownUnit
            | ErrorCode::InvalidAmount
            | ErrorCode::InvalidLockingKey
            | ErrorCode::UnknownKeyset
            | ErrorCode::InvalidHeaderHash
            | ErrorCode::DuplicateShareMismatch
            | ErrorCode::NotAuthorised
            // A code this version does not know: its meaning is unknown,
            // so it is not retried (the spec says so).
            | ErrorCode::Unrecognised(_) => Retry::Never,
        }
    }

    /// Whether the same request may succeed if sent again.
    pub fn is_retryable(self) -> bool {
        self.retry() != Retry::Never
    }
}

/// Delays between tries: doubling from a first delay up to a cap, each
/// drawn at random from the upper half of its step, so that many senders
/// that failed together do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays from `initial` up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let floor = ceiling / 2;
        if floor >= ceiling {
            return ceiling;
        }
        secp256k1::rand::thread_rng().gen_range(floor..=ceiling)
    }

    /// Tries since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
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

    #[test]
    fn the_table_of_the_spec() {
        use ErrorCode::*;
        for code in [MintBusy, InternalError] {
            assert_eq!(code.retry(), Retry::Later, "{code}");
        }
        assert_eq!(ShuttingDown.retry(), Retry::Elsewhere);
        for code in [
            MalformedRequest,
            UnknownUnit,
            InvalidAmount,
            InvalidLockingKey,
            UnknownKeyset,
            InvalidHeaderHash,
            DuplicateShareMismatch,
            NotAuthorised,
            Unrecognised(4242),
        ] {
            assert_eq!(code.retry(), Retry::Never, "{code}");
        }
    }
}
