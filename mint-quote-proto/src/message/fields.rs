//! How messages show as JSON (the sniffer's `fields`, logs for machines):
//! keys and hashes as their usual text, error codes with their number and
//! name. Messages derive `Serialize` through these.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::error_code::ErrorCode;
use crate::keys::AuthorityPublicKey;
use crate::pool_auth::Challenge;
use crate::values::{HeaderHash, KeysetId, LockingKey, QuoteState, Unit};

/// Serializes bytes as lowercase hex (for arrays serde cannot take).
pub(crate) fn as_hex<S: Serializer>(bytes: &[u8; 64], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

macro_rules! as_display {
    ($($t:ty),*) => {
        $(
            impl Serialize for $t {
                fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    serializer.collect_str(self)
                }
            }
        )*
    };
}

as_display!(
    HeaderHash,
    LockingKey,
    Unit,
    KeysetId,
    QuoteState,
    AuthorityPublicKey
);

impl Serialize for Challenge {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut code = serializer.serialize_struct("ErrorCode", 2)?;
        code.serialize_field("code", &self.to_u32())?;
        code.serialize_field("name", self.as_str())?;
        code.end()
    }
}
