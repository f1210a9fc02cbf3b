//! Validated domain values for the fields the wire leaves loose.
//!
//! The wire carries a header hash as any 32 bytes, a locking key as up to 255
//! bytes, a unit as any string. These types accept only what is meaningful,
//! so code past the decoder never sees a zero hash or a key of the wrong
//! form (whether a key is on the curve is checked where it is used: see
//! [`LockingKey`]).

use std::fmt;
use std::str::FromStr;

use secp256k1::PublicKey;

/// A value that is not acceptable for its field, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The header hash is all zeroes, which no real block header hashes to.
    #[error("header hash is all zeroes")]
    ZeroHeaderHash,
    /// A hex string does not have the length the field needs.
    #[error("{field}: expected {expected} hex characters, got {actual}")]
    HexLength {
        /// Field being parsed.
        field: &'static str,
        /// Expected number of hex characters.
        expected: usize,
        /// Number of characters received.
        actual: usize,
    },
    /// A string is not hexadecimal.
    #[error("{field}: not a hex string: {reason}")]
    NotHex {
        /// Field being parsed.
        field: &'static str,
        /// What the hex decoder said.
        reason: String,
    },
    /// The locking key does not have the 33 bytes of a compressed key.
    #[error("locking key must be a 33-byte compressed secp256k1 key, got {0} bytes")]
    LockingKeyLength(usize),
    /// The locking key's first byte is not 0x02 or 0x03 (a compressed key).
    #[error("locking key must be a compressed secp256k1 key (first byte 0x02 or 0x03), got first byte {0:#04x}")]
    LockingKeyPrefix(u8),
    /// The locking key has 33 bytes but is not a point on the curve.
    #[error("locking key is not a valid secp256k1 point: {0}")]
    LockingKeyNotOnCurve(String),
    /// The unit is empty, too long, or has characters outside `[a-z0-9_-]`.
    #[error("unit {0:?} is not valid: use 1 to 32 characters from a-z, 0-9, '_' and '-'")]
    Unit(String),
    /// The keyset id is neither a version-0 (8 bytes, first byte 0x00) nor a
    /// version-1 (33 bytes, first byte 0x01) Cashu keyset id.
    #[error(
        "keyset id must be 8 bytes starting with 0x00 or 33 bytes starting with 0x01, got {len} bytes starting with {first:#04x}"
    )]
    KeysetId {
        /// Length received.
        len: usize,
        /// First byte received (0 when empty).
        first: u8,
    },
    /// A quote state byte this version does not know.
    #[error("unknown quote state {0}")]
    QuoteState(u8),
}

/// Decodes a hex string of any even length.
fn hex_vec(field: &'static str, s: &str) -> Result<Vec<u8>, ValueError> {
    if !s.len().is_multiple_of(2) {
        return Err(ValueError::NotHex {
            field,
            reason: format!("odd number of characters ({})", s.len()),
        });
    }
    s.as_bytes()
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|text| u8::from_str_radix(text, 16).ok())
                .ok_or_else(|| ValueError::NotHex {
                    field,
                    reason: format!("bad digit at offset {}", i * 2),
                })
        })
        .collect()
}

/// Decodes a hex string of exactly `N` bytes.
fn hex_array<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], ValueError> {
    if s.len() != N * 2 {
        return Err(ValueError::HexLength {
            field,
            expected: N * 2,
            actual: s.len(),
        });
    }
    let bytes = hex_vec(field, s)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// The hash of the block header of the share a quote pays for: the share's
/// identity, and so the key that makes quote creation idempotent.
///
/// Printed and parsed as 64 hex characters of the bytes in wire order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeaderHash([u8; 32]);

impl HeaderHash {
    /// Accepts any 32 bytes except all zeroes.
    pub fn new(bytes: [u8; 32]) -> Result<Self, ValueError> {
        if bytes == [0u8; 32] {
            return Err(ValueError::ZeroHeaderHash);
        }
        Ok(HeaderHash(bytes))
    }

    /// The 32 bytes in wire order.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for HeaderHash {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HeaderHash::new(hex_array::<32>("header hash", s)?)
    }
}

impl fmt::Display for HeaderHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for HeaderHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeaderHash({})", self.to_hex())
    }
}

/// The NUT-20 key that locks a quote: only its holder can mint against it.
///
/// Holds the 33 bytes of a compressed secp256k1 key, checked for form only
/// (length and a 0x02 / 0x03 prefix). Whether the bytes are a point on the
/// curve costs a square root (about 4 µs, most of a request's decoding) and
/// is checked once, where the key is used: the mint parses it into its own
/// secp256k1 type and refuses the request with `invalid-locking-key`, and
/// [`LockingKey::to_public_key`] does it for anyone else.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockingKey([u8; 33]);

impl LockingKey {
    /// Takes the 33 bytes of a compressed key (prefix 0x02 or 0x03).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ValueError> {
        let bytes: [u8; 33] = bytes
            .try_into()
            .map_err(|_| ValueError::LockingKeyLength(bytes.len()))?;
        match bytes[0] {
            0x02 | 0x03 => Ok(LockingKey(bytes)),
            prefix => Err(ValueError::LockingKeyPrefix(prefix)),
        }
    }

    /// The 33-byte compressed encoding.
    pub fn serialize(&self) -> [u8; 33] {
        self.0
    }

    /// The 33 bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// The key as a `secp256k1` public key: fails when the bytes are not a
    /// point on the curve.
    pub fn to_public_key(&self) -> Result<PublicKey, ValueError> {
        PublicKey::from_slice(&self.0).map_err(|e| ValueError::LockingKeyNotOnCurve(e.to_string()))
    }
}

impl From<PublicKey> for LockingKey {
    fn from(key: PublicKey) -> Self {
        LockingKey(key.serialize())
    }
}

impl FromStr for LockingKey {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LockingKey::from_slice(&hex_array::<33>("locking key", s)?)
    }
}

impl fmt::Display for LockingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for LockingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockingKey({self})")
    }
}

/// A Cashu currency unit, such as `hash`.
///
/// Units are case-insensitive in Cashu; this type stores them lower-case so
/// that `HASH` (what pools send over Redis today) and `hash` are one unit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit(String);

impl Unit {
    /// Longest unit accepted.
    pub const MAX_LEN: usize = 32;

    /// Accepts 1 to 32 characters from `[A-Za-z0-9_-]`, stored lower-case.
    pub fn new(unit: &str) -> Result<Self, ValueError> {
        let valid = !unit.is_empty()
            && unit.len() <= Self::MAX_LEN
            && unit
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(ValueError::Unit(unit.chars().take(64).collect()));
        }
        Ok(Unit(unit.to_ascii_lowercase()))
    }

    /// The unit this project's mint issues: `hash`.
    pub fn hash() -> Self {
        Unit("hash".to_owned())
    }

    /// The unit as text, lower-case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Unit {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Unit::new(s)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unit({})", self.0)
    }
}

/// A Cashu keyset id: version 0 (8 bytes, first byte `0x00`) or version 1
/// (33 bytes, first byte `0x01`). Printed as lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeysetId(Vec<u8>);

impl KeysetId {
    /// Checks the length and the version byte.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ValueError> {
        match (bytes.len(), bytes.first()) {
            (8, Some(0x00)) | (33, Some(0x01)) => Ok(KeysetId(bytes.to_vec())),
            (len, first) => Err(ValueError::KeysetId {
                len,
                first: first.copied().unwrap_or(0),
            }),
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for KeysetId {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeysetId::from_slice(&hex_vec("keyset id", s)?)
    }
}

impl fmt::Display for KeysetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for KeysetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeysetId({self})")
    }
}

/// The state of a mint quote, as NUT-04 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuoteState {
    /// Not paid yet. A mining-share quote is never seen in this state.
    Unpaid,
    /// Paid: ecash can be minted against it.
    Paid,
    /// Ecash has been minted against it.
    Issued,
}

impl QuoteState {
    /// The byte on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            QuoteState::Unpaid => 0,
            QuoteState::Paid => 1,
            QuoteState::Issued => 2,
        }
    }

    /// NUT-04 name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            QuoteState::Unpaid => "UNPAID",
            QuoteState::Paid => "PAID",
            QuoteState::Issued => "ISSUED",
        }
    }
}

impl TryFrom<u8> for QuoteState {
    type Error = ValueError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(QuoteState::Unpaid),
            1 => Ok(QuoteState::Paid),
            2 => Ok(QuoteState::Issued),
            other => Err(ValueError::QuoteState(other)),
        }
    }
}

impl fmt::Display for QuoteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATOR: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn a_zero_header_hash_is_refused() {
        assert_eq!(HeaderHash::new([0; 32]), Err(ValueError::ZeroHeaderHash));
        assert!(HeaderHash::new([1; 32]).is_ok());
    }

    #[test]
    fn header_hash_hex_round_trips_and_names_bad_input() {
        let hex = "ab".repeat(32);
        let hash: HeaderHash = hex.parse().unwrap();
        assert_eq!(hash.to_string(), hex);
        let err = "abc".parse::<HeaderHash>().unwrap_err();
        assert!(err
            .to_string()
            .contains("expected 64 hex characters, got 3"));
        let err = "zz".repeat(32).parse::<HeaderHash>().unwrap_err();
        assert!(err.to_string().contains("not a hex string"), "{err}");
    }

    #[test]
    fn locking_key_must_be_a_compressed_point() {
        let key: LockingKey = GENERATOR.parse().unwrap();
        assert_eq!(key.to_string(), GENERATOR);
        assert_eq!(
            LockingKey::from_slice(&[2; 32]),
            Err(ValueError::LockingKeyLength(32))
        );
        assert!(key.to_public_key().is_ok());
        // 0x02 followed by an x with no point on the curve (x = 5): of the
        // right form, refused where it is used as a key.
        let mut not_on_curve = [0u8; 33];
        not_on_curve[0] = 2;
        not_on_curve[32] = 5;
        let off_curve = LockingKey::from_slice(&not_on_curve).unwrap();
        assert!(matches!(
            off_curve.to_public_key(),
            Err(ValueError::LockingKeyNotOnCurve(_))
        ));
        // An uncompressed prefix with 33 bytes is not a key.
        let mut bad_prefix = key.serialize();
        bad_prefix[0] = 4;
        assert_eq!(
            LockingKey::from_slice(&bad_prefix),
            Err(ValueError::LockingKeyPrefix(4))
        );
    }

    #[test]
    fn units_are_lower_case_and_restricted() {
        assert_eq!(Unit::new("HASH").unwrap(), Unit::hash());
        assert!(Unit::new("").is_err());
        assert!(Unit::new("has h").is_err());
        assert!(Unit::new(&"a".repeat(33)).is_err());
        assert!(Unit::new("sat").is_ok());
    }

    #[test]
    fn keyset_ids_have_a_version_byte_and_length() {
        assert!("009a1f293253e41e".parse::<KeysetId>().is_ok());
        let v2 = format!("01{}", "ab".repeat(32));
        assert_eq!(v2.parse::<KeysetId>().unwrap().to_string(), v2);
        assert!(KeysetId::from_slice(&[1; 8]).is_err());
        assert!(KeysetId::from_slice(&[0; 33]).is_err());
        assert!(KeysetId::from_slice(&[]).is_err());
        assert!("00".parse::<KeysetId>().is_err());
    }

    #[test]
    fn quote_state_bytes_round_trip() {
        for state in [QuoteState::Unpaid, QuoteState::Paid, QuoteState::Issued] {
            assert_eq!(QuoteState::try_from(state.to_u8()), Ok(state));
        }
        assert_eq!(QuoteState::try_from(9), Err(ValueError::QuoteState(9)));
    }
}
