//! Keepalive: `Ping` asks the peer to prove the connection still carries
//! traffic both ways; `Pong` answers with the same nonce. Either side may
//! ping; the pool does when it has heard nothing for a while, and a mint
//! that hears nothing at all (no request, no ping) for its idle timeout
//! closes the connection.

use binary_sv2::{Deserialize, Serialize};

use super::codec::{frame_of, parse, Ctx, DecodeError, EncodeError};
use super::{Direction, MessageInfo, WireMessage};
use crate::constants::{mint_quote, EXTENSION_TYPE_MINT_QUOTE};
use crate::frame::Frame;

/// `Ping`: answer with a `Pong` carrying `nonce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ping {
    /// Chosen by the sender; echoed in the `Pong`.
    pub nonce: u64,
}

/// `Pong`: the answer to a `Ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pong {
    /// The nonce of the `Ping` it answers.
    pub nonce: u64,
}

mod wire {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct Nonce {
        pub nonce: u64,
    }
}

impl WireMessage for Ping {
    const INFO: MessageInfo = MessageInfo {
        name: "Ping",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::PING,
        direction: Direction::Both,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(&Self::INFO, wire::Nonce { nonce: self.nonce })
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::Nonce = parse(ctx, payload)?;
        Ok(Ping { nonce: m.nonce })
    }
}

impl WireMessage for Pong {
    const INFO: MessageInfo = MessageInfo {
        name: "Pong",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::PONG,
        direction: Direction::Both,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(&Self::INFO, wire::Nonce { nonce: self.nonce })
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::Nonce = parse(ctx, payload)?;
        Ok(Pong { nonce: m.nonce })
    }
}
