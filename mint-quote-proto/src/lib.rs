//! The wire protocol between a mining pool and the Cashu mint that pays its
//! miners.
//!
//! Standard Stratum V2 frames over a Noise NX channel. After the common
//! `SetupConnection` (protocol 3) and the spec's extension negotiation, the
//! pool authenticates with its own key and then sends `MintQuoteRequest`s;
//! the mint answers each with a `MintQuoteResponse` or a `MintQuoteError`
//! carrying the same `request_id`. `docs/protocol.md` is the specification;
//! its hex examples are tests of this crate.
//!
//! This crate knows nothing of CDK, Redis or configuration files.
#![deny(missing_docs)]

pub mod constants;
pub mod error_code;
pub mod frame;
pub mod json;
pub mod keys;
pub mod message;
pub mod pool_auth;
pub mod retry;
pub mod setup;
pub mod transport;
pub mod values;

pub use error_code::ErrorCode;
pub use frame::Frame;
pub use keys::{AuthorityKeypair, AuthorityPublicKey, AuthoritySecretKey, KeyError};
pub use message::{
    ActiveKeyset, DecodeError, Direction, EncodeError, Message, MessageInfo, MintQuoteError,
    MintQuoteRequest, MintQuoteResponse, Ping, Pong, PoolAuthChallenge, PoolAuthError,
    PoolAuthProof, PoolAuthSuccess, RequestExtensions, RequestExtensionsError,
    RequestExtensionsSuccess, SetupConnection, SetupConnectionError, SetupConnectionSuccess,
};
pub use retry::{Backoff, Retry};
pub use values::{HeaderHash, KeysetId, LockingKey, QuoteState, Unit, ValueError};
