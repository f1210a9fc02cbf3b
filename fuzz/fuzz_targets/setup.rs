//! The mint's side of connection setup and pool authentication, fed any
//! sequence of frames after a real Noise handshake. Records, each a tag
//! byte: 0, a frame of the fuzzer's (extension u16, type, u16 length,
//! payload); 1, a correct SetupConnection; 2, a correct RequestExtensions;
//! 3, end. The mint must end setup (refusing, or accepting a pool that
//! proved its key, which the fuzzer cannot forge) without panicking, and
//! answer within its deadline.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mint_quote_fuzz::{channel, runtime, Input};
use mint_quote_proto::constants::{
    EXTENSION_TYPE_MINT_QUOTE, MINT_QUOTE_PROTOCOL, PROTOCOL_VERSION,
};
use mint_quote_proto::setup;
use mint_quote_proto::{Frame, Message, RequestExtensions, SetupConnection};

fuzz_target!(|data: &[u8]| {
    runtime().block_on(run(Input(data)));
});

fn setup_connection() -> Message {
    Message::SetupConnection(SetupConnection {
        protocol: MINT_QUOTE_PROTOCOL,
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        flags: 0,
        endpoint_host: "fuzz".into(),
        endpoint_port: 1,
        vendor: "fuzz".into(),
        hardware_version: String::new(),
        firmware: "0".into(),
        device_id: "fuzz".into(),
    })
}

async fn run(mut input: Input<'_>) {
    let pair = channel(16_384).await;
    let (mut reader, mut writer) = pair.mint;
    let (mut peer_reader, mut peer_writer) = pair.peer;
    let mint_key = mint_quote_fuzz::mint().public();
    let mint_side = async move {
        let _ = setup::respond(
            &mut reader,
            &mut writer,
            &mint_key,
            |_pool| Ok(()),
            Duration::from_secs(5),
        )
        .await;
    };
    let peer_side = async move {
        while let Some(tag) = input.byte() {
            let frame = match tag % 4 {
                0 => {
                    let extension = input.u16().unwrap_or(0);
                    let msg_type = input.byte().unwrap_or(0);
                    let len = input.u16().unwrap_or(0);
                    match Frame::new(extension, false, msg_type, input.bytes(usize::from(len))) {
                        Ok(frame) => frame,
                        Err(_) => break,
                    }
                }
                1 => setup_connection().to_frame().expect("a valid message"),
                2 => Message::RequestExtensions(RequestExtensions {
                    request_id: u16::from(input.byte().unwrap_or(0)),
                    requested_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
                })
                .to_frame()
                .expect("a valid message"),
                _ => break,
            };
            if peer_writer.write_frame(&frame).await.is_err() {
                break;
            }
        }
        let _ = peer_writer.flush().await;
        let _ = peer_writer.shutdown().await;
        // Whatever the mint answers is read, so it never waits on us.
        while let Ok(Some(_)) = peer_reader.read_frame().await {}
    };
    let finished = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(mint_side, peer_side)
    })
    .await;
    assert!(finished.is_ok(), "setup did not end within its deadline");
}
