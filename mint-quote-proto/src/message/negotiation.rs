//! The spec's Extensions Negotiation messages (extension 0x0001), with
//! which the pool asks for the mint-quote extension.

use binary_sv2::{Deserialize, Seq064K, Serialize};

use super::codec::{frame_of, parse, seq, Ctx, DecodeError, EncodeError};
use super::{Direction, MessageInfo, WireMessage};
use crate::constants::{negotiation, EXTENSION_TYPE_NEGOTIATION};
use crate::frame::Frame;

/// `RequestExtensions`: the extensions the client wants to use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestExtensions {
    /// Echoed in the reply.
    pub request_id: u16,
    /// Extension types requested.
    pub requested_extensions: Vec<u16>,
}

/// `RequestExtensions.Success`: the requested extensions the server supports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestExtensionsSuccess {
    /// The request's id.
    pub request_id: u16,
    /// Requested extensions that are supported.
    pub supported_extensions: Vec<u16>,
}

/// `RequestExtensions.Error`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestExtensionsError {
    /// The request's id.
    pub request_id: u16,
    /// Requested extensions the server does not support.
    pub unsupported_extensions: Vec<u16>,
    /// Extensions the server requires that were not requested.
    pub required_extensions: Vec<u16>,
}

mod wire {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct RequestExtensions<'decoder> {
        pub request_id: u16,
        pub requested_extensions: Seq064K<'decoder, u16>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct RequestExtensionsSuccess<'decoder> {
        pub request_id: u16,
        pub supported_extensions: Seq064K<'decoder, u16>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct RequestExtensionsError<'decoder> {
        pub request_id: u16,
        pub unsupported_extensions: Seq064K<'decoder, u16>,
        pub required_extensions: Seq064K<'decoder, u16>,
    }
}

impl WireMessage for RequestExtensions {
    const INFO: MessageInfo = MessageInfo {
        name: "RequestExtensions",
        extension_type: EXTENSION_TYPE_NEGOTIATION,
        msg_type: negotiation::REQUEST_EXTENSIONS,
        direction: Direction::PoolToMint,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(
            &Self::INFO,
            wire::RequestExtensions {
                request_id: self.request_id,
                requested_extensions: seq(
                    Self::INFO.name,
                    "requested_extensions",
                    &self.requested_extensions,
                )?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::RequestExtensions = parse(ctx, payload)?;
        Ok(RequestExtensions {
            request_id: m.request_id,
            requested_extensions: m.requested_extensions.into_inner(),
        })
    }
}

impl WireMessage for RequestExtensionsSuccess {
    const INFO: MessageInfo = MessageInfo {
        name: "RequestExtensions.Success",
        extension_type: EXTENSION_TYPE_NEGOTIATION,
        msg_type: negotiation::REQUEST_EXTENSIONS_SUCCESS,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(
            &Self::INFO,
            wire::RequestExtensionsSuccess {
                request_id: self.request_id,
                supported_extensions: seq(
                    Self::INFO.name,
                    "supported_extensions",
                    &self.supported_extensions,
                )?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::RequestExtensionsSuccess = parse(ctx, payload)?;
        Ok(RequestExtensionsSuccess {
            request_id: m.request_id,
            supported_extensions: m.supported_extensions.into_inner(),
        })
    }
}

impl WireMessage for RequestExtensionsError {
    const INFO: MessageInfo = MessageInfo {
        name: "RequestExtensions.Error",
        extension_type: EXTENSION_TYPE_NEGOTIATION,
        msg_type: negotiation::REQUEST_EXTENSIONS_ERROR,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        let name = Self::INFO.name;
        frame_of(
            &Self::INFO,
            wire::RequestExtensionsError {
                request_id: self.request_id,
                unsupported_extensions: seq(
                    name,
                    "unsupported_extensions",
                    &self.unsupported_extensions,
                )?,
                required_extensions: seq(name, "required_extensions", &self.required_extensions)?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::RequestExtensionsError = parse(ctx, payload)?;
        Ok(RequestExtensionsError {
            request_id: m.request_id,
            unsupported_extensions: m.unsupported_extensions.into_inner(),
            required_extensions: m.required_extensions.into_inner(),
        })
    }
}
