//! The Noise transport over real loopback TCP: handshake, every message
//! type both ways, a wrong pinned key, a silent peer, oversized frames.

mod common;

use std::time::Duration;

use mint_quote_proto::transport::{self, TransportConfig, TransportError};
use mint_quote_proto::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test]
async fn every_message_crosses_a_real_noise_channel_both_ways() {
    let mint = AuthorityKeypair::generate();
    let (listener, addr) = listener().await;
    let config = TransportConfig::default();

    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) = transport::accept(stream, &mint, &config).await.unwrap();
        // Echo every frame until the peer closes.
        let mut seen = 0;
        while let Some(frame) = reader.read_frame().await.unwrap() {
            Message::from_frame(&frame).unwrap();
            writer.write_frame(&frame).await.unwrap();
            writer.flush().await.unwrap();
            seen += 1;
        }
        seen
    });

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = transport::connect(stream, &mint.public(), &config)
        .await
        .unwrap();
    let samples = common::samples();
    for message in &samples {
        writer.send_message(message).await.unwrap();
        let frame = reader.read_frame().await.unwrap().expect("a frame back");
        assert_eq!(&Message::from_frame(&frame).unwrap(), message);
    }
    writer.shutdown().await.unwrap();
    assert_eq!(server.await.unwrap(), samples.len());
}

#[tokio::test]
async fn an_initiator_pinned_to_another_key_refuses_the_mint() {
    let mint = AuthorityKeypair::generate();
    let other = AuthorityKeypair::generate();
    let (listener, addr) = listener().await;
    let config = TransportConfig::default();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = transport::accept(stream, &mint, &config).await;
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let err = transport::connect(stream, &other.public(), &config)
        .await
        .err()
        .expect("the handshake must fail");
    match err {
        TransportError::CertificateRefused { pinned, .. } => assert_eq!(pinned, other.public()),
        other => panic!("expected CertificateRefused, got {other}"),
    }
    server.await.unwrap();
}

#[tokio::test]
async fn a_peer_that_sends_nothing_is_dropped_after_the_handshake_timeout() {
    let mint = AuthorityKeypair::generate();
    let (listener, addr) = listener().await;
    let config = TransportConfig {
        handshake_timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    };
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        transport::accept(stream, &mint, &config).await.err()
    });
    let _silent = TcpStream::connect(addr).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the responder must give up on its own")
        .unwrap();
    assert!(
        matches!(err, Some(TransportError::HandshakeTimeout(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_handshake_cut_short_is_an_error_not_a_hang() {
    let mint = AuthorityKeypair::generate();
    let (listener, addr) = listener().await;
    let config = TransportConfig::default();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        transport::accept(stream, &mint, &config).await.err()
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&[7u8; 20]).await.unwrap();
    drop(stream);
    let err = server.await.unwrap();
    assert!(matches!(err, Some(TransportError::Truncated)), "{err:?}");
}

/// Connects a client to a fresh responder with `max_payload_len` and returns
/// what the responder's first read gives.
async fn first_read_with_limit(
    max_payload_len: usize,
    send: impl FnOnce(Vec<u8>) -> Option<Frame> + Send + 'static,
    payload_len: usize,
) -> Result<Option<Frame>, TransportError> {
    let mint = AuthorityKeypair::generate();
    let (listener, addr) = listener().await;
    let config = TransportConfig {
        max_payload_len,
        ..TransportConfig::default()
    };
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, _writer) = transport::accept(stream, &mint, &config).await.unwrap();
        reader.read_frame().await
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let client_config = TransportConfig::default();
    let (_reader, mut writer) = transport::connect(stream, &mint.public(), &client_config)
        .await
        .unwrap();
    if let Some(frame) = send(vec![0u8; payload_len]) {
        // The responder may close before reading everything: ignore errors.
        let _ = writer.write_frame(&frame).await;
        let _ = writer.flush().await;
    }
    let _ = writer.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the responder must not hang")
        .unwrap()
}

fn unknown_frame(payload: Vec<u8>) -> Option<Frame> {
    Some(Frame::new(0x4000, false, 0x01, &payload).unwrap())
}

#[tokio::test]
async fn frames_over_the_limit_are_refused_before_their_payload_is_read() {
    // Just over a 1 KiB limit.
    let err = first_read_with_limit(1024, unknown_frame, 1025)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::FrameTooLarge {
                declared: 1025,
                limit: 1024
            }
        ),
        "{err}"
    );
    // Larger than one Noise chunk: the exact declared size is still known.
    let err = first_read_with_limit(1024, unknown_frame, 200_000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::FrameTooLarge {
                declared: 200_000,
                limit: 1024
            }
        ),
        "{err}"
    );
    // At the limit is fine.
    let frame = first_read_with_limit(1024, unknown_frame, 1024)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame.payload().len(), 1024);
}

#[tokio::test]
async fn a_clean_close_between_frames_is_not_an_error() {
    let got = first_read_with_limit(1024, |_| None, 0).await.unwrap();
    assert!(got.is_none());
}

#[test]
fn transport_limits_are_validated() {
    let ok = TransportConfig::default();
    assert!(ok.validate().is_ok());
    let too_big = TransportConfig {
        max_payload_len: 70_000,
        ..ok
    };
    assert!(too_big.validate().unwrap_err().contains("max_payload_len"));
    let zero = TransportConfig {
        handshake_timeout: Duration::ZERO,
        ..ok
    };
    assert!(zero.validate().unwrap_err().contains("handshake_timeout"));
}

/// `read_frame` raced against a short timeout (as a session races it
/// against shutdown) loses nothing: bytes read before each cancellation are
/// kept and the frames come out whole.
#[tokio::test]
async fn read_frame_is_cancel_safe() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mint = AuthorityKeypair::generate();
    let config = TransportConfig::default();
    let (client_io, relay_client) = tokio::io::duplex(1 << 16);
    let (relay_server, server_io) = tokio::io::duplex(1 << 16);
    // A relay that passes the client's bytes on a few at a time, slowly.
    let (mut from_client, mut to_client) = tokio::io::split(relay_client);
    let (mut from_server, mut to_server) = tokio::io::split(relay_server);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    tokio::spawn(async move {
        let mut buf = [0u8; 7];
        loop {
            let n = from_client.read(&mut buf).await.unwrap_or(0);
            if n == 0 || to_server.write_all(&buf[..n]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let server =
        tokio::spawn(async move { transport::accept(server_io, &mint, &config).await.unwrap() });
    let (_client_reader, mut writer) = transport::connect(client_io, &mint.public(), &config)
        .await
        .unwrap();
    let (mut reader, _server_writer) = server.await.unwrap();

    let samples = common::samples();
    for message in &samples {
        writer
            .write_frame(&message.to_frame().unwrap())
            .await
            .unwrap();
    }
    writer.flush().await.unwrap();

    let mut received = Vec::new();
    let mut cancelled = 0;
    while received.len() < samples.len() {
        match tokio::time::timeout(Duration::from_millis(2), reader.read_frame()).await {
            Ok(frame) => received.push(Message::from_frame(&frame.unwrap().unwrap()).unwrap()),
            Err(_) => cancelled += 1,
        }
    }
    assert_eq!(received, samples);
    assert!(cancelled > 0, "the reads were cancelled mid-frame");
}

/// A channel taken apart and put back together (as the mint does to move
/// a connection between runtimes) loses nothing: frames already buffered
/// by the reader still come out, in order, and the ciphers go on.
#[tokio::test]
async fn a_channel_taken_apart_and_rebuilt_goes_on() {
    let mint = AuthorityKeypair::generate();
    let (listener, addr) = listener().await;
    let config = TransportConfig::default();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let channel = transport::accept(stream, &mint, &config).await.unwrap();
        let (mut reader, writer) = channel;
        let first = reader.read_frame().await.unwrap().unwrap();
        // Move to a std socket and back, as between two runtimes.
        let (stream, parts) = transport::into_parts((reader, writer));
        let std = stream.into_std().unwrap();
        let stream = TcpStream::from_std(std).unwrap();
        let (mut reader, mut writer) = transport::from_parts(stream, parts);
        let mut seen = vec![first];
        for _ in 0..2 {
            seen.push(reader.read_frame().await.unwrap().unwrap());
        }
        writer.write_frame(&seen[2]).await.unwrap();
        writer.flush().await.unwrap();
        seen
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = transport::connect(stream, &mint.public(), &config)
        .await
        .unwrap();
    let samples = common::samples();
    for message in &samples[..3] {
        writer
            .write_frame(&message.to_frame().unwrap())
            .await
            .unwrap();
    }
    writer.flush().await.unwrap();
    let echo = reader.read_frame().await.unwrap().unwrap();
    assert_eq!(Message::from_frame(&echo).unwrap(), samples[2]);
    let seen: Vec<Message> = server
        .await
        .unwrap()
        .iter()
        .map(|f| Message::from_frame(f).unwrap())
        .collect();
    assert_eq!(seen, samples[..3]);
}
