//! One mint the client talks to, and the state of its connection.

use std::collections::HashSet;

use mint_quote_proto::Backoff;
use tokio::time::Instant;

use crate::error::PendingReason;

/// The connection to one mint.
pub(crate) enum Link {
    /// No connection; the next attempt is due at `retry_at`.
    Down { retry_at: Instant },
    /// An attempt is under way.
    Connecting { generation: u64 },
    /// Authenticated and serving.
    Up(Up),
}

/// A connection that is up.
pub(crate) struct Up {
    /// Which attempt this is (events of older ones are ignored).
    pub(crate) generation: u64,
    /// Shares written on it and not answered yet.
    pub(crate) in_flight: HashSet<u64>,
    /// When a frame last arrived.
    pub(crate) last_received: Instant,
    /// The nonce of the `Ping` waiting for its `Pong`.
    pub(crate) ping: Option<u64>,
    /// The mint said it is shutting down, or a write failed: nothing more
    /// is sent on it.
    pub(crate) draining: bool,
    /// A write failed: the instant the connection is dropped (unless its
    /// reader reaches the end first), and why.
    pub(crate) give_up: Option<(Instant, String)>,
}

/// One mint endpoint.
pub(crate) struct Endpoint {
    pub(crate) link: Link,
    pub(crate) backoff: Backoff,
    /// Set while the mint refuses this pool for a reason an operator must
    /// fix (a wrong pinned key, a pool key not allowed).
    pub(crate) fatal: Option<PendingReason>,
    /// Why the last attempt or connection failed.
    pub(crate) last_error: String,
    next_generation: u64,
    ever_up: bool,
}

impl Endpoint {
    pub(crate) fn new(backoff: Backoff, now: Instant) -> Self {
        Endpoint {
            link: Link::Down { retry_at: now },
            backoff,
            fatal: None,
            last_error: "not connected yet".into(),
            next_generation: 1,
            ever_up: false,
        }
    }

    /// Starts a connection attempt; its generation.
    pub(crate) fn start_connecting(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.link = Link::Connecting { generation };
        generation
    }

    /// The attempt `generation` succeeded; whether it is a reconnect.
    pub(crate) fn up(&mut self, generation: u64, now: Instant) -> bool {
        let reconnect = self.ever_up;
        self.ever_up = true;
        self.backoff.reset();
        self.fatal = None;
        self.link = Link::Up(Up {
            generation,
            in_flight: HashSet::new(),
            last_received: now,
            ping: None,
            draining: false,
            give_up: None,
        });
        reconnect
    }

    /// The connection (or attempt) is gone: next attempt after a backoff.
    /// Returns the shares that were on it.
    pub(crate) fn down(&mut self, now: Instant, reason: String) -> HashSet<u64> {
        let in_flight = match std::mem::replace(
            &mut self.link,
            Link::Down {
                retry_at: now + self.backoff.next_delay(),
            },
        ) {
            Link::Up(up) => up.in_flight,
            _ => HashSet::new(),
        };
        self.last_error = reason;
        in_flight
    }

    /// Whether events of `generation` concern the current attempt or
    /// connection.
    pub(crate) fn is_current(&self, generation: u64) -> bool {
        match &self.link {
            Link::Connecting { generation: g } => *g == generation,
            Link::Up(up) => up.generation == generation,
            Link::Down { .. } => false,
        }
    }

    pub(crate) fn up_state(&mut self) -> Option<&mut Up> {
        match &mut self.link {
            Link::Up(up) => Some(up),
            _ => None,
        }
    }

    /// Requests on its connection now.
    pub(crate) fn in_flight(&self) -> usize {
        match &self.link {
            Link::Up(up) => up.in_flight.len(),
            _ => 0,
        }
    }

    /// Whether it can take another request now, under `max_in_flight`.
    pub(crate) fn room(&self, max_in_flight: usize) -> Option<usize> {
        match &self.link {
            Link::Up(up) if !up.draining && up.in_flight.len() < max_in_flight => {
                Some(up.in_flight.len())
            }
            _ => None,
        }
    }
}
