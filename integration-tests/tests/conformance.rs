//! The rows of docs/protocol.md, "When the mint closes a connection", and
//! the rules around them that other tests do not already check, against a
//! real mint over real Noise: what is answered, what is ignored, and what
//! closes the connection with nothing sent first.
//!
//! Where each row of that table is checked:
//!
//! | row | test |
//! | --- | --- |
//! | source over its cap or rate | `admission.rs`, `*_do_not_lock_pools_out` (refused at the source limit) |
//! | displaced from a full budget | `admission.rs`, `idle_sockets_from_128_addresses_do_not_displace_*` |
//! | no authentication within `auth_timeout_ms` | here, `no_authentication_within_the_auth_timeout_closes_in_silence` |
//! | the Noise handshake fails | `admission.rs`, `stalled_handshakes_*`; `metrics.rs` (garbage bytes) |
//! | first message not `SetupConnection` | `metrics.rs` (a quote request: not-authorised) |
//! | protocol, versions, flags | here, `setup_answers_version_ranges_protocols_and_extensions_as_specified` |
//! | second message not `RequestExtensions` | here, `each_setup_stage_closes_on_the_wrong_message_as_specified` |
//! | `RequestExtensions` without `0x4d51` | here, `setup_answers_version_ranges_...` |
//! | not `PoolAuthProof` after the challenge | here, `each_setup_stage_closes_on_the_wrong_message_as_specified` |
//! | a proof that does not verify, a key not allowed | `mint_sv2.rs`, `a_pool_off_the_allow_list_cannot_create_quotes` |
//! | `max_connections`, `max_connections_per_pool` | here, `a_pool_over_its_connection_cap_is_told_mint_busy_then_closed` |
//! | another message after authentication | here, `after_authentication_the_mint_ignores_answers_or_closes_as_specified` |
//! | the channel bit, an undecodable message | here, `after_authentication_...` |
//! | a frame over `max_payload_len` | `admission.rs`, `sixty_16_mib_frames_at_the_largest_limit_stay_under_100_mb` |
//! | a frame that fails to decrypt | `mint-quote-proto` transport unit tests only |
//! | nothing received for `keepalive_timeout_ms` | `mint_sv2.rs` and `faults.rs` (silent peers) |
//! | a write not taken within `write_timeout_ms` | `mint-quote-proto` transport unit tests only |
//! | the mint is stopping | `mint_sv2.rs`, `a_graceful_stop_answers_every_request_it_read` |

use integration_tests as harness;
use integration_tests::Conn;
use mint_quote_proto::constants::{mint_quote, EXTENSION_TYPE_MINT_QUOTE, MINT_QUOTE_PROTOCOL};
use mint_quote_proto::{
    ErrorCode, Frame, Message, MintQuoteResponse, QuoteState, RequestExtensions, SetupConnection,
    Unit,
};

/// Requires the mint to close `conn` without sending a frame first.
async fn closed_silently(conn: &mut Conn, case: &str) {
    match tokio::time::timeout(harness::TIMEOUT, conn.reader.read_frame()).await {
        Ok(Ok(None)) | Ok(Err(_)) => {}
        Ok(Ok(Some(frame))) => panic!(
            "{case}: the mint sent {:?} before closing",
            Message::from_frame(&frame).map(|m| m.name())
        ),
        Err(_) => panic!("{case}: the connection stayed open"),
    }
}

fn setup_with(protocol: u8, min_version: u16, max_version: u16) -> Message {
    match harness::setup_connection("conformance") {
        Message::SetupConnection(s) => Message::SetupConnection(SetupConnection {
            protocol,
            min_version,
            max_version,
            ..s
        }),
        _ => unreachable!("setup_connection builds a SetupConnection"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_answers_version_ranges_protocols_and_extensions_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;

    // Any range that contains 2 is accepted, with version 2.
    let mut wide = Conn::noise(&mint).await;
    wide.send(&setup_with(MINT_QUOTE_PROTOCOL, 1, 3)).await;
    assert!(matches!(wide.next().await, Message::SetupConnectionSuccess(s) if s.used_version == 2));

    // A range without 2: protocol-version-mismatch, then the close.
    let mut newer = Conn::noise(&mint).await;
    newer.send(&setup_with(MINT_QUOTE_PROTOCOL, 3, 4)).await;
    assert!(
        matches!(newer.next().await, Message::SetupConnectionError(e) if e.error_code == "protocol-version-mismatch")
    );
    assert!(newer.is_closed().await);

    // Another protocol (the mining protocol, 0): unsupported-protocol.
    let mut mining = Conn::noise(&mint).await;
    mining.send(&setup_with(0, 2, 2)).await;
    assert!(
        matches!(mining.next().await, Message::SetupConnectionError(e) if e.error_code == "unsupported-protocol")
    );
    assert!(mining.is_closed().await);

    // RequestExtensions without 0x4d51: told it is required, then closed.
    wide.send(&Message::RequestExtensions(RequestExtensions {
        request_id: 4,
        requested_extensions: vec![0x0002],
    }))
    .await;
    match wide.next().await {
        Message::RequestExtensionsError(e) => {
            assert_eq!(e.request_id, 4);
            assert_eq!(e.required_extensions, vec![EXTENSION_TYPE_MINT_QUOTE]);
        }
        other => panic!("expected RequestExtensions.Error, got {}", other.name()),
    }
    assert!(wide.is_closed().await);

    // Unknown frames before setup are ignored; setup then completes.
    let mut patient = Conn::noise(&mint).await;
    for frame in [
        Frame::new(0x4abc, true, 0x01, &[1, 2, 3, 4]).unwrap(),
        Frame::new(EXTENSION_TYPE_MINT_QUOTE, false, 0xfe, &[]).unwrap(),
    ] {
        patient.writer.write_frame(&frame).await.unwrap();
    }
    patient.send(&harness::setup_connection("patient")).await;
    assert!(matches!(
        patient.next().await,
        Message::SetupConnectionSuccess(_)
    ));
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_authentication_the_mint_ignores_answers_or_closes_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let (mut conn, keyset) = Conn::ready(&mint).await;
    let keyset = keyset.keyset_id;

    // Unknown extension (channel bit set: its own bit) and unknown type
    // of the mint-quote extension: ignored, the connection serves on.
    for frame in [
        Frame::new(0x4abc, true, 0x01, &[1, 2, 3, 4]).unwrap(),
        Frame::new(EXTENSION_TYPE_MINT_QUOTE, false, 0xfe, &[7]).unwrap(),
    ] {
        conn.writer.write_frame(&frame).await.unwrap();
    }
    conn.send(&Message::MintQuoteRequest(harness::request(5, 1, &keyset)))
        .await;
    assert!(matches!(conn.next().await, Message::MintQuoteResponse(r) if r.request_id == 5));

    // Request id 0 is reserved: refused under 0, no quote, still open.
    let before = harness::stored_quotes(&mint).await.len();
    conn.send(&Message::MintQuoteRequest(harness::request(0, 1, &keyset)))
        .await;
    match conn.next().await {
        Message::MintQuoteError(e) => {
            assert_eq!(e.request_id, 0);
            assert_eq!(e.error_code, ErrorCode::MalformedRequest);
        }
        other => panic!("expected MintQuoteError, got {}", other.name()),
    }
    assert_eq!(harness::stored_quotes(&mint).await.len(), before);
    conn.send(&Message::MintQuoteRequest(harness::request(6, 1, &keyset)))
        .await;
    assert!(matches!(conn.next().await, Message::MintQuoteResponse(r) if r.request_id == 6));

    // A mint-to-pool message from the pool: closed, nothing sent first.
    conn.send(&Message::MintQuoteResponse(MintQuoteResponse {
        request_id: 9,
        quote_id: "x".into(),
        amount: 1,
        unit: Unit::hash(),
        expires_at: 0,
        state: QuoteState::Paid,
        header_hash: harness::fresh_share(),
    }))
    .await;
    closed_silently(&mut conn, "a MintQuoteResponse from the pool").await;

    // A request with the channel_msg bit set: closed, nothing sent first.
    let (mut flagged, _) = Conn::ready(&mint).await;
    let request = Message::MintQuoteRequest(harness::request(1, 1, &keyset))
        .to_frame()
        .unwrap();
    let frame = Frame::new(
        EXTENSION_TYPE_MINT_QUOTE,
        true,
        mint_quote::MINT_QUOTE_REQUEST,
        request.payload(),
    )
    .unwrap();
    flagged.writer.write_frame(&frame).await.unwrap();
    flagged.writer.flush().await.unwrap();
    closed_silently(&mut flagged, "the channel_msg bit on a request").await;
    mint.stop().await;
}

/// The stages of setup at which the mint waits for one message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    /// `SetupConnection` answered: `RequestExtensions` is due.
    Extensions,
    /// `PoolAuthChallenge` sent: `PoolAuthProof` is due.
    Proof,
}

/// A connection whose setup stands at `stage`.
async fn at_stage(mint: &mint_server::app::RunningMint, stage: Stage) -> Conn {
    let mut conn = Conn::noise(mint).await;
    conn.send(&harness::setup_connection("conformance")).await;
    assert!(matches!(
        conn.next().await,
        Message::SetupConnectionSuccess(_)
    ));
    if stage == Stage::Extensions {
        return conn;
    }
    conn.send(&Message::RequestExtensions(RequestExtensions {
        request_id: 1,
        requested_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
    }))
    .await;
    assert!(matches!(
        conn.next().await,
        Message::RequestExtensionsSuccess(_)
    ));
    assert!(matches!(conn.next().await, Message::PoolAuthChallenge(_)));
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_setup_stage_closes_on_the_wrong_message_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let keyset = harness::Conn::ready(&mint).await.1.keyset_id;

    // "the second message is not RequestExtensions" and "anything but
    // PoolAuthProof after PoolAuthChallenge": as for the first message: a
    // quote request is answered not-authorised, anything else gets
    // nothing; then the close.
    for stage in [Stage::Extensions, Stage::Proof] {
        for (wrong, answered) in [
            (Message::Ping(mint_quote_proto::Ping { nonce: 7 }), false),
            (
                Message::MintQuoteRequest(harness::request(3, 1, &keyset)),
                true,
            ),
        ] {
            let mut conn = at_stage(&mint, stage).await;
            conn.send(&wrong).await;
            if answered {
                assert!(
                    matches!(conn.next().await, Message::MintQuoteError(e) if e.request_id == 3 && e.error_code == ErrorCode::NotAuthorised)
                );
            }
            closed_silently(&mut conn, &format!("{} at {stage:?}", wrong.name())).await;
        }
    }
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_authentication_within_the_auth_timeout_closes_in_silence() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |s| s.mint.listener.auth_timeout_ms = 500).await;
    let started = std::time::Instant::now();
    // Stopped at the challenge: setup done, no proof.
    let mut conn = at_stage(&mint, Stage::Proof).await;
    closed_silently(&mut conn, "no proof within auth_timeout_ms").await;
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(450),
        "closed after {took:?}, before the timeout"
    );
    // The ending is counted as a timeout (just after the close).
    harness::http::wait_for_sample(
        mint.metrics_addr.expect("the metrics endpoint is enabled"),
        "mint_quote_unauthenticated_closed_total{reason=\"timed-out\"}",
        |v| v == 1.0,
    )
    .await;
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_over_its_connection_cap_is_told_mint_busy_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |s| {
        s.mint.listener.max_connections_per_pool = 1;
    })
    .await;
    let address = mint.sv2_addr.unwrap().to_string();
    let (mut first, keyset) = Conn::ready(&mint).await;
    // "the key at max_connections_per_pool": PoolAuthError mint-busy (9).
    let refused = match Conn::try_ready_at(&address).await {
        Ok(_) => panic!("a second connection of the pool was admitted over its cap of 1"),
        Err(e) => e,
    };
    assert!(refused.contains("mint-busy"), "{refused}");
    // The first goes on serving.
    first
        .send(&Message::MintQuoteRequest(harness::request(
            1,
            1,
            &keyset.keyset_id,
        )))
        .await;
    assert!(matches!(first.next().await, Message::MintQuoteResponse(_)));
    mint.stop().await;
}
