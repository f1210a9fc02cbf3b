//! The real pool client through the sniffer to the real mint: every quote
//! is made, pool authentication still works, frames pass unchanged, and the
//! sniffer's output pairs each request with its response.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use integration_tests as harness;
use mint_quote_proto::constants::EXTENSION_TYPE_MINT_QUOTE;
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthoritySecretKey, Frame, Message};
use mint_quote_sniffer::{serve, Format, Printer, SnifferConfig};
use pool_client::Share;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The development mint keypair of `config/mint.toml`.
fn dev_mint_keypair() -> AuthorityKeypair {
    let secret: AuthoritySecretKey = "wpRLddnhWjGZvYcE8m5GqMw9gRBHNNLSgnEFjbw49ktfTc3sB"
        .parse()
        .unwrap();
    AuthorityKeypair::from_secret(secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_client_works_through_the_sniffer_and_every_frame_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;

    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let printer = Printer::new(
        Format::Json,
        None,
        Arc::new(move |l| sink.lock().unwrap().push(l)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sniffer_addr = listener.local_addr().unwrap();
    let keypair = dev_mint_keypair();
    let config = Arc::new(SnifferConfig {
        upstream: mint.sv2_addr.unwrap().to_string(),
        keypair,
        upstream_key: Some(keypair.public()),
        transport: TransportConfig::default(),
        max_connections: 2,
    });
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, config, printer, shutdown.clone()));

    // The pool is configured as for the mint itself, but for the address.
    let client = Arc::new(integration_tests::start_client(harness::client_config(
        &sniffer_addr.to_string(),
    )));
    let keyset = client
        .wait_for_keyset(harness::TIMEOUT)
        .await
        .expect("keyset through the sniffer")
        .keyset_id;
    let mut shares = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u64 {
        let share = Share::from(harness::request(0, 1 + i, &keyset));
        shares.insert(share.header_hash.to_hex(), share.clone());
        let client = client.clone();
        tasks.spawn(async move { (share.clone(), client.request_quote(&share).await) });
    }
    let mut quotes = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (share, quote) = joined.unwrap();
        let quote = quote.expect("a quote through the sniffer");
        assert_eq!(quote.header_hash, share.header_hash);
        quotes.insert(quote.quote_id, share.header_hash.to_hex());
    }
    assert_eq!(harness::stored_quotes(&mint).await.len(), 50);

    // An unknown extension's frame: printed with the reason, relayed, and
    // ignored by the mint, which keeps serving the connection.
    let (mut raw, _) = harness::Conn::ready_at(&sniffer_addr.to_string()).await;
    raw.writer
        .write_frame(&Frame::new(0x4abc, false, 0x01, &[9, 9, 9]).unwrap())
        .await
        .unwrap();
    raw.send(&Message::MintQuoteRequest(harness::request(77, 3, &keyset)))
        .await;
    assert!(matches!(raw.next().await, Message::MintQuoteResponse(r) if r.request_id == 77));

    // A third pool while two are relayed: reset at once (max_connections).
    // The reset can come before the connect completes on this side.
    match tokio::net::TcpStream::connect(sniffer_addr).await {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(mut third) => {
            let mut byte = [0u8; 1];
            let refused = tokio::time::timeout(
                harness::TIMEOUT,
                tokio::io::AsyncReadExt::read(&mut third, &mut byte),
            )
            .await;
            assert!(matches!(refused, Ok(Ok(0)) | Ok(Err(_))), "{refused:?}");
        }
    }

    let lines: Vec<Value> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["note"]
            .as_str()
            .is_some_and(|n| n.contains("pools are relayed already"))),
        "the refusal is printed"
    );
    let named = |name: &'static str| lines.iter().filter(move |l| l["message"] == name);
    // Setup and pool authentication crossed the sniffer.
    for name in [
        "SetupConnection",
        "RequestExtensions.Success",
        "PoolAuthChallenge",
        "PoolAuthProof",
        "PoolAuthSuccess",
        "ActiveKeyset",
    ] {
        assert!(named(name).count() >= 1, "{name} not printed");
    }
    // Every request is printed with the bytes the client encodes, and
    // answered by a response with the same request id and share.
    let mut requests = HashMap::new();
    for line in named("MintQuoteRequest").filter(|l| l["conn"] == 1) {
        let hash = line["fields"]["header_hash"].as_str().unwrap().to_owned();
        let id = line["fields"]["request_id"].as_u64().unwrap() as u32;
        let expected = Message::MintQuoteRequest(shares[&hash].to_request(id))
            .to_frame()
            .unwrap();
        let hex: String = expected
            .payload()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(line["payload_hex"], hex, "the frame crossed unchanged");
        assert_eq!(line["direction"], "pool->mint");
        requests.insert(id, hash);
    }
    assert_eq!(requests.len(), 50);
    let mut answered = HashSet::new();
    for line in named("MintQuoteResponse").filter(|l| l["conn"] == 1) {
        let id = line["fields"]["request_id"].as_u64().unwrap() as u32;
        assert_eq!(
            line["fields"]["header_hash"],
            requests[&id].as_str(),
            "response {id} is for its request's share"
        );
        assert_eq!(
            quotes[line["fields"]["quote_id"].as_str().unwrap()],
            requests[&id]
        );
        answered.insert(id);
    }
    assert_eq!(answered.len(), 50);
    let unknown = lines
        .iter()
        .find(|l| l["extension_type"] == 0x4abc)
        .expect("the unknown frame is printed");
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("unknown extension"),
        "{unknown}"
    );
    assert_eq!(unknown["payload_hex"], "090909");
    assert!(lines
        .iter()
        .all(|l| l["extension_type"] != EXTENSION_TYPE_MINT_QUOTE || l["channel_msg"] == false));
    shutdown.cancel();
    mint.stop().await;
}
