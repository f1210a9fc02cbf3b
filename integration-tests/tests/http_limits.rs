//! The HTTP API's limits, each shown on a real mint: a body over the limit
//! is refused, headers sent too slowly and an idle connection are closed,
//! requests beyond the concurrency cap get 503 at once, connections beyond
//! the cap (in all, or of one source) are reset, a body trickled in holds
//! no request place, and no websocket is opened.

use std::time::{Duration, Instant};

use integration_tests as harness;
use integration_tests::{MintProcess, MintProcessConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn mint_with(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut mint_server::config::HttpSection),
) -> mint_server::app::RunningMint {
    harness::start_mint(dir, |s| edit(&mut s.mint.http)).await
}

/// Reads until the peer closes; returns what came and how long it took.
async fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(harness::TIMEOUT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the mint kept the connection open"),
        }
    }
    (
        String::from_utf8_lossy(&all).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mint = mint_with(dir.path(), |h| h.max_body_bytes = 1024).await;
    let http = mint.http_addr.unwrap();
    let body = format!(
        r#"{{"quote":"x","outputs":[],"pad":"{}"}}"#,
        "a".repeat(4096)
    );
    let (status, _) = harness::http::request(http, "POST", "/v1/mint/mining_share", &body).await;
    assert!(status.contains("413"), "{status}");
    // Under the limit, the same route reads the body (and refuses the quote).
    let (status, _) = harness::http::request(
        http,
        "POST",
        "/v1/mint/mining_share",
        r#"{"quote":"x","outputs":[]}"#,
    )
    .await;
    assert!(!status.contains("413"), "{status}");
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mint = mint_with(dir.path(), |h| {
        h.header_read_timeout_ms = 500;
        h.idle_timeout_ms = 5_000;
    })
    .await;
    let http = mint.http_addr.unwrap();
    // A byte of headers every 100 ms: never a whole head.
    let mut slow = TcpStream::connect(http).await.unwrap();
    let trickle = tokio::spawn(async move {
        for byte in b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if slow.write_all(&[*byte]).await.is_err() {
                return slow;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    let mut slow = tokio::time::timeout(harness::TIMEOUT, trickle)
        .await
        .expect("the slow client was cut off")
        .unwrap();
    let (_, _) = read_to_close(&mut slow).await;

    // A connection that sends nothing is closed at the header deadline.
    let mut idle = TcpStream::connect(http).await.unwrap();
    let (_, took) = read_to_close(&mut idle).await;
    assert!(took < Duration::from_secs(3), "{took:?}");

    // After a response, an idle keep-alive connection is closed too.
    let mut keep = TcpStream::connect(http).await.unwrap();
    keep.write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, took) = read_to_close(&mut keep).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_cap_get_503_and_connections_beyond_it_are_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = MintProcessConfig::new(dir.path());
    config.mint_overrides = vec![
        ("http", "max_concurrent_requests = 1".into()),
        ("http", "max_connections = 3".into()),
        ("http", "threads = 2".into()),
    ];
    // Every request holds its place for 3 s once it has it.
    config.env = vec![("FAILPOINTS".into(), "http-request=return(3000)".into())];
    let mint = MintProcess::start(config);
    let http = mint.http_address();
    let first = tokio::spawn(harness::http::request(http, "GET", "/v1/keysets", ""));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = harness::http::request(http, "GET", "/v1/info", "").await;
    assert!(status.contains("503"), "{status} {body}");
    let (status, _) = first.await.unwrap();
    assert!(status.contains("200"), "{status}");

    // Three connections open: a fourth is reset.
    let _a = TcpStream::connect(http).await.unwrap();
    let _b = TcpStream::connect(http).await.unwrap();
    let _c = TcpStream::connect(http).await.unwrap();
    // Wait for the mint to hold all three, not for a fixed time.
    harness::http::wait_for_sample(
        mint.metrics_address(),
        "mint_quote_http_connections_open{listener=\"http\"}",
        |open| open >= 3.0,
    )
    .await;
    let mut over = TcpStream::connect(http).await.unwrap();
    let _ = over
        .write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (text, _) = read_to_close(&mut over).await;
    assert!(text.is_empty(), "{text}");
    harness::http::wait_for_sample(
        mint.metrics_address(),
        "mint_quote_connections_refused_total{listener=\"http\",reason=\"connection-limit\"}",
        |v| v >= 1.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_body_holds_no_request_place() {
    let dir = tempfile::tempdir().unwrap();
    let mint = mint_with(dir.path(), |h| {
        h.max_concurrent_requests = 1;
        h.header_read_timeout_ms = 2_000;
    })
    .await;
    let http = mint.http_addr.unwrap();
    // A body announced at 100 bytes, of which one ever comes.
    let mut slow = TcpStream::connect(http).await.unwrap();
    slow.write_all(
        b"POST /v1/mint/mining_share HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    harness::http::wait_for_sample(
        mint.metrics_addr.unwrap(),
        "mint_quote_http_connections_open{listener=\"http\"}",
        |open| open >= 1.0,
    )
    .await;
    // The only request place is free for a wallet.
    let (status, body) = harness::http::request(http, "GET", "/v1/info", "").await;
    assert!(status.contains("200"), "{status} {body}");
    // And the trickler is told off once the body deadline passes.
    let (text, took) = read_to_close(&mut slow).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_hold_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mint = mint_with(dir.path(), |h| {
        h.max_connections = 10;
        h.max_connections_per_source = 2;
    })
    .await;
    let http = mint.http_addr.unwrap();
    let stranger = harness::net::attacker_source(2);
    let _a = harness::net::connect_from(stranger, http).await.unwrap();
    let _b = harness::net::connect_from(stranger, http).await.unwrap();
    harness::http::wait_for_sample(
        mint.metrics_addr.unwrap(),
        "mint_quote_http_connections_open{listener=\"http\"}",
        |open| open >= 2.0,
    )
    .await;
    let mut third = harness::net::connect_from(stranger, http).await.unwrap();
    let _ = third
        .write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (text, _) = read_to_close(&mut third).await;
    assert!(
        text.is_empty(),
        "a third connection of one source was served: {text}"
    );
    // Another address is served.
    let mut other = harness::net::connect_from(harness::net::attacker_source(3), http)
        .await
        .unwrap();
    other
        .write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_to_close(&mut other).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    harness::http::wait_for_sample(
        mint.metrics_addr.unwrap(),
        "mint_quote_connections_refused_total{listener=\"http\",reason=\"source-limit\"}",
        |v| v >= 1.0,
    )
    .await;
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_websocket_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let mint = mint_with(dir.path(), |_| {}).await;
    let http = mint.http_addr.unwrap();
    let mut ws = TcpStream::connect(http).await.unwrap();
    ws.write_all(
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(harness::TIMEOUT, ws.read(&mut head))
        .await
        .expect("an answer")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    mint.stop().await;
}
