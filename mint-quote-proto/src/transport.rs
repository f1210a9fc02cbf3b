//! The Noise NX channel over any tokio byte stream, and framed reading and
//! writing on it.
//!
//! The mint is the Noise responder and proves its authority key with a
//! certificate; the pool is the initiator and pins that key. Both ends use
//! [`FrameReader`] and [`FrameWriter`], which can live in separate tasks.
//!
//! Two limits protect a peer from the other side: every handshake read is
//! under a timeout, and a frame's declared length is checked against the
//! configured maximum before any of its payload is buffered.

use std::time::Duration;

use codec_sv2::{
    Decoded, Decrypted, Handshake, InitiatorSent, NoiseDecoder, NoiseEncoder,
    TransportDecryptState, TransportEncryptState,
};
use noise_sv2::{Initiator, Responder, AEAD_MAC_LEN};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf,
};

use crate::constants::{DEFAULT_MAX_PAYLOAD_LEN, MAX_PAYLOAD_LEN_LIMIT, MIN_PAYLOAD_LEN_LIMIT};
use crate::frame::Frame;
use crate::keys::{AuthorityKeypair, AuthorityPublicKey};
use crate::message::{EncodeError, Message};

/// Limits of one connection's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    /// Time allowed for the whole Noise handshake.
    pub handshake_timeout: Duration,
    /// Largest frame payload accepted from the peer, in bytes.
    pub max_payload_len: usize,
    /// Validity of the certificate a responder issues (responder only).
    pub cert_validity: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            handshake_timeout: Duration::from_secs(10),
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
            cert_validity: Duration::from_secs(3600),
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
        if self.cert_validity < Duration::from_secs(60) {
            return Err("cert_validity must be at least 60 seconds".into());
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
    /// The peer closed the connection in the middle of a frame or handshake.
    #[error("peer closed the connection in the middle of a frame")]
    Truncated,
    /// The peer declared a frame larger than the limit.
    #[error("peer declared a frame payload of at least {declared} bytes; the limit is {limit}")]
    FrameTooLarge {
        /// Lower bound of the declared payload length.
        declared: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A frame failed to decrypt or its header was invalid; the cipher state
    /// is lost, so the connection cannot go on.
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
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The reading half of an established channel.
///
/// [`FrameReader::read_frame`] is cancel-safe: bytes of a frame read before
/// a cancellation (a `select!` on shutdown) are kept and the next call
/// carries on with them.
pub struct FrameReader<R> {
    inner: BufReader<R>,
    decoder: NoiseDecoder,
    state: Option<TransportDecryptState>,
    max_payload_len: usize,
    /// The decoder's current read window, filled here and handed to the
    /// decoder only once complete.
    window: Vec<u8>,
    /// Bytes of `window` filled so far.
    filled: usize,
    /// Whether any byte of the current frame has been read.
    mid_frame: bool,
}

/// The writing half of an established channel.
pub struct FrameWriter<W> {
    inner: BufWriter<W>,
    encoder: NoiseEncoder,
    state: TransportEncryptState,
}

/// Fills `buf` from `reader` (handshake messages; not cancel-safe, but a
/// handshake is never raced against anything but its own timeout).
async fn fill<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> Result<(), TransportError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(TransportError::Truncated);
        }
        filled += n;
    }
    Ok(())
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads the next frame. `Ok(None)` when the peer closed the connection
    /// between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, TransportError> {
        // The encrypted payload of a frame within the limit is at most this
        // long, and it fits one Noise chunk (see `TransportConfig::validate`),
        // so the decoder's first read window after the header is the exact
        // encrypted length and can be checked before anything is buffered.
        let max_window = self.max_payload_len + AEAD_MAC_LEN;
        loop {
            if !self.window.is_empty() {
                while self.filled < self.window.len() {
                    // `read` is cancel-safe; the count is kept in `self`.
                    let n = self.inner.read(&mut self.window[self.filled..]).await?;
                    if n == 0 {
                        if !self.mid_frame {
                            return Ok(None);
                        }
                        return Err(TransportError::Truncated);
                    }
                    self.filled += n;
                    self.mid_frame = true;
                }
                self.decoder.writable().copy_from_slice(&self.window);
                self.window.clear();
                self.filled = 0;
            }
            let state = self.state.take().ok_or(TransportError::Broken)?;
            match self.decoder.next_transport_frame(state) {
                Ok(Decrypted::Frame(frame, state)) => {
                    self.state = Some(state);
                    self.mid_frame = false;
                    return Ok(Some(Frame::from_serialized(frame)));
                }
                Ok(Decrypted::Incomplete(window, state)) => {
                    self.state = Some(state);
                    if window > max_window {
                        self.state = None;
                        return Err(TransportError::FrameTooLarge {
                            declared: window - AEAD_MAC_LEN,
                            limit: self.max_payload_len,
                        });
                    }
                    self.window.resize(window, 0);
                }
                Err(e) => return Err(TransportError::Decrypt(e.to_string())),
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Encrypts `frame` into the write buffer. Call [`Self::flush`] to send;
    /// writing several frames and flushing once saves system calls.
    pub async fn write_frame(&mut self, frame: Frame) -> Result<(), TransportError> {
        let bytes = self
            .encoder
            .encode_transport(frame.into_serialized(), &mut self.state)
            .map_err(|e| TransportError::Encrypt(e.to_string()))?;
        self.inner.write_all(&bytes).await?;
        Ok(())
    }

    /// Sends everything written so far.
    pub async fn flush(&mut self) -> Result<(), TransportError> {
        self.inner.flush().await?;
        Ok(())
    }

    /// Encodes, encrypts and sends one message right away.
    pub async fn send_message(&mut self, message: &Message) -> Result<(), TransportError> {
        self.write_frame(message.to_frame()?).await?;
        self.flush().await
    }

    /// Closes the writing side of the stream after sending what is buffered.
    pub async fn shutdown(&mut self) -> Result<(), TransportError> {
        self.inner.shutdown().await?;
        Ok(())
    }
}

/// Reads one handshake message of the size the state `S` expects.
async fn read_handshake<S, R>(
    reader: &mut R,
    decoder: &mut NoiseDecoder,
) -> Result<framing_sv2::framing::HandshakeMessage, TransportError>
where
    S: codec_sv2::ExpectsHandshakeMessage,
    R: AsyncRead + Unpin,
{
    loop {
        match decoder
            .next_handshake_frame::<S>()
            .map_err(|e| TransportError::Handshake(e.to_string()))?
        {
            Decoded::Frame(message) => return Ok(message),
            Decoded::Incomplete(0) => continue,
            Decoded::Incomplete(_) => fill(reader, decoder.writable()).await?,
        }
    }
}

/// Splits `stream` into a framed reader and writer sharing the session.
fn into_halves<S: AsyncRead + AsyncWrite>(
    reader: BufReader<ReadHalf<S>>,
    writer: WriteHalf<S>,
    decoder: NoiseDecoder,
    transport: codec_sv2::Transport,
    config: &TransportConfig,
) -> (FrameReader<ReadHalf<S>>, FrameWriter<WriteHalf<S>>) {
    let (encrypt, decrypt) = transport.split();
    (
        FrameReader {
            inner: reader,
            decoder,
            state: Some(decrypt),
            max_payload_len: config.max_payload_len,
            window: Vec::new(),
            filled: 0,
            mid_frame: false,
        },
        FrameWriter {
            inner: BufWriter::new(writer),
            encoder: NoiseEncoder::new(),
            state: encrypt,
        },
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

/// The mint's side: answers the Noise NX handshake on `stream` with the
/// authority `keypair`. One fresh `Responder` per call, as Noise requires.
pub async fn accept<S: AsyncRead + AsyncWrite>(
    stream: S,
    keypair: &AuthorityKeypair,
    config: &TransportConfig,
) -> Result<(FrameReader<ReadHalf<S>>, FrameWriter<WriteHalf<S>>), TransportError> {
    let responder = Responder::from_authority_kp(
        &keypair.public().serialize(),
        &keypair.secret().secret_bytes(),
        config.cert_validity,
    )
    .map_err(|e| TransportError::Handshake(format!("{e:?}")))?;
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    let mut decoder = NoiseDecoder::new();
    let transport = with_timeout(config, async {
        let first = read_handshake::<Responder, _>(&mut reader, &mut decoder).await?;
        let first = first.payload().try_into().map_err(|_| {
            TransportError::Handshake("first handshake message has the wrong size".into())
        })?;
        let (reply, transport) = Handshake::responder(responder)
            .step_1(first)
            .map_err(|e| TransportError::Handshake(e.to_string()))?;
        let mut encoder = NoiseEncoder::new();
        write
            .write_all(encoder.encode_handshake(reply).as_ref())
            .await?;
        write.flush().await?;
        Ok(transport)
    })
    .await?;
    Ok(into_halves(reader, write, decoder, transport, config))
}

/// The pool's side: runs the Noise NX handshake on `stream` and accepts
/// the responder only if its certificate is signed by `mint_key`.
pub async fn connect<S: AsyncRead + AsyncWrite>(
    stream: S,
    mint_key: &AuthorityPublicKey,
    config: &TransportConfig,
) -> Result<(FrameReader<ReadHalf<S>>, FrameWriter<WriteHalf<S>>), TransportError> {
    initiate(stream, Some(mint_key), config).await
}

/// Like [`connect`] but accepts any responder: the channel is encrypted but
/// the peer is not authenticated. Only for tools on a trusted network (the
/// sniffer's `--trust-any-upstream`); a pool always pins the mint's key.
pub async fn connect_unpinned<S: AsyncRead + AsyncWrite>(
    stream: S,
    config: &TransportConfig,
) -> Result<(FrameReader<ReadHalf<S>>, FrameWriter<WriteHalf<S>>), TransportError> {
    initiate(stream, None, config).await
}

async fn initiate<S: AsyncRead + AsyncWrite>(
    stream: S,
    mint_key: Option<&AuthorityPublicKey>,
    config: &TransportConfig,
) -> Result<(FrameReader<ReadHalf<S>>, FrameWriter<WriteHalf<S>>), TransportError> {
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    let mut decoder = NoiseDecoder::new();
    let transport = with_timeout(config, async {
        let initiator = Initiator::new(mint_key.map(AuthorityPublicKey::x_only));
        let (first, sent) = Handshake::initiator(initiator)
            .step_0()
            .map_err(|e| TransportError::Handshake(e.to_string()))?;
        let mut encoder = NoiseEncoder::new();
        write
            .write_all(encoder.encode_handshake(first).as_ref())
            .await?;
        write.flush().await?;
        let reply = read_handshake::<InitiatorSent, _>(&mut reader, &mut decoder).await?;
        let reply = reply.payload().try_into().map_err(|_| {
            TransportError::Handshake("second handshake message has the wrong size".into())
        })?;
        sent.step_2(reply).map_err(|e| match (e, mint_key) {
            (
                e @ codec_sv2::Error::NoiseSv2Error(noise_sv2::Error::InvalidCertificate(_)),
                Some(pinned),
            ) => TransportError::CertificateRefused {
                pinned: *pinned,
                reason: e.to_string(),
            },
            (other, _) => TransportError::Handshake(other.to_string()),
        })
    })
    .await?;
    Ok(into_halves(reader, write, decoder, transport, config))
}
