//! Counters of a client, for the pool's own monitoring.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated by the client.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) sent: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) resent: AtomicU64,
    pub(crate) unknown_answers: AtomicU64,
}

/// A copy of a client's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct StatsSnapshot {
    /// Request frames written (first sends and resends).
    pub sent: u64,
    /// Requests answered with a quote.
    pub answered: u64,
    /// Requests answered with a `MintQuoteError`.
    pub rejected: u64,
    /// Requests that reached their deadline.
    pub timed_out: u64,
    /// Connections established after the first.
    pub reconnects: u64,
    /// Requests sent again on a new connection.
    pub resent: u64,
    /// Answers that matched no request in flight.
    pub unknown_answers: u64,
    /// Requests in flight now.
    pub in_flight: u64,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, in_flight: u64) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            sent: get(&self.sent),
            answered: get(&self.answered),
            rejected: get(&self.rejected),
            timed_out: get(&self.timed_out),
            reconnects: get(&self.reconnects),
            resent: get(&self.resent),
            unknown_answers: get(&self.unknown_answers),
            in_flight,
        }
    }
}
