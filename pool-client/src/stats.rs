//! Counters of a client, for the pool's own monitoring: totals, and the
//! same for each mint ([`EndpointSnapshot`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Live counters, updated by the client.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// One per configured mint, in the configuration's order.
    pub(crate) endpoints: Vec<EndpointStats>,
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

/// Live counters and gauges of one mint, kept by the machine (the gauges
/// each time the link has carried out its actions).
#[derive(Debug, Default)]
pub(crate) struct EndpointStats {
    pub(crate) address: String,
    pub(crate) connected: AtomicBool,
    pub(crate) in_flight: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl EndpointStats {
    /// Records why the connection or the last attempt failed.
    pub(crate) fn set_last_error(&self, reason: &str) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(reason.to_owned());
    }

    fn snapshot(&self) -> EndpointSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EndpointSnapshot {
            address: self.address.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            in_flight: get(&self.in_flight),
            sent: get(&self.sent),
            answered: get(&self.answered),
            reconnects: get(&self.reconnects),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// One mint's share of a client's counters, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct EndpointSnapshot {
    /// The mint's address, as configured.
    pub address: String,
    /// Whether its connection is up (authenticated) now.
    pub connected: bool,
    /// Requests on the wire to it now.
    pub in_flight: u64,
    /// Request frames written to it (first sends and resends).
    pub sent: u64,
    /// Shares it answered with a quote.
    pub answered: u64,
    /// Connections to it established after the first.
    pub reconnects: u64,
    /// Why its connection, or the last attempt, last failed; kept after
    /// it reconnects.
    pub last_error: Option<String>,
}

impl fmt::Display for EndpointSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mint {}: {}, {} in flight, {} sent, {} answered, {} reconnects",
            self.address,
            if self.connected { "up" } else { "down" },
            self.in_flight,
            self.sent,
            self.answered,
            self.reconnects
        )?;
        match &self.last_error {
            Some(error) => write!(f, ", last error: {error}"),
            None => Ok(()),
        }
    }
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
    /// The same for each mint, in the configuration's order (the
    /// totals above are over all of them).
    pub endpoints: Vec<EndpointSnapshot>,
}

impl Stats {
    /// Zeroed counters for the mints at `addresses`.
    pub(crate) fn new(addresses: impl IntoIterator<Item = String>) -> Self {
        Stats {
            endpoints: addresses
                .into_iter()
                .map(|address| EndpointStats {
                    address,
                    ..EndpointStats::default()
                })
                .collect(),
            ..Stats::default()
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Mint `endpoint`'s counters (none for an endpoint the stats were
    /// not made for).
    pub(crate) fn endpoint(&self, endpoint: usize) -> Option<&EndpointStats> {
        self.endpoints.get(endpoint)
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
            endpoints: self.endpoints.iter().map(EndpointStats::snapshot).collect(),
            ..StatsSnapshot::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_line_says_where_it_stands_and_why_it_last_failed() {
        let stats = Stats::new(["10.0.0.1:34260".to_owned(), "10.0.0.2:34260".to_owned()]);
        stats.endpoints[0].connected.store(true, Ordering::Relaxed);
        Stats::bump(&stats.endpoints[0].sent);
        stats.endpoints[1].set_last_error("TCP connect: Connection refused");
        let lines: Vec<String> = stats
            .snapshot()
            .endpoints
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            vec![
                "mint 10.0.0.1:34260: up, 0 in flight, 1 sent, 0 answered, 0 reconnects",
                "mint 10.0.0.2:34260: down, 0 in flight, 0 sent, 0 answered, 0 reconnects, last error: TCP connect: Connection refused",
            ]
        );
    }
}
