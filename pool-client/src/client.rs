//! [`MintQuoteClient`]: the pool's persistent connections to its mints,
//! and the outbox behind them.
//!
//! The pool calls [`MintQuoteClient::request_quote`] once per accepted
//! share. The share is stored in the outbox first; then the call waits for
//! the mint's answer, up to the request deadline. Whatever happens after
//! that, the share is not lost: the client keeps sending it (across lost
//! connections, a dead mint, a pool restart) until the mint answers, and
//! an answer the caller did not wait for comes through
//! [`MintQuoteClient::next_settled`]. Every share the client takes ends,
//! for the pool, in exactly one quote or one definite refusal.
//!
//! With several mints ([`ClientConfig::mints`]) the client keeps one
//! authenticated connection to each and sends each share to the healthy
//! mint with the fewest requests in flight (ties in turn). When a mint's
//! connection dies, its unanswered shares go at once to the other healthy
//! mints, oldest first; a mint that answers `shutting-down` gets no more
//! shares on that connection. [`MintQuoteClient::stats`] gives the totals
//! and each mint's part ([`crate::stats::EndpointSnapshot`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mint_quote_config::BusyPolicy;
use mint_quote_proto::{ActiveKeyset, Message};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ClientConfig;
use crate::error::{PendingReason, QuoteError};
use crate::link::{Command, Gauges, Link, Outputs};
use crate::machine::{Limits, Machine};
use crate::outbox::{Outbox, StoreError};
use crate::settled::{Settled, SettledQueue};
use crate::share::{Quote, Share};
use crate::stats::{Stats, StatsSnapshot};

/// Shares being handed to the link at once, at most (callers wait beyond).
const COMMAND_QUEUE: usize = 1024;

/// The pool's client of the mint. Cheap to share behind an `Arc`; all
/// methods take `&self`.
pub struct MintQuoteClient {
    commands: mpsc::Sender<Command>,
    config: Arc<ClientConfig>,
    outbox: Outbox,
    settled: Arc<SettledQueue>,
    keyset: watch::Receiver<Option<ActiveKeyset>>,
    connected: watch::Receiver<bool>,
    failed: watch::Receiver<Option<String>>,
    stats: Arc<Stats>,
    gauges: Arc<Gauges>,
    shutdown: CancellationToken,
}

impl MintQuoteClient {
    /// Opens the outbox and starts the client: it connects in the
    /// background, sends again every share the outbox still holds, and
    /// hands answers that were waiting to [`Self::next_settled`]. Must be
    /// called within a tokio runtime.
    pub fn start(config: ClientConfig) -> Result<MintQuoteClient, StoreError> {
        for used in config.published_keys() {
            tracing::warn!("{used}; use it only against a mint on this machine");
        }
        let config = Arc::new(config);
        let (outbox, records) = Outbox::open(&config.outbox)?;
        let stats = Arc::new(Stats::new(config.mints.iter().map(|m| m.address.clone())));
        let now = Instant::now();
        let mut machine = Machine::new(
            Limits {
                deadline: config.request_deadline,
                max_in_flight: config.max_in_flight.max(1),
                keepalive_interval: config.keepalive_interval,
                keepalive_timeout: config.keepalive_timeout,
                reconnect_initial: config.reconnect_initial,
                reconnect_max: config.reconnect_max,
            },
            config.mints.len(),
            stats.clone(),
            now,
        );
        let settled = Arc::new(SettledQueue::default());
        let (mut resent, mut answered) = (0, 0);
        for (seq, record) in records {
            match record.outcome {
                None => {
                    machine.restore(seq, record.share, now);
                    resent += 1;
                }
                Some(outcome) => {
                    settled.push(Settled {
                        share: record.share,
                        outcome,
                        seq,
                    });
                    answered += 1;
                }
            }
        }
        if resent + answered > 0 {
            tracing::info!(
                resent,
                answered,
                "the outbox held shares from an earlier run: unanswered ones are sent again, answered ones wait in next_settled"
            );
        }
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let (keyset_tx, keyset) = watch::channel(None);
        let (connected_tx, connected) = watch::channel(false);
        let (failed_tx, failed) = watch::channel(None);
        let gauges = Arc::new(Gauges::default());
        let shutdown = CancellationToken::new();
        let link = Link::new(
            config.clone(),
            machine,
            receiver,
            outbox.clone(),
            Outputs {
                keyset: keyset_tx,
                connected: connected_tx,
                settled: settled.clone(),
                gauges: gauges.clone(),
            },
            shutdown.clone(),
        );
        tokio::spawn(supervise(
            tokio::spawn(link.run()),
            failed_tx,
            shutdown.clone(),
        ));
        Ok(MintQuoteClient {
            commands,
            config,
            outbox,
            settled,
            keyset,
            connected,
            failed,
            stats,
            gauges,
            shutdown,
        })
    }

    /// Asks the mint for a paid quote for `share`. Resolves with the quote,
    /// the mint's definite refusal, or [`QuoteError::Pending`] at the
    /// deadline (the share's outcome then comes through
    /// [`Self::next_settled`]), or an error that says the client did not
    /// take the share. Never hangs past the deadline.
    pub async fn request_quote(&self, share: &Share) -> Result<Quote, QuoteError> {
        if let Some(reason) = self.failed.borrow().clone() {
            return Err(QuoteError::Failed(reason));
        }
        if self.shutdown.is_cancelled() {
            return Err(QuoteError::ShuttingDown);
        }
        self.check_fits(share)?;
        let deadline = Instant::now() + self.config.request_deadline;
        let wait_for_room = match self.config.when_busy {
            BusyPolicy::Wait => Some(deadline),
            BusyPolicy::Fail => None,
        };
        let seq = self.outbox.store(share, wait_for_room).await?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Submit {
            seq,
            share: share.clone(),
            reply,
        };
        if self.commands.send(command).await.is_err() {
            // Stored, but the link is gone: the next start sends it.
            return Err(self.gone());
        }
        // The link answers every caller by its deadline, or as it stops.
        answer.await.unwrap_or_else(|_| Err(self.gone()))
    }

    /// Why a stored share cannot be followed now.
    fn gone(&self) -> QuoteError {
        match self.failed.borrow().clone() {
            Some(reason) => QuoteError::Failed(reason),
            None => QuoteError::Pending(PendingReason::Stopped),
        }
    }

    /// Refuses, before storing it, a share the wire or the mint's frame
    /// limit cannot carry (it could never be sent).
    fn check_fits(&self, share: &Share) -> Result<(), QuoteError> {
        let frame = Message::MintQuoteRequest(share.to_request(1))
            .to_frame()
            .map_err(|e| QuoteError::Invalid(e.to_string()))?;
        let limit = self.config.transport.max_payload_len;
        if frame.payload().len() > limit {
            return Err(QuoteError::Invalid(format!(
                "the request is {} bytes, over the frame limit of {limit} (sv2_messaging.max_payload_len)",
                frame.payload().len()
            )));
        }
        Ok(())
    }

    /// The next answer that came when no caller was waiting for it (after
    /// a deadline, for a cancelled call, or for a share sent again after a
    /// restart), oldest first; waits for one. Take each with
    /// [`Self::acknowledge`] once the pool has recorded it, or it comes
    /// again after the next restart. Cancel-safe.
    pub async fn next_settled(&self) -> Settled {
        self.settled.pop().await
    }

    /// [`Self::next_settled`] without waiting.
    pub fn try_next_settled(&self) -> Option<Settled> {
        self.settled.try_pop()
    }

    /// The pool has recorded `settled`: it leaves the outbox.
    pub async fn acknowledge(&self, settled: &Settled) {
        self.outbox.forget(settled.seq).await;
    }

    /// The mint's active keyset, once announced.
    pub fn active_keyset(&self) -> Option<ActiveKeyset> {
        self.keyset.borrow().clone()
    }

    /// Waits up to `timeout` for the first keyset announcement.
    pub async fn wait_for_keyset(&self, timeout: Duration) -> Option<ActiveKeyset> {
        let mut keyset = self.keyset.clone();
        let found = tokio::time::timeout(timeout, keyset.wait_for(|k| k.is_some())).await;
        // Bound to a name so the borrow of `keyset` ends before it drops.
        #[allow(clippy::let_and_return)]
        let keyset = found.ok().and_then(|r| r.ok()).and_then(|k| k.clone());
        keyset
    }

    /// Whether a connection (to any mint) is up now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits up to `timeout` for a connection (to any mint) to be up.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut connected = self.connected.clone();
        let up = tokio::time::timeout(timeout, connected.wait_for(|c| *c)).await;
        matches!(up, Ok(Ok(_)))
    }

    /// Why the client stopped working, if its background task died; every
    /// call then fails with [`QuoteError::Failed`].
    pub fn failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }

    /// The client's counters now: totals, and each mint's in
    /// [`StatsSnapshot::endpoints`].
    pub fn stats(&self) -> StatsSnapshot {
        let mut snapshot = self.stats.snapshot();
        snapshot.in_flight = self.gauges.in_flight.load(Ordering::Relaxed);
        snapshot.outstanding = self.gauges.outstanding.load(Ordering::Relaxed);
        snapshot.settled_waiting = self.settled.len() as u64;
        snapshot.outbox_held = self.outbox.held() as u64;
        snapshot.failed = self.failure();
        snapshot
    }

    /// Stops the client: calls in flight end with
    /// [`PendingReason::Stopped`] (their shares stay in the outbox, to be
    /// sent at the next start) and the connection is closed.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for MintQuoteClient {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Watches the link task: if it panics, or ends while the client is not
/// shutting down, the client reports the failure on every call and in
/// `stats()` instead of hanging half-alive.
async fn supervise(
    link: tokio::task::JoinHandle<()>,
    failed: watch::Sender<Option<String>>,
    shutdown: CancellationToken,
) {
    let reason = match link.await {
        Ok(()) if shutdown.is_cancelled() => return,
        Ok(()) => "the client's link task stopped".to_owned(),
        Err(e) if e.is_panic() => format!("the client's link task panicked: {e}"),
        Err(e) => format!("the client's link task ended: {e}"),
    };
    tracing::error!(%reason, "the mint quote client failed");
    failed.send_replace(Some(reason));
}
