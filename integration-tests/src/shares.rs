//! Shares, locking keys and quote requests for tests.

use std::sync::atomic::{AtomicU64, Ordering};

use mint_quote_proto::{HeaderHash, KeysetId, LockingKey, MintQuoteRequest, Unit};

static NEXT_SHARE: AtomicU64 = AtomicU64::new(1);

/// A header hash that no other call in this process returns, and that
/// differs between processes.
pub fn fresh_share() -> HeaderHash {
    let n = NEXT_SHARE.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    bytes[31] = 0x5a;
    // Byte 31 is set, so the hash is never all zeroes.
    HeaderHash::new(bytes).unwrap_or_else(|_| unreachable!())
}

/// A fresh locking key and its secret.
pub fn locking_key() -> (secp256k1::SecretKey, LockingKey) {
    let secp = secp256k1::Secp256k1::new();
    let (secret, public) = secp.generate_keypair(&mut secp256k1::rand::thread_rng());
    (secret, LockingKey::from(public))
}

/// A request for a fresh share of `amount` under `keyset`.
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
