//! Every number that identifies something on the wire, in one place.
//!
//! The values follow the Stratum V2 specification where it has one (the
//! common `SetupConnection` messages, the Extensions Negotiation extension)
//! and `docs/protocol.md` where this protocol adds its own.

/// `protocol` value of `SetupConnection` that selects the mint-quote protocol.
///
/// The Sv2 spec uses 0 (mining), 1 (job declaration) and 2 (template
/// distribution); 3 is this protocol's discriminant.
pub const MINT_QUOTE_PROTOCOL: u8 = 3;

/// The only protocol version this crate speaks (`min_version` /
/// `max_version` of `SetupConnection`, `used_version` of the reply).
pub const PROTOCOL_VERSION: u16 = 2;

/// Extension type of the common messages (`SetupConnection` and its replies).
pub const EXTENSION_TYPE_COMMON: u16 = 0x0000;

/// Extension type of the spec's Extensions Negotiation extension.
pub const EXTENSION_TYPE_NEGOTIATION: u16 = 0x0001;

/// Extension type that carries every mint-quote message.
///
/// Chosen from the spec's experimental range `0x4000..=0x7fff`; the two bytes
/// spell "MQ" in ASCII (0x4d, 0x51), which makes captures easy to read.
pub const EXTENSION_TYPE_MINT_QUOTE: u16 = 0x4d51;

/// The `channel_msg` bit of every message of this protocol.
///
/// A set bit means the payload starts with a `U32 channel_id`; the link is
/// point to point and no message carries one, so the bit is always clear.
pub const CHANNEL_MSG: bool = false;

/// Message types under [`EXTENSION_TYPE_COMMON`].
pub mod common {
    /// `SetupConnection`, initiator to responder.
    pub const SETUP_CONNECTION: u8 = 0x00;
    /// `SetupConnection.Success`, responder to initiator.
    pub const SETUP_CONNECTION_SUCCESS: u8 = 0x01;
    /// `SetupConnection.Error`, responder to initiator.
    pub const SETUP_CONNECTION_ERROR: u8 = 0x02;
}

/// Message types under [`EXTENSION_TYPE_NEGOTIATION`].
pub mod negotiation {
    /// `RequestExtensions`, client to server.
    pub const REQUEST_EXTENSIONS: u8 = 0x00;
    /// `RequestExtensions.Success`, server to client.
    pub const REQUEST_EXTENSIONS_SUCCESS: u8 = 0x01;
    /// `RequestExtensions.Error`, server to client.
    pub const REQUEST_EXTENSIONS_ERROR: u8 = 0x02;
}

/// Message types under [`EXTENSION_TYPE_MINT_QUOTE`].
pub mod mint_quote {
    /// `MintQuoteRequest`, pool to mint.
    pub const MINT_QUOTE_REQUEST: u8 = 0x80;
    /// `MintQuoteResponse`, mint to pool.
    pub const MINT_QUOTE_RESPONSE: u8 = 0x81;
    /// `MintQuoteError`, mint to pool.
    pub const MINT_QUOTE_ERROR: u8 = 0x82;
    /// `ActiveKeyset`, mint to pool: the keyset quotes are issued under now.
    pub const ACTIVE_KEYSET: u8 = 0x83;
    /// `PoolAuthChallenge`, mint to pool: a fresh nonce to sign.
    pub const POOL_AUTH_CHALLENGE: u8 = 0x84;
    /// `PoolAuthProof`, pool to mint: the pool's key and its signature.
    pub const POOL_AUTH_PROOF: u8 = 0x85;
    /// `PoolAuthSuccess`, mint to pool.
    pub const POOL_AUTH_SUCCESS: u8 = 0x86;
    /// `PoolAuthError`, mint to pool; the mint closes the connection after it.
    pub const POOL_AUTH_ERROR: u8 = 0x87;
    /// `Ping`, either way: answer with a `Pong`.
    pub const PING: u8 = 0x88;
    /// `Pong`, either way: the answer to a `Ping`.
    pub const PONG: u8 = 0x89;
}

/// Largest payload, in bytes, a peer may declare in one frame unless
/// configured otherwise.
///
/// The biggest message of this protocol is well under 2 KiB; 16 KiB leaves
/// room for growth while keeping what a hostile peer can make us buffer small.
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 16 * 1024;

/// Upper bound for a configured maximum payload: the plaintext that fits in
/// one Noise chunk (65,519 bytes), so that every frame a reader accepts is
/// decrypted in place with one AEAD operation. The reader checks the length
/// a frame's header declares against the configured limit before it reads
/// any of the payload (see `transport::FrameReader`).
pub const MAX_PAYLOAD_LEN_LIMIT: usize =
    framing_sv2::SV2_FRAME_CHUNK_SIZE - noise_sv2::AEAD_MAC_LEN;

/// Smallest configurable maximum payload: every valid message of this
/// protocol fits (the largest, a `SetupConnection` or a
/// `MintQuoteRequest` with every text at 255 bytes, is about 1.3 KiB).
pub const MIN_PAYLOAD_LEN_LIMIT: usize = 2048;
