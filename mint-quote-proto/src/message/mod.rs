//! The messages of the protocol as validated Rust values, and their
//! conversion to and from [`Frame`]s.
//!
//! Each message is declared once, in the file of its protocol area: its
//! struct, its wire layout, and a [`WireMessage`] implementation that says
//! where it goes on the wire (extension, type, direction) and how it is
//! encoded and decoded. The list below names every message once; from it
//! come the [`Message`] enum, encoding, decoding, names for logs and the
//! table of [`MessageInfo`] the sniffer and the docs tests read. Adding a
//! message is one edit in its area's file, one line here, and its test.
//!
//! Decoding checks everything a peer could get wrong and says what it was;
//! it never panics. Encoding refuses values that do not fit their wire type
//! instead of cutting them silently, except [`MintQuoteError::new`] and
//! [`PoolAuthError::new`], which shorten a too-long human-readable message
//! on purpose.

mod auth;
mod codec;
mod fields;
mod keepalive;
mod keyset;
mod negotiation;
mod quote;
mod setup;

pub use auth::{PoolAuthChallenge, PoolAuthError, PoolAuthProof, PoolAuthSuccess};
pub use codec::{DecodeError, EncodeError};
pub use keepalive::{Ping, Pong};
pub use keyset::ActiveKeyset;
pub use negotiation::{RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess};
pub use quote::{MintQuoteError, MintQuoteRequest, MintQuoteResponse};
pub use setup::{SetupConnection, SetupConnectionError, SetupConnectionSuccess};

use crate::constants::{
    EXTENSION_TYPE_COMMON, EXTENSION_TYPE_MINT_QUOTE, EXTENSION_TYPE_NEGOTIATION,
};
use crate::frame::Frame;
use codec::Ctx;

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the pool (the Noise initiator) to the mint.
    PoolToMint,
    /// From the mint to the pool.
    MintToPool,
    /// Either way.
    Both,
}

impl Direction {
    /// `pool -> mint`, `mint -> pool` or `both`, as the spec's tables write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::PoolToMint => "pool -> mint",
            Direction::MintToPool => "mint -> pool",
            Direction::Both => "both",
        }
    }
}

/// Where a message goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// The name, as the spec writes it.
    pub name: &'static str,
    /// The extension type (without the channel bit).
    pub extension_type: u16,
    /// The message type.
    pub msg_type: u8,
    /// Which way it travels.
    pub direction: Direction,
    /// Whether its payload starts with a `U32 request_id` that errors
    /// about any later field can name.
    pub has_request_id: bool,
}

/// One message: where it goes on the wire and how it is coded.
pub(crate) trait WireMessage: Sized {
    /// Where it goes.
    const INFO: MessageInfo;

    /// The plaintext frame of the message.
    fn encode(&self) -> Result<Frame, EncodeError>;

    /// The message in `payload` (which the decoder may modify in place).
    fn decode(ctx: &Ctx, payload: &mut [u8]) -> Result<Self, DecodeError>;
}

/// Declares the list of messages: the [`Message`] enum and everything
/// that goes through it.
macro_rules! messages {
    ($($variant:ident),* $(,)?) => {
        /// Any message of the protocol.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(missing_docs)] // each variant is documented on its struct
        pub enum Message {
            $($variant($variant),)*
        }

        $(
            impl From<$variant> for Message {
                fn from(message: $variant) -> Self {
                    Message::$variant(message)
                }
            }
        )*

        impl Message {
            /// Every message of the protocol, in the order the spec lists
            /// them.
            pub const ALL: &'static [MessageInfo] = &[$(<$variant as WireMessage>::INFO,)*];

            /// Where this message goes on the wire.
            pub fn info(&self) -> MessageInfo {
                match self {
                    $(Message::$variant(_) => <$variant as WireMessage>::INFO,)*
                }
            }

            /// The message's fields as JSON: keys and hashes as text, error
            /// codes as `{"code", "name"}` (the sniffer prints these).
            pub fn fields(&self) -> serde_json::Value {
                match self {
                    $(Message::$variant(m) => serde_json::to_value(m).unwrap_or_default(),)*
                }
            }

            /// Encodes the message as a plaintext frame.
            pub fn to_frame(&self) -> Result<Frame, EncodeError> {
                match self {
                    $(Message::$variant(m) => m.encode(),)*
                }
            }

            fn decode_as(info: &MessageInfo, ctx: &Ctx, payload: &mut [u8]) -> Result<Message, DecodeError> {
                $(
                    if info.name == <$variant as WireMessage>::INFO.name {
                        return $variant::decode(ctx, payload).map(Message::$variant);
                    }
                )*
                Err(DecodeError::UnknownMessageType {
                    extension_type: info.extension_type,
                    msg_type: info.msg_type,
                })
            }
        }
    };
}

messages! {
    SetupConnection,
    SetupConnectionSuccess,
    SetupConnectionError,
    RequestExtensions,
    RequestExtensionsSuccess,
    RequestExtensionsError,
    MintQuoteRequest,
    MintQuoteResponse,
    MintQuoteError,
    ActiveKeyset,
    PoolAuthChallenge,
    PoolAuthProof,
    PoolAuthSuccess,
    PoolAuthError,
    Ping,
    Pong,
}

impl Message {
    /// Name of the message, as the spec writes it.
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// The extension type of the message.
    pub fn extension_type(&self) -> u16 {
        self.info().extension_type
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.info().msg_type
    }

    /// What this protocol defines at this extension and message type.
    pub fn info_of(extension_type: u16, msg_type: u8) -> Option<MessageInfo> {
        Self::ALL
            .iter()
            .find(|i| i.extension_type == extension_type && i.msg_type == msg_type)
            .copied()
    }

    /// The name of the message with this extension and message type, if
    /// this protocol defines one.
    pub fn name_of(extension_type: u16, msg_type: u8) -> Option<&'static str> {
        Self::info_of(extension_type, msg_type).map(|i| i.name)
    }

    /// Decodes a plaintext frame.
    ///
    /// A frame of an extension this protocol does not use gives
    /// [`DecodeError::UnknownExtension`], which a peer should log and ignore.
    pub fn from_frame(frame: &Frame) -> Result<Message, DecodeError> {
        let ext = frame.extension_type();
        let ty = frame.msg_type();
        if !matches!(
            ext,
            EXTENSION_TYPE_COMMON | EXTENSION_TYPE_NEGOTIATION | EXTENSION_TYPE_MINT_QUOTE
        ) {
            return Err(DecodeError::UnknownExtension(ext));
        }
        let info = Self::info_of(ext, ty).ok_or(DecodeError::UnknownMessageType {
            extension_type: ext,
            msg_type: ty,
        })?;
        if frame.channel_msg() {
            return Err(DecodeError::ChannelBitSet { message: info.name });
        }
        // Reading the request id first lets an error about any later field
        // still name the request.
        let request_id = info
            .has_request_id
            .then(|| {
                frame
                    .payload()
                    .first_chunk::<4>()
                    .map(|b| u32::from_le_bytes(*b))
            })
            .flatten();
        let ctx = Ctx {
            message: info.name,
            request_id,
        };
        let mut payload = frame.payload().to_vec();
        Self::decode_as(&info, &ctx, &mut payload)
    }
}
