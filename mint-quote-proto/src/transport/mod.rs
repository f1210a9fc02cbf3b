//! The Noise NX channel over any tokio byte stream, and framed reading and
//! writing on it.
//!
//! The mint is the Noise responder and proves its authority key with a
//! certificate; the pool is the initiator and pins that key. Both ends use
//! [`FrameReader`] and [`FrameWriter`], which can live in separate tasks.
//!
//! The framing is the Sv2 spec's, built here on `noise_sv2` directly
//! rather than on `codec_sv2`'s decoder: that lets the reader check the
//! length a decrypted header declares before it buffers any payload (the
//! decoder reads a 64 KiB chunk first and only then says how long the
//! frame is), and lets both halves encrypt and decrypt in place. The bytes
//! on the wire are the same; a test checks them against `codec_sv2`.
//!
//! Three limits protect one side from the other: the handshake runs under
//! a timeout, a frame's declared length is checked before its payload is
//! read, and every write has a deadline.

mod cipher;
mod handshake;
mod reader;
mod writer;

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};

use crate::constants::{DEFAULT_MAX_PAYLOAD_LEN, MAX_PAYLOAD_LEN_LIMIT, MIN_PAYLOAD_LEN_LIMIT};
use crate::keys::{AuthorityKeypair, AuthorityPublicKey};
use crate::message::EncodeError;

pub use reader::FrameReader;
pub use writer::FrameWriter;

/// Limits of one connection's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    /// Time allowed for the whole Noise handshake.
    pub handshake_timeout: Duration,
    /// Largest frame payload accepted from the peer, in bytes.
    pub max_payload_len: usize,
    /// Validity of the certificate a responder issues (responder only).
    pub cert_validity: Duration,
    /// Time one flush of written frames may take before the connection is
    /// given up: a peer that stops reading is dropped, not waited on.
    pub write_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            handshake_timeout: Duration::from_secs(10),
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
            cert_validity: Duration::from_secs(3600),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl TransportConfig {
    /// Checks that the limits are usable, and says which is not.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_PAYLOAD_LEN_LIMIT..=MAX_PAYLOAD_LEN_LIMIT).contains(&self.max_payload_len) {
            return Err(format!(
                "max_payload_len must be between {MIN_PAYLOAD_LEN_LIMIT} and {MAX_PAYLOAD_LEN_LIMIT} bytes, got {}",
                self.max_payload_len
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err("handshake_timeout must be more than zero".into());
        }
        if self.write_timeout.is_zero() {
            return Err("write_timeout must be more than zero".into());
        }
        if self.cert_validity < Duration::from_secs(60)
            || self.cert_validity.as_secs() > u64::from(u32::MAX / 2)
        {
            return Err("cert_validity must be between 60 seconds and 68 years".into());
        }
        Ok(())
    }
}

/// Why a connection's transport failed. Every variant ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The handshake did not finish within the configured time.
    #[error("Noise handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The responder's certificate is not signed by the pinned key, or has
    /// expired.
    #[error("the mint's Noise certificate was refused (not signed by the pinned authority key {pinned}, or expired): {reason}")]
    CertificateRefused {
        /// The key the initiator pinned.
        pinned: AuthorityPublicKey,
        /// What the Noise layer said.
        reason: String,
    },
    /// Any other handshake failure.
    #[error("Noise handshake failed: {0}")]
    Handshake(String),
    /// The peer closed the connection before sending a byte.
    #[error("peer closed the connection without sending anything")]
    Closed,
    /// The peer closed the connection in the middle of a frame or handshake
    /// message.
    #[error("peer closed the connection in the middle of a frame")]
    Truncated,
    /// The peer declared a frame larger than the limit.
    #[error("peer declared a frame payload of {declared} bytes; the limit is {limit}")]
    FrameTooLarge {
        /// The payload length the frame's header declares.
        declared: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A frame failed to decrypt; the cipher state is lost, so the
    /// connection cannot go on.
    #[error("frame could not be decrypted: {0}")]
    Decrypt(String),
    /// A frame could not be encrypted.
    #[error("frame could not be encrypted: {0}")]
    Encrypt(String),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// An earlier error left this reader without a cipher state.
    #[error("the connection was already broken by an earlier error")]
    Broken,
    /// The peer did not take written bytes within the write timeout.
    #[error("the peer did not take written bytes within {0:?}")]
    WriteTimeout(Duration),
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The two halves of an established channel over `S`.
pub type Channel<S> = (FrameReader<ReadHalf<S>>, FrameWriter<WriteHalf<S>>);

/// An established channel's cipher states and buffers, without its byte
/// stream: what it takes to carry a channel over to another stream with
/// the same bytes (the mint moves an authenticated connection from the
/// runtime that admitted it to the one that serves quotes).
pub struct ChannelParts {
    reader: reader::ReaderState,
    writer: writer::WriterState,
}

impl std::fmt::Debug for ChannelParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelParts")
    }
}

/// Takes `channel` apart into its byte stream and the rest. Frames already
/// read but not returned, and bytes written but not flushed, stay in the
/// parts.
pub fn into_parts<S: AsyncRead + AsyncWrite + Unpin>(channel: Channel<S>) -> (S, ChannelParts) {
    let (reader, writer) = channel;
    let (read, reader) = reader.into_parts();
    let (write, writer) = writer.into_parts();
    (read.unsplit(write), ChannelParts { reader, writer })
}

/// Puts a channel back together on `stream`, which must carry the same
/// connection as the one [`into_parts`] took it from.
pub fn from_parts<S: AsyncRead + AsyncWrite>(stream: S, parts: ChannelParts) -> Channel<S> {
    let (read, write) = tokio::io::split(stream);
    (
        FrameReader::from_parts(read, parts.reader),
        FrameWriter::from_parts(write, parts.writer),
    )
}

/// Runs `fut` under the handshake timeout.
async fn with_timeout<T>(
    config: &TransportConfig,
    fut: impl std::future::Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout(config.handshake_timeout, fut)
        .await
        .map_err(|_| TransportError::HandshakeTimeout(config.handshake_timeout))?
}

fn into_channel<S: AsyncRead + AsyncWrite>(
    read: ReadHalf<S>,
    write: WriteHalf<S>,
    engine: noise_sv2::NoiseEngine,
    config: &TransportConfig,
) -> Channel<S> {
    let (encryptor, decryptor) = engine.into_split();
    (
        FrameReader::new(read, decryptor, config.max_payload_len),
        FrameWriter::new(write, encryptor, config.write_timeout),
    )
}

/// The mint's side: answers the Noise NX handshake on `stream` with the
/// authority `keypair`. One fresh responder per call, as Noise requires.
pub async fn accept<S: AsyncRead + AsyncWrite>(
    stream: S,
    keypair: &AuthorityKeypair,
    config: &TransportConfig,
) -> Result<Channel<S>, TransportError> {
    let (mut read, mut write) = tokio::io::split(stream);
    let engine = with_timeout(
        config,
        handshake::respond(&mut read, &mut write, keypair, config),
    )
    .await?;
    Ok(into_channel(read, write, engine, config))
}

/// The pool's side: runs the Noise NX handshake on `stream` and accepts
/// the responder only if its certificate is signed by `mint_key`.
pub async fn connect<S: AsyncRead + AsyncWrite>(
    stream: S,
    mint_key: &AuthorityPublicKey,
    config: &TransportConfig,
) -> Result<Channel<S>, TransportError> {
    initiate(stream, Some(mint_key), config).await
}

/// Like [`connect`] but accepts any responder: the channel is encrypted but
/// the peer is not authenticated. Only for tools on a trusted network (the
/// sniffer's `--trust-any-upstream`); a pool always pins the mint's key.
pub async fn connect_unpinned<S: AsyncRead + AsyncWrite>(
    stream: S,
    config: &TransportConfig,
) -> Result<Channel<S>, TransportError> {
    initiate(stream, None, config).await
}

async fn initiate<S: AsyncRead + AsyncWrite>(
    stream: S,
    mint_key: Option<&AuthorityPublicKey>,
    config: &TransportConfig,
) -> Result<Channel<S>, TransportError> {
    let (mut read, mut write) = tokio::io::split(stream);
    let engine = with_timeout(config, handshake::initiate(&mut read, &mut write, mint_key)).await?;
    Ok(into_channel(read, write, engine, config))
}

/// Sets the TCP options both ends use: no Nagle delay (frames are small
/// and answered at once), and TCP keepalive probing after `keepalive` of
/// silence, every third of it, three times, so that the kernel also gives
/// up on a peer that vanished without a word (the application keepalive
/// usually notices first).
pub fn tune_tcp(stream: &tokio::net::TcpStream, keepalive: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let probes = socket2::TcpKeepalive::new()
        .with_time(keepalive)
        .with_interval((keepalive / 3).max(Duration::from_secs(1)));
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    let probes = probes.with_retries(3);
    socket2::SockRef::from(stream).set_tcp_keepalive(&probes)
}
