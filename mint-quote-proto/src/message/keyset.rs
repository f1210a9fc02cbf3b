//! `ActiveKeyset`: the mint tells the pool which keyset quotes are issued
//! under, after authentication and whenever it changes.

use binary_sv2::{Deserialize, Serialize, Str0255, B0255};

use super::codec::{bytes255, frame_of, parse, str255, Ctx, DecodeError, EncodeError};
use super::{Direction, MessageInfo, WireMessage};
use crate::constants::{mint_quote, EXTENSION_TYPE_MINT_QUOTE};
use crate::frame::Frame;
use crate::values::{KeysetId, Unit};

/// `ActiveKeyset`: the keyset the mint issues `unit` under now. Sent after
/// authentication and again whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActiveKeyset {
    /// The unit.
    pub unit: Unit,
    /// The active keyset's id.
    pub keyset_id: KeysetId,
    /// Fee per thousand inputs for proofs of this keyset (NUT-02).
    pub input_fee_ppk: u64,
}

mod wire {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct ActiveKeyset<'decoder> {
        pub unit: Str0255<'decoder>,
        pub keyset_id: B0255<'decoder>,
        pub input_fee_ppk: u64,
    }
}

impl WireMessage for ActiveKeyset {
    const INFO: MessageInfo = MessageInfo {
        name: "ActiveKeyset",
        extension_type: EXTENSION_TYPE_MINT_QUOTE,
        msg_type: mint_quote::ACTIVE_KEYSET,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        let name = Self::INFO.name;
        frame_of(
            &Self::INFO,
            wire::ActiveKeyset {
                unit: str255(name, "unit", self.unit.as_str())?,
                keyset_id: bytes255(name, "keyset_id", self.keyset_id.as_bytes())?,
                input_fee_ppk: self.input_fee_ppk,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::ActiveKeyset = parse(ctx, payload)?;
        Ok(ActiveKeyset {
            unit: ctx.unit("unit", m.unit.as_bytes())?,
            keyset_id: ctx.keyset_id(m.keyset_id.as_bytes())?,
            input_fee_ppk: m.input_fee_ppk,
        })
    }
}
