//! `mint-quote-sniffer`: a relay between a pool and a mint that prints
//! every frame it forwards.
//!
//! Noise traffic cannot be read passively (the session keys are ephemeral),
//! so the sniffer sits in the middle: it answers the pool's handshake with
//! an authority keypair it is given and opens its own Noise session to the
//! mint. Given the mint's own keypair, the pool needs no configuration
//! change besides the address, and pool authentication still works: the
//! challenge and the proof cross unchanged. Every frame is relayed exactly
//! as received, decodable or not.
#![deny(missing_docs)]

pub mod describe;
pub mod relay;

pub use describe::{Direction, Format, Printer};
pub use relay::{serve, SnifferConfig};
