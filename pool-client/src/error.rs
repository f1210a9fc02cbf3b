//! Why a quote request did not produce a quote. Every request ends in a
//! quote or in one of these.

use std::time::Duration;

use mint_quote_proto::{AuthorityPublicKey, ErrorCode};

/// The reason a request got no quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The request was sent but no answer came within its deadline.
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
    /// The mint refused the request.
    #[error("the mint refused the request: {code}: {message}")]
    Rejected {
        /// The mint's code.
        code: ErrorCode,
        /// The mint's reason.
        message: String,
    },
    /// The bound on requests in flight was reached and the configuration
    /// says to fail rather than wait.
    #[error("{0} requests are already in flight (sv2_messaging.max_in_flight)")]
    Busy(usize),
    /// The mint refused this pool's key.
    #[error("the mint does not accept this pool's key: {0}")]
    NotAuthorised(String),
    /// The server at the mint address could not prove it holds the pinned
    /// mint key; nothing was sent to it.
    #[error("the server at the mint address is not the mint with key {pinned}: {reason}")]
    WrongMintKey {
        /// The key pinned in `pool.toml`.
        pinned: AuthorityPublicKey,
        /// What the handshake said.
        reason: String,
    },
    /// The request cannot be put on the wire (a field too long).
    #[error("the request cannot be encoded: {0}")]
    Invalid(String),
    /// The client is shutting down.
    #[error("the client is shutting down")]
    ShuttingDown,
}
