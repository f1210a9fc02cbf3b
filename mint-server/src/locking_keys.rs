//! Locking keys parsed once per key, not once per request.
//!
//! Parsing a compressed key into CDK's type decompresses the point (a
//! field square root): about 47,000 instructions, more than the rest of
//! the mint's work on a request outside the database. A miner locks all
//! its shares to one key, so a pool's requests repeat a few keys many
//! times; the parsed keys are kept in a bounded map.

use std::collections::HashMap;
use std::sync::Mutex;

use cdk::nuts::PublicKey;
use mint_quote_proto::LockingKey;

/// How many parsed keys are kept. When full the map starts again empty:
/// simple, bounded (about 0.5 MiB), and a pool with more active miners
/// than this only parses as often as it did without the map.
const CAPACITY: usize = 4096;

/// Parsed locking keys, shared by every quote path.
#[derive(Default)]
pub struct LockingKeys(Mutex<HashMap<[u8; 33], PublicKey>>);

impl LockingKeys {
    /// `key` as CDK's public key, or `None` when its bytes are not a point
    /// on the curve (such keys are not kept).
    pub fn parse(&self, key: &LockingKey) -> Option<PublicKey> {
        if let Some(parsed) = self.lock().get(key.as_bytes()) {
            return Some(*parsed);
        }
        // Parsed outside the lock: other requests need not wait for it.
        let parsed = PublicKey::from_slice(key.as_bytes()).ok()?;
        let mut keys = self.lock();
        if keys.len() >= CAPACITY {
            keys.clear();
        }
        keys.insert(*key.as_bytes(), parsed);
        Some(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 33], PublicKey>> {
        // The map holds only parsed keys: a panic elsewhere cannot leave it
        // wrong, so a poisoned lock is used as it is.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATOR: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn a_key_is_parsed_and_kept_an_invalid_one_refused() {
        let keys = LockingKeys::default();
        let key: LockingKey = GENERATOR.parse().unwrap();
        let parsed = keys.parse(&key).unwrap();
        assert_eq!(parsed.to_hex(), GENERATOR);
        assert_eq!(keys.parse(&key), Some(parsed));
        assert_eq!(keys.lock().len(), 1);

        let mut off_curve = [0u8; 33];
        off_curve[0] = 2;
        off_curve[32] = 5;
        let off_curve = LockingKey::from_slice(&off_curve).unwrap();
        assert_eq!(keys.parse(&off_curve), None);
        assert_eq!(keys.lock().len(), 1, "an invalid key is not kept");
    }

    #[test]
    fn the_map_never_holds_more_than_its_capacity() {
        let keys = LockingKeys::default();
        for _ in 0..CAPACITY + 10 {
            let public = cdk::nuts::SecretKey::generate().public_key();
            let key = LockingKey::from_slice(&public.to_bytes()).unwrap();
            assert_eq!(keys.parse(&key), Some(public));
            assert!(keys.lock().len() <= CAPACITY);
        }
    }
}
