//! Counters of a client, for the pool's own monitoring.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated by the client.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) sent: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) pending: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) resent: AtomicU64,
    pub(crate) unknown_answers: AtomicU64,
    pub(crate) pings: AtomicU64,
    pub(crate) dead_connections: AtomicU64,
}

/// A copy of a client's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct StatsSnapshot {
    /// Request frames written (first sends and resends).
    pub sent: u64,
    /// Shares answered with a quote.
    pub answered: u64,
    /// Shares refused by the mint for good.
    pub rejected: u64,
    /// Refusals that are tried again (`mint-busy`, `internal-error`,
    /// `shutting-down`).
    pub retried: u64,
    /// Calls that returned "pending" at their deadline.
    pub pending: u64,
    /// Answers that came when no caller waited (settled through
    /// `next_settled`).
    pub late: u64,
    /// Connections established after the first.
    pub reconnects: u64,
    /// Requests sent again (after a connection was lost or a retryable
    /// refusal).
    pub resent: u64,
    /// Answers that matched no share held.
    pub unknown_answers: u64,
    /// Keepalive pings sent.
    pub pings: u64,
    /// Connections closed because nothing arrived for the keepalive
    /// timeout.
    pub dead_connections: u64,
    /// Requests on the wire now.
    pub in_flight: u64,
    /// Shares held now (sent or not), not answered yet.
    pub outstanding: u64,
    /// Settled answers waiting for the pool to take them.
    pub settled_waiting: u64,
    /// Records in the outbox now.
    pub outbox_held: u64,
    /// Why the client stopped working, if it did.
    pub failed: Option<String>,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters; the gauges (in flight, outstanding, ...) are filled
    /// in by the client.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            sent: get(&self.sent),
            answered: get(&self.answered),
            rejected: get(&self.rejected),
            retried: get(&self.retried),
            pending: get(&self.pending),
            late: get(&self.late),
            reconnects: get(&self.reconnects),
            resent: get(&self.resent),
            unknown_answers: get(&self.unknown_answers),
            pings: get(&self.pings),
            dead_connections: get(&self.dead_connections),
            ..StatsSnapshot::default()
        }
    }
}
