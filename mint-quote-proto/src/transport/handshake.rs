//! The Noise NX handshake of the Sv2 spec, on any tokio byte stream.
//!
//! Handshake messages travel without Sv2 framing: the initiator sends its
//! 64-byte ElligatorSwift-encoded ephemeral key, the responder answers with
//! 234 bytes (its ephemeral key, its encrypted static key and the
//! certificate signed by its authority key). Each side reads exactly the
//! bytes it expects, so anything the peer sends after stays in the socket
//! for the frame reader.

use noise_sv2::{
    Initiator, NoiseEngine, Responder, ELLSWIFT_ENCODING_SIZE,
    INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{TransportConfig, TransportError};
use crate::keys::{AuthorityKeypair, AuthorityPublicKey};

/// Fills `buf`, telling a peer that sent nothing at all apart from one
/// that stopped in the middle.
async fn read_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<(), TransportError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(if filled == 0 {
                TransportError::Closed
            } else {
                TransportError::Truncated
            });
        }
        filled += n;
    }
    Ok(())
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> Result<(), TransportError> {
    writer.write_all(bytes).await?;
    writer.flush().await?;
    Ok(())
}

/// The responder's side. The responder's keys are made only once the
/// initiator's first message is in, so a peer that connects and says
/// nothing costs no cryptography.
pub(crate) async fn respond<R, W>(
    reader: &mut R,
    writer: &mut W,
    keypair: &AuthorityKeypair,
    config: &TransportConfig,
) -> Result<NoiseEngine, TransportError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut first = [0u8; ELLSWIFT_ENCODING_SIZE];
    read_exact(reader, &mut first).await?;
    // The range check of the configuration keeps this within u32.
    let validity = u32::try_from(config.cert_validity.as_secs()).unwrap_or(u32::MAX);
    let mut responder = Responder::new(keypair.secret().keypair(), validity);
    let (reply, engine) = responder
        .step_1(first)
        .map_err(|e| TransportError::Handshake(format!("{e:?}")))?;
    send(writer, &reply).await?;
    Ok(engine)
}

/// The initiator's side; the responder's certificate must be signed by
/// `pinned` when it is given.
pub(crate) async fn initiate<R, W>(
    reader: &mut R,
    writer: &mut W,
    pinned: Option<&AuthorityPublicKey>,
) -> Result<NoiseEngine, TransportError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut initiator = Initiator::new(pinned.map(AuthorityPublicKey::x_only));
    let first = initiator
        .step_0()
        .map_err(|e| TransportError::Handshake(format!("{e:?}")))?;
    send(writer, &first).await?;
    let mut reply = [0u8; INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE];
    read_exact(reader, &mut reply).await?;
    initiator.step_2(reply).map_err(|e| match (e, pinned) {
        (noise_sv2::Error::InvalidCertificate(cert), Some(pinned)) => {
            TransportError::CertificateRefused {
                pinned: *pinned,
                reason: format!("invalid certificate {cert}"),
            }
        }
        (other, _) => TransportError::Handshake(format!("{other:?}")),
    })
}
