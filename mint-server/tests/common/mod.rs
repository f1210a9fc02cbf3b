//! Shared by the mint-server tests: settings on a fresh data directory and
//! requests with fresh shares.

#![allow(dead_code)] // each test file uses a part

use std::sync::atomic::{AtomicU64, Ordering};

use mint_quote_proto::{HeaderHash, KeysetId, LockingKey, MintQuoteRequest, Unit};
use mint_server::config::Settings;

pub const MINT_TOML: &str = include_str!("../../../config/mint.toml");
pub const SHARED_TOML: &str = include_str!("../../../config/shared/pool.toml");

/// The example settings with the data directory moved to `dir`, listeners
/// on free ports, and `extra` applied as (from, to) replacements.
pub fn settings(dir: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let mut mint = MINT_TOML
        .replace(
            "data_dir = \"data/mint\"",
            &format!("data_dir = {:?}", dir.display().to_string()),
        )
        .replace("listen = \"127.0.0.1:3338\"", "listen = \"127.0.0.1:0\"");
    let mut shared = SHARED_TOML.replace("127.0.0.1:34260", "127.0.0.1:0");
    for (from, to) in extra {
        mint = mint.replace(from, to);
        shared = shared.replace(from, to);
    }
    Settings::parse(&mint, &shared).expect("test settings")
}

static NEXT_SHARE: AtomicU64 = AtomicU64::new(1);

/// A header hash no other call in this process returns.
pub fn fresh_share() -> HeaderHash {
    let n = NEXT_SHARE.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes[8..16].copy_from_slice(&std::process::id().to_le_bytes().repeat(2));
    bytes[31] = 0x5a;
    HeaderHash::new(bytes).expect("non-zero")
}

/// A valid locking key (a fresh secret's public key) and its secret.
pub fn locking_key() -> (secp256k1::SecretKey, LockingKey) {
    let secp = secp256k1::Secp256k1::new();
    let (secret, public) = secp.generate_keypair(&mut secp256k1::rand::thread_rng());
    (secret, LockingKey::from(public))
}

/// A request for a fresh share under `keyset`.
pub fn request(request_id: u32, amount: u64, keyset: &KeysetId) -> MintQuoteRequest {
    MintQuoteRequest {
        request_id,
        amount,
        unit: Unit::hash(),
        header_hash: fresh_share(),
        description: None,
        locking_key: locking_key().1,
        keyset_id: keyset.clone(),
    }
}
