//! Plaintext frames: any bytes, read as a frame (header, then payload),
//! and a frame that parses decoded as a message. Nothing may panic; a
//! frame that parses declares exactly the payload it carries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mint_quote_proto::{Frame, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::from_bytes(data.to_vec()) {
        assert_eq!(frame.header().msg_length, frame.payload().len());
        assert_eq!(frame.as_bytes(), data);
        let _ = Message::from_frame(&frame);
    }
});
