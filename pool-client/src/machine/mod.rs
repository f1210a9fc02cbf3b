//! The client's decisions, apart from its input and output: which share
//! goes on which connection, what an answer settles, when a caller hears
//! "pending", when to ping, when a connection is dead, when to reconnect.
//!
//! The machine owns no socket and no timer. The link task feeds it events
//! with the time they happened (`now`), carries out the [`Action`]s it
//! returns, and wakes it at [`Machine::next_wakeup`]; nothing happens
//! between (no periodic tick while idle). Its tests drive it with made-up
//! instants, so every rule below is checked without a network or a clock:
//!
//! - every share stays until the mint answers it: a caller's deadline only
//!   tells the caller "pending", and the answer, when it comes, settles the
//!   share through the outbox and [`crate::Settled`];
//! - a connection lost (closed, or silent for `keepalive_timeout`) gives its
//!   unanswered shares back to be sent again, oldest first; one on which a
//!   write failed first gets a moment to deliver the answers already sent;
//! - the retry policy is the protocol's ([`mint_quote_proto::Retry`]):
//!   `mint-busy` and `internal-error` are sent again after a backoff,
//!   `shutting-down` moves the share off that connection at once, other
//!   codes are final;
//! - shares go to a healthy mint (connected, not draining) with the
//!   fewest in flight, at most `max_in_flight` each; ties go round robin
//!   (see [`Machine::pump`] for why);
//! - a mint that dies gives its unanswered shares back at once, and they
//!   go to the other healthy mints, oldest first; a mint that refuses
//!   this pool for good (a wrong key) holds no share and, while another
//!   mint serves, tells no caller anything.

mod endpoint;
mod shares;

use std::sync::atomic::Ordering;
use std::time::Duration;

use mint_quote_proto::{ActiveKeyset, Backoff, Message, MintQuoteResponse, Ping, Pong, Retry};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{PendingReason, QuoteError};
use crate::settled::{Outcome, Refusal, Settled};
use crate::share::{Quote, Share};
use crate::stats::Stats;
use endpoint::{Endpoint, Link};
use shares::{Entry, Shares};

/// Where a caller's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<Quote, QuoteError>>;

/// First and last delay between tries of a share the mint was too busy
/// for (or failed internally on).
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// After a write fails, how long the connection's reader may go on
/// delivering answers already on their way before the connection is
/// dropped (it is dropped sooner when the reader reaches the end).
const WRITE_FAILED_GRACE: Duration = Duration::from_secs(1);

/// The machine's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) deadline: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) reconnect_initial: Duration,
    pub(crate) reconnect_max: Duration,
}

/// Why a connection attempt failed.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// Try again after a backoff.
    Transient(String),
    /// Try again after a backoff too, but tell callers at once: an
    /// operator must fix something first.
    Fatal(PendingReason),
}

impl Failure {
    /// The reason, for logs and for callers.
    pub(crate) fn reason(&self) -> String {
        match self {
            Failure::Transient(reason) => reason.clone(),
            Failure::Fatal(reason) => reason.to_string(),
        }
    }
}

/// What the link must do.
#[derive(Debug)]
pub(crate) enum Action {
    /// Open connection attempt `generation` to endpoint `endpoint`.
    Connect { endpoint: usize, generation: u64 },
    /// Write `message` on that connection.
    Send {
        endpoint: usize,
        generation: u64,
        message: SendItem,
    },
    /// Close that connection (it is dead).
    Close { endpoint: usize, generation: u64 },
    /// Share `seq`'s answer reached its caller: remove it from the outbox.
    Forget { seq: u64 },
    /// Share `seq` is answered but no caller took the answer: record it
    /// in the outbox and hand it to the pool.
    Settle(Settled),
    /// The mint announced its active keyset.
    Keyset(ActiveKeyset),
    /// Whether any connection is up now.
    Connected(bool),
}

/// What to write: a request (already encoded) or a keepalive message.
#[derive(Debug)]
pub(crate) enum SendItem {
    Request(mint_quote_proto::Frame),
    Message(Message),
}

/// What a connection needs when the machine ticks.
enum Due {
    Nothing,
    Connect,
    Ping(u64),
    Dead(u64, Duration),
    GiveUp(u64, String),
}

/// The state of the client.
pub(crate) struct Machine {
    limits: Limits,
    endpoints: Vec<Endpoint>,
    shares: Shares,
    actions: Vec<Action>,
    stats: std::sync::Arc<Stats>,
    next_nonce: u64,
    any_up: bool,
    /// Where the round robin among equally loaded mints starts next.
    next_turn: usize,
}

impl Machine {
    /// A machine for `endpoints` mints, all down, to connect at once.
    pub(crate) fn new(
        limits: Limits,
        endpoints: usize,
        stats: std::sync::Arc<Stats>,
        now: Instant,
    ) -> Self {
        let endpoints = (0..endpoints.max(1))
            .map(|_| {
                Endpoint::new(
                    Backoff::new(limits.reconnect_initial, limits.reconnect_max),
                    now,
                )
            })
            .collect();
        Machine {
            limits,
            endpoints,
            shares: Shares::default(),
            actions: Vec::new(),
            stats,
            next_nonce: 1,
            any_up: false,
            next_turn: 0,
        }
    }

    /// What the link must do now.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Shares held (sent or not).
    pub(crate) fn outstanding(&self) -> usize {
        self.shares.len()
    }

    /// Requests on the wire now.
    pub(crate) fn in_flight(&self) -> usize {
        self.endpoints.iter().map(Endpoint::in_flight).sum()
    }

    /// Sets each mint's gauges (connected, in flight) in the stats.
    pub(crate) fn publish_gauges(&self) {
        for (e, counters) in self.endpoints.iter().zip(&self.stats.endpoints) {
            let up = matches!(e.link, Link::Up(_));
            counters.connected.store(up, Ordering::Relaxed);
            counters
                .in_flight
                .store(e.in_flight() as u64, Ordering::Relaxed);
        }
    }

    fn add(&mut self, seq: u64, share: Share, caller: Option<(Reply, Instant)>) {
        let request_id = self.shares.new_request_id();
        let frame = match Message::MintQuoteRequest(share.to_request(request_id)).to_frame() {
            Ok(frame) => frame,
            Err(e) => {
                // It was checked when the caller handed it in; a stored
                // share that cannot be encoded can never be sent.
                tracing::error!(seq, error = %e, "a share in the outbox cannot be encoded; dropped");
                if let Some((reply, _)) = caller {
                    let _ = reply.send(Err(QuoteError::Invalid(e.to_string())));
                }
                self.actions.push(Action::Forget { seq });
                return;
            }
        };
        self.shares.insert(
            seq,
            Entry {
                share,
                request_id,
                frame,
                caller,
                sent_on: None,
                ever_sent: false,
                retry: None,
                delayed_until: None,
            },
        );
    }

    /// `endpoint`, if `generation` is its current attempt or connection
    /// (events of older ones are ignored).
    fn current(&mut self, endpoint: usize, generation: u64) -> Option<&mut Endpoint> {
        self.endpoints
            .get_mut(endpoint)
            .filter(|e| e.is_current(generation))
    }

    /// Connection `generation` of `endpoint`, if it is the current one and
    /// up.
    fn current_up(&mut self, endpoint: usize, generation: u64) -> Option<&mut endpoint::Up> {
        self.current(endpoint, generation)
            .and_then(|e| e.up_state())
    }

    /// A share the outbox held from an earlier run: sent again, its
    /// outcome settled through the pool's settled queue.
    pub(crate) fn restore(&mut self, seq: u64, share: Share, now: Instant) {
        self.add(seq, share, None);
        self.pump(now);
    }

    /// A share a caller handed in (stored in the outbox as `seq`).
    pub(crate) fn submit(&mut self, seq: u64, share: Share, reply: Reply, now: Instant) {
        // While every mint refuses this pool, say so at once.
        if let Some(reason) = self.refused_everywhere() {
            let _ = reply.send(Err(QuoteError::Pending(reason)));
            self.add(seq, share, None);
        } else {
            self.add(seq, share, Some((reply, now + self.limits.deadline)));
        }
        self.pump(now);
    }

    /// The reason every endpoint refuses this pool, if they all do.
    fn refused_everywhere(&self) -> Option<PendingReason> {
        let mut reasons = self.endpoints.iter().map(|e| e.fatal.clone());
        let first = reasons.next().flatten()?;
        reasons.all(|r| r.is_some()).then_some(first)
    }

    /// Connection attempt `generation` to `endpoint` completed setup.
    pub(crate) fn connected(&mut self, endpoint: usize, generation: u64, now: Instant) {
        let Some(e) = self.current(endpoint, generation) else {
            return;
        };
        if e.up(generation, now) {
            Stats::bump(&self.stats.reconnects);
            if let Some(counters) = self.stats.endpoint(endpoint) {
                Stats::bump(&counters.reconnects);
            }
        }
        self.note_connected();
        self.pump(now);
    }

    /// Connection attempt `generation` to `endpoint` failed.
    pub(crate) fn connect_failed(
        &mut self,
        endpoint: usize,
        generation: u64,
        failure: Failure,
        now: Instant,
    ) {
        let reason = failure.reason();
        let Some(e) = self.current(endpoint, generation) else {
            return;
        };
        e.down(now, reason.clone());
        let fatal = matches!(failure, Failure::Fatal(_));
        if let Failure::Fatal(reason) = failure {
            e.fatal = Some(reason);
        }
        self.note_error(endpoint, &reason);
        if fatal {
            // Nothing will work until an operator fixes the keys: callers
            // learn it now rather than at their deadline.
            if let Some(reason) = self.refused_everywhere() {
                for (_, reply) in self.shares.all_callers() {
                    let _ = reply.send(Err(QuoteError::Pending(reason.clone())));
                }
            }
        }
    }

    /// The connection `generation` to `endpoint` closed or broke.
    pub(crate) fn closed(
        &mut self,
        endpoint: usize,
        generation: u64,
        reason: String,
        now: Instant,
    ) {
        let Some(e) = self.current(endpoint, generation) else {
            return;
        };
        // Counted as resent when each goes out again.
        let lost = e.down(now, reason.clone());
        self.note_error(endpoint, &reason);
        for seq in lost {
            self.shares.make_ready(seq);
        }
        self.note_connected();
        self.pump(now);
    }

    /// Records in `endpoint`'s stats why it went down.
    fn note_error(&self, endpoint: usize, reason: &str) {
        if let Some(counters) = self.stats.endpoint(endpoint) {
            counters.set_last_error(reason);
        }
    }

    /// Writing on connection `generation` of `endpoint` failed. Nothing
    /// more is sent on it, but it is not dropped at once: answers the mint
    /// sent before may still be unread. A mint that stops answers what it
    /// has read and closes; the pool's next write then fails while those
    /// answers wait in the socket, and dropping the connection would throw
    /// them away and send their shares again, to another mint. The reader
    /// gets [`WRITE_FAILED_GRACE`] to deliver them; the connection closes
    /// when it reaches the end, or then.
    pub(crate) fn write_failed(
        &mut self,
        endpoint: usize,
        generation: u64,
        reason: String,
        now: Instant,
    ) {
        let Some(up) = self.current_up(endpoint, generation) else {
            return;
        };
        if up.in_flight.is_empty() {
            // No answer to wait for.
            self.drop_connection(endpoint, generation, reason, now);
            return;
        }
        up.draining = true;
        if up.give_up.is_none() {
            up.give_up = Some((now + WRITE_FAILED_GRACE, reason));
        }
    }

    /// The machine gives up connection `generation` of `endpoint` itself:
    /// the link closes it, and its shares go back as for a lost one.
    fn drop_connection(&mut self, endpoint: usize, generation: u64, reason: String, now: Instant) {
        self.actions.push(Action::Close {
            endpoint,
            generation,
        });
        self.closed(endpoint, generation, reason, now);
    }

    /// A message arrived on connection `generation` of `endpoint`.
    pub(crate) fn received(
        &mut self,
        endpoint: usize,
        generation: u64,
        message: Message,
        now: Instant,
    ) {
        let Some(up) = self.current_up(endpoint, generation) else {
            return;
        };
        up.last_received = now;
        match message {
            Message::MintQuoteResponse(response) => {
                self.on_response(endpoint, generation, response, now)
            }
            Message::MintQuoteError(error) => {
                let Some(seq) = self.shares.seq_of(error.request_id) else {
                    Stats::bump(&self.stats.unknown_answers);
                    tracing::warn!(request_id = error.request_id, code = %error.error_code, message = %error.error_message, "error for no request in flight; dropped");
                    return;
                };
                self.leave_connection(endpoint, seq);
                match error.error_code.retry() {
                    Retry::Never => {
                        Stats::bump(&self.stats.rejected);
                        let refusal = Refusal {
                            code: error.error_code,
                            message: error.error_message,
                        };
                        self.settle(seq, Err(refusal));
                    }
                    Retry::Later => {
                        Stats::bump(&self.stats.retried);
                        let delay = self
                            .shares
                            .get_mut(seq)
                            .map(|entry| {
                                entry
                                    .retry
                                    .get_or_insert_with(|| Backoff::new(RETRY_FIRST, RETRY_MAX))
                                    .next_delay()
                            })
                            .unwrap_or(RETRY_FIRST);
                        self.shares.delay(seq, now + delay);
                    }
                    Retry::Elsewhere => {
                        // This connection is closing: nothing more goes on
                        // it, and the share goes wherever it can.
                        Stats::bump(&self.stats.retried);
                        if let Some(up) = self.endpoints[endpoint].up_state() {
                            up.draining = true;
                        }
                        self.shares.make_ready(seq);
                    }
                }
            }
            Message::ActiveKeyset(keyset) => self.actions.push(Action::Keyset(keyset)),
            Message::Ping(ping) => self.actions.push(Action::Send {
                endpoint,
                generation,
                message: SendItem::Message(Message::Pong(Pong { nonce: ping.nonce })),
            }),
            Message::Pong(pong) => {
                if let Some(up) = self.endpoints[endpoint].up_state() {
                    if up.ping == Some(pong.nonce) {
                        up.ping = None;
                    }
                }
            }
            other => tracing::warn!(
                message = other.name(),
                "unexpected message from the mint; ignored"
            ),
        }
        self.pump(now);
    }

    fn on_response(
        &mut self,
        endpoint: usize,
        generation: u64,
        response: MintQuoteResponse,
        now: Instant,
    ) {
        let Some(seq) = self.shares.seq_of(response.request_id) else {
            Stats::bump(&self.stats.unknown_answers);
            tracing::warn!(request_id = response.request_id, quote_id = %response.quote_id, "response for no request in flight; dropped");
            return;
        };
        let asked = self.shares.get(seq).map(|e| e.share.header_hash);
        if asked != Some(response.header_hash) {
            // A mint that mixes up shares cannot be trusted with the
            // connection: drop it; the share is sent again.
            tracing::error!(
                request_id = response.request_id,
                answered = %response.header_hash,
                "the mint answered with another share's quote; closing the connection"
            );
            self.drop_connection(
                endpoint,
                generation,
                "the mint answered with another share's quote".into(),
                now,
            );
            return;
        }
        self.leave_connection(endpoint, seq);
        Stats::bump(&self.stats.answered);
        if let Some(counters) = self.stats.endpoint(endpoint) {
            Stats::bump(&counters.answered);
        }
        self.settle(seq, Ok(Quote::from(response)));
    }

    /// Takes `seq` off `endpoint`'s in-flight set.
    fn leave_connection(&mut self, endpoint: usize, seq: u64) {
        if let Some(up) = self.endpoints.get_mut(endpoint).and_then(|e| e.up_state()) {
            up.in_flight.remove(&seq);
        }
    }

    /// Share `seq` is answered: to its caller if one waits, otherwise to
    /// the pool's settled queue (through the outbox).
    fn settle(&mut self, seq: u64, outcome: Outcome) {
        let Some(entry) = self.shares.remove(seq) else {
            return;
        };
        let undelivered = match entry.caller {
            Some((reply, _)) => {
                let result = outcome.clone().map_err(|r| QuoteError::Rejected {
                    code: r.code,
                    message: r.message,
                });
                reply.send(result).is_err()
            }
            None => true,
        };
        if undelivered {
            Stats::bump(&self.stats.late);
            self.actions.push(Action::Settle(Settled {
                share: entry.share,
                outcome,
                seq,
            }));
        } else {
            self.actions.push(Action::Forget { seq });
        }
    }

    fn note_connected(&mut self) {
        let up = self.endpoints.iter().any(|e| matches!(e.link, Link::Up(_)));
        if up != self.any_up {
            self.any_up = up;
            self.actions.push(Action::Connected(up));
        }
    }

    /// Writes ready shares, oldest first, on the connections with room.
    ///
    /// The policy: among the healthy mints (connected, not draining, under
    /// `max_in_flight`), the one with the fewest requests in flight; among
    /// those equally loaded, the next in turn after the last one chosen.
    ///
    /// Fewest in flight sends work where it is done soonest: a mint that
    /// answers slowly (a busy database, a long link) keeps more requests in
    /// flight and so gets fewer new ones, without the client measuring
    /// latency, and a dead mint holds none. Ties matter whenever the pool
    /// is not busy: each share is answered before the next arrives, every
    /// mint has none in flight, and breaking ties by index would send
    /// everything to the first mint and leave the others idle standbys
    /// whose faults show only at failover. Round robin spreads that load
    /// over every mint instead, so every connection carries shares all the
    /// time and each mint's database takes its part of the writes.
    fn pump(&mut self, _now: Instant) {
        while self.shares.has_ready() {
            let count = self.endpoints.len();
            let best = (0..count)
                .map(|k| (self.next_turn + k) % count)
                .filter_map(|i| {
                    self.endpoints[i]
                        .room(self.limits.max_in_flight)
                        .map(|n| (n, i))
                })
                .min_by_key(|(n, _)| *n);
            let Some((_, endpoint)) = best else {
                return;
            };
            self.next_turn = (endpoint + 1) % count;
            let Some(seq) = self.shares.pop_ready() else {
                return;
            };
            let Some(up) = self.endpoints[endpoint].up_state() else {
                return;
            };
            let generation = up.generation;
            up.in_flight.insert(seq);
            let Some(entry) = self.shares.get_mut(seq) else {
                up.in_flight.remove(&seq);
                continue;
            };
            entry.sent_on = Some((endpoint, generation));
            if entry.ever_sent {
                Stats::bump(&self.stats.resent);
            }
            entry.ever_sent = true;
            Stats::bump(&self.stats.sent);
            if let Some(counters) = self.stats.endpoint(endpoint) {
                Stats::bump(&counters.sent);
            }
            self.actions.push(Action::Send {
                endpoint,
                generation,
                message: SendItem::Request(entry.frame.clone()),
            });
        }
    }

    /// Does what is due at `now`: connection attempts, callers' deadlines,
    /// delayed resends, pings and dead connections.
    pub(crate) fn tick(&mut self, now: Instant) {
        for endpoint in 0..self.endpoints.len() {
            match self.due(endpoint, now) {
                Due::Nothing => {}
                Due::Connect => {
                    let generation = self.endpoints[endpoint].start_connecting();
                    self.actions.push(Action::Connect {
                        endpoint,
                        generation,
                    });
                }
                Due::Ping(generation) => {
                    let nonce = self.next_nonce;
                    self.next_nonce += 1;
                    if let Some(up) = self.endpoints[endpoint].up_state() {
                        up.ping = Some(nonce);
                    }
                    Stats::bump(&self.stats.pings);
                    self.actions.push(Action::Send {
                        endpoint,
                        generation,
                        message: SendItem::Message(Message::Ping(Ping { nonce })),
                    });
                }
                Due::GiveUp(generation, reason) => {
                    self.drop_connection(endpoint, generation, reason, now);
                }
                Due::Dead(generation, silent) => {
                    Stats::bump(&self.stats.dead_connections);
                    tracing::warn!(
                        endpoint,
                        silent_ms = silent.as_millis() as u64,
                        "nothing received from the mint; the connection is dead"
                    );
                    self.drop_connection(
                        endpoint,
                        generation,
                        format!("nothing received for {silent:?}"),
                        now,
                    );
                }
            }
        }
        for (seq, reply) in self.shares.expired_callers(now) {
            Stats::bump(&self.stats.pending);
            let reason = self.pending_reason(seq);
            tracing::debug!(seq, reason = %reason, "a caller's deadline passed; the share stays pending");
            let _ = reply.send(Err(QuoteError::Pending(reason)));
        }
        self.shares.release_delayed(now);
        self.pump(now);
    }

    /// What `endpoint`'s connection needs at `now`.
    fn due(&self, endpoint: usize, now: Instant) -> Due {
        match &self.endpoints[endpoint].link {
            Link::Down { retry_at } if *retry_at <= now => Due::Connect,
            Link::Up(up) => {
                if let Some((at, reason)) = &up.give_up {
                    // Nothing is written on it any more: no ping.
                    return if *at <= now {
                        Due::GiveUp(up.generation, reason.clone())
                    } else {
                        Due::Nothing
                    };
                }
                let silent = now.saturating_duration_since(up.last_received);
                if silent >= self.limits.keepalive_timeout {
                    Due::Dead(up.generation, silent)
                } else if silent >= self.limits.keepalive_interval && up.ping.is_none() {
                    Due::Ping(up.generation)
                } else {
                    Due::Nothing
                }
            }
            _ => Due::Nothing,
        }
    }

    /// Why share `seq` has no answer yet, for its caller.
    fn pending_reason(&self, seq: u64) -> PendingReason {
        if let Some(reason) = self.refused_everywhere() {
            return reason;
        }
        let sent = self.shares.get(seq).is_some_and(|e| e.ever_sent);
        if sent {
            PendingReason::Timeout(self.limits.deadline)
        } else {
            // With several mints, each reason names its mint.
            let named = self.endpoints.len() > 1;
            let reasons: Vec<String> = self
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| match self.stats.endpoint(i) {
                    Some(counters) if named => format!("{}: {}", counters.address, e.last_error),
                    _ => e.last_error.clone(),
                })
                .collect();
            PendingReason::MintUnreachable {
                deadline: self.limits.deadline,
                reason: reasons.join("; "),
            }
        }
    }

    /// When [`Self::tick`] next has something to do.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        let endpoints = self.endpoints.iter().filter_map(|e| match &e.link {
            Link::Down { retry_at } => Some(*retry_at),
            Link::Connecting { .. } => None,
            Link::Up(up) => Some(match (&up.give_up, up.ping) {
                (Some((at, _)), _) => *at,
                (None, None) => up.last_received + self.limits.keepalive_interval,
                (None, Some(_)) => up.last_received + self.limits.keepalive_timeout,
            }),
        });
        endpoints.chain(self.shares.next_due()).min()
    }

    /// The client stops: every waiting caller learns that its share stays
    /// in the outbox, to be sent again at the next start.
    pub(crate) fn stop(&mut self) {
        for (_, reply) in self.shares.all_callers() {
            let _ = reply.send(Err(QuoteError::Pending(PendingReason::Stopped)));
        }
    }
}

#[cfg(test)]
mod tests;
