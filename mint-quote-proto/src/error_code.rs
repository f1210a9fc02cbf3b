//! The error codes a mint answers with, and their values on the wire.

use std::fmt;

/// Why a mint refused a request: the `error_code` (U32) of `MintQuoteError`
/// and `PoolAuthError`.
///
/// The table with the meaning of each code is in `docs/protocol.md`. A code
/// this version does not know decodes to [`ErrorCode::Unrecognised`] rather
/// than failing, so an older pool can still report what a newer mint said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request could not be read: a field is malformed or out of range.
    MalformedRequest,
    /// The unit is not one this mint issues quotes in.
    UnknownUnit,
    /// The amount is zero or above the mint's per-quote limit.
    InvalidAmount,
    /// The NUT-20 locking key is missing or is not a valid secp256k1 point.
    InvalidLockingKey,
    /// The keyset id names no keyset of this mint.
    UnknownKeyset,
    /// The header hash is all zeroes.
    InvalidHeaderHash,
    /// A quote for this header hash exists with different content.
    DuplicateShareMismatch,
    /// The connection has not proven it holds an allowed pool key, or the
    /// key it proved is not on the mint's allow-list.
    NotAuthorised,
    /// The mint is at its limit of work in progress; retry later.
    MintBusy,
    /// The mint is shutting down and accepts no new work.
    ShuttingDown,
    /// Something failed inside the mint (database, signer); retry later.
    InternalError,
    /// A code this version of the protocol does not know.
    Unrecognised(u32),
}

impl ErrorCode {
    /// Every code this version knows, in wire order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::MalformedRequest,
        ErrorCode::UnknownUnit,
        ErrorCode::InvalidAmount,
        ErrorCode::InvalidLockingKey,
        ErrorCode::UnknownKeyset,
        ErrorCode::InvalidHeaderHash,
        ErrorCode::DuplicateShareMismatch,
        ErrorCode::NotAuthorised,
        ErrorCode::MintBusy,
        ErrorCode::ShuttingDown,
        ErrorCode::InternalError,
    ];

    /// The value sent on the wire.
    pub fn to_u32(self) -> u32 {
        match self {
            ErrorCode::MalformedRequest => 1,
            ErrorCode::UnknownUnit => 2,
            ErrorCode::InvalidAmount => 3,
            ErrorCode::InvalidLockingKey => 4,
            ErrorCode::UnknownKeyset => 5,
            ErrorCode::InvalidHeaderHash => 6,
            ErrorCode::DuplicateShareMismatch => 7,
            ErrorCode::NotAuthorised => 8,
            ErrorCode::MintBusy => 9,
            ErrorCode::ShuttingDown => 10,
            ErrorCode::InternalError => 100,
            ErrorCode::Unrecognised(code) => code,
        }
    }

    /// A short stable name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed-request",
            ErrorCode::UnknownUnit => "unknown-unit",
            ErrorCode::InvalidAmount => "invalid-amount",
            ErrorCode::InvalidLockingKey => "invalid-locking-key",
            ErrorCode::UnknownKeyset => "unknown-keyset",
            ErrorCode::InvalidHeaderHash => "invalid-header-hash",
            ErrorCode::DuplicateShareMismatch => "duplicate-share-mismatch",
            ErrorCode::NotAuthorised => "not-authorised",
            ErrorCode::MintBusy => "mint-busy",
            ErrorCode::ShuttingDown => "shutting-down",
            ErrorCode::InternalError => "internal-error",
            ErrorCode::Unrecognised(_) => "unrecognised",
        }
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        ErrorCode::ALL
            .into_iter()
            .find(|known| known.to_u32() == code)
            .unwrap_or(ErrorCode::Unrecognised(code))
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> Self {
        code.to_u32()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unrecognised(code) => write!(f, "unrecognised ({code})"),
            known => write!(f, "{} ({})", known.as_str(), known.to_u32()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_through_u32() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from(code.to_u32()), code);
        }
    }

    #[test]
    fn known_codes_are_distinct() {
        let mut values: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.to_u32()).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn an_unknown_value_is_kept_not_lost() {
        assert_eq!(ErrorCode::from(4242), ErrorCode::Unrecognised(4242));
        assert_eq!(ErrorCode::from(4242).to_u32(), 4242);
        assert_eq!(ErrorCode::from(0), ErrorCode::Unrecognised(0));
    }
}
