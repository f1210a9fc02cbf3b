//! What every message's encoder and decoder share: the errors, field
//! helpers that refuse what does not fit, and the decoding context that
//! lets an error name the message, the field and the request.

use binary_sv2::{GetSize, Seq064K, Serialize, Str0255, B0255};
use framing_sv2::framing::MessageFrame;

use crate::constants::CHANNEL_MSG;
use crate::error_code::ErrorCode;
use crate::frame::Frame;
use crate::keys::AuthorityPublicKey;
use crate::values::{HeaderHash, KeysetId, Unit, ValueError};

use super::MessageInfo;

/// A message that cannot be put on the wire as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or byte field is longer than its wire type allows.
    #[error("{message}.{field}: {len} bytes do not fit in a field of at most {max}")]
    TooLong {
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// Length given.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// The Sv2 serializer refused the message.
    #[error("{message}: cannot serialize: {reason}")]
    Serialize {
        /// Message name.
        message: &'static str,
        /// What the serializer said.
        reason: String,
    },
}

/// A frame that is not a valid message of this protocol, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An extension type this protocol does not use. The Sv2 spec says such
    /// frames are to be ignored, not treated as errors.
    #[error("unknown extension type {0:#06x}")]
    UnknownExtension(u16),
    /// A message type this protocol does not define in a known extension.
    #[error("unknown message type {msg_type:#04x} in extension {extension_type:#06x}")]
    UnknownMessageType {
        /// The extension.
        extension_type: u16,
        /// The message type.
        msg_type: u8,
    },
    /// The `channel_msg` bit is set; no message of this protocol has it.
    #[error("{message}: the channel_msg bit is set, but this message is not a channel message")]
    ChannelBitSet {
        /// Message name.
        message: &'static str,
    },
    /// The payload does not have the message's layout.
    #[error("{message}: malformed payload: {reason}")]
    Malformed {
        /// Message name.
        message: &'static str,
        /// The request id, when the payload was long enough to hold one.
        request_id: Option<u32>,
        /// What was wrong.
        reason: String,
    },
    /// A field has the right layout but a value that is not acceptable.
    #[error("{message}.{field}: {reason}")]
    InvalidField {
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// The request id, when the payload was long enough to hold one.
        request_id: Option<u32>,
        /// The error code that answers this problem.
        code: ErrorCode,
        /// What was wrong.
        reason: String,
    },
}

impl DecodeError {
    /// The request id of the message that failed, if it could be read.
    pub fn request_id(&self) -> Option<u32> {
        match self {
            DecodeError::Malformed { request_id, .. }
            | DecodeError::InvalidField { request_id, .. } => *request_id,
            _ => None,
        }
    }

    /// The error code a mint answers this failure with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::InvalidField { code, .. } => *code,
            _ => ErrorCode::MalformedRequest,
        }
    }

    /// Whether this is a `MintQuoteRequest` whose payload could not be
    /// read: a mint answers it with a `MintQuoteError` (under the request
    /// id, when it could be read) and the connection goes on.
    pub fn is_bad_quote_request(&self) -> bool {
        use super::WireMessage;
        matches!(
            self,
            DecodeError::Malformed { .. } | DecodeError::InvalidField { .. }
        ) && self.message() == Some(<super::MintQuoteRequest as WireMessage>::INFO.name)
    }

    /// The name of the message whose payload failed to decode; `None` for
    /// frames that are not a known message at all.
    pub fn message(&self) -> Option<&'static str> {
        match self {
            DecodeError::ChannelBitSet { message }
            | DecodeError::Malformed { message, .. }
            | DecodeError::InvalidField { message, .. } => Some(message),
            DecodeError::UnknownExtension(_) | DecodeError::UnknownMessageType { .. } => None,
        }
    }
}

/// What a decoder knows about the message it is reading, for its errors.
pub(crate) struct Ctx {
    pub(crate) message: &'static str,
    pub(crate) request_id: Option<u32>,
}

impl Ctx {
    pub(crate) fn malformed(&self, reason: impl std::fmt::Display) -> DecodeError {
        DecodeError::Malformed {
            message: self.message,
            request_id: self.request_id,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid(
        &self,
        field: &'static str,
        code: ErrorCode,
        reason: impl ToString,
    ) -> DecodeError {
        DecodeError::InvalidField {
            message: self.message,
            field,
            request_id: self.request_id,
            code,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn text(&self, field: &'static str, bytes: &[u8]) -> Result<String, DecodeError> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.invalid(field, ErrorCode::MalformedRequest, "not valid UTF-8"))
    }

    pub(crate) fn value<T>(
        &self,
        field: &'static str,
        code: ErrorCode,
        value: Result<T, ValueError>,
    ) -> Result<T, DecodeError> {
        value.map_err(|e| self.invalid(field, code, e))
    }

    pub(crate) fn unit(&self, field: &'static str, bytes: &[u8]) -> Result<Unit, DecodeError> {
        let text = self.text(field, bytes)?;
        self.value(field, ErrorCode::UnknownUnit, Unit::new(&text))
    }

    pub(crate) fn header_hash(&self, bytes: &[u8; 32]) -> Result<HeaderHash, DecodeError> {
        self.value(
            "header_hash",
            ErrorCode::InvalidHeaderHash,
            HeaderHash::new(*bytes),
        )
    }

    pub(crate) fn keyset_id(&self, bytes: &[u8]) -> Result<KeysetId, DecodeError> {
        self.value(
            "keyset_id",
            ErrorCode::UnknownKeyset,
            KeysetId::from_slice(bytes),
        )
    }

    pub(crate) fn pool_key(&self, bytes: &[u8; 32]) -> Result<AuthorityPublicKey, DecodeError> {
        AuthorityPublicKey::from_slice(bytes)
            .map_err(|e| self.invalid("pool_key", ErrorCode::NotAuthorised, e))
    }
}

/// Shortens `message` to at most 255 bytes on a character boundary.
pub(crate) fn fit_255(mut message: String) -> String {
    if message.len() > 255 {
        let mut end = 255;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// Borrows `s` as a `Str0255`, or says which field is too long.
pub(crate) fn str255<'a>(
    message: &'static str,
    field: &'static str,
    s: &'a str,
) -> Result<Str0255<'a>, EncodeError> {
    bytes255(message, field, s.as_bytes())
}

/// Borrows `b` as a `B0255`, or says which field is too long.
pub(crate) fn bytes255<'a>(
    message: &'static str,
    field: &'static str,
    b: &'a [u8],
) -> Result<B0255<'a>, EncodeError> {
    B0255::try_from(b).map_err(|_| EncodeError::TooLong {
        message,
        field,
        len: b.len(),
        max: 255,
    })
}

/// Wraps a list of extension types as a `Seq064K`.
pub(crate) fn seq<'a>(
    message: &'static str,
    field: &'static str,
    list: &[u16],
) -> Result<Seq064K<'a, u16>, EncodeError> {
    Seq064K::new(list.to_vec()).map_err(|_| EncodeError::TooLong {
        message,
        field,
        len: list.len(),
        max: u16::MAX as usize,
    })
}

/// Serializes the wire struct of the message `info` describes into a
/// frame.
pub(crate) fn frame_of<T: Serialize + GetSize>(
    info: &MessageInfo,
    wire: T,
) -> Result<Frame, EncodeError> {
    let message = info.name;
    let serialize_error = |reason: String| EncodeError::Serialize { message, reason };
    let frame = MessageFrame::from_message(wire, info.msg_type, info.extension_type, CHANNEL_MSG)
        .map_err(|e| serialize_error(format!("{e:?}")))?;
    let mut bytes = vec![0u8; frame.encoded_length()];
    framing_sv2::framing::EncodableFrame::encode_into(frame, &mut bytes)
        .map_err(|e| serialize_error(format!("{e:?}")))?;
    Frame::from_bytes(bytes).map_err(|e| serialize_error(e.to_string()))
}

/// Deserializes a wire struct and checks that it used the whole payload.
pub(crate) fn parse<'a, T>(ctx: &Ctx, payload: &'a mut [u8]) -> Result<T, DecodeError>
where
    T: binary_sv2::Decodable<'a> + GetSize,
{
    let len = payload.len();
    let value: T = binary_sv2::from_bytes(payload).map_err(|e| ctx.malformed(format!("{e:?}")))?;
    let used = value.get_size();
    if used != len {
        return Err(ctx.malformed(format!(
            "{} trailing bytes after the last field",
            len.saturating_sub(used)
        )));
    }
    Ok(value)
}
