//! [`FrameReader`]: decrypts Sv2 frames from a byte stream.

use bytes::{Buf, BytesMut};
use noise_sv2::{NoiseDecryptor, AEAD_MAC_LEN};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::cipher::{encrypted_payload_len, Tail, CHUNK_SIZE, ENCRYPTED_HEADER_SIZE};
use super::TransportError;
use crate::frame::{Frame, Header, HEADER_SIZE};

/// Bytes asked of the socket at least per read, so that small frames
/// arriving together are read with one system call.
const READ_AHEAD: usize = 4096;

/// The reading half of an established channel.
///
/// A frame's header is decrypted as soon as its 22 bytes are in, and the
/// length it declares is checked against the limit before any byte of the
/// payload is buffered: a peer cannot make the reader hold more than one
/// frame within the limit (plus one read's worth of what follows).
///
/// [`FrameReader::read_frame`] is cancel-safe: bytes read before a
/// cancellation (a `select!` on shutdown) are kept, and the next call goes
/// on with them.
pub struct FrameReader<R> {
    inner: R,
    /// `None` once a frame failed to decrypt: the cipher's nonce no longer
    /// follows the peer's, so nothing more can be read.
    decryptor: Option<NoiseDecryptor>,
    max_payload_len: usize,
    /// Bytes received and not yet returned as part of a frame.
    buf: BytesMut,
    /// The decrypted header of the frame whose payload is awaited.
    header: Option<[u8; HEADER_SIZE]>,
    /// Where the header is decrypted, apart from `buf`, so that the
    /// payload behind it stays where it is.
    scratch: BytesMut,
    /// Whether the peer has sent any byte on this channel.
    received_any: bool,
}

impl<R> FrameReader<R> {
    /// The byte stream, and everything else to go on reading later on
    /// another stream carrying the same bytes (see [`super::into_parts`]).
    pub(crate) fn into_parts(self) -> (R, ReaderState) {
        let FrameReader {
            inner,
            decryptor,
            max_payload_len,
            buf,
            header,
            scratch,
            received_any,
        } = self;
        (
            inner,
            ReaderState {
                decryptor,
                max_payload_len,
                buf,
                header,
                scratch,
                received_any,
            },
        )
    }

    pub(crate) fn from_parts(inner: R, state: ReaderState) -> Self {
        let ReaderState {
            decryptor,
            max_payload_len,
            buf,
            header,
            scratch,
            received_any,
        } = state;
        FrameReader {
            inner,
            decryptor,
            max_payload_len,
            buf,
            header,
            scratch,
            received_any,
        }
    }
}

/// A [`FrameReader`] without its stream.
pub(crate) struct ReaderState {
    decryptor: Option<NoiseDecryptor>,
    max_payload_len: usize,
    buf: BytesMut,
    header: Option<[u8; HEADER_SIZE]>,
    scratch: BytesMut,
    received_any: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(inner: R, decryptor: NoiseDecryptor, max_payload_len: usize) -> Self {
        FrameReader {
            inner,
            decryptor: Some(decryptor),
            max_payload_len,
            buf: BytesMut::new(),
            header: None,
            scratch: BytesMut::with_capacity(ENCRYPTED_HEADER_SIZE),
            received_any: false,
        }
    }

    /// Reads the next frame. `Ok(None)` when the peer closed the connection
    /// between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, TransportError> {
        loop {
            if let Some(frame) = self.decode()? {
                return Ok(Some(frame));
            }
            let missing = self.bytes_needed().saturating_sub(self.buf.len());
            self.buf.reserve(missing.max(READ_AHEAD));
            // `read_buf` is cancel-safe: what it read is in `buf`.
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() && self.header.is_none() {
                    return Ok(None);
                }
                return Err(TransportError::Truncated);
            }
            self.received_any = true;
        }
    }

    /// Whether the peer has sent anything since the handshake.
    pub fn received_any(&self) -> bool {
        self.received_any
    }

    /// Bytes the current frame needs in `buf` before it can progress.
    fn bytes_needed(&self) -> usize {
        match &self.header {
            None => ENCRYPTED_HEADER_SIZE,
            Some(header) => {
                ENCRYPTED_HEADER_SIZE + encrypted_payload_len(Header::parse(header).msg_length)
            }
        }
    }

    /// Takes a whole frame out of `buf`, if one is there.
    fn decode(&mut self) -> Result<Option<Frame>, TransportError> {
        let header = match self.header {
            Some(header) => header,
            None => {
                if self.buf.len() < ENCRYPTED_HEADER_SIZE {
                    return Ok(None);
                }
                let header = self.decrypt_header()?;
                self.header = Some(header);
                header
            }
        };
        let len = Header::parse(&header).msg_length;
        let total = ENCRYPTED_HEADER_SIZE + encrypted_payload_len(len);
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut frame = self.buf.split_to(total);
        let mut encrypted = frame.split_off(ENCRYPTED_HEADER_SIZE);
        let payload = self.decrypt_payload(&mut encrypted)?;
        // The header goes just before the payload, over the end of its own
        // ciphertext, so that the two are contiguous without a copy.
        frame[AEAD_MAC_LEN..].copy_from_slice(&header);
        frame.advance(AEAD_MAC_LEN);
        frame.unsplit(payload);
        self.header = None;
        Frame::from_bytes(frame.freeze())
            .map(Some)
            .map_err(|e| TransportError::Decrypt(e.to_string()))
    }

    /// Decrypts the header at the front of `buf` and checks its length.
    fn decrypt_header(&mut self) -> Result<[u8; HEADER_SIZE], TransportError> {
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&self.buf[..ENCRYPTED_HEADER_SIZE]);
        let decryptor = self.decryptor.as_mut().ok_or(TransportError::Broken)?;
        if decryptor
            .decrypt(&mut Tail::new(&mut self.scratch, 0))
            .is_err()
        {
            self.decryptor = None;
            return Err(TransportError::Decrypt(
                "the frame header failed authentication".into(),
            ));
        }
        let mut header = [0u8; HEADER_SIZE];
        header.copy_from_slice(&self.scratch[..HEADER_SIZE]);
        let declared = Header::parse(&header).msg_length;
        if declared > self.max_payload_len {
            // The connection ends here; nothing of the payload was read.
            self.decryptor = None;
            return Err(TransportError::FrameTooLarge {
                declared,
                limit: self.max_payload_len,
            });
        }
        Ok(header)
    }

    /// Decrypts the payload chunks in `encrypted` and returns the
    /// plaintext. A payload within one chunk (every payload when the limit
    /// is at most 65,519 bytes) is decrypted where it lies.
    fn decrypt_payload(&mut self, encrypted: &mut BytesMut) -> Result<BytesMut, TransportError> {
        let decryptor = self.decryptor.as_mut().ok_or(TransportError::Broken)?;
        let mut plain = BytesMut::new();
        while !encrypted.is_empty() {
            let mut chunk = encrypted.split_to(encrypted.len().min(CHUNK_SIZE));
            if decryptor.decrypt(&mut Tail::new(&mut chunk, 0)).is_err() {
                self.decryptor = None;
                return Err(TransportError::Decrypt(
                    "a frame payload failed authentication".into(),
                ));
            }
            plain.unsplit(chunk);
        }
        Ok(plain)
    }
}
