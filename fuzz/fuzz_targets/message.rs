//! Every message decoder: a frame of any extension, type and channel bit
//! around any payload. A message that decodes encodes back to a frame
//! that decodes to the same message (nothing is lost or invented).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mint_quote_proto::{Frame, Message};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let extension = u16::from_le_bytes([data[0], data[1]]);
    let channel = data[2] & 1 == 1;
    let msg_type = data[3];
    let Ok(frame) = Frame::new(extension, channel, msg_type, &data[4..]) else {
        return;
    };
    if let Ok(message) = Message::from_frame(&frame) {
        let again = message
            .to_frame()
            .unwrap_or_else(|e| panic!("{} decoded but does not encode: {e}", message.name()));
        let decoded = Message::from_frame(&again)
            .unwrap_or_else(|e| panic!("{} re-encoded does not decode: {e}", message.name()));
        assert_eq!(decoded, message);
        let _ = message.fields();
    }
});
