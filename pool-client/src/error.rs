//! Why a call gave no quote. Every share handed to the client ends, for
//! the pool, in one quote or one definite refusal: either the call returns
//! it, or the call says the share is [pending](QuoteError::Pending) and
//! its outcome comes later through [`crate::MintQuoteClient::next_settled`],
//! or the call says the client did not take the share at all.

use std::time::Duration;

use mint_quote_proto::{AuthorityPublicKey, ErrorCode};

use crate::outbox::OutboxError;

/// Why a share is still pending when its call returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PendingReason {
    /// The request was sent but no answer came within the deadline.
    #[error("no answer from the mint within {0:?}")]
    Timeout(Duration),
    /// The mint could not be reached before the deadline.
    #[error("the mint was unreachable for {deadline:?}: {reason}")]
    MintUnreachable {
        /// The request's deadline.
        deadline: Duration,
        /// The last connection error.
        reason: String,
    },
    /// The server at the mint address could not prove it holds the pinned
    /// mint key; nothing is sent to it until it can.
    #[error("the server at the mint address is not the mint with key {pinned}: {reason}")]
    WrongMintKey {
        /// The key pinned in `pool.toml`.
        pinned: AuthorityPublicKey,
        /// What the handshake said.
        reason: String,
    },
    /// The mint does not accept this pool's key (yet).
    #[error("the mint does not accept this pool's key: {0}")]
    NotAuthorised(String),
    /// The client was stopped with the share stored; it is sent again
    /// when the client next starts on the same outbox.
    #[error("the client stopped; the share is sent again at its next start")]
    Stopped,
}

/// The reason a call got no quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The mint refused the share for good (a code that is not retryable).
    #[error("the mint refused the request: {code}: {message}")]
    Rejected {
        /// The mint's code.
        code: ErrorCode,
        /// The mint's reason.
        message: String,
    },
    /// Not answered yet. The client holds the share (in its outbox) and
    /// keeps sending it until the mint answers; the outcome then comes
    /// through [`crate::MintQuoteClient::next_settled`].
    #[error("pending: {0}; the share stays in the outbox and its outcome will come through next_settled")]
    Pending(PendingReason),
    /// The outbox is full and the configuration says not to wait; the
    /// client did not take the share.
    #[error("not taken: {0}")]
    Outbox(#[from] OutboxError),
    /// The request cannot be put on the wire (a field too long); the
    /// client did not take the share.
    #[error("not taken: the request cannot be encoded: {0}")]
    Invalid(String),
    /// The client is shutting down; it did not take the share.
    #[error("not taken: the client is shutting down")]
    ShuttingDown,
    /// The client's background task died; it takes no share until the
    /// pool restarts it.
    #[error("not taken: the client failed: {0}")]
    Failed(String),
}

impl QuoteError {
    /// Whether the client holds the share, so that its outcome will come
    /// later through [`crate::MintQuoteClient::next_settled`].
    pub fn is_pending(&self) -> bool {
        matches!(self, QuoteError::Pending(_))
    }

    /// Whether the share is finished: refused by the mint for good.
    pub fn is_refusal(&self) -> bool {
        matches!(self, QuoteError::Rejected { .. })
    }
}
