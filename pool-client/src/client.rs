//! [`MintQuoteClient`]: the pool's one persistent connection to the mint.
//!
//! The pool calls [`MintQuoteClient::request_quote`] once per accepted
//! share. The call never waits on the network to start: the connection is
//! kept up (and rebuilt, with backoff) by a background task, and each call
//! waits only for its own answer, up to its deadline. Answers are matched to
//! requests by `request_id` alone, so many requests share the connection and
//! may be answered in any order.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mint_quote_config::dev_keys::{self, PublishedKeyUse};
use mint_quote_config::BusyPolicy;
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{ActiveKeyset, AuthorityKeypair, AuthorityPublicKey, Message};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::QuoteError;
use crate::link::{Command, Link};
use crate::share::{Quote, Share};
use crate::stats::{Stats, StatsSnapshot};

/// Everything the client needs to know.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the mint's Sv2 listener.
    pub mint_address: String,
    /// The mint's authority key; any other server is refused.
    pub mint_key: AuthorityPublicKey,
    /// This pool's key, which the mint must allow.
    pub pool_keypair: AuthorityKeypair,
    /// This pool's name, for the mint's logs.
    pub device_id: String,
    /// Handshake timeout and frame limit.
    pub transport: TransportConfig,
    /// Time one request may take, from the call to its answer.
    pub request_deadline: Duration,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// What a call does when `max_in_flight` is reached.
    pub when_busy: BusyPolicy,
    /// First reconnect delay.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
}

impl ClientConfig {
    /// The development keys (published in the repository) this
    /// configuration uses: the pool's own key, or the mint key it pins
    /// (then anyone can pose as the mint).
    pub fn published_keys(&self) -> Vec<PublishedKeyUse> {
        let mut uses = Vec::new();
        if dev_keys::is_published(&self.pool_keypair.public()) {
            uses.push(PublishedKeyUse {
                key: "pool_secret_key".into(),
                public_key: self.pool_keypair.public(),
            });
        }
        if dev_keys::is_published(&self.mint_key) {
            uses.push(PublishedKeyUse {
                key: "sv2_messaging.mint_authority_pubkey".into(),
                public_key: self.mint_key,
            });
        }
        uses
    }
}

/// The pool's client of the mint. Cheap to share behind an `Arc`; all
/// methods take `&self`.
pub struct MintQuoteClient {
    commands: mpsc::Sender<Command>,
    slots: Arc<Semaphore>,
    config: Arc<ClientConfig>,
    keyset: watch::Receiver<Option<ActiveKeyset>>,
    connected: watch::Receiver<bool>,
    stats: Arc<Stats>,
    next_id: AtomicU32,
    shutdown: CancellationToken,
}

impl MintQuoteClient {
    /// Starts the client. It connects in the background; requests made
    /// before the connection is up wait for it (up to their deadline).
    pub fn start(config: ClientConfig) -> MintQuoteClient {
        for used in config.published_keys() {
            tracing::warn!("{used}; use it only against a mint on this machine");
        }
        let config = Arc::new(config);
        // Callers hold a slot while their command is queued, so the queue
        // never holds more than `max_in_flight` commands.
        let (commands, receiver) = mpsc::channel(config.max_in_flight.max(1));
        let (keyset_tx, keyset) = watch::channel(None);
        let (connected_tx, connected) = watch::channel(false);
        let stats = Arc::new(Stats::default());
        let shutdown = CancellationToken::new();
        let link = Link::new(
            config.clone(),
            receiver,
            keyset_tx,
            connected_tx,
            stats.clone(),
            shutdown.clone(),
        );
        tokio::spawn(link.run());
        MintQuoteClient {
            commands,
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
            config,
            keyset,
            connected,
            stats,
            next_id: AtomicU32::new(1),
            shutdown,
        }
    }

    /// Asks the mint for a paid quote for `share`. Resolves with the quote
    /// or with the reason there is none; never hangs past the deadline.
    pub async fn request_quote(&self, share: &Share) -> Result<Quote, QuoteError> {
        let started = Instant::now();
        let deadline = started + self.config.request_deadline;
        if self.shutdown.is_cancelled() {
            return Err(QuoteError::ShuttingDown);
        }
        let slot = match self.config.when_busy {
            BusyPolicy::Fail => self
                .slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| QuoteError::Busy(self.config.max_in_flight))?,
            BusyPolicy::Wait => {
                match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(_)) => return Err(QuoteError::ShuttingDown),
                    Err(_) => return Err(QuoteError::Busy(self.config.max_in_flight)),
                }
            }
        };
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = share.to_request(request_id);
        let frame = Message::MintQuoteRequest(request.clone())
            .to_frame()
            .map_err(|e| QuoteError::Invalid(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Submit {
            request,
            frame,
            deadline,
            reply,
            slot,
        };
        if self.commands.send(command).await.is_err() {
            return Err(QuoteError::ShuttingDown);
        }
        // The link answers every request by its deadline; it is gone only
        // if the client is shutting down.
        answer.await.unwrap_or(Err(QuoteError::ShuttingDown))
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

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits up to `timeout` for the connection to be up.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut connected = self.connected.clone();
        let up = tokio::time::timeout(timeout, connected.wait_for(|c| *c)).await;
        matches!(up, Ok(Ok(_)))
    }

    /// The client's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        let in_flight = self.config.max_in_flight - self.slots.available_permits();
        self.stats.snapshot(in_flight as u64)
    }

    /// Stops the client: requests in flight end with
    /// [`QuoteError::ShuttingDown`] and the connection is closed.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for MintQuoteClient {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
