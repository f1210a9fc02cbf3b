//! The transport against the SRI reference codec (`codec_sv2` with
//! `noise_sv2`): a peer built from it completes the handshake with ours and
//! exchanges frames both ways, byte for byte, including a payload of
//! several Noise chunks. This is what says the wire format is standard Sv2.

mod common;

use codec_sv2::{
    Decoded, Decrypted, Handshake, InitiatorSent, NoiseDecoder, NoiseEncoder, TransportDecryptState,
};
use framing_sv2::framing::SerializedFrame;
use mint_quote_proto::transport::{self, TransportConfig};
use mint_quote_proto::{AuthorityKeypair, Frame, Message};
use noise_sv2::Initiator;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Reads what `decoder` asks for until it yields a frame.
async fn reference_read(
    io: &mut DuplexStream,
    decoder: &mut NoiseDecoder,
    mut state: TransportDecryptState,
) -> (Vec<u8>, TransportDecryptState) {
    loop {
        match decoder
            .next_transport_frame(state)
            .expect("reference decode")
        {
            Decrypted::Frame(frame, next) => return (frame.as_bytes().to_vec(), next),
            Decrypted::Incomplete(0, next) => state = next,
            Decrypted::Incomplete(_, next) => {
                io.read_exact(decoder.writable()).await.expect("read");
                state = next;
            }
        }
    }
}

#[tokio::test]
async fn a_reference_initiator_and_our_responder_agree_byte_for_byte() {
    let mint = AuthorityKeypair::generate();
    let (mut client, server_io) = tokio::io::duplex(1 << 20);
    let config = TransportConfig::default();
    // Our side echoes every frame it reads.
    let server = tokio::spawn(async move {
        let (mut reader, mut writer) = transport::accept(server_io, &mint, &config).await.unwrap();
        while let Some(frame) = reader.read_frame().await.unwrap() {
            writer.write_frame(&frame).await.unwrap();
            writer.flush().await.unwrap();
        }
    });

    // The reference side: codec_sv2's handshake, encoder and decoder.
    let mut encoder = NoiseEncoder::new();
    let mut decoder = NoiseDecoder::new();
    let initiator = Initiator::new(Some(mint.public().x_only()));
    let (first, sent) = Handshake::initiator(initiator).step_0().unwrap();
    client
        .write_all(encoder.encode_handshake(first).as_ref())
        .await
        .unwrap();
    let reply = loop {
        match decoder.next_handshake_frame::<InitiatorSent>().unwrap() {
            Decoded::Frame(message) => break message,
            Decoded::Incomplete(0) => {}
            Decoded::Incomplete(_) => {
                client.read_exact(decoder.writable()).await.unwrap();
            }
        }
    };
    let transport = sent.step_2(reply.payload().try_into().unwrap()).unwrap();
    let (mut encrypt, mut decrypt) = transport.split();

    let mut frames: Vec<Frame> = common::samples()
        .iter()
        .map(|m| m.to_frame().unwrap())
        .collect();
    frames.push(Frame::new(0x4000, false, 1, &[]).unwrap());
    frames.push(Frame::new(0x4000, false, 2, &vec![5u8; 16 * 1024]).unwrap());
    for frame in &frames {
        let serialized = SerializedFrame::from_bytes(frame.as_bytes().to_vec()).unwrap();
        let bytes = encoder.encode_transport(serialized, &mut encrypt).unwrap();
        client.write_all(bytes.as_ref()).await.unwrap();
        let (echo, next) = reference_read(&mut client, &mut decoder, decrypt).await;
        decrypt = next;
        assert_eq!(echo, frame.as_bytes(), "{frame:?}");
    }
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn our_initiator_sends_multi_chunk_frames_the_reference_decoder_reads() {
    let mint = AuthorityKeypair::generate();
    let (client_io, mut server) = tokio::io::duplex(1 << 20);
    let key = mint.public();
    let client = tokio::spawn(async move {
        let (_reader, mut writer) =
            transport::connect(client_io, &key, &TransportConfig::default())
                .await
                .unwrap();
        // 200,000 bytes: four Noise chunks.
        let big = Frame::new(0x4000, false, 3, &vec![9u8; 200_000]).unwrap();
        let small = Message::MintQuoteError(mint_quote_proto::MintQuoteError::new(
            7,
            mint_quote_proto::ErrorCode::MintBusy,
            "busy",
        ))
        .to_frame()
        .unwrap();
        for frame in [&big, &small] {
            writer.write_frame(frame).await.unwrap();
        }
        writer.flush().await.unwrap();
        (big, small)
    });

    let mut encoder = NoiseEncoder::new();
    let mut decoder = NoiseDecoder::new();
    let responder = noise_sv2::Responder::from_authority_kp(
        &mint.public().serialize(),
        &mint.secret().secret_bytes(),
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    let first = loop {
        match decoder
            .next_handshake_frame::<noise_sv2::Responder>()
            .unwrap()
        {
            Decoded::Frame(message) => break message,
            Decoded::Incomplete(0) => {}
            Decoded::Incomplete(_) => {
                server.read_exact(decoder.writable()).await.unwrap();
            }
        }
    };
    let (reply, transport) = Handshake::responder(responder)
        .step_1(first.payload().try_into().unwrap())
        .unwrap();
    server
        .write_all(encoder.encode_handshake(reply).as_ref())
        .await
        .unwrap();
    let (_encrypt, mut decrypt) = transport.split();
    let (big, small) = client.await.unwrap();
    for expected in [big, small] {
        let (bytes, next) = reference_read(&mut server, &mut decoder, decrypt).await;
        decrypt = next;
        assert_eq!(bytes, expected.as_bytes());
    }
}
