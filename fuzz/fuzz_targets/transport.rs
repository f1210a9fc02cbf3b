//! The frame decoder on the wire: a real Noise channel whose peer encrypts
//! whatever the fuzzer says, headers that lie about their length
//! included, at any frame limit the configuration allows. The reader must
//! never return a frame over its limit, never panic, and end (with an
//! error or the end of the stream) when the input does.
//!
//! Input: two bytes choose the limit; then records, each a tag byte:
//! even, a frame (six header bytes, a u16 length, that many payload
//! bytes: the header's own length may say otherwise); odd, a flush.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mint_quote_fuzz::{channel, runtime, Input};
use mint_quote_proto::constants::{MAX_PAYLOAD_LEN_LIMIT, MIN_PAYLOAD_LEN_LIMIT};
use mint_quote_proto::Message;

fuzz_target!(|data: &[u8]| {
    runtime().block_on(run(Input(data)));
});

async fn run(mut input: Input<'_>) {
    let Some(choice) = input.u16() else { return };
    let span = MAX_PAYLOAD_LEN_LIMIT - MIN_PAYLOAD_LEN_LIMIT + 1;
    let limit = MIN_PAYLOAD_LEN_LIMIT + usize::from(choice) % span;
    let pair = channel(limit).await;
    let (mut reader, _mint_writer) = pair.mint;
    let (_peer_reader, mut writer) = pair.peer;
    let send = async move {
        while let Some(tag) = input.byte() {
            if tag % 2 == 1 {
                if writer.flush().await.is_err() {
                    return;
                }
                continue;
            }
            let header = input.bytes(6);
            let len = input.u16().unwrap_or(0);
            let payload = input.bytes(usize::from(len));
            if writer.write_raw(header, payload).is_err() {
                return;
            }
        }
        let _ = writer.flush().await;
        let _ = writer.shutdown().await;
    };
    let receive = async move {
        while let Ok(Some(frame)) = reader.read_frame().await {
            assert!(frame.payload().len() <= limit, "a frame over the limit");
            let _ = Message::from_frame(&frame);
        }
    };
    tokio::join!(send, receive);
}
