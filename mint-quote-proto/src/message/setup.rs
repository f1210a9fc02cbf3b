//! The Sv2 common messages that open a connection (extension 0x0000).
//! `common_messages_sv2::SetupConnection` cannot carry protocol 3 (its
//! `Protocol` enum refuses it), so they are declared here with the spec's
//! byte layout and a plain `u8` protocol.

use binary_sv2::{Deserialize, Serialize, Str0255};

use super::codec::{frame_of, parse, str255, Ctx, DecodeError, EncodeError};
use super::{Direction, MessageInfo, WireMessage};
use crate::constants::{common, EXTENSION_TYPE_COMMON};
use crate::frame::Frame;

/// `SetupConnection`: the first message on every connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetupConnection {
    /// Protocol discriminant; 3 for this protocol.
    pub protocol: u8,
    /// Lowest protocol version the initiator speaks.
    pub min_version: u16,
    /// Highest protocol version the initiator speaks.
    pub max_version: u16,
    /// Feature flags; none are defined for protocol 3, so 0.
    pub flags: u32,
    /// Host name the initiator connected to.
    pub endpoint_host: String,
    /// Port the initiator connected to.
    pub endpoint_port: u16,
    /// Software vendor of the initiator.
    pub vendor: String,
    /// Hardware version (empty for software).
    pub hardware_version: String,
    /// Firmware or software version.
    pub firmware: String,
    /// Free-form identifier of the initiator (a pool name).
    pub device_id: String,
}

/// `SetupConnection.Success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SetupConnectionSuccess {
    /// Version both sides will speak.
    pub used_version: u16,
    /// Flags the responder supports.
    pub flags: u32,
}

/// `SetupConnection.Error`; the responder closes the connection after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetupConnectionError {
    /// Flags the responder does not support.
    pub flags: u32,
    /// Spec error code string, such as `unsupported-protocol`.
    pub error_code: String,
}

mod wire {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct SetupConnection<'decoder> {
        pub protocol: u8,
        pub min_version: u16,
        pub max_version: u16,
        pub flags: u32,
        pub endpoint_host: Str0255<'decoder>,
        pub endpoint_port: u16,
        pub vendor: Str0255<'decoder>,
        pub hardware_version: Str0255<'decoder>,
        pub firmware: Str0255<'decoder>,
        pub device_id: Str0255<'decoder>,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct SetupConnectionSuccess {
        pub used_version: u16,
        pub flags: u32,
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(super) struct SetupConnectionError<'decoder> {
        pub flags: u32,
        pub error_code: Str0255<'decoder>,
    }
}

impl WireMessage for SetupConnection {
    const INFO: MessageInfo = MessageInfo {
        name: "SetupConnection",
        extension_type: EXTENSION_TYPE_COMMON,
        msg_type: common::SETUP_CONNECTION,
        direction: Direction::PoolToMint,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        let name = Self::INFO.name;
        frame_of(
            &Self::INFO,
            wire::SetupConnection {
                protocol: self.protocol,
                min_version: self.min_version,
                max_version: self.max_version,
                flags: self.flags,
                endpoint_host: str255(name, "endpoint_host", &self.endpoint_host)?,
                endpoint_port: self.endpoint_port,
                vendor: str255(name, "vendor", &self.vendor)?,
                hardware_version: str255(name, "hardware_version", &self.hardware_version)?,
                firmware: str255(name, "firmware", &self.firmware)?,
                device_id: str255(name, "device_id", &self.device_id)?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::SetupConnection = parse(ctx, payload)?;
        Ok(SetupConnection {
            protocol: m.protocol,
            min_version: m.min_version,
            max_version: m.max_version,
            flags: m.flags,
            endpoint_host: ctx.text("endpoint_host", m.endpoint_host.as_bytes())?,
            endpoint_port: m.endpoint_port,
            vendor: ctx.text("vendor", m.vendor.as_bytes())?,
            hardware_version: ctx.text("hardware_version", m.hardware_version.as_bytes())?,
            firmware: ctx.text("firmware", m.firmware.as_bytes())?,
            device_id: ctx.text("device_id", m.device_id.as_bytes())?,
        })
    }
}

impl WireMessage for SetupConnectionSuccess {
    const INFO: MessageInfo = MessageInfo {
        name: "SetupConnection.Success",
        extension_type: EXTENSION_TYPE_COMMON,
        msg_type: common::SETUP_CONNECTION_SUCCESS,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(
            &Self::INFO,
            wire::SetupConnectionSuccess {
                used_version: self.used_version,
                flags: self.flags,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::SetupConnectionSuccess = parse(ctx, payload)?;
        Ok(SetupConnectionSuccess {
            used_version: m.used_version,
            flags: m.flags,
        })
    }
}

impl WireMessage for SetupConnectionError {
    const INFO: MessageInfo = MessageInfo {
        name: "SetupConnection.Error",
        extension_type: EXTENSION_TYPE_COMMON,
        msg_type: common::SETUP_CONNECTION_ERROR,
        direction: Direction::MintToPool,
        has_request_id: false,
    };

    fn encode(&self) -> Result<Frame, EncodeError> {
        frame_of(
            &Self::INFO,
            wire::SetupConnectionError {
                flags: self.flags,
                error_code: str255(Self::INFO.name, "error_code", &self.error_code)?,
            },
        )
    }

    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError> {
        let m: wire::SetupConnectionError = parse(ctx, payload)?;
        Ok(SetupConnectionError {
            flags: m.flags,
            error_code: ctx.text("error_code", m.error_code.as_bytes())?,
        })
    }
}
