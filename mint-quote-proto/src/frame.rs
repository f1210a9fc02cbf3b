//! One plaintext Sv2 frame: the 6-byte header and its payload.

use std::fmt;

use framing_sv2::framing::SerializedFrame;
use framing_sv2::header::Header;

/// A whole Sv2 frame in plaintext: header (`extension_type U16 | msg_type U8
/// | msg_length U24`, little-endian) followed by `msg_length` payload bytes.
///
/// This is what the transport reads and writes, what a relay forwards
/// unchanged, and what the hex examples in `docs/protocol.md` show.
#[derive(Clone)]
pub struct Frame(SerializedFrame<Vec<u8>>);

/// Bytes that do not hold exactly one frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not exactly one Sv2 frame: {0}")]
pub struct FrameError(String);

impl Frame {
    /// Builds a frame from its header fields and payload.
    pub fn new(
        extension_type: u16,
        channel_msg: bool,
        msg_type: u8,
        payload: &[u8],
    ) -> Result<Self, FrameError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len < (1 << 24))
            .ok_or_else(|| FrameError(format!("payload of {} bytes", payload.len())))?;
        let ext = if channel_msg {
            extension_type | 0x8000
        } else {
            extension_type & 0x7fff
        };
        let mut bytes = Vec::with_capacity(Header::SIZE + payload.len());
        bytes.extend_from_slice(&ext.to_le_bytes());
        bytes.push(msg_type);
        bytes.extend_from_slice(&len.to_le_bytes()[..3]);
        bytes.extend_from_slice(payload);
        Frame::from_bytes(bytes)
    }

    /// Takes the bytes of exactly one frame, header included.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, FrameError> {
        SerializedFrame::from_bytes(bytes)
            .map(Frame)
            .map_err(|hint| FrameError(format!("{hint:?}")))
    }

    pub(crate) fn from_serialized(frame: SerializedFrame<Vec<u8>>) -> Self {
        Frame(frame)
    }

    pub(crate) fn into_serialized(self) -> SerializedFrame<Vec<u8>> {
        self.0
    }

    /// The extension type without the `channel_msg` bit.
    pub fn extension_type(&self) -> u16 {
        self.0.header().ext_type_without_channel_msg()
    }

    /// Whether the `channel_msg` bit (bit 15 of the extension type) is set.
    pub fn channel_msg(&self) -> bool {
        self.0.header().channel_msg()
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.0.header().msg_type()
    }

    /// The payload, without the header.
    pub fn payload(&self) -> &[u8] {
        &self.0.as_bytes()[Header::SIZE..]
    }

    /// The whole frame, header and payload.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
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
}
