//! One plaintext Sv2 frame: the 6-byte header and its payload.

use std::fmt;

use bytes::Bytes;

/// Size of the plaintext Sv2 frame header.
pub const HEADER_SIZE: usize = 6;

/// Largest payload the 24-bit length field can declare.
pub const MAX_DECLARABLE_PAYLOAD: usize = (1 << 24) - 1;

/// A whole Sv2 frame in plaintext: header (`extension_type U16 | msg_type U8
/// | msg_length U24`, little-endian) followed by `msg_length` payload bytes.
///
/// This is what the transport reads and writes, what a relay forwards
/// unchanged, and what the hex examples in `docs/protocol.md` show. The
/// bytes are reference-counted, so cloning a frame (to resend it) copies
/// nothing.
#[derive(Clone)]
pub struct Frame(Bytes);

/// Bytes that do not hold exactly one frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not exactly one Sv2 frame: {0}")]
pub struct FrameError(String);

/// The fields of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Extension type, with the `channel_msg` bit (bit 15).
    pub extension_type: u16,
    /// Message type.
    pub msg_type: u8,
    /// Payload length the header declares.
    pub msg_length: usize,
}

impl Header {
    /// Reads the six header bytes.
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Header {
        Header {
            extension_type: u16::from_le_bytes([bytes[0], bytes[1]]),
            msg_type: bytes[2],
            msg_length: u32::from_le_bytes([bytes[3], bytes[4], bytes[5], 0]) as usize,
        }
    }
}

impl Frame {
    /// Builds a frame from its header fields and payload.
    pub fn new(
        extension_type: u16,
        channel_msg: bool,
        msg_type: u8,
        payload: &[u8],
    ) -> Result<Self, FrameError> {
        if payload.len() > MAX_DECLARABLE_PAYLOAD {
            return Err(FrameError(format!("payload of {} bytes", payload.len())));
        }
        let len = payload.len() as u32;
        let ext = if channel_msg {
            extension_type | 0x8000
        } else {
            extension_type & 0x7fff
        };
        let mut bytes = Vec::with_capacity(HEADER_SIZE + payload.len());
        bytes.extend_from_slice(&ext.to_le_bytes());
        bytes.push(msg_type);
        bytes.extend_from_slice(&len.to_le_bytes()[..3]);
        bytes.extend_from_slice(payload);
        Ok(Frame(bytes.into()))
    }

    /// Takes the bytes of exactly one frame, header included.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Self, FrameError> {
        let bytes = bytes.into();
        let Some(header) = bytes.first_chunk::<HEADER_SIZE>() else {
            return Err(FrameError(format!(
                "{} bytes, shorter than a header",
                bytes.len()
            )));
        };
        let declared = Header::parse(header).msg_length;
        let actual = bytes.len() - HEADER_SIZE;
        if declared != actual {
            return Err(FrameError(format!(
                "the header declares {declared} payload bytes, {actual} follow"
            )));
        }
        Ok(Frame(bytes))
    }

    /// The header fields.
    pub fn header(&self) -> Header {
        match self.0.first_chunk::<HEADER_SIZE>() {
            Some(bytes) => Header::parse(bytes),
            // Every constructor checks the length.
            None => unreachable!("a frame always has a header"),
        }
    }

    /// The extension type without the `channel_msg` bit.
    pub fn extension_type(&self) -> u16 {
        self.header().extension_type & 0x7fff
    }

    /// Whether the `channel_msg` bit (bit 15 of the extension type) is set.
    pub fn channel_msg(&self) -> bool {
        self.header().extension_type & 0x8000 != 0
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.0[2]
    }

    /// The payload, without the header.
    pub fn payload(&self) -> &[u8] {
        &self.0[HEADER_SIZE..]
    }

    /// The whole frame, header and payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field(
                "extension_type",
                &format_args!("{:#06x}", self.extension_type()),
            )
            .field("channel_msg", &self.channel_msg())
            .field("msg_type", &format_args!("{:#04x}", self.msg_type()))
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Frame {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_little_endian() {
        let frame = Frame::new(0x4d51, false, 0x80, &[1, 2, 3]).unwrap();
        assert_eq!(frame.as_bytes(), &[0x51, 0x4d, 0x80, 3, 0, 0, 1, 2, 3]);
        assert_eq!(frame.extension_type(), 0x4d51);
        assert!(!frame.channel_msg());
        assert_eq!(frame.msg_type(), 0x80);
        assert_eq!(frame.payload(), &[1, 2, 3]);
    }

    #[test]
    fn the_channel_bit_is_bit_15() {
        let frame = Frame::new(0x0001, true, 0, &[]).unwrap();
        assert_eq!(&frame.as_bytes()[..2], &[0x01, 0x80]);
        assert!(frame.channel_msg());
        assert_eq!(frame.extension_type(), 1);
    }

    #[test]
    fn bytes_that_are_not_one_frame_are_refused() {
        assert!(Frame::from_bytes(vec![0, 0, 0]).is_err());
        assert!(Frame::from_bytes(vec![0, 0, 0, 2, 0, 0, 1]).is_err());
        assert!(Frame::from_bytes(vec![0, 0, 0, 0, 0, 0, 1]).is_err());
        assert!(Frame::from_bytes(vec![0, 0, 0, 1, 0, 0, 1]).is_ok());
    }

    #[test]
    fn the_length_field_holds_24_bits() {
        let header = Header::parse(&[0, 0, 0, 0xff, 0xff, 0xff]);
        assert_eq!(header.msg_length, MAX_DECLARABLE_PAYLOAD);
        assert!(Frame::new(0, false, 0, &vec![0; MAX_DECLARABLE_PAYLOAD + 1]).is_err());
    }
}
