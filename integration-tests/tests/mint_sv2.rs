//! The Sv2 listener over real TCP and Noise against a real CDK mint on a
//! SQLite file: the connection sequence, pipelining, idempotency, every
//! error code, authorisation, hostile input, graceful stop.

use integration_tests as harness;

use std::collections::HashMap;

use harness::Conn;
use mint_quote_proto::constants::{mint_quote, EXTENSION_TYPE_MINT_QUOTE};
use mint_quote_proto::setup::{self, InitiatorSetup, SetupError};
use mint_quote_proto::{
    AuthorityKeypair, ErrorCode, Frame, KeysetId, Message, MintQuoteRequest, QuoteState, Unit,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn quote_request(request_id: u32, keyset: &KeysetId) -> MintQuoteRequest {
    harness::request(request_id, 1 + u64::from(request_id % 1000), keyset)
}

/// The payload of `request` with `patch` applied, sent as a raw frame.
async fn send_patched(
    conn: &mut Conn,
    request: &MintQuoteRequest,
    patch: impl FnOnce(&mut Vec<u8>),
) {
    let frame = Message::MintQuoteRequest(request.clone())
        .to_frame()
        .unwrap();
    let mut payload = frame.payload().to_vec();
    patch(&mut payload);
    let frame = Frame::new(
        EXTENSION_TYPE_MINT_QUOTE,
        false,
        mint_quote::MINT_QUOTE_REQUEST,
        &payload,
    )
    .unwrap();
    conn.writer.write_frame(&frame).await.unwrap();
    conn.writer.flush().await.unwrap();
}

async fn expect_error(conn: &mut Conn, request_id: u32, code: ErrorCode) -> String {
    match conn.next().await {
        Message::MintQuoteError(e) => {
            assert_eq!(
                (e.request_id, e.error_code),
                (request_id, code),
                "{}",
                e.error_message
            );
            e.error_message
        }
        other => panic!("expected MintQuoteError {code} for {request_id}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_then_a_quote_then_the_same_quote_again() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let (mut conn, keyset) = Conn::ready(&mint).await;
    assert_eq!(keyset.unit, Unit::hash());
    let active = mint.mint.get_active_keysets()[&mint_server::cashu_mint::cdk_unit(&Unit::hash())];
    assert_eq!(keyset.keyset_id.as_bytes(), &active.to_bytes()[..]);

    let request = quote_request(1, &keyset.keyset_id);
    conn.send(&Message::MintQuoteRequest(request.clone())).await;
    let first = match conn.next().await {
        Message::MintQuoteResponse(r) => r,
        other => panic!("expected a response, got {other:?}"),
    };
    assert_eq!(first.request_id, 1);
    assert_eq!(first.state, QuoteState::Paid);
    assert_eq!(first.header_hash, request.header_hash);
    assert_eq!(first.amount, request.amount);

    let mut repeat = request.clone();
    repeat.request_id = 2;
    conn.send(&Message::MintQuoteRequest(repeat)).await;
    match conn.next().await {
        Message::MintQuoteResponse(r) => {
            assert_eq!(r.request_id, 2);
            assert_eq!(
                r.quote_id, first.quote_id,
                "a repeat must get the same quote"
            );
        }
        other => panic!("expected a response, got {other:?}"),
    }
    let quotes = harness::stored_quotes(&mint).await;
    assert_eq!(quotes.len(), 1);
    assert_eq!(quotes[0].id.to_string(), first.quote_id);
    assert!(mint.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_pipelined_requests_gets_1000_distinct_paid_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let (conn, keyset) = Conn::ready(&mint).await;

    let requests: HashMap<u32, MintQuoteRequest> = (1..=1000)
        .map(|id| (id, quote_request(id, &keyset.keyset_id)))
        .collect();
    let (mut reader, mut writer) = (conn.reader, conn.writer);
    let to_send: Vec<MintQuoteRequest> = requests.values().cloned().collect();
    // Write everything without waiting for answers, on its own task, while
    // this task reads: the mint answers while requests are still arriving.
    let sender = tokio::spawn(async move {
        for request in to_send {
            writer
                .write_frame(&Message::MintQuoteRequest(request).to_frame().unwrap())
                .await
                .unwrap();
        }
        writer.flush().await.unwrap();
        writer
    });
    let mut quote_ids = std::collections::HashSet::new();
    let mut out_of_order = false;
    let mut last = None;
    for _ in 0..1000 {
        let message = tokio::time::timeout(harness::TIMEOUT, setup::next_message(&mut reader))
            .await
            .unwrap()
            .unwrap();
        let Message::MintQuoteResponse(response) = message else {
            panic!("expected a response, got {message:?}");
        };
        let request = &requests[&response.request_id];
        assert_eq!(
            response.header_hash, request.header_hash,
            "answer matched to its own request"
        );
        assert_eq!(response.amount, request.amount);
        assert_eq!(response.state, QuoteState::Paid);
        assert!(
            quote_ids.insert(response.quote_id),
            "quote ids are distinct"
        );
        if last.is_some_and(|l| l > response.request_id) {
            out_of_order = true;
        }
        last = Some(response.request_id);
    }
    let _writer = sender.await.unwrap();
    let stored = harness::stored_quotes(&mint).await;
    assert_eq!(stored.len(), 1000);
    assert!(stored
        .iter()
        .all(|q| q.amount_paid() == q.amount.clone().unwrap()));
    // Requests were sent in HashMap order, not id order: answers came back
    // as they were made, which is what pipelining means here.
    assert!(out_of_order);
    // The writer's metrics: its batches add up to the 1000 quotes, fewer
    // transactions than quotes (a burst is batched), each timed.
    let scrape = mint.metrics.render();
    let sample = |name: &str| harness::http::sample(&scrape, name);
    assert_eq!(
        sample("mint_quote_writer_batch_quotes_sum"),
        1000.0,
        "{scrape}"
    );
    let transactions = sample("mint_quote_writer_batch_quotes_count");
    assert!((1.0..1000.0).contains(&transactions), "{scrape}");
    assert_eq!(
        sample("mint_quote_writer_transaction_seconds_count"),
        transactions
    );
    assert!(sample("mint_quote_writer_transaction_seconds_sum") > 0.0);
    assert!(mint.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_request_gets_its_error_code_and_the_connection_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |s| s.mint.mint.max_quote_amount = 1000).await;
    let (mut conn, keyset) = Conn::ready(&mint).await;
    let ks = &keyset.keyset_id;

    // Truncated payload: malformed, but the request id is still read.
    send_patched(&mut conn, &quote_request(10, ks), |p| p.truncate(20)).await;
    expect_error(&mut conn, 10, ErrorCode::MalformedRequest).await;

    let mut sat = quote_request(11, ks);
    sat.unit = Unit::new("sat").unwrap();
    conn.send(&Message::MintQuoteRequest(sat)).await;
    expect_error(&mut conn, 11, ErrorCode::UnknownUnit).await;

    send_patched(&mut conn, &quote_request(12, ks), |p| p[4..12].fill(0)).await;
    expect_error(&mut conn, 12, ErrorCode::InvalidAmount).await;
    let mut big = quote_request(13, ks);
    big.amount = 1001;
    conn.send(&Message::MintQuoteRequest(big)).await;
    let why = expect_error(&mut conn, 13, ErrorCode::InvalidAmount).await;
    assert!(why.contains("1000"), "{why}");

    // Locking key: a 0x07 prefix is no compressed point.
    send_patched(&mut conn, &quote_request(14, ks), |p| {
        p[4 + 8 + 5 + 32 + 1 + 1] = 0x07
    })
    .await;
    expect_error(&mut conn, 14, ErrorCode::InvalidLockingKey).await;
    // The right form (0x02 and 32 bytes) but no point on the curve (x = 5):
    // the decoder passes it, the mint's parse of the key refuses it.
    send_patched(&mut conn, &quote_request(14, ks), |p| {
        let key = 4 + 8 + 5 + 32 + 1 + 1;
        p[key] = 0x02;
        p[key + 1..key + 33].fill(0);
        p[key + 32] = 5;
    })
    .await;
    let why = expect_error(&mut conn, 14, ErrorCode::InvalidLockingKey).await;
    assert!(why.contains("not a valid secp256k1 point"), "{why}");

    conn.send(&Message::MintQuoteRequest(quote_request(
        15,
        &"00ffffffffffffff".parse().unwrap(),
    )))
    .await;
    expect_error(&mut conn, 15, ErrorCode::UnknownKeyset).await;

    send_patched(&mut conn, &quote_request(16, ks), |p| p[17..49].fill(0)).await;
    expect_error(&mut conn, 16, ErrorCode::InvalidHeaderHash).await;

    let original = quote_request(17, ks);
    conn.send(&Message::MintQuoteRequest(original.clone()))
        .await;
    assert!(matches!(conn.next().await, Message::MintQuoteResponse(_)));
    let mut changed = original.clone();
    changed.request_id = 18;
    changed.amount += 1;
    conn.send(&Message::MintQuoteRequest(changed)).await;
    expect_error(&mut conn, 18, ErrorCode::DuplicateShareMismatch).await;

    // A frame of an unknown extension and one of an unknown message type
    // are ignored; the connection goes on.
    conn.writer
        .write_frame(&Frame::new(0x4000, false, 0x01, &[1, 2, 3]).unwrap())
        .await
        .unwrap();
    conn.writer
        .write_frame(&Frame::new(EXTENSION_TYPE_MINT_QUOTE, false, 0xf0, &[]).unwrap())
        .await
        .unwrap();
    conn.send(&Message::MintQuoteRequest(quote_request(19, ks)))
        .await;
    match conn.next().await {
        Message::MintQuoteResponse(r) => assert_eq!(r.request_id, 19),
        other => panic!("expected a response, got {other:?}"),
    }
    assert!(mint.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mint_at_its_pending_limit_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |s| s.mint.mint.max_pending_quotes = 1).await;
    let (mut conn, keyset) = Conn::ready(&mint).await;
    conn.pipeline((1..=200).map(|id| quote_request(id, &keyset.keyset_id)))
        .await;
    let (mut made, mut busy) = (0, 0);
    for _ in 0..200 {
        match conn.next().await {
            Message::MintQuoteResponse(_) => made += 1,
            Message::MintQuoteError(e) if e.error_code == ErrorCode::MintBusy => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(made >= 1 && busy >= 1, "made {made}, busy {busy}");
    let stored = harness::stored_quotes(&mint).await;
    assert_eq!(stored.len(), made, "a busy answer made no quote");
    assert!(mint.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_database_is_an_internal_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let (mut conn, keyset) = Conn::ready(&mint).await;
    // Break the database under the running mint: its quote table goes.
    harness::MintDb::of_dir(dir.path()).execute("ALTER TABLE mint_quote RENAME TO mint_quote_gone");
    conn.send(&Message::MintQuoteRequest(quote_request(
        1,
        &keyset.keyset_id,
    )))
    .await;
    expect_error(&mut conn, 1, ErrorCode::InternalError).await;
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_off_the_allow_list_cannot_create_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let stranger = AuthorityKeypair::generate();
    let mut conn = Conn::noise(&mint).await;
    let setup = InitiatorSetup {
        mint_key: harness::dev_mint_key(),
        pool_keypair: stranger,
        endpoint_host: "127.0.0.1".into(),
        endpoint_port: 0,
        device_id: "stranger".into(),
    };
    let err = setup::initiate(&mut conn.reader, &mut conn.writer, &setup, harness::TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SetupError::AuthRefused {
                code: ErrorCode::NotAuthorised,
                ..
            }
        ),
        "{err}"
    );
    assert!(conn.is_closed().await);
    assert!(harness::stored_quotes(&mint).await.is_empty());
    assert!(mint.stop().await);
}

/// Runs `attack` on its own connection while a healthy pool keeps making
/// quotes, and checks the healthy one is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_end_alone_while_a_healthy_pool_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |s| {
        s.shared.sv2_messaging.handshake_timeout_ms = 1000
    })
    .await;
    let (mut healthy, keyset) = Conn::ready(&mint).await;
    let addr = mint.sv2_addr.unwrap();
    let ks = keyset.keyset_id.clone();

    // Random bytes instead of a handshake.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(&[0xde; 300]).await.unwrap();
    check_healthy(&mut healthy, &ks).await;

    // A handshake cut short, then silence.
    let mut cut = TcpStream::connect(addr).await.unwrap();
    cut.write_all(&[0x01; 10]).await.unwrap();
    // A silent connection.
    let silent = TcpStream::connect(addr).await.unwrap();
    check_healthy(&mut healthy, &ks).await;

    // A quote request before setup: answered not-authorised, then closed.
    let mut early = Conn::noise(&mint).await;
    early
        .send(&Message::MintQuoteRequest(quote_request(
            500,
            &keyset.keyset_id,
        )))
        .await;
    expect_error(&mut early, 500, ErrorCode::NotAuthorised).await;
    assert!(early.is_closed().await);

    // A malformed setup message: the connection is closed.
    let mut malformed = Conn::noise(&mint).await;
    malformed
        .writer
        .write_frame(&Frame::new(0, false, 0, &[3, 1]).unwrap())
        .await
        .unwrap();
    malformed.writer.flush().await.unwrap();
    assert!(malformed.is_closed().await);

    // A second SetupConnection after setup is a protocol violation.
    let (mut again, _) = Conn::ready(&mint).await;
    again.send(&harness::setup_connection("")).await;
    assert!(again.is_closed().await);

    // A frame declaring a 16 MiB payload: closed before the payload is read.
    let (mut huge, _) = Conn::ready(&mint).await;
    huge.send_16mib_frame().await;
    assert!(huge.is_closed().await);
    check_healthy(&mut healthy, &ks).await;

    // The garbage and the cut-short handshakes have been dropped by now
    // (handshake timeout 1 s); the healthy pool is still served.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for mut stream in [garbage, cut, silent] {
        use tokio::io::AsyncReadExt;
        // Whatever the mint sent (a handshake reply to random bytes), it
        // must end with the connection closed.
        let mut sink = Vec::new();
        let read = tokio::time::timeout(harness::TIMEOUT, stream.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "the mint must have closed it");
    }
    check_healthy(&mut healthy, &ks).await;
    assert!(mint.stop().await);
}

/// One request on the healthy connection must still get its quote.
async fn check_healthy(conn: &mut Conn, keyset: &KeysetId) {
    let request = harness::request(1, 1, keyset);
    conn.send(&Message::MintQuoteRequest(request)).await;
    assert!(matches!(conn.next().await, Message::MintQuoteResponse(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_answers_every_request_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let (mut conn, keyset) = Conn::ready(&mint).await;

    // Hold the database so that the first requests are still in flight when
    // the stop begins, whatever the speed of the machine.
    let lock = harness::MintDb::of_dir(dir.path()).lock();
    let in_flight = 200;
    conn.pipeline((1..=in_flight).map(|id| quote_request(id, &keyset.keyset_id)))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stopping = tokio::spawn(mint.stop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // Sent while the mint drains: each is answered shutting-down at once.
    let late = 100;
    conn.pipeline(
        (in_flight + 1..=in_flight + late).map(|id| quote_request(id, &keyset.keyset_id)),
    )
    .await;
    for _ in 0..late {
        match conn.next().await {
            Message::MintQuoteError(e) => {
                assert_eq!(e.error_code, ErrorCode::ShuttingDown, "{}", e.error_message);
                assert!(
                    e.request_id > in_flight,
                    "request {} was in flight",
                    e.request_id
                );
            }
            other => panic!("expected shutting-down, got {other:?}"),
        }
    }
    drop(lock);

    // The requests in flight are finished, then the connection closes.
    let mut made = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout(harness::TIMEOUT, conn.reader.read_frame())
        .await
        .unwrap()
    {
        match Message::from_frame(&frame).unwrap() {
            Message::MintQuoteResponse(r) => made.push(r.quote_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(stopping.await.unwrap(), "stopped within the grace period");
    assert_eq!(
        made.len(),
        in_flight as usize,
        "every request in flight was answered"
    );
    // Read from outside: the stopped mint's own handle may be closed.
    let stored: std::collections::HashSet<String> = harness::MintDb::of_dir(dir.path())
        .quote_rows()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(
        made.iter().all(|id| stored.contains(id)),
        "every acknowledged quote is stored"
    );
}
