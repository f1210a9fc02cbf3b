//! Connection setup over real TCP and Noise: the full sequence, an
//! unauthorised pool, a replayed proof, requests before authentication.

mod common;

use std::time::Duration;

use mint_quote_proto::constants::{
    EXTENSION_TYPE_MINT_QUOTE, MINT_QUOTE_PROTOCOL, PROTOCOL_VERSION,
};
use mint_quote_proto::pool_auth;
use mint_quote_proto::setup::{self, InitiatorSetup, SetupError};
use mint_quote_proto::transport::{self, FrameReader, FrameWriter, TransportConfig};
use mint_quote_proto::*;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(5);

type Reader = FrameReader<ReadHalf<TcpStream>>;
type Writer = FrameWriter<WriteHalf<TcpStream>>;

/// A mint-side responder that accepts one connection and runs setup with
/// `allowed` as its allow-list.
async fn responder(
    mint: AuthorityKeypair,
    allowed: Vec<AuthorityPublicKey>,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<setup::AcceptedPool, SetupError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) =
            transport::accept(stream, &mint, &TransportConfig::default()).await?;
        setup::respond(
            &mut reader,
            &mut writer,
            &mint.public(),
            |k| {
                if allowed.contains(k) {
                    Ok(())
                } else {
                    Err(pool_auth::AuthError::NotAllowed(*k))
                }
            },
            TIMEOUT,
        )
        .await
        .map(|(pool, ())| pool)
    });
    (addr, task)
}

async fn noise_client(addr: std::net::SocketAddr, mint: &AuthorityPublicKey) -> (Reader, Writer) {
    let stream = TcpStream::connect(addr).await.unwrap();
    transport::connect(stream, mint, &TransportConfig::default())
        .await
        .unwrap()
}

fn pool_setup(mint: &AuthorityKeypair, pool: &AuthorityKeypair) -> InitiatorSetup {
    InitiatorSetup {
        mint_key: mint.public(),
        pool_keypair: *pool,
        endpoint_host: "127.0.0.1".into(),
        endpoint_port: 0,
        device_id: "test-pool".into(),
    }
}

#[tokio::test]
async fn an_allowed_pool_completes_setup() {
    let mint = AuthorityKeypair::generate();
    let pool = AuthorityKeypair::generate();
    let (addr, server) = responder(mint, vec![pool.public()]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    setup::initiate(&mut reader, &mut writer, &pool_setup(&mint, &pool), TIMEOUT)
        .await
        .unwrap();
    let accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.pool_key, pool.public());
    assert_eq!(accepted.device_id, "test-pool");
}

#[tokio::test]
async fn frames_of_unknown_extensions_and_types_are_ignored_during_setup() {
    let mint = AuthorityKeypair::generate();
    let pool = AuthorityKeypair::generate();
    let (addr, server) = responder(mint, vec![pool.public()]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    // An unknown extension (channel bit set: it is that extension's bit)
    // and an unknown type of the mint-quote extension, before anything.
    for frame in [
        Frame::new(0x4abc, true, 0x01, &[1, 2, 3, 4]).unwrap(),
        Frame::new(EXTENSION_TYPE_MINT_QUOTE, false, 0xfe, &[9]).unwrap(),
    ] {
        writer.write_frame(&frame).await.unwrap();
    }
    setup::initiate(&mut reader, &mut writer, &pool_setup(&mint, &pool), TIMEOUT)
        .await
        .unwrap();
    let accepted = server.await.unwrap().unwrap();
    assert_eq!(accepted.pool_key, pool.public());
    assert_eq!(accepted.ignored_frames, 2, "and counted");
}

#[tokio::test]
async fn a_pool_off_the_allow_list_is_refused_on_both_sides() {
    let mint = AuthorityKeypair::generate();
    let pool = AuthorityKeypair::generate();
    let allowed = AuthorityKeypair::generate().public();
    let (addr, server) = responder(mint, vec![allowed]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    let err = setup::initiate(&mut reader, &mut writer, &pool_setup(&mint, &pool), TIMEOUT)
        .await
        .unwrap_err();
    match err {
        SetupError::AuthRefused { code, message } => {
            assert_eq!(code, ErrorCode::NotAuthorised);
            assert!(message.contains("allow-list"), "{message}");
        }
        other => panic!("expected AuthRefused, got {other}"),
    }
    assert!(matches!(
        server.await.unwrap(),
        Err(SetupError::NotAuthorised(_))
    ));
}

/// Runs SetupConnection and extension negotiation by hand and returns the
/// challenge the mint sends.
async fn reach_challenge(reader: &mut Reader, writer: &mut Writer) -> pool_auth::Challenge {
    let samples = common::samples();
    writer.send_message(&samples[0]).await.unwrap();
    assert!(matches!(
        setup::next_message(reader).await.unwrap(),
        Message::SetupConnectionSuccess(_)
    ));
    writer.send_message(&samples[3]).await.unwrap();
    assert!(matches!(
        setup::next_message(reader).await.unwrap(),
        Message::RequestExtensionsSuccess(_)
    ));
    match setup::next_message(reader).await.unwrap() {
        Message::PoolAuthChallenge(c) => c.nonce,
        other => panic!("expected a challenge, got {}", other.name()),
    }
}

#[tokio::test]
async fn a_proof_captured_on_one_connection_is_refused_on_another() {
    let mint = AuthorityKeypair::generate();
    let pool = AuthorityKeypair::generate();

    // Connection 1: the real pool proves its key; the proof is "captured".
    let (addr, server) = responder(mint, vec![pool.public()]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    let challenge = reach_challenge(&mut reader, &mut writer).await;
    let captured = PoolAuthProof {
        pool_key: pool.public(),
        signature: pool_auth::sign_proof(&pool, &mint.public(), &challenge),
    };
    writer
        .send_message(&Message::PoolAuthProof(captured))
        .await
        .unwrap();
    assert!(matches!(
        setup::next_message(&mut reader).await.unwrap(),
        Message::PoolAuthSuccess(_)
    ));
    server.await.unwrap().unwrap();

    // Connection 2: an attacker without the pool's secret replays it.
    let (addr, server) = responder(mint, vec![pool.public()]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    let second = reach_challenge(&mut reader, &mut writer).await;
    assert_ne!(second, challenge, "every connection gets a fresh challenge");
    writer
        .send_message(&Message::PoolAuthProof(captured))
        .await
        .unwrap();
    match setup::next_message(&mut reader).await.unwrap() {
        Message::PoolAuthError(e) => assert_eq!(e.error_code, ErrorCode::NotAuthorised),
        other => panic!("expected PoolAuthError, got {}", other.name()),
    }
    assert!(matches!(
        server.await.unwrap(),
        Err(SetupError::NotAuthorised(
            pool_auth::AuthError::BadSignature(_)
        ))
    ));
}

#[tokio::test]
async fn a_quote_request_before_setup_is_answered_and_the_connection_ends() {
    let mint = AuthorityKeypair::generate();
    let (addr, server) = responder(mint, vec![]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    let request = common::samples()
        .into_iter()
        .find(|m| matches!(m, Message::MintQuoteRequest(_)))
        .unwrap();
    writer.send_message(&request).await.unwrap();
    match setup::next_message(&mut reader).await.unwrap() {
        Message::MintQuoteError(e) => {
            assert_eq!(e.request_id, 7);
            assert_eq!(e.error_code, ErrorCode::NotAuthorised);
        }
        other => panic!("expected MintQuoteError, got {}", other.name()),
    }
    assert!(matches!(
        server.await.unwrap(),
        Err(SetupError::RequestBeforeAuthentication {
            expected: "SetupConnection"
        })
    ));
}

#[tokio::test]
async fn another_protocol_is_refused_with_the_spec_error_code() {
    let mint = AuthorityKeypair::generate();
    let (addr, server) = responder(mint, vec![]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    writer
        .send_message(&Message::SetupConnection(SetupConnection {
            protocol: 0,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: 0,
            endpoint_host: String::new(),
            endpoint_port: 0,
            vendor: String::new(),
            hardware_version: String::new(),
            firmware: String::new(),
            device_id: String::new(),
        }))
        .await
        .unwrap();
    match setup::next_message(&mut reader).await.unwrap() {
        Message::SetupConnectionError(e) => assert_eq!(e.error_code, "unsupported-protocol"),
        other => panic!("expected SetupConnection.Error, got {}", other.name()),
    }
    assert!(matches!(
        server.await.unwrap(),
        Err(SetupError::BadSetup(_))
    ));
    assert_eq!(MINT_QUOTE_PROTOCOL, 3);
}

#[tokio::test]
async fn a_client_that_does_not_request_the_extension_is_told_it_is_required() {
    let mint = AuthorityKeypair::generate();
    let (addr, server) = responder(mint, vec![]).await;
    let (mut reader, mut writer) = noise_client(addr, &mint.public()).await;
    writer.send_message(&common::samples()[0]).await.unwrap();
    setup::next_message(&mut reader).await.unwrap();
    writer
        .send_message(&Message::RequestExtensions(RequestExtensions {
            request_id: 4,
            requested_extensions: vec![0x0002],
        }))
        .await
        .unwrap();
    match setup::next_message(&mut reader).await.unwrap() {
        Message::RequestExtensionsError(e) => {
            assert_eq!(e.request_id, 4);
            assert_eq!(e.required_extensions, vec![EXTENSION_TYPE_MINT_QUOTE]);
        }
        other => panic!("expected RequestExtensions.Error, got {}", other.name()),
    }
    assert!(matches!(
        server.await.unwrap(),
        Err(SetupError::Extensions { .. })
    ));
}
