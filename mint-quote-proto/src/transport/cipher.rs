//! The Sv2 transport encryption of one frame, done in place.
//!
//! The spec encrypts the 6-byte header as one AEAD message (22 bytes on the
//! wire) and the payload in chunks of at most 65,519 plaintext bytes, each
//! followed by its 16-byte tag. `noise_sv2` encrypts and decrypts a
//! buffer in place and appends or removes the tag at its end; [`Tail`] lets
//! it work on the end of a larger buffer, so a frame is built and read
//! without copying its payload.

use aead::Buffer;
use bytes::BytesMut;
use noise_sv2::AEAD_MAC_LEN;

use crate::frame::HEADER_SIZE;

/// Bytes of one encrypted chunk on the wire, tag included.
pub(crate) const CHUNK_SIZE: usize = framing_sv2::SV2_FRAME_CHUNK_SIZE;

/// Plaintext bytes of one chunk.
pub(crate) const PLAINTEXT_CHUNK_SIZE: usize = CHUNK_SIZE - AEAD_MAC_LEN;

/// Bytes of an encrypted header on the wire.
pub(crate) const ENCRYPTED_HEADER_SIZE: usize = HEADER_SIZE + AEAD_MAC_LEN;

/// Bytes on the wire of a payload of `len` plaintext bytes.
pub(crate) fn encrypted_payload_len(len: usize) -> usize {
    len + len.div_ceil(PLAINTEXT_CHUNK_SIZE) * AEAD_MAC_LEN
}

/// The bytes of a buffer from `start` to its end, as the AEAD sees them:
/// encryption appends the tag after them, decryption removes it.
pub(crate) struct Tail<'a> {
    buf: &'a mut BytesMut,
    start: usize,
}

impl<'a> Tail<'a> {
    /// The bytes of `buf` from `start` on.
    pub(crate) fn new(buf: &'a mut BytesMut, start: usize) -> Self {
        Tail { buf, start }
    }
}

impl AsRef<[u8]> for Tail<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
}

impl Buffer for Tail<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> aead::Result<()> {
        self.buf.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.buf.truncate(self.start + len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_lengths_count_one_tag_per_chunk() {
        assert_eq!(encrypted_payload_len(0), 0);
        assert_eq!(encrypted_payload_len(1), 17);
        assert_eq!(encrypted_payload_len(PLAINTEXT_CHUNK_SIZE), CHUNK_SIZE);
        assert_eq!(
            encrypted_payload_len(PLAINTEXT_CHUNK_SIZE + 1),
            PLAINTEXT_CHUNK_SIZE + 1 + 2 * AEAD_MAC_LEN
        );
    }

    #[test]
    fn a_tail_sees_only_the_end_of_its_buffer() {
        let mut buf = BytesMut::from(&b"headtail"[..]);
        let mut tail = Tail::new(&mut buf, 4);
        assert_eq!(tail.as_ref(), b"tail");
        Buffer::extend_from_slice(&mut tail, b"!").unwrap();
        Buffer::truncate(&mut tail, 2);
        assert_eq!(&buf[..], b"headta");
    }
}
