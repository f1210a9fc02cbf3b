//! A miner's wallet (cdk `Wallet`, over the mint's real HTTP API) mints
//! ecash against a quote the pool created over Sv2, signing with the
//! share's locking key (NUT-20). The wrong key cannot mint. And nobody can
//! create a mining-share quote over HTTP.

use integration_tests as harness;
use integration_tests::wallet::{mining_share, total, MinerWallet};
use mint_quote_proto::{LockingKey, Message, MintQuoteResponse};

async fn quote_over_sv2(
    conn: &mut harness::Conn,
    request_id: u32,
    amount: u64,
    key: LockingKey,
    keyset: &mint_quote_proto::KeysetId,
) -> MintQuoteResponse {
    let mut request = harness::request(request_id, amount, keyset);
    request.locking_key = key;
    conn.send(&Message::MintQuoteRequest(request)).await;
    match conn.next().await {
        Message::MintQuoteResponse(r) => r,
        other => panic!("expected a quote, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_mints_against_an_sv2_quote_with_the_locking_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let (mut conn, keyset) = harness::Conn::ready(&mint).await;
    let http = mint.http_addr.expect("the HTTP API is enabled");

    let miner = MinerWallet::new(http, 7).await;

    // The right key mints the whole amount.
    let (secret, key) = harness::locking_key();
    let quote = quote_over_sv2(&mut conn, 1, 1000, key, &keyset.keyset_id).await;
    miner.take_quote(&quote.quote_id, &secret).await;
    let proofs = miner.mint(&quote.quote_id).await.unwrap();
    assert_eq!(total(&proofs), 1000);
    assert!(proofs
        .iter()
        .all(|p| p.keyset_id.to_bytes() == keyset.keyset_id.as_bytes()));

    // A second mint against the same quote is refused: it is issued.
    assert!(miner.mint(&quote.quote_id).await.is_err());

    // Another key cannot mint a locked quote.
    let (_, owner) = harness::locking_key();
    let (thief, _) = harness::locking_key();
    let locked = quote_over_sv2(&mut conn, 2, 64, owner, &keyset.keyset_id).await;
    miner.take_quote(&locked.quote_id, &thief).await;
    let err = miner.mint(&locked.quote_id).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("signature"),
        "{err}"
    );

    // And nobody creates a mining-share quote over HTTP: not through the
    // wallet, not with a hand-made request.
    let attempt = miner
        .wallet
        .mint_quote(mining_share(), Some(cdk::Amount::from(5u64)), None, None)
        .await;
    assert!(attempt.is_err(), "HTTP must not create mining-share quotes");
    let (status, _) = harness::http::request(
        http,
        "POST",
        "/v1/mint/quote/mining_share",
        r#"{"amount":5,"unit":"hash"}"#,
    )
    .await;
    assert!(!status.contains(" 200 "), "{status}");
    let quotes = harness::stored_quotes(&mint).await;
    assert_eq!(quotes.len(), 2, "only the two Sv2 quotes exist");
    assert!(mint.stop().await);
}

/// `/v1/info` advertises what the mint does and nothing else: minting of
/// mining-share quotes (NUT-04), no melting (NUT-05), whose processor
/// refuses everything. It stays so across a restart on the same database
/// (CDK otherwise keeps what its first start stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_info_advertises_minting_and_no_melting() {
    let dir = tempfile::tempdir().unwrap();
    for start in 0..2 {
        let mint = harness::start_mint(dir.path(), |s| {
            s.mint.mint.name = format!("mint, start {start}");
        })
        .await;
        let http = mint.http_addr.expect("the HTTP API is enabled");
        let (status, body) = harness::http::request(http, "GET", "/v1/info", "").await;
        assert!(status.contains("200"), "{status}");
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(info["name"], format!("mint, start {start}"), "{info}");
        let nut04 = &info["nuts"]["4"];
        assert_eq!(nut04["disabled"], false, "{info}");
        assert!(
            nut04["methods"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["method"] == "mining_share" && m["unit"] == "hash"),
            "{info}"
        );
        let nut05 = &info["nuts"]["5"];
        assert_eq!(nut05["disabled"], true, "{info}");
        assert_eq!(nut05["methods"].as_array().map(Vec::len), Some(0), "{info}");
        // And melting is refused at the quote stage.
        let (status, _) = harness::http::request(
            http,
            "POST",
            "/v1/melt/quote/mining_share",
            r#"{"request":"x","unit":"hash"}"#,
        )
        .await;
        assert!(!status.contains("200"), "{status}");
        mint.stop().await;
    }
}
