//! [`FrameWriter`]: encrypts Sv2 frames onto a byte stream.

use std::time::Duration;

use bytes::BytesMut;
use noise_sv2::NoiseEncryptor;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::cipher::{encrypted_payload_len, Tail, ENCRYPTED_HEADER_SIZE, PLAINTEXT_CHUNK_SIZE};
use super::TransportError;
use crate::frame::{Frame, HEADER_SIZE};
use crate::message::Message;

/// Encrypted bytes buffered before [`FrameWriter::write_frame`] sends them
/// on its own; below it, bytes wait for [`FrameWriter::flush`], so that
/// many small frames leave in one system call.
const FLUSH_AT: usize = 64 * 1024;

/// The writing half of an established channel.
///
/// Every write to the socket has a deadline: a peer that stops reading
/// cannot hold a writer (and what waits on it) forever.
pub struct FrameWriter<W> {
    inner: W,
    encryptor: NoiseEncryptor,
    /// Encrypted bytes not yet written to the socket.
    out: BytesMut,
    /// Bytes of `out` already written, kept across a cancelled flush so
    /// that nothing is sent twice.
    written: usize,
    write_timeout: Duration,
}

impl<W> FrameWriter<W> {
    /// The byte stream, and everything else to go on writing later on
    /// another stream (see [`super::into_parts`]).
    pub(crate) fn into_parts(self) -> (W, WriterState) {
        let FrameWriter {
            inner,
            encryptor,
            out,
            written,
            write_timeout,
        } = self;
        (
            inner,
            WriterState {
                encryptor,
                out,
                written,
                write_timeout,
            },
        )
    }

    pub(crate) fn from_parts(inner: W, state: WriterState) -> Self {
        let WriterState {
            encryptor,
            out,
            written,
            write_timeout,
        } = state;
        FrameWriter {
            inner,
            encryptor,
            out,
            written,
            write_timeout,
        }
    }
}

/// A [`FrameWriter`] without its stream.
pub(crate) struct WriterState {
    encryptor: NoiseEncryptor,
    out: BytesMut,
    written: usize,
    write_timeout: Duration,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(inner: W, encryptor: NoiseEncryptor, write_timeout: Duration) -> Self {
        FrameWriter {
            inner,
            encryptor,
            out: BytesMut::new(),
            written: 0,
            write_timeout,
        }
    }

    /// Encrypts `frame` into the write buffer, and sends the buffer if it
    /// has grown large. Call [`Self::flush`] to send the rest: writing
    /// several frames and flushing once saves system calls.
    pub async fn write_frame(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.encrypt(frame)?;
        if self.out.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Encrypts the header, then the payload chunk by chunk, each in place
    /// at the end of `out`.
    fn encrypt(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.encrypt_parts(&frame.as_bytes()[..HEADER_SIZE], frame.payload())
    }

    /// Fuzzing only: encrypts `header` as given (its length may lie, it
    /// may be the wrong size) and `payload` into the write buffer, so that
    /// a fuzzer can hand the reader what no honest writer produces.
    #[cfg(fuzzing)]
    pub fn write_raw(&mut self, header: &[u8], payload: &[u8]) -> Result<(), TransportError> {
        self.encrypt_parts(header, payload)
    }

    fn encrypt_parts(&mut self, header: &[u8], payload: &[u8]) -> Result<(), TransportError> {
        self.out
            .reserve(ENCRYPTED_HEADER_SIZE + encrypted_payload_len(payload.len()));
        for piece in std::iter::once(header).chain(payload.chunks(PLAINTEXT_CHUNK_SIZE)) {
            let start = self.out.len();
            self.out.extend_from_slice(piece);
            self.encryptor
                .encrypt(&mut Tail::new(&mut self.out, start))
                .map_err(|e| TransportError::Encrypt(e.to_string()))?;
        }
        Ok(())
    }

    /// Sends everything written so far, within the write timeout.
    ///
    /// Cancel-safe: bytes the socket took before a cancellation are not
    /// sent again by the next call.
    pub async fn flush(&mut self) -> Result<(), TransportError> {
        let timeout = self.write_timeout;
        tokio::time::timeout(timeout, async {
            while self.written < self.out.len() {
                let n = self.inner.write(&self.out[self.written..]).await?;
                if n == 0 {
                    return Err(TransportError::Io(std::io::ErrorKind::WriteZero.into()));
                }
                self.written += n;
            }
            self.inner.flush().await?;
            Ok(())
        })
        .await
        .map_err(|_| TransportError::WriteTimeout(timeout))??;
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Encodes, encrypts and sends one message right away.
    pub async fn send_message(&mut self, message: &Message) -> Result<(), TransportError> {
        self.write_frame(&message.to_frame()?).await?;
        self.flush().await
    }

    /// Closes the writing side of the stream after sending what is buffered.
    pub async fn shutdown(&mut self) -> Result<(), TransportError> {
        self.flush().await?;
        let timeout = self.write_timeout;
        tokio::time::timeout(timeout, self.inner.shutdown())
            .await
            .map_err(|_| TransportError::WriteTimeout(timeout))??;
        Ok(())
    }
}
