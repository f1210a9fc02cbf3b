//! Pool authentication (see `crate::pool_auth`): the mint's challenge, the
//! pool's proof, and the mint's verdict.

use binary_sv2::{Deserialize, Serialize, Signature, Str0255, U256};

use super::codec::{fit_255, frame_of, parse, str255, Ctx, DecodeError, EncodeError};
use super::{Direction, MessageInfo, WireMessage};
use crate::constants::{mint_quote, EXTENSION_TYPE_MINT_QUOTE};
use crate::error_code::ErrorCode;
use crate::frame::Frame;
use crate::keys::AuthorityPublicKey;
use crate::pool_auth::Challenge;

/// `PoolAuthChallenge`: the nonce the pool must sign on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolAuthChallenge {
    /// Fresh random nonce.
    pub nonce: Challenge,
}

/// `PoolAuthProof`: the pool's key and its signature over the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolAuthProof {
    /// The pool's x-only public key.
    pub pool_key: AuthorityPublicKey,
    /// BIP-340 signature; see [`crate::pool_auth`].
    #[serde(serialize_with = "super::fields::as_hex")]
    pub signature: [u8; 64],
}

/// `PoolAuthSuccess`: the mint accepted the proof for this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolAuthSuccess {
    /// The key the pool proved.
    pub pool_key: AuthorityPublicKey,
}

/// `PoolAuthError`: the mint refused the proof; it closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolAuthError {
    /// Machine-readable reason: [`ErrorCode::NotAuthorised`], or
    /// [`ErrorCode::MintBusy`] when the mint has no room for the pool now.
    pub error_code: ErrorCode,
    /// Human-readable reason, at most 255 bytes.
    pub error_message: String,
}

impl PoolAuthError {
    /// An authentication refusal; a message over 255 bytes is shortened.
    pub fn new(error_code: ErrorCode, error_message: impl Into<String>) -> Self {
        PoolAuthError {
            error_code,
            error_message: fit_255(error_message.into()),
        }
    }
}

mod wire {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct PoolAuthChallenge<'decoder> {
        pub nonce: U256<'decoder>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct PoolAuthProof<'decoder> {
        pub pool_key: U256<'decoder>,
        pub signature: Signature<'decoder>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct PoolAuthSuccess<'decoder> {
        pub pool_key: U256<'decoder>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct PoolAuthError<'decoder> {
        pub error_code: u32,
        pub error_message: Str0255<'decoder>,
    }
}

impl WireMessage for PoolAuthChallenge {
    const INFO: MessageInfo = MessageInfo {
        name: "PoolAuthChallenge",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::POOL_AUTH_CHALLENGE,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(
            &Self::INFO,
            wire::PoolAuthChallenge {
                nonce: U256::from(&self.nonce.0),
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::PoolAuthChallenge = parse(ctx, payload)?;
        Ok(PoolAuthChallenge {
            nonce: Challenge(*m.nonce.as_array()),
        })
    }
}

impl WireMessage for PoolAuthProof {
    const INFO: MessageInfo = MessageInfo {
        name: "PoolAuthProof",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::POOL_AUTH_PROOF,
        direction: Direction::PoolToMint,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        let key = self.pool_key.serialize();
        frame_of(
            &Self::INFO,
            wire::PoolAuthProof {
                pool_key: U256::from(&key),
                signature: Signature::from(&self.signature),
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::PoolAuthProof = parse(ctx, payload)?;
        Ok(PoolAuthProof {
            pool_key: ctx.pool_key(m.pool_key.as_array())?,
            signature: *m.signature.as_array(),
        })
    }
}

impl WireMessage for PoolAuthSuccess {
    const INFO: MessageInfo = MessageInfo {
        name: "PoolAuthSuccess",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::POOL_AUTH_SUCCESS,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        let key = self.pool_key.serialize();
        frame_of(
            &Self::INFO,
            wire::PoolAuthSuccess {
                pool_key: U256::from(&key),
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::PoolAuthSuccess = parse(ctx, payload)?;
        Ok(PoolAuthSuccess {
            pool_key: ctx.pool_key(m.pool_key.as_array())?,
        })
    }
}

impl WireMessage for PoolAuthError {
    const INFO: MessageInfo = MessageInfo {
        name: "PoolAuthError",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::POOL_AUTH_ERROR,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(
            &Self::INFO,
            wire::PoolAuthError {
                error_code: self.error_code.to_u32(),
                error_message: str255(Self::INFO.name, "error_message", &self.error_message)?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::PoolAuthError = parse(ctx, payload)?;
        Ok(PoolAuthError {
            error_code: ErrorCode::from(m.error_code),
            error_message: ctx.text("error_message", m.error_message.as_bytes())?,
        })
    }
}
