//! Pool authentication: how a pool proves to the mint which key it holds.
//!
//! Noise NX authenticates only the responder (the mint). After extension
//! negotiation the mint sends a fresh 32-byte random nonce
//! (`PoolAuthChallenge`); the pool answers with its x-only public key and a
//! BIP-340 Schnorr signature (`PoolAuthProof`) over
//!
//! ```text
//! SHA256( "sv2-mint-quote/pool-auth/v1" || mint_authority_key || nonce || pool_key )
//! ```
//!
//! The nonce is new for every connection, so a proof captured on one
//! connection is worthless on another. Binding the mint's authority key
//! stops a proof made for one mint from being used at another mint that
//! happens to send the same nonce. A relay that holds the mint's authority
//! keypair (the operators' sniffer) forwards the challenge and the proof
//! unchanged, and the proof still verifies at the mint.

use secp256k1::hashes::{sha256, Hash, HashEngine};
use secp256k1::schnorr::Signature;
use secp256k1::{Message, Secp256k1};

use crate::keys::{AuthorityKeypair, AuthorityPublicKey};

/// Domain-separation tag at the start of every signed message.
pub const POOL_AUTH_TAG: &[u8] = b"sv2-mint-quote/pool-auth/v1";

/// The nonce a mint sends in `PoolAuthChallenge`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Challenge(pub [u8; 32]);

impl Challenge {
    /// A fresh random challenge from the OS's secure generator.
    pub fn random() -> Self {
        use secp256k1::rand::RngCore;
        let mut nonce = [0u8; 32];
        secp256k1::rand::rngs::OsRng.fill_bytes(&mut nonce);
        Challenge(nonce)
    }
}

/// Why a proof was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The 64 bytes are not a Schnorr signature of this message by this key.
    #[error("the signature does not verify for pool key {0} and this connection's challenge")]
    BadSignature(AuthorityPublicKey),
    /// The key proved is valid but not on the mint's allow-list.
    #[error("pool key {0} is not on this mint's allow-list")]
    NotAllowed(AuthorityPublicKey),
    /// The key is allowed but the mint cannot take the connection now
    /// (at its connection limit); the pool may try again later.
    #[error("{reason}")]
    Unavailable {
        /// The code sent in `PoolAuthError`.
        code: crate::ErrorCode,
        /// Why, for people.
        reason: String,
    },
}

impl AuthError {
    /// The code a mint sends in `PoolAuthError` for this refusal.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            AuthError::BadSignature(_) | AuthError::NotAllowed(_) => {
                crate::ErrorCode::NotAuthorised
            }
            AuthError::Unavailable { code, .. } => *code,
        }
    }
}

fn signed_digest(
    mint_key: &AuthorityPublicKey,
    challenge: &Challenge,
    pool_key: &AuthorityPublicKey,
) -> Message {
    let mut engine = sha256::Hash::engine();
    engine.input(POOL_AUTH_TAG);
    engine.input(&mint_key.serialize());
    engine.input(&challenge.0);
    engine.input(&pool_key.serialize());
    Message::from_digest(sha256::Hash::from_engine(engine).to_byte_array())
}

/// The pool's side: signs `challenge` for the mint whose key it pinned.
pub fn sign_proof(
    pool: &AuthorityKeypair,
    mint_key: &AuthorityPublicKey,
    challenge: &Challenge,
) -> [u8; 64] {
    let secp = Secp256k1::signing_only();
    let digest = signed_digest(mint_key, challenge, &pool.public());
    secp.sign_schnorr(&digest, &pool.secret().keypair())
        .serialize()
}

/// The mint's side: checks that `signature` is `pool_key`'s signature over
/// this connection's `challenge`.
pub fn verify_proof(
    mint_key: &AuthorityPublicKey,
    challenge: &Challenge,
    pool_key: &AuthorityPublicKey,
    signature: &[u8; 64],
) -> Result<(), AuthError> {
    let secp = Secp256k1::verification_only();
    let digest = signed_digest(mint_key, challenge, pool_key);
    Signature::from_slice(signature)
        .and_then(|sig| secp.verify_schnorr(&sig, &digest, &pool_key.x_only()))
        .map_err(|_| AuthError::BadSignature(*pool_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_for_its_own_challenge_and_mint() {
        let mint = AuthorityKeypair::generate().public();
        let pool = AuthorityKeypair::generate();
        let challenge = Challenge::random();
        let proof = sign_proof(&pool, &mint, &challenge);
        assert_eq!(
            verify_proof(&mint, &challenge, &pool.public(), &proof),
            Ok(())
        );

        // Replayed on another connection: another challenge.
        let other_challenge = Challenge::random();
        assert_ne!(other_challenge, challenge);
        assert_eq!(
            verify_proof(&mint, &other_challenge, &pool.public(), &proof),
            Err(AuthError::BadSignature(pool.public()))
        );

        // Presented to another mint.
        let other_mint = AuthorityKeypair::generate().public();
        assert!(verify_proof(&other_mint, &challenge, &pool.public(), &proof).is_err());

        // Claimed for another pool key.
        let impostor = AuthorityKeypair::generate().public();
        assert!(verify_proof(&mint, &challenge, &impostor, &proof).is_err());

        // Garbage bytes.
        assert!(verify_proof(&mint, &challenge, &pool.public(), &[0xff; 64]).is_err());
    }
}

#[cfg(test)]
mod worked_example {
    //! The worked example of docs/protocol.md, section 3, recomputed.

    use super::*;
    use crate::AuthoritySecretKey;

    fn from_doc(label: &str) -> String {
        let doc = include_str!("../../docs/protocol.md");
        let start = doc
            .find("**Worked example**")
            .expect("the worked example in docs/protocol.md");
        let mut lines = doc[start..].lines().skip_while(|l| !l.starts_with(label));
        let first = lines.next().unwrap_or_else(|| panic!("no {label:?} line"));
        let mut value = first[label.len()..].trim().to_owned();
        // A value may go on, indented, on the next line.
        if let Some(next) = lines.next() {
            if next.starts_with("    ") && !next.trim_start().contains(' ') {
                value.push_str(next.trim());
            }
        }
        value
    }

    #[test]
    fn the_worked_example_in_the_spec_is_exact() {
        // The development keys whose secrets config/ publishes.
        let mint: AuthoritySecretKey = "wpRLddnhWjGZvYcE8m5GqMw9gRBHNNLSgnEFjbw49ktfTc3sB"
            .parse()
            .unwrap();
        let pool: AuthoritySecretKey = "autqWLmd3q4fBqhZBitdv6b2Yp8bBzc9e1pjjCQHXjQDCxXeJ"
            .parse()
            .unwrap();
        let (mint, pool) = (
            AuthorityKeypair::from_secret(mint).public(),
            AuthorityKeypair::from_secret(pool),
        );
        assert_eq!(from_doc("mint authority key"), mint.to_string());
        assert_eq!(from_doc("pool key"), pool.public().to_string());
        let xonly: Vec<String> = include_str!("../../docs/protocol.md")
            .lines()
            .filter_map(|l| l.trim().strip_prefix("x-only"))
            .map(|v| v.trim().to_owned())
            .collect();
        assert_eq!(
            xonly,
            [
                hex::encode(mint.serialize()),
                hex::encode(pool.public().serialize())
            ]
        );
        let mut nonce = [0u8; 32];
        for (i, byte) in nonce.iter_mut().enumerate() {
            *byte = i as u8;
        }
        assert_eq!(from_doc("nonce"), hex::encode(nonce));
        assert_eq!(from_doc("tag"), hex::encode(POOL_AUTH_TAG));
        let challenge = Challenge(nonce);
        let digest = signed_digest(&mint, &challenge, &pool.public());
        assert_eq!(from_doc("digest"), hex::encode(digest.as_ref()));

        // The signature in the spec verifies, and is the one BIP-340 gives
        // without auxiliary randomness.
        let signature: [u8; 64] = hex::decode(from_doc("signature"))
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            verify_proof(&mint, &challenge, &pool.public(), &signature),
            Ok(())
        );
        let secp = Secp256k1::signing_only();
        let again = secp.sign_schnorr_no_aux_rand(&digest, &pool.secret().keypair());
        assert_eq!(again.serialize(), signature);
    }
}
