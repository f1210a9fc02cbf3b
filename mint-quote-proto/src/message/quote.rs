//! The quote messages of the mint-quote extension: a request per share,
//! answered by a quote or an error under the same `request_id`.

use binary_sv2::{Deserialize, Serialize, Str0255, Sv2Option, B0255, U256};

use super::codec::{bytes255, fit_255, frame_of, parse, str255, Ctx, DecodeError, EncodeError};
use super::{Direction, MessageInfo, WireMessage};
use crate::constants::{mint_quote, EXTENSION_TYPE_MINT_QUOTE};
use crate::error_code::ErrorCode;
use crate::frame::Frame;
use crate::values::{HeaderHash, KeysetId, LockingKey, QuoteState, Unit};

/// `MintQuoteRequest`: create a paid quote for one accepted share.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MintQuoteRequest {
    /// Chosen by the pool; echoed in the answer.
    pub request_id: u32,
    /// Amount of the quote in `unit`; never zero.
    pub amount: u64,
    /// Currency unit, `hash` for mining shares.
    pub unit: Unit,
    /// Hash of the share's block header: the share's identity.
    pub header_hash: HeaderHash,
    /// Optional description stored with the quote.
    pub description: Option<String>,
    /// NUT-20 key that must sign the mint request.
    pub locking_key: LockingKey,
    /// Keyset the pool expects the quote to be minted under.
    pub keyset_id: KeysetId,
}

/// `MintQuoteResponse`: the quote made for a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MintQuoteResponse {
    /// The request's id.
    pub request_id: u32,
    /// The mint's quote id; the miner's wallet mints against it.
    pub quote_id: String,
    /// Amount of the quote.
    pub amount: u64,
    /// Unit of the quote.
    pub unit: Unit,
    /// Unix time (seconds) after which the quote expires.
    pub expires_at: u64,
    /// State of the quote when the answer was sent.
    pub state: QuoteState,
    /// The share's header hash, echoed.
    pub header_hash: HeaderHash,
}

/// `MintQuoteError`: why the mint made no quote for a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MintQuoteError {
    /// The request's id (0 when it could not be read).
    pub request_id: u32,
    /// Machine-readable reason.
    pub error_code: ErrorCode,
    /// Human-readable reason, at most 255 bytes.
    pub error_message: String,
}

impl MintQuoteError {
    /// An error answer; a message over 255 bytes is shortened to fit.
    pub fn new(request_id: u32, error_code: ErrorCode, error_message: impl Into<String>) -> Self {
        MintQuoteError {
            request_id,
            error_code,
            error_message: fit_255(error_message.into()),
        }
    }
}

mod wire {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct MintQuoteRequest<'decoder> {
        pub request_id: u32,
        pub amount: u64,
        pub unit: Str0255<'decoder>,
        pub header_hash: U256<'decoder>,
        pub description: Sv2Option<'decoder, Str0255<'decoder>>,
        pub locking_key: B0255<'decoder>,
        pub keyset_id: B0255<'decoder>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct MintQuoteResponse<'decoder> {
        pub request_id: u32,
        pub quote_id: Str0255<'decoder>,
        pub amount: u64,
        pub unit: Str0255<'decoder>,
        pub expires_at: u64,
        pub state: u8,
        pub header_hash: U256<'decoder>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct MintQuoteError<'decoder> {
        pub request_id: u32,
        pub error_code: u32,
        pub error_message: Str0255<'decoder>,
    }
}

impl WireMessage for MintQuoteRequest {
    const INFO: MessageInfo = MessageInfo {
        name: "MintQuoteRequest",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::MINT_QUOTE_REQUEST,
        direction: Direction::PoolToMint,
        has_request_id: true,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        let name = Self::INFO.name;
        let locking_key = self.locking_key.serialize();
        let description = match &self.description {
            Some(d) => Some(str255(name, "description", d)?),
            None => None,
        };
        frame_of(
            &Self::INFO,
            wire::MintQuoteRequest {
                request_id: self.request_id,
                amount: self.amount,
                unit: str255(name, "unit", self.unit.as_str())?,
                header_hash: U256::from(self.header_hash.as_bytes()),
                description: Sv2Option::new(description),
                locking_key: bytes255(name, "locking_key", &locking_key)?,
                keyset_id: bytes255(name, "keyset_id", self.keyset_id.as_bytes())?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::MintQuoteRequest = parse(ctx, payload)?;
        if m.request_id == 0 {
            // 0 answers requests whose id could not be read: a request
            // may not use it, or its answer would be ambiguous.
            return Err(ctx.invalid(
                "request_id",
                ErrorCode::MalformedRequest,
                "request_id 0 is reserved (it answers requests whose id could not be read)",
            ));
        }
        if m.amount == 0 {
            return Err(ctx.invalid(
                "amount",
                ErrorCode::InvalidAmount,
                "amount must be at least 1",
            ));
        }
        let description = match m.description.into_inner() {
            Some(d) => Some(ctx.text("description", d.as_bytes())?),
            None => None,
        };
        Ok(MintQuoteRequest {
            request_id: m.request_id,
            amount: m.amount,
            unit: ctx.unit("unit", m.unit.as_bytes())?,
            header_hash: ctx.header_hash(m.header_hash.as_array())?,
            description,
            locking_key: ctx.value(
                "locking_key",
                ErrorCode::InvalidLockingKey,
                LockingKey::from_slice(m.locking_key.as_bytes()),
            )?,
            keyset_id: ctx.keyset_id(m.keyset_id.as_bytes())?,
        })
    }
}

impl WireMessage for MintQuoteResponse {
    const INFO: MessageInfo = MessageInfo {
        name: "MintQuoteResponse",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::MINT_QUOTE_RESPONSE,
        direction: Direction::MintToPool,
        has_request_id: true,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        let name = Self::INFO.name;
        frame_of(
            &Self::INFO,
            wire::MintQuoteResponse {
                request_id: self.request_id,
                quote_id: str255(name, "quote_id", &self.quote_id)?,
                amount: self.amount,
                unit: str255(name, "unit", self.unit.as_str())?,
                expires_at: self.expires_at,
                state: self.state.to_u8(),
                header_hash: U256::from(self.header_hash.as_bytes()),
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::MintQuoteResponse = parse(ctx, payload)?;
        Ok(MintQuoteResponse {
            request_id: m.request_id,
            quote_id: ctx.text("quote_id", m.quote_id.as_bytes())?,
            amount: m.amount,
            unit: ctx.unit("unit", m.unit.as_bytes())?,
            expires_at: m.expires_at,
            state: ctx.value(
                "state",
                ErrorCode::MalformedRequest,
                QuoteState::try_from(m.state),
            )?,
            header_hash: ctx.header_hash(m.header_hash.as_array())?,
        })
    }
}

impl WireMessage for MintQuoteError {
    const INFO: MessageInfo = MessageInfo {
        name: "MintQuoteError",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::MINT_QUOTE_ERROR,
        direction: Direction::MintToPool,
        has_request_id: true,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(
            &Self::INFO,
            wire::MintQuoteError {
                request_id: self.request_id,
                error_code: self.error_code.to_u32(),
                error_message: str255(Self::INFO.name, "error_message", &self.error_message)?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::MintQuoteError = parse(ctx, payload)?;
        Ok(MintQuoteError {
            request_id: m.request_id,
            error_code: ErrorCode::from(m.error_code),
            error_message: ctx.text("error_message", m.error_message.as_bytes())?,
        })
    }
}
