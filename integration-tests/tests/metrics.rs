//! The mint's Prometheus endpoint, scraped over HTTP: the counters move
//! with what the mint does.

use integration_tests as harness;
use integration_tests::http::sample;
use mint_quote_proto::{AuthorityKeypair, ErrorCode, Message, Unit};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_move_with_quotes_errors_and_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |s| s.mint.listener.max_connections = 3).await;
    let addr = mint.metrics_addr.expect("metrics enabled");
    let scrape = || async move {
        let (status, body) = harness::http::request(addr, "GET", "/metrics", "").await;
        assert!(status.contains("200"), "{status}");
        body
    };
    let before = scrape().await;
    assert_eq!(
        sample(&before, "mint_quote_quotes_created_total{path=\"sv2\"}"),
        0.0
    );

    let (mut conn, keyset) = harness::Conn::ready(&mint).await;
    conn.pipeline((1..=5).map(|id| harness::request(id, 1, &keyset.keyset_id)))
        .await;
    let mut sat = harness::request(9, 1, &keyset.keyset_id);
    sat.unit = Unit::new("sat").unwrap();
    conn.send(&Message::MintQuoteRequest(sat)).await;
    for _ in 0..6 {
        conn.next().await;
    }
    // A garbled handshake, a refused pool, and more unauthenticated
    // connections from one source than its share.
    let mut garbage = tokio::net::TcpStream::connect(mint.sv2_addr.unwrap())
        .await
        .unwrap();
    garbage.write_all(&[0xff; 200]).await.unwrap();
    let mut stranger = harness::Conn::noise(&mint).await;
    let _ = mint_quote_proto::setup::initiate(
        &mut stranger.reader,
        &mut stranger.writer,
        &mint_quote_proto::setup::InitiatorSetup {
            mint_key: harness::dev_mint_key(),
            pool_keypair: AuthorityKeypair::generate(),
            endpoint_host: String::new(),
            endpoint_port: 0,
            device_id: "stranger".into(),
        },
        harness::TIMEOUT,
    )
    .await;
    // A quote request before authentication: answered not-authorised.
    let mut early = harness::Conn::noise(&mint).await;
    early
        .send(&Message::MintQuoteRequest(harness::request(
            3,
            1,
            &keyset.keyset_id,
        )))
        .await;
    assert!(
        matches!(early.next().await, Message::MintQuoteError(e) if e.error_code == ErrorCode::NotAuthorised)
    );
    let mut extra = Vec::new();
    for _ in 0..5 {
        // One the mint resets (over the source's limit) before this task
        // sees its connect complete fails here: refused either way.
        if let Ok(stream) = tokio::net::TcpStream::connect(mint.sv2_addr.unwrap()).await {
            extra.push(stream);
        }
    }
    // What strangers did is counted as soon as each connection ends.
    let wait = |name: &'static str, at_least: f64| {
        harness::http::wait_for_sample(addr, name, move |v| v >= at_least)
    };
    wait(
        "mint_quote_connections_refused_total{listener=\"sv2\",reason=\"source-limit\"}",
        1.0,
    )
    .await;
    wait(
        "mint_quote_unauthenticated_closed_total{reason=\"auth-refused\"}",
        1.0,
    )
    .await;
    wait(
        "mint_quote_quote_errors_total{path=\"sv2\",code=\"not-authorised\"}",
        1.0,
    )
    .await;
    wait(
        "mint_quote_unauthenticated_closed_total{reason=\"setup-failed\"}",
        1.0,
    )
    .await;

    let after = scrape().await;
    assert_eq!(
        sample(&after, "mint_quote_quotes_created_total{path=\"sv2\"}"),
        5.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "mint_quote_quote_errors_total{path=\"sv2\",code=\"unknown-unit\"}"
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "mint_quote_request_duration_seconds_count{path=\"sv2\"}"
        ),
        5.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "mint_quote_connections_open{stage=\"authenticated\"}"
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "mint_quote_development_keys"),
        1.0,
        "the example keys are published: {after}"
    );
    drop(extra);
    mint.stop().await;
}
