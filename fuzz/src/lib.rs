//! What the transport and setup targets share: a runtime, the mint's key,
//! a Noise channel pair over an in-memory pipe, and a reader of the
//! fuzzer's input.

use std::sync::OnceLock;

use mint_quote_proto::transport::{self, Channel, TransportConfig};
use mint_quote_proto::AuthorityKeypair;
use tokio::io::DuplexStream;

/// One current-thread runtime for every run of the process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()
            .expect("a runtime")
    })
}

/// The mint's key, the same in every run.
pub fn mint() -> &'static AuthorityKeypair {
    static MINT: OnceLock<AuthorityKeypair> = OnceLock::new();
    MINT.get_or_init(AuthorityKeypair::generate)
}

/// A channel's two ends: the mint's (reading with `limit`) and the peer's.
pub struct Pair {
    /// The mint's end.
    pub mint: Channel<DuplexStream>,
    /// The peer's end.
    pub peer: Channel<DuplexStream>,
}

/// Completes a real Noise handshake over an in-memory pipe.
pub async fn channel(limit: usize) -> Pair {
    let (peer_io, mint_io) = tokio::io::duplex(1 << 20);
    let mint_config = TransportConfig {
        max_payload_len: limit,
        ..TransportConfig::default()
    };
    let peer_config = TransportConfig {
        max_payload_len: mint_quote_proto::constants::MAX_PAYLOAD_LEN_LIMIT,
        ..TransportConfig::default()
    };
    let mint_key = mint().public();
    let (mint_end, peer_end) = tokio::join!(
        transport::accept(mint_io, mint(), &mint_config),
        transport::connect(peer_io, &mint_key, &peer_config)
    );
    Pair {
        mint: mint_end.expect("the handshake between two honest ends"),
        peer: peer_end.expect("the handshake between two honest ends"),
    }
}

/// Takes bytes off the front of the fuzzer's input.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// The next byte, if any.
    pub fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    /// A little-endian u16, if two bytes are left.
    pub fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2);
        (b.len() == 2).then(|| u16::from_le_bytes([b[0], b[1]]))
    }
}
