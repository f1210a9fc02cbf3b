//! The frame limit holds at every allowed setting: a frame at the limit is
//! read, one byte over it and a 16 MiB declaration are refused with the
//! exact declared length, and the refusal comes from the header alone,
//! before any byte of the payload has arrived.

use std::time::Duration;

use mint_quote_proto::constants::{MAX_PAYLOAD_LEN_LIMIT, MIN_PAYLOAD_LEN_LIMIT};
use mint_quote_proto::transport::{self, FrameReader, TransportConfig, TransportError};
use mint_quote_proto::{AuthorityKeypair, Frame};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf};

/// Bytes of the initiator's handshake message.
const HANDSHAKE_BYTES: usize = 64;
/// Bytes of an encrypted frame header.
const ENCRYPTED_HEADER: usize = 22;
/// Longest a read may take before the test says it is waiting.
const WAIT: Duration = Duration::from_secs(5);

/// A responder with `limit` reading what a client sends through a relay
/// that passes the handshake and then at most `pass` bytes, so a test can
/// hold back the payload.
async fn frame_through_relay(
    limit: usize,
    payload_len: usize,
    pass: usize,
    wait: Duration,
) -> ReadOutcome {
    let mint = AuthorityKeypair::generate();
    let server_config = TransportConfig {
        max_payload_len: limit,
        ..TransportConfig::default()
    };
    let (client_io, relay_client) = tokio::io::duplex(1 << 20);
    let (relay_server, server_io) = tokio::io::duplex(1 << 20);
    let (mut from_client, mut to_client) = tokio::io::split(relay_client);
    let (mut from_server, mut to_server) = tokio::io::split(relay_server);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    tokio::spawn(async move {
        let mut budget = HANDSHAKE_BYTES.saturating_add(pass);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let forward = n.min(budget);
            budget -= forward;
            if to_server.write_all(&buf[..forward]).await.is_err() {
                return;
            }
        }
    });
    let server = tokio::spawn(async move {
        let (reader, writer) = transport::accept(server_io, &mint, &server_config)
            .await
            .unwrap();
        (reader, writer)
    });
    let client_config = TransportConfig {
        max_payload_len: MAX_PAYLOAD_LEN_LIMIT,
        ..TransportConfig::default()
    };
    let (_client_reader, mut writer) =
        transport::connect(client_io, &mint.public(), &client_config)
            .await
            .unwrap();
    let (mut reader, _server_writer) = server.await.unwrap();
    let frame = Frame::new(0x4000, false, 0x01, &vec![7u8; payload_len]).unwrap();
    writer.write_frame(&frame).await.unwrap();
    writer.flush().await.unwrap();
    read_once(&mut reader, wait).await
}

#[derive(Debug)]
enum ReadOutcome {
    Frame(usize),
    TooLarge {
        declared: usize,
        limit: usize,
    },
    // Shown (through Debug) in failure messages.
    #[allow(dead_code)]
    Other(String),
    Waiting,
}

async fn read_once(
    reader: &mut FrameReader<ReadHalf<DuplexStream>>,
    wait: Duration,
) -> ReadOutcome {
    match tokio::time::timeout(wait, reader.read_frame()).await {
        Ok(Ok(Some(frame))) => ReadOutcome::Frame(frame.payload().len()),
        Ok(Err(TransportError::FrameTooLarge { declared, limit })) => {
            ReadOutcome::TooLarge { declared, limit }
        }
        Ok(other) => ReadOutcome::Other(format!("{other:?}")),
        Err(_) => ReadOutcome::Waiting,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The three checks at one limit.
fn check_limit(limit: usize) {
    let rt = runtime();
    // At the limit: the whole frame is read.
    match rt.block_on(frame_through_relay(limit, limit, usize::MAX, WAIT)) {
        ReadOutcome::Frame(len) => assert_eq!(len, limit),
        other => panic!("limit {limit}: a frame at the limit gave {other:?}"),
    }
    // One byte over, with only the header let through: refused at once
    // with the exact length.
    match rt.block_on(frame_through_relay(
        limit,
        limit + 1,
        ENCRYPTED_HEADER,
        WAIT,
    )) {
        ReadOutcome::TooLarge { declared, limit: l } => {
            assert_eq!((declared, l), (limit + 1, limit))
        }
        other => panic!("limit {limit}: limit + 1 gave {other:?}"),
    }
}

#[test]
fn a_frame_at_the_limit_is_read_and_one_byte_more_is_refused_from_its_header() {
    for limit in [
        MIN_PAYLOAD_LEN_LIMIT,
        16 * 1024,
        MAX_PAYLOAD_LEN_LIMIT - 1,
        MAX_PAYLOAD_LEN_LIMIT,
    ] {
        check_limit(limit);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every limit of the configurable range behaves the same.
    #[test]
    fn every_allowed_limit_holds(limit in MIN_PAYLOAD_LEN_LIMIT..=MAX_PAYLOAD_LEN_LIMIT) {
        check_limit(limit);
    }
}

/// A 16 MiB declaration, with none of its payload sent, is refused at the
/// largest allowed limit: the check does not wait for (or buffer) the
/// payload, which is what let hostile peers hold 16 MiB each before.
#[test]
fn a_16_mib_declaration_is_refused_from_its_header_at_the_largest_limit() {
    let rt = runtime();
    let declared = (1 << 24) - 1;
    match rt.block_on(frame_through_relay(
        MAX_PAYLOAD_LEN_LIMIT,
        declared,
        ENCRYPTED_HEADER,
        WAIT,
    )) {
        ReadOutcome::TooLarge { declared: d, limit } => {
            assert_eq!((d, limit), (declared, MAX_PAYLOAD_LEN_LIMIT))
        }
        other => panic!("a 16 MiB declaration gave {other:?}"),
    }
}

/// Without the payload, a frame within the limit is simply waited for:
/// the refusals above are not a reader that gives up on any partial frame.
#[test]
fn a_frame_within_the_limit_waits_for_its_payload() {
    let rt = runtime();
    let outcome = rt.block_on(frame_through_relay(
        1024,
        1024,
        ENCRYPTED_HEADER,
        Duration::from_millis(300),
    ));
    assert!(matches!(outcome, ReadOutcome::Waiting), "{outcome:?}");
}
