//! Answers that came after their caller stopped waiting (or for shares the
//! outbox sent again after a restart): the pool takes them from here, so
//! that every share ends, for the pool, in one known quote or one definite
//! refusal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use mint_quote_proto::ErrorCode;
use tokio::sync::Notify;

use crate::share::{Quote, Share};

/// The mint's definite refusal of a share: a code that is not retryable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The mint's code.
    pub code: ErrorCode,
    /// The mint's reason.
    pub message: String,
}

/// How a share ended: its quote, or the mint's refusal.
pub type Outcome = Result<Quote, Refusal>;

/// A share whose outcome arrived when no caller was waiting for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The share.
    pub share: Share,
    /// Its quote, or the mint's refusal.
    pub outcome: Outcome,
    /// The outbox's number for it, for [`crate::MintQuoteClient::acknowledge`].
    pub(crate) seq: u64,
}

/// Settled answers waiting for the pool, oldest first.
#[derive(Default)]
pub(crate) struct SettledQueue {
    items: Mutex<VecDeque<Settled>>,
    arrived: Notify,
}

impl SettledQueue {
    fn items(&self) -> MutexGuard<'_, VecDeque<Settled>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, settled: Settled) {
        self.items().push_back(settled);
        self.arrived.notify_waiters();
    }

    pub(crate) fn try_pop(&self) -> Option<Settled> {
        self.items().pop_front()
    }

    /// The next settled answer, waiting for one. Cancel-safe: nothing is
    /// taken until it returns.
    pub(crate) async fn pop(self: &Arc<Self>) -> Settled {
        loop {
            let arrived = self.arrived.notified();
            if let Some(settled) = self.try_pop() {
                return settled;
            }
            arrived.await;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items().len()
    }
}
