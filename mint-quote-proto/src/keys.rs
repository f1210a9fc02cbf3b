//! Sv2 authority keys in the form the Sv2 specification and SRI configs
//! write them.
//!
//! A public key is the base58check encoding of `[0x01, 0x00]` (the key
//! version, U16 little-endian) followed by the 32-byte x-only key. A secret
//! key is the base58check encoding of its 32 bytes. The mint's authority key
//! signs its Noise certificate; a pool's key signs its authentication proof
//! (see [`crate::pool_auth`]). Both use these types.

use std::fmt;
use std::str::FromStr;

use secp256k1::{Keypair, Secp256k1, SecretKey, XOnlyPublicKey};

/// Version prefix of an encoded public key: version 1 as a little-endian U16.
const PUBLIC_KEY_VERSION: [u8; 2] = [1, 0];

/// A key string that does not decode to a key, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base58, or the checksum does not match (a typo).
    #[error("not a base58check string: {0}")]
    Base58(String),
    /// Decoded to the wrong number of bytes.
    #[error("expected {expected} bytes after base58check decoding, got {actual}")]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
    /// A public key whose version prefix is not `[1, 0]`.
    #[error("unsupported public key version {0:02x?}; expected [01, 00]")]
    Version([u8; 2]),
    /// The bytes are not a valid secp256k1 key.
    #[error("not a valid secp256k1 key: {0}")]
    Invalid(String),
    /// A secret key and public key given together do not belong together.
    #[error("the secret key does not belong to the public key {0}")]
    Mismatch(AuthorityPublicKey),
}

fn decode_base58check(s: &str, expected: usize) -> Result<Vec<u8>, KeyError> {
    let bytes = bs58::decode(s.trim())
        .with_check(None)
        .into_vec()
        .map_err(|e| KeyError::Base58(e.to_string()))?;
    if bytes.len() != expected {
        return Err(KeyError::Length {
            expected,
            actual: bytes.len(),
        });
    }
    Ok(bytes)
}

/// An Sv2 authority public key (x-only secp256k1).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorityPublicKey(XOnlyPublicKey);

impl AuthorityPublicKey {
    /// The x-only key.
    pub fn x_only(&self) -> XOnlyPublicKey {
        self.0
    }

    /// The 32 bytes of the x-only key.
    pub fn serialize(&self) -> [u8; 32] {
        self.0.serialize()
    }

    /// Parses the 32 bytes of an x-only key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        XOnlyPublicKey::from_slice(bytes)
            .map(AuthorityPublicKey)
            .map_err(|e| KeyError::Invalid(e.to_string()))
    }
}

impl From<XOnlyPublicKey> for AuthorityPublicKey {
    fn from(key: XOnlyPublicKey) -> Self {
        AuthorityPublicKey(key)
    }
}

impl FromStr for AuthorityPublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_base58check(s, 34)?;
        let version = [bytes[0], bytes[1]];
        if version != PUBLIC_KEY_VERSION {
            return Err(KeyError::Version(version));
        }
        AuthorityPublicKey::from_slice(&bytes[2..])
    }
}

impl fmt::Display for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&PUBLIC_KEY_VERSION);
        bytes.extend_from_slice(&self.0.serialize());
        f.write_str(&bs58::encode(bytes).with_check().into_string())
    }
}

impl fmt::Debug for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorityPublicKey({self})")
    }
}

/// An Sv2 authority secret key. Its `Debug` output hides the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthoritySecretKey(SecretKey);

impl AuthoritySecretKey {
    /// The 32 secret bytes.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.secret_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> AuthorityPublicKey {
        let secp = Secp256k1::signing_only();
        AuthorityPublicKey(self.keypair_inner(&secp).x_only_public_key().0)
    }

    /// The secret as a `secp256k1` keypair, for signing.
    pub fn keypair(&self) -> Keypair {
        self.keypair_inner(&Secp256k1::signing_only())
    }

    fn keypair_inner<C: secp256k1::Signing>(&self, secp: &Secp256k1<C>) -> Keypair {
        Keypair::from_secret_key(secp, &self.0)
    }

    /// The base58check form, for writing into a config file.
    pub fn to_base58check(&self) -> String {
        bs58::encode(self.0.secret_bytes())
            .with_check()
            .into_string()
    }
}

impl FromStr for AuthoritySecretKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_base58check(s, 32)?;
        SecretKey::from_slice(&bytes)
            .map(AuthoritySecretKey)
            .map_err(|e| KeyError::Invalid(e.to_string()))
    }
}

impl fmt::Debug for AuthoritySecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthoritySecretKey(<secret of {}>)", self.public_key())
    }
}

/// A public key with its secret: what a mint needs to answer Noise
/// handshakes, and what a pool needs to authenticate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AuthorityKeypair {
    public: AuthorityPublicKey,
    secret: AuthoritySecretKey,
}

impl AuthorityKeypair {
    /// A fresh random keypair.
    pub fn generate() -> Self {
        let secret = AuthoritySecretKey(SecretKey::new(&mut secp256k1::rand::thread_rng()));
        Self::from_secret(secret)
    }

    /// The keypair of a secret key.
    pub fn from_secret(secret: AuthoritySecretKey) -> Self {
        AuthorityKeypair {
            public: secret.public_key(),
            secret,
        }
    }

    /// Pairs a secret with the public key a config file states for it, and
    /// refuses the pair if they do not belong together.
    pub fn from_parts(
        public: AuthorityPublicKey,
        secret: AuthoritySecretKey,
    ) -> Result<Self, KeyError> {
        if secret.public_key() != public {
            return Err(KeyError::Mismatch(public));
        }
        Ok(AuthorityKeypair { public, secret })
    }

    /// The public half.
    pub fn public(&self) -> AuthorityPublicKey {
        self.public
    }

    /// The secret half.
    pub fn secret(&self) -> AuthoritySecretKey {
        self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_base58check() {
        let pair = AuthorityKeypair::generate();
        let public: AuthorityPublicKey = pair.public().to_string().parse().unwrap();
        let secret: AuthoritySecretKey = pair.secret().to_base58check().parse().unwrap();
        assert_eq!(public, pair.public());
        assert_eq!(secret, pair.secret());
        assert_eq!(AuthorityKeypair::from_parts(public, secret), Ok(pair));
    }

    #[test]
    fn the_sri_example_key_parses() {
        // The authority key pair from the SRI example configurations.
        let public: AuthorityPublicKey = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
            .parse()
            .unwrap();
        let secret: AuthoritySecretKey = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"
            .parse()
            .unwrap();
        assert_eq!(secret.public_key(), public);
    }

    #[test]
    fn bad_strings_say_what_is_wrong() {
        let pair = AuthorityKeypair::generate();
        let mut typo = pair.public().to_string();
        let last = typo.pop().unwrap();
        typo.push(if last == 'a' { 'b' } else { 'a' });
        let err = typo.parse::<AuthorityPublicKey>().unwrap_err();
        assert!(matches!(err, KeyError::Base58(_)), "{err}");

        // A secret key string where a public key belongs: wrong length.
        let err = pair
            .secret()
            .to_base58check()
            .parse::<AuthorityPublicKey>()
            .unwrap_err();
        assert_eq!(
            err,
            KeyError::Length {
                expected: 34,
                actual: 32
            }
        );

        let other = AuthorityKeypair::generate();
        assert_eq!(
            AuthorityKeypair::from_parts(other.public(), pair.secret()),
            Err(KeyError::Mismatch(other.public()))
        );
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let pair = AuthorityKeypair::generate();
        let shown = format!("{:?}", pair);
        assert!(!shown.contains(&pair.secret().to_base58check()));
    }
}
