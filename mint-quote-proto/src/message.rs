//! The messages of the protocol as validated Rust values, and their
//! conversion to and from [`Frame`]s.
//!
//! Decoding checks everything a peer could get wrong and says what it was;
//! it never panics. Encoding refuses values that do not fit their wire type
//! instead of cutting them silently, except [`MintQuoteError::new`] and
//! [`PoolAuthError::new`], which shorten a too-long human-readable message
//! on purpose.

use binary_sv2::{GetSize, Seq064K, Serialize, Signature, Str0255, Sv2Option, B0255, U256};
use framing_sv2::framing::MessageFrame;

use crate::constants::{
    common, mint_quote, negotiation, CHANNEL_MSG, EXTENSION_TYPE_COMMON, EXTENSION_TYPE_MINT_QUOTE,
    EXTENSION_TYPE_NEGOTIATION,
};
use crate::error_code::ErrorCode;
use crate::frame::Frame;
use crate::keys::AuthorityPublicKey;
use crate::pool_auth::Challenge;
use crate::values::{HeaderHash, KeysetId, LockingKey, QuoteState, Unit, ValueError};
use crate::wire;

/// `SetupConnection`: the first message on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupConnectionSuccess {
    /// Version both sides will speak.
    pub used_version: u16,
    /// Flags the responder supports.
    pub flags: u32,
}

/// `SetupConnection.Error`; the responder closes the connection after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupConnectionError {
    /// Flags the responder does not support.
    pub flags: u32,
    /// Spec error code string, such as `unsupported-protocol`.
    pub error_code: String,
}

/// `RequestExtensions`: the extensions the client wants to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestExtensions {
    /// Echoed in the reply.
    pub request_id: u16,
    /// Extension types requested.
    pub requested_extensions: Vec<u16>,
}

/// `RequestExtensions.Success`: the requested extensions the server supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestExtensionsSuccess {
    /// The request's id.
    pub request_id: u16,
    /// Requested extensions that are supported.
    pub supported_extensions: Vec<u16>,
}

/// `RequestExtensions.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestExtensionsError {
    /// The request's id.
    pub request_id: u16,
    /// Requested extensions the server does not support.
    pub unsupported_extensions: Vec<u16>,
    /// Extensions the server requires that were not requested.
    pub required_extensions: Vec<u16>,
}

/// `MintQuoteRequest`: create a paid quote for one accepted share.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintQuoteError {
    /// The request's id (0 when it could not be read).
    pub request_id: u32,
    /// Machine-readable reason.
    pub error_code: ErrorCode,
    /// Human-readable reason, at most 255 bytes.
    pub error_message: String,
}

/// `ActiveKeyset`: the keyset the mint issues `unit` under now. Sent after
/// authentication and again whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKeyset {
    /// The unit.
    pub unit: Unit,
    /// The active keyset's id.
    pub keyset_id: KeysetId,
    /// Fee per thousand inputs for proofs of this keyset (NUT-02).
    pub input_fee_ppk: u64,
}

/// `PoolAuthChallenge`: the nonce the pool must sign on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAuthChallenge {
    /// Fresh random nonce.
    pub nonce: Challenge,
}

/// `PoolAuthProof`: the pool's key and its signature over the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAuthProof {
    /// The pool's x-only public key.
    pub pool_key: AuthorityPublicKey,
    /// BIP-340 signature; see [`crate::pool_auth`].
    pub signature: [u8; 64],
}

/// `PoolAuthSuccess`: the mint accepted the proof for this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAuthSuccess {
    /// The key the pool proved.
    pub pool_key: AuthorityPublicKey,
}

/// `PoolAuthError`: the mint refused the proof; it closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolAuthError {
    /// Machine-readable reason, usually [`ErrorCode::NotAuthorised`].
    pub error_code: ErrorCode,
    /// Human-readable reason, at most 255 bytes.
    pub error_message: String,
}

/// Shortens `message` to at most 255 bytes on a character boundary.
fn fit_255(mut message: String) -> String {
    if message.len() > 255 {
        let mut end = 255;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
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

impl PoolAuthError {
    /// An authentication refusal; a message over 255 bytes is shortened.
    pub fn new(error_code: ErrorCode, error_message: impl Into<String>) -> Self {
        PoolAuthError {
            error_code,
            error_message: fit_255(error_message.into()),
        }
    }
}

/// Any message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is documented on its struct
pub enum Message {
    SetupConnection(SetupConnection),
    SetupConnectionSuccess(SetupConnectionSuccess),
    SetupConnectionError(SetupConnectionError),
    RequestExtensions(RequestExtensions),
    RequestExtensionsSuccess(RequestExtensionsSuccess),
    RequestExtensionsError(RequestExtensionsError),
    MintQuoteRequest(MintQuoteRequest),
    MintQuoteResponse(MintQuoteResponse),
    MintQuoteError(MintQuoteError),
    ActiveKeyset(ActiveKeyset),
    PoolAuthChallenge(PoolAuthChallenge),
    PoolAuthProof(PoolAuthProof),
    PoolAuthSuccess(PoolAuthSuccess),
    PoolAuthError(PoolAuthError),
}

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
}

/// What a decoder knows about the message it is reading, for its errors.
struct Ctx {
    message: &'static str,
    request_id: Option<u32>,
}

impl Ctx {
    fn malformed(&self, reason: impl std::fmt::Display) -> DecodeError {
        DecodeError::Malformed {
            message: self.message,
            request_id: self.request_id,
            reason: reason.to_string(),
        }
    }

    fn invalid(&self, field: &'static str, code: ErrorCode, reason: impl ToString) -> DecodeError {
        DecodeError::InvalidField {
            message: self.message,
            field,
            request_id: self.request_id,
            code,
            reason: reason.to_string(),
        }
    }

    fn text(&self, field: &'static str, bytes: &[u8]) -> Result<String, DecodeError> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.invalid(field, ErrorCode::MalformedRequest, "not valid UTF-8"))
    }

    fn value<T>(
        &self,
        field: &'static str,
        code: ErrorCode,
        value: Result<T, ValueError>,
    ) -> Result<T, DecodeError> {
        value.map_err(|e| self.invalid(field, code, e))
    }

    fn unit(&self, field: &'static str, bytes: &[u8]) -> Result<Unit, DecodeError> {
        let text = self.text(field, bytes)?;
        self.value(field, ErrorCode::UnknownUnit, Unit::new(&text))
    }

    fn header_hash(&self, bytes: &[u8; 32]) -> Result<HeaderHash, DecodeError> {
        self.value(
            "header_hash",
            ErrorCode::InvalidHeaderHash,
            HeaderHash::new(*bytes),
        )
    }

    fn keyset_id(&self, bytes: &[u8]) -> Result<KeysetId, DecodeError> {
        self.value(
            "keyset_id",
            ErrorCode::UnknownKeyset,
            KeysetId::from_slice(bytes),
        )
    }

    fn pool_key(&self, bytes: &[u8; 32]) -> Result<AuthorityPublicKey, DecodeError> {
        AuthorityPublicKey::from_slice(bytes)
            .map_err(|e| self.invalid("pool_key", ErrorCode::NotAuthorised, e))
    }
}

/// Borrows `s` as a `Str0255`, or says which field is too long.
fn str255<'a>(
    message: &'static str,
    field: &'static str,
    s: &'a str,
) -> Result<Str0255<'a>, EncodeError> {
    bytes255(message, field, s.as_bytes())
}

/// Borrows `b` as a `B0255`, or says which field is too long.
fn bytes255<'a>(
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
fn seq<'a>(
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

/// Serializes a wire struct into a frame.
fn frame_of<T: Serialize + GetSize>(
    message: &'static str,
    extension_type: u16,
    msg_type: u8,
    wire: T,
) -> Result<Frame, EncodeError> {
    let serialize_error = |reason: String| EncodeError::Serialize { message, reason };
    let frame = MessageFrame::from_message(wire, msg_type, extension_type, CHANNEL_MSG)
        .map_err(|e| serialize_error(format!("{e:?}")))?;
    let mut bytes = vec![0u8; frame.encoded_length()];
    framing_sv2::framing::EncodableFrame::encode_into(frame, &mut bytes)
        .map_err(|e| serialize_error(format!("{e:?}")))?;
    Frame::from_bytes(bytes).map_err(|e| serialize_error(e.to_string()))
}

/// Deserializes a wire struct and checks that it used the whole payload.
fn parse<'a, T>(ctx: &Ctx, payload: &'a mut [u8]) -> Result<T, DecodeError>
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

impl Message {
    /// Name of the message, as the spec writes it.
    pub fn name(&self) -> &'static str {
        let (ext, ty) = self.kind();
        Self::name_of(ext, ty).unwrap_or("unknown")
    }

    /// The extension type of the message.
    pub fn extension_type(&self) -> u16 {
        self.kind().0
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.kind().1
    }

    fn kind(&self) -> (u16, u8) {
        use Message::*;
        match self {
            SetupConnection(_) => (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION),
            SetupConnectionSuccess(_) => (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION_SUCCESS),
            SetupConnectionError(_) => (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION_ERROR),
            RequestExtensions(_) => (EXTENSION_TYPE_NEGOTIATION, negotiation::REQUEST_EXTENSIONS),
            RequestExtensionsSuccess(_) => (
                EXTENSION_TYPE_NEGOTIATION,
                negotiation::REQUEST_EXTENSIONS_SUCCESS,
            ),
            RequestExtensionsError(_) => (
                EXTENSION_TYPE_NEGOTIATION,
                negotiation::REQUEST_EXTENSIONS_ERROR,
            ),
            MintQuoteRequest(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_REQUEST),
            MintQuoteResponse(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_RESPONSE),
            MintQuoteError(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_ERROR),
            ActiveKeyset(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::ACTIVE_KEYSET),
            PoolAuthChallenge(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_CHALLENGE),
            PoolAuthProof(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_PROOF),
            PoolAuthSuccess(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_SUCCESS),
            PoolAuthError(_) => (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_ERROR),
        }
    }

    /// Encodes the message as a plaintext frame.
    pub fn to_frame(&self) -> Result<Frame, EncodeError> {
        let (ext, ty) = self.kind();
        let name = self.name();
        match self {
            Message::SetupConnection(m) => frame_of(
                name,
                ext,
                ty,
                wire::SetupConnection {
                    protocol: m.protocol,
                    min_version: m.min_version,
                    max_version: m.max_version,
                    flags: m.flags,
                    endpoint_host: str255(name, "endpoint_host", &m.endpoint_host)?,
                    endpoint_port: m.endpoint_port,
                    vendor: str255(name, "vendor", &m.vendor)?,
                    hardware_version: str255(name, "hardware_version", &m.hardware_version)?,
                    firmware: str255(name, "firmware", &m.firmware)?,
                    device_id: str255(name, "device_id", &m.device_id)?,
                },
            ),
            Message::SetupConnectionSuccess(m) => frame_of(
                name,
                ext,
                ty,
                wire::SetupConnectionSuccess {
                    used_version: m.used_version,
                    flags: m.flags,
                },
            ),
            Message::SetupConnectionError(m) => frame_of(
                name,
                ext,
                ty,
                wire::SetupConnectionError {
                    flags: m.flags,
                    error_code: str255(name, "error_code", &m.error_code)?,
                },
            ),
            Message::RequestExtensions(m) => frame_of(
                name,
                ext,
                ty,
                wire::RequestExtensions {
                    request_id: m.request_id,
                    requested_extensions: seq(
                        name,
                        "requested_extensions",
                        &m.requested_extensions,
                    )?,
                },
            ),
            Message::RequestExtensionsSuccess(m) => frame_of(
                name,
                ext,
                ty,
                wire::RequestExtensionsSuccess {
                    request_id: m.request_id,
                    supported_extensions: seq(
                        name,
                        "supported_extensions",
                        &m.supported_extensions,
                    )?,
                },
            ),
            Message::RequestExtensionsError(m) => frame_of(
                name,
                ext,
                ty,
                wire::RequestExtensionsError {
                    request_id: m.request_id,
                    unsupported_extensions: seq(
                        name,
                        "unsupported_extensions",
                        &m.unsupported_extensions,
                    )?,
                    required_extensions: seq(name, "required_extensions", &m.required_extensions)?,
                },
            ),
            Message::MintQuoteRequest(m) => {
                let locking_key = m.locking_key.serialize();
                let description = match &m.description {
                    Some(d) => Some(str255(name, "description", d)?),
                    None => None,
                };
                frame_of(
                    name,
                    ext,
                    ty,
                    wire::MintQuoteRequest {
                        request_id: m.request_id,
                        amount: m.amount,
                        unit: str255(name, "unit", m.unit.as_str())?,
                        header_hash: U256::from(m.header_hash.as_bytes()),
                        description: Sv2Option::new(description),
                        locking_key: bytes255(name, "locking_key", &locking_key)?,
                        keyset_id: bytes255(name, "keyset_id", m.keyset_id.as_bytes())?,
                    },
                )
            }
            Message::MintQuoteResponse(m) => frame_of(
                name,
                ext,
                ty,
                wire::MintQuoteResponse {
                    request_id: m.request_id,
                    quote_id: str255(name, "quote_id", &m.quote_id)?,
                    amount: m.amount,
                    unit: str255(name, "unit", m.unit.as_str())?,
                    expires_at: m.expires_at,
                    state: m.state.to_u8(),
                    header_hash: U256::from(m.header_hash.as_bytes()),
                },
            ),
            Message::MintQuoteError(m) => frame_of(
                name,
                ext,
                ty,
                wire::MintQuoteError {
                    request_id: m.request_id,
                    error_code: m.error_code.to_u32(),
                    error_message: str255(name, "error_message", &m.error_message)?,
                },
            ),
            Message::ActiveKeyset(m) => frame_of(
                name,
                ext,
                ty,
                wire::ActiveKeyset {
                    unit: str255(name, "unit", m.unit.as_str())?,
                    keyset_id: bytes255(name, "keyset_id", m.keyset_id.as_bytes())?,
                    input_fee_ppk: m.input_fee_ppk,
                },
            ),
            Message::PoolAuthChallenge(m) => frame_of(
                name,
                ext,
                ty,
                wire::PoolAuthChallenge {
                    nonce: U256::from(&m.nonce.0),
                },
            ),
            Message::PoolAuthProof(m) => {
                let key = m.pool_key.serialize();
                frame_of(
                    name,
                    ext,
                    ty,
                    wire::PoolAuthProof {
                        pool_key: U256::from(&key),
                        signature: Signature::from(&m.signature),
                    },
                )
            }
            Message::PoolAuthSuccess(m) => {
                let key = m.pool_key.serialize();
                frame_of(
                    name,
                    ext,
                    ty,
                    wire::PoolAuthSuccess {
                        pool_key: U256::from(&key),
                    },
                )
            }
            Message::PoolAuthError(m) => frame_of(
                name,
                ext,
                ty,
                wire::PoolAuthError {
                    error_code: m.error_code.to_u32(),
                    error_message: str255(name, "error_message", &m.error_message)?,
                },
            ),
        }
    }

    /// Decodes a plaintext frame.
    ///
    /// A frame of an extension this protocol does not use gives
    /// [`DecodeError::UnknownExtension`], which a peer should log and ignore.
    pub fn from_frame(frame: &Frame) -> Result<Message, DecodeError> {
        let ext = frame.extension_type();
        let ty = frame.msg_type();
        let name = match (ext, ty) {
            (EXTENSION_TYPE_COMMON | EXTENSION_TYPE_NEGOTIATION | EXTENSION_TYPE_MINT_QUOTE, _) => {
                Self::name_of(ext, ty).ok_or(DecodeError::UnknownMessageType {
                    extension_type: ext,
                    msg_type: ty,
                })?
            }
            _ => return Err(DecodeError::UnknownExtension(ext)),
        };
        if frame.channel_msg() {
            return Err(DecodeError::ChannelBitSet { message: name });
        }
        // The quote messages start with a U32 request id. Reading it first
        // lets an error about any later field still name the request.
        let request_id = match (ext, ty) {
            (EXTENSION_TYPE_MINT_QUOTE, 0x80..=0x82) => frame
                .payload()
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => None,
        };
        let ctx = Ctx {
            message: name,
            request_id,
        };
        let mut payload = frame.payload().to_vec();
        let payload = payload.as_mut_slice();
        let message = match (ext, ty) {
            (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION) => {
                let m: wire::SetupConnection = parse(&ctx, payload)?;
                Message::SetupConnection(SetupConnection {
                    protocol: m.protocol,
                    min_version: m.min_version,
                    max_version: m.max_version,
                    flags: m.flags,
                    endpoint_host: ctx.text("endpoint_host", m.endpoint_host.as_bytes())?,
                    endpoint_port: m.endpoint_port,
                    vendor: ctx.text("vendor", m.vendor.as_bytes())?,
                    hardware_version: ctx
                        .text("hardware_version", m.hardware_version.as_bytes())?,
                    firmware: ctx.text("firmware", m.firmware.as_bytes())?,
                    device_id: ctx.text("device_id", m.device_id.as_bytes())?,
                })
            }
            (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION_SUCCESS) => {
                let m: wire::SetupConnectionSuccess = parse(&ctx, payload)?;
                Message::SetupConnectionSuccess(SetupConnectionSuccess {
                    used_version: m.used_version,
                    flags: m.flags,
                })
            }
            (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION_ERROR) => {
                let m: wire::SetupConnectionError = parse(&ctx, payload)?;
                Message::SetupConnectionError(SetupConnectionError {
                    flags: m.flags,
                    error_code: ctx.text("error_code", m.error_code.as_bytes())?,
                })
            }
            (EXTENSION_TYPE_NEGOTIATION, negotiation::REQUEST_EXTENSIONS) => {
                let m: wire::RequestExtensions = parse(&ctx, payload)?;
                Message::RequestExtensions(RequestExtensions {
                    request_id: m.request_id,
                    requested_extensions: m.requested_extensions.into_inner(),
                })
            }
            (EXTENSION_TYPE_NEGOTIATION, negotiation::REQUEST_EXTENSIONS_SUCCESS) => {
                let m: wire::RequestExtensionsSuccess = parse(&ctx, payload)?;
                Message::RequestExtensionsSuccess(RequestExtensionsSuccess {
                    request_id: m.request_id,
                    supported_extensions: m.supported_extensions.into_inner(),
                })
            }
            (EXTENSION_TYPE_NEGOTIATION, negotiation::REQUEST_EXTENSIONS_ERROR) => {
                let m: wire::RequestExtensionsError = parse(&ctx, payload)?;
                Message::RequestExtensionsError(RequestExtensionsError {
                    request_id: m.request_id,
                    unsupported_extensions: m.unsupported_extensions.into_inner(),
                    required_extensions: m.required_extensions.into_inner(),
                })
            }
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_REQUEST) => {
                let m: wire::MintQuoteRequest = parse(&ctx, payload)?;
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
                Message::MintQuoteRequest(MintQuoteRequest {
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
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_RESPONSE) => {
                let m: wire::MintQuoteResponse = parse(&ctx, payload)?;
                Message::MintQuoteResponse(MintQuoteResponse {
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
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_ERROR) => {
                let m: wire::MintQuoteError = parse(&ctx, payload)?;
                Message::MintQuoteError(MintQuoteError {
                    request_id: m.request_id,
                    error_code: ErrorCode::from(m.error_code),
                    error_message: ctx.text("error_message", m.error_message.as_bytes())?,
                })
            }
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::ACTIVE_KEYSET) => {
                let m: wire::ActiveKeyset = parse(&ctx, payload)?;
                Message::ActiveKeyset(ActiveKeyset {
                    unit: ctx.unit("unit", m.unit.as_bytes())?,
                    keyset_id: ctx.keyset_id(m.keyset_id.as_bytes())?,
                    input_fee_ppk: m.input_fee_ppk,
                })
            }
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_CHALLENGE) => {
                let m: wire::PoolAuthChallenge = parse(&ctx, payload)?;
                Message::PoolAuthChallenge(PoolAuthChallenge {
                    nonce: Challenge(*m.nonce.as_array()),
                })
            }
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_PROOF) => {
                let m: wire::PoolAuthProof = parse(&ctx, payload)?;
                Message::PoolAuthProof(PoolAuthProof {
                    pool_key: ctx.pool_key(m.pool_key.as_array())?,
                    signature: *m.signature.as_array(),
                })
            }
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_SUCCESS) => {
                let m: wire::PoolAuthSuccess = parse(&ctx, payload)?;
                Message::PoolAuthSuccess(PoolAuthSuccess {
                    pool_key: ctx.pool_key(m.pool_key.as_array())?,
                })
            }
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_ERROR) => {
                let m: wire::PoolAuthError = parse(&ctx, payload)?;
                Message::PoolAuthError(PoolAuthError {
                    error_code: ErrorCode::from(m.error_code),
                    error_message: ctx.text("error_message", m.error_message.as_bytes())?,
                })
            }
            _ => {
                return Err(DecodeError::UnknownMessageType {
                    extension_type: ext,
                    msg_type: ty,
                })
            }
        };
        Ok(message)
    }

    /// The name of the message with this extension and message type, if
    /// this protocol defines one.
    pub fn name_of(extension_type: u16, msg_type: u8) -> Option<&'static str> {
        Some(match (extension_type, msg_type) {
            (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION) => "SetupConnection",
            (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION_SUCCESS) => "SetupConnection.Success",
            (EXTENSION_TYPE_COMMON, common::SETUP_CONNECTION_ERROR) => "SetupConnection.Error",
            (EXTENSION_TYPE_NEGOTIATION, negotiation::REQUEST_EXTENSIONS) => "RequestExtensions",
            (EXTENSION_TYPE_NEGOTIATION, negotiation::REQUEST_EXTENSIONS_SUCCESS) => {
                "RequestExtensions.Success"
            }
            (EXTENSION_TYPE_NEGOTIATION, negotiation::REQUEST_EXTENSIONS_ERROR) => {
                "RequestExtensions.Error"
            }
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_REQUEST) => "MintQuoteRequest",
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_RESPONSE) => "MintQuoteResponse",
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::MINT_QUOTE_ERROR) => "MintQuoteError",
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::ACTIVE_KEYSET) => "ActiveKeyset",
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_CHALLENGE) => "PoolAuthChallenge",
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_PROOF) => "PoolAuthProof",
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_SUCCESS) => "PoolAuthSuccess",
            (EXTENSION_TYPE_MINT_QUOTE, mint_quote::POOL_AUTH_ERROR) => "PoolAuthError",
            _ => return None,
        })
    }
}
