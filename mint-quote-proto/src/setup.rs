//! The connection setup both sides run after the Noise handshake:
//! `SetupConnection`, extension negotiation and pool authentication, as
//! `docs/protocol.md` section 2 describes.
//!
//! [`initiate`] is the pool's side and [`respond`] the mint's. Keeping both
//! here means the two can only disagree if this crate disagrees with itself,
//! which its tests check.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::constants::{EXTENSION_TYPE_MINT_QUOTE, MINT_QUOTE_PROTOCOL, PROTOCOL_VERSION};
use crate::error_code::ErrorCode;
use crate::keys::{AuthorityKeypair, AuthorityPublicKey};
use crate::message::{
    DecodeError, Message, MintQuoteError, PoolAuthChallenge, PoolAuthError, PoolAuthProof,
    PoolAuthSuccess, RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess,
    SetupConnection, SetupConnectionError, SetupConnectionSuccess,
};
use crate::pool_auth::{self, AuthError, Challenge};
use crate::transport::{FrameReader, FrameWriter, TransportError};

/// Why the setup of a connection failed. Every variant ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The socket or the Noise channel failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The peer closed the connection before setup finished.
    #[error("peer closed the connection during setup")]
    Closed,
    /// Setup did not finish in time.
    #[error("connection setup did not finish within {0:?}")]
    Timeout(Duration),
    /// A frame of a known extension could not be decoded.
    #[error("undecodable message during setup: {0}")]
    Decode(#[from] DecodeError),
    /// The peer sent a message that does not belong at this step.
    #[error("protocol violation: expected {expected}, got {got}")]
    Unexpected {
        /// What the sequence called for.
        expected: &'static str,
        /// What arrived.
        got: &'static str,
    },
    /// A `MintQuoteRequest` came before the pool had authenticated; the
    /// mint answered it `not-authorised` (8) before closing (mint side).
    #[error("protocol violation: MintQuoteRequest before authentication (expected {expected}); answered not-authorised")]
    RequestBeforeAuthentication {
        /// What the sequence called for.
        expected: &'static str,
    },
    /// The mint answered `SetupConnection.Error`.
    #[error("the mint refused SetupConnection: {0}")]
    SetupRefused(String),
    /// The pool's `SetupConnection` is not acceptable (mint side).
    #[error("refused SetupConnection: {0}")]
    BadSetup(String),
    /// Extension negotiation failed.
    #[error(
        "extension negotiation failed: unsupported {unsupported:04x?}, required {required:04x?}"
    )]
    Extensions {
        /// Requested extensions not supported.
        unsupported: Vec<u16>,
        /// Extensions required but not requested.
        required: Vec<u16>,
    },
    /// The mint refused the pool's authentication.
    #[error("the mint refused pool authentication: {code}: {message}")]
    AuthRefused {
        /// The mint's code.
        code: ErrorCode,
        /// The mint's reason.
        message: String,
    },
    /// The pool's proof was not accepted (mint side).
    #[error("pool authentication failed: {0}")]
    NotAuthorised(#[from] AuthError),
}

/// What the pool presents during setup.
#[derive(Debug, Clone)]
pub struct InitiatorSetup {
    /// The mint's authority key, pinned during the Noise handshake and bound
    /// into the authentication proof.
    pub mint_key: AuthorityPublicKey,
    /// The pool's own keypair, which the mint must have on its allow-list.
    pub pool_keypair: AuthorityKeypair,
    /// Host the pool connected to, for `SetupConnection`.
    pub endpoint_host: String,
    /// Port the pool connected to.
    pub endpoint_port: u16,
    /// Name of the pool, for the mint's logs.
    pub device_id: String,
}

/// What the mint learns about a connection that completed setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedPool {
    /// The pool key the connection proved.
    pub pool_key: AuthorityPublicKey,
    /// The `device_id` the pool gave in `SetupConnection`.
    pub device_id: String,
    /// The vendor and version the pool gave, for logs.
    pub software: String,
    /// Frames of unknown extensions or message types ignored during
    /// setup (the spec says to ignore them; this says it happened).
    pub ignored_frames: u64,
}

/// Reads the next message, skipping frames of extensions this protocol does
/// not use and unknown message types of its own extensions (the Sv2 spec
/// says to ignore them; docs/protocol.md section 1).
pub async fn next_message<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<Message, SetupError> {
    next_message_counting(reader, &mut 0).await
}

/// [`next_message`], adding the frames it skipped to `ignored`.
async fn next_message_counting<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    ignored: &mut u64,
) -> Result<Message, SetupError> {
    loop {
        let frame = reader.read_frame().await?.ok_or(SetupError::Closed)?;
        match Message::from_frame(&frame) {
            Ok(message) => return Ok(message),
            Err(
                e @ (DecodeError::UnknownExtension(_) | DecodeError::UnknownMessageType { .. }),
            ) => {
                // DEBUG only: before authentication anyone can send these,
                // as fast as they like. The count reaches the mint's log
                // once the pool has authenticated (`AcceptedPool`).
                tracing::debug!(reason = %e, "ignoring a frame during setup");
                *ignored += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn under<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, SetupError>>,
) -> Result<T, SetupError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| SetupError::Timeout(timeout))?
}

/// The pool's side of setup. Returns once the mint has accepted the pool's
/// key; the mint's `ActiveKeyset` follows as the first regular message.
pub async fn initiate<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    setup: &InitiatorSetup,
    timeout: Duration,
) -> Result<(), SetupError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    under(timeout, async {
        writer
            .send_message(&Message::SetupConnection(SetupConnection {
                protocol: MINT_QUOTE_PROTOCOL,
                min_version: PROTOCOL_VERSION,
                max_version: PROTOCOL_VERSION,
                flags: 0,
                endpoint_host: setup.endpoint_host.clone(),
                endpoint_port: setup.endpoint_port,
                vendor: env!("CARGO_PKG_NAME").into(),
                hardware_version: String::new(),
                firmware: env!("CARGO_PKG_VERSION").into(),
                device_id: setup.device_id.clone(),
            }))
            .await?;
        match next_message(reader).await? {
            Message::SetupConnectionSuccess(_) => {}
            Message::SetupConnectionError(e) => return Err(SetupError::SetupRefused(e.error_code)),
            other => return Err(unexpected("SetupConnection.Success", &other)),
        }

        writer
            .send_message(&Message::RequestExtensions(RequestExtensions {
                request_id: 0,
                requested_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
            }))
            .await?;
        match next_message(reader).await? {
            Message::RequestExtensionsSuccess(s)
                if s.supported_extensions.contains(&EXTENSION_TYPE_MINT_QUOTE) => {}
            Message::RequestExtensionsSuccess(_) => {
                return Err(SetupError::Extensions {
                    unsupported: vec![EXTENSION_TYPE_MINT_QUOTE],
                    required: vec![],
                })
            }
            Message::RequestExtensionsError(e) => {
                return Err(SetupError::Extensions {
                    unsupported: e.unsupported_extensions,
                    required: e.required_extensions,
                })
            }
            other => return Err(unexpected("RequestExtensions.Success", &other)),
        }

        let challenge = match next_message(reader).await? {
            Message::PoolAuthChallenge(c) => c.nonce,
            other => return Err(unexpected("PoolAuthChallenge", &other)),
        };
        let signature = pool_auth::sign_proof(&setup.pool_keypair, &setup.mint_key, &challenge);
        writer
            .send_message(&Message::PoolAuthProof(PoolAuthProof {
                pool_key: setup.pool_keypair.public(),
                signature,
            }))
            .await?;
        match next_message(reader).await? {
            Message::PoolAuthSuccess(_) => Ok(()),
            Message::PoolAuthError(e) => Err(SetupError::AuthRefused {
                code: e.error_code,
                message: e.error_message,
            }),
            other => Err(unexpected("PoolAuthSuccess", &other)),
        }
    })
    .await
}

fn unexpected(expected: &'static str, got: &Message) -> SetupError {
    SetupError::Unexpected {
        expected,
        got: got.name(),
    }
}

/// Refuses a message that came before setup finished. A quote request gets
/// a `MintQuoteError` first, so the pool learns why its request failed.
async fn refuse_early<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    expected: &'static str,
    got: Message,
) -> SetupError {
    if let Message::MintQuoteRequest(request) = &got {
        let answer = MintQuoteError::new(
            request.request_id,
            ErrorCode::NotAuthorised,
            "quote request before connection setup and pool authentication finished",
        );
        // The connection is closing anyway; a failed send changes nothing.
        let _ = writer.send_message(&Message::MintQuoteError(answer)).await;
        return SetupError::RequestBeforeAuthentication { expected };
    }
    unexpected(expected, &got)
}

/// The mint's side of setup. `mint_key` is the mint's authority public key;
/// `admit` decides, once a pool has proved its key, whether the mint takes
/// it (the allow-list, the connection limits), and what it returns is
/// handed back with the pool.
///
/// On failure the pool has been told why where the protocol has a message
/// for it; the caller closes the connection.
pub async fn respond<R, W, T>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    mint_key: &AuthorityPublicKey,
    admit: impl FnOnce(&AuthorityPublicKey) -> Result<T, AuthError>,
    timeout: Duration,
) -> Result<(AcceptedPool, T), SetupError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    under(timeout, async {
        let mut ignored = 0;
        let setup = match next_message_counting(reader, &mut ignored).await? {
            Message::SetupConnection(s) => s,
            other => return Err(refuse_early(writer, "SetupConnection", other).await),
        };
        let refusal = if setup.protocol != MINT_QUOTE_PROTOCOL {
            Some(("unsupported-protocol", 0))
        } else if !(setup.min_version..=setup.max_version).contains(&PROTOCOL_VERSION) {
            Some(("protocol-version-mismatch", 0))
        } else if setup.flags != 0 {
            Some(("unsupported-feature-flags", setup.flags))
        } else {
            None
        };
        if let Some((code, flags)) = refusal {
            writer
                .send_message(&Message::SetupConnectionError(SetupConnectionError {
                    flags,
                    error_code: code.into(),
                }))
                .await?;
            return Err(SetupError::BadSetup(format!(
                "{code} (protocol {}, versions {}..={}, flags {:#x})",
                setup.protocol, setup.min_version, setup.max_version, setup.flags
            )));
        }
        writer
            .send_message(&Message::SetupConnectionSuccess(SetupConnectionSuccess {
                used_version: PROTOCOL_VERSION,
                flags: 0,
            }))
            .await?;

        let request = match next_message_counting(reader, &mut ignored).await? {
            Message::RequestExtensions(r) => r,
            other => return Err(refuse_early(writer, "RequestExtensions", other).await),
        };
        if !request
            .requested_extensions
            .contains(&EXTENSION_TYPE_MINT_QUOTE)
        {
            let unsupported = request.requested_extensions.clone();
            writer
                .send_message(&Message::RequestExtensionsError(RequestExtensionsError {
                    request_id: request.request_id,
                    unsupported_extensions: unsupported.clone(),
                    required_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
                }))
                .await?;
            return Err(SetupError::Extensions {
                unsupported,
                required: vec![EXTENSION_TYPE_MINT_QUOTE],
            });
        }
        writer
            .send_message(&Message::RequestExtensionsSuccess(
                RequestExtensionsSuccess {
                    request_id: request.request_id,
                    supported_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
                },
            ))
            .await?;

        let challenge = Challenge::random();
        writer
            .send_message(&Message::PoolAuthChallenge(PoolAuthChallenge {
                nonce: challenge,
            }))
            .await?;
        let proof = match next_message_counting(reader, &mut ignored).await? {
            Message::PoolAuthProof(p) => p,
            other => return Err(refuse_early(writer, "PoolAuthProof", other).await),
        };
        let verdict =
            pool_auth::verify_proof(mint_key, &challenge, &proof.pool_key, &proof.signature)
                .and_then(|()| admit(&proof.pool_key));
        let admitted = match verdict {
            Ok(admitted) => admitted,
            Err(e) => {
                writer
                    .send_message(&Message::PoolAuthError(PoolAuthError::new(
                        e.code(),
                        e.to_string(),
                    )))
                    .await?;
                return Err(e.into());
            }
        };
        writer
            .send_message(&Message::PoolAuthSuccess(PoolAuthSuccess {
                pool_key: proof.pool_key,
            }))
            .await?;
        Ok((
            AcceptedPool {
                pool_key: proof.pool_key,
                device_id: setup.device_id,
                software: format!("{} {}", setup.vendor, setup.firmware),
                ignored_frames: ignored,
            },
            admitted,
        ))
    })
    .await
}
