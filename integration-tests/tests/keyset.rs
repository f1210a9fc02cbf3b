//! A keyset rotation is announced to connected pools (`ActiveKeyset`) and
//! written to Redis, and quotes go on being made.

use std::time::{Duration, Instant};

use integration_tests as harness;
use mint_quote_proto::Message;
use redis::Commands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_keyset_is_announced_on_both_paths() {
    let redis = harness::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint_with_redis(dir.path(), redis.url()).await;
    let (mut conn, first) = harness::Conn::ready(&mint).await;
    let client = integration_tests::start_client(harness::client_config(
        &mint.sv2_addr.unwrap().to_string(),
    ));
    let announced = client.wait_for_keyset(harness::TIMEOUT).await.unwrap();
    assert_eq!(
        announced.keyset_id, first.keyset_id,
        "the client exposes the announced keyset"
    );

    let new_id = harness::rotate_keyset(&mint.mint, &first.unit).await;
    assert_ne!(new_id, first.keyset_id);

    match tokio::time::timeout(Duration::from_secs(10), conn.next())
        .await
        .unwrap()
    {
        Message::ActiveKeyset(k) => assert_eq!(k.keyset_id, new_id, "the new keyset is announced"),
        other => panic!("expected ActiveKeyset, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.active_keyset().map(|k| k.keyset_id) != Some(new_id.clone()) {
        assert!(
            Instant::now() < deadline,
            "the client still exposes the old keyset"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut con = redis.connection();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text: Option<String> = con.get("mint:keyset:active").unwrap();
        let id = text
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|v| v["id"].clone());
        if id == Some(serde_json::json!(new_id.to_string())) {
            break;
        }
        assert!(Instant::now() < deadline, "redis still has {id:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Quotes under the new keyset, and under the old one (still a keyset of
    // this mint), are made.
    for (id, keyset) in [(1, &new_id), (2, &first.keyset_id)] {
        conn.send(&Message::MintQuoteRequest(harness::request(id, 5, keyset)))
            .await;
        assert!(matches!(conn.next().await, Message::MintQuoteResponse(r) if r.request_id == id));
    }
    assert!(mint.stop().await);
}
