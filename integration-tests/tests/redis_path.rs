//! The Redis path of the mint against a real `redis-server`: today's JSON
//! becomes a quote, the active keyset is published, unreadable entries are
//! dead-lettered with a reason, and Redis going away and coming back does
//! not stop the mint.

use std::time::{Duration, Instant};

use integration_tests as harness;
use mint_quote_proto::json::JsonQuoteRequest;
use mint_quote_proto::{KeysetId, Message};
use mint_server::app::RunningMint;
use redis::Commands;

async fn wait_for_quotes(mint: &RunningMint, count: usize) {
    let deadline = Instant::now() + harness::TIMEOUT;
    loop {
        let stored = harness::stored_quotes(mint).await;
        if stored.len() >= count {
            assert_eq!(stored.len(), count);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} quotes after the timeout",
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn keyset_of(mint: &RunningMint) -> KeysetId {
    let keysets = mint.mint.get_active_keysets();
    let id = keysets.values().next().expect("an active keyset");
    KeysetId::from_slice(&id.to_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_json_becomes_a_quote_and_bad_entries_are_dead_lettered() {
    let redis = harness::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let mint = harness::start_mint_with_redis(dir.path(), url).await;
    let keyset = keyset_of(&mint);
    let mut con = redis.connection();

    // The active keyset is published as NUT-01 JSON.
    let deadline = Instant::now() + harness::TIMEOUT;
    let published: String = loop {
        if let Ok(Some(text)) = con.get::<_, Option<String>>("mint:keyset:active") {
            break text;
        }
        assert!(Instant::now() < deadline, "keyset not published");
        std::thread::sleep(Duration::from_millis(50));
    };
    let published: serde_json::Value = serde_json::from_str(&published).unwrap();
    assert_eq!(published["id"], keyset.to_string());
    assert_eq!(published["keys"].as_object().unwrap().len(), 64);

    // Today's JSON, as the pool pushes it.
    let request = harness::request(0, 21, &keyset);
    let json = JsonQuoteRequest::from_request(&request).to_json();
    assert!(json.contains("\"unit\":\"HASH\""));
    let _: usize = con.rpush("mint:quotes:create", &json).unwrap();
    wait_for_quotes(&mint, 1).await;
    let stored = &harness::stored_quotes(&mint).await[0];
    assert_eq!(stored.amount_paid().value(), 21);
    assert_eq!(stored.request, request.header_hash.to_hex());

    // The same share again: still one quote, nothing dead-lettered.
    let _: usize = con.rpush("mint:quotes:create", &json).unwrap();
    // Garbage and a refused request: dead-lettered with reasons.
    let _: usize = con.rpush("mint:quotes:create", "{not json").unwrap();
    let mut sat = JsonQuoteRequest::from_request(&harness::request(0, 5, &keyset));
    sat.unit = "SAT".into();
    let _: usize = con.rpush("mint:quotes:create", sat.to_json()).unwrap();

    let deadline = Instant::now() + harness::TIMEOUT;
    let dead: Vec<String> = loop {
        let dead: Vec<String> = con.lrange("mint:quotes:dead", 0, -1).unwrap();
        if dead.len() >= 2 {
            break dead;
        }
        assert!(Instant::now() < deadline, "dead letters missing: {dead:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(dead.len(), 2, "{dead:?}");
    let reasons: Vec<serde_json::Value> = dead
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(reasons
        .iter()
        .any(|r| r["payload"] == "{not json" && r["code"] == "malformed-request"));
    assert!(reasons.iter().any(|r| r["code"] == "unknown-unit"));
    wait_for_quotes(&mint, 1).await;
    // The entry leaves the processing list just after its dead letter is
    // written: wait for it rather than expect it at once.
    let deadline = Instant::now() + harness::TIMEOUT;
    loop {
        let processing: usize = con
            .llen(harness::redis_server::processing_list(dir.path()))
            .unwrap();
        if processing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{processing} entries left half-done"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let scrape = mint.metrics.render();
    use harness::http::sample;
    assert_eq!(
        sample(&scrape, "mint_quote_redis_dead_letters_total"),
        2.0,
        "{scrape}"
    );
    assert_eq!(
        sample(&scrape, "mint_quote_quotes_created_total{path=\"redis\"}"),
        1.0,
        "{scrape}"
    );
    assert_eq!(
        sample(&scrape, "mint_quote_quotes_repeated_total{path=\"redis\"}"),
        1.0,
        "{scrape}"
    );
    assert!(mint.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_leaves_sv2_working_and_the_consumer_comes_back() {
    let mut redis = harness::RedisServer::start();
    let port = redis.port();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let mint = harness::start_mint_with_redis(dir.path(), url).await;
    let keyset = keyset_of(&mint);

    redis.stop();
    let (mut conn, _) = harness::Conn::ready(&mint).await;
    for id in 1..=20 {
        conn.send(&Message::MintQuoteRequest(harness::request(id, 1, &keyset)))
            .await;
        assert!(matches!(conn.next().await, Message::MintQuoteResponse(_)));
    }

    let redis = harness::RedisServer::start_on(port);
    let mut con = redis.connection();
    harness::push_request(&mut con, &harness::request(0, 3, &keyset));
    wait_for_quotes(&mint, 21).await;
    assert!(mint.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_left_in_processing_by_a_crash_are_made_at_the_next_start() {
    let redis = harness::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Learn the keyset id of this data directory, then stop.
    let first = harness::start_mint(dir.path(), |_| {}).await;
    let keyset = keyset_of(&first);
    assert!(first.stop().await);

    // As if this mint had taken an entry and died before making its
    // quote; and an entry an earlier version (one processing list for
    // all) left.
    let mut con = redis.connection();
    for (amount, list) in [
        (9, "mint:quotes:create:processing:east"),
        (10, "mint:quotes:create:processing"),
    ] {
        let json = JsonQuoteRequest::from_request(&harness::request(0, amount, &keyset)).to_json();
        let _: usize = con.lpush(list, &json).unwrap();
    }

    let mint = harness::start_mint(dir.path(), |s| {
        s.shared.redis.enabled = true;
        s.shared.redis.url = redis.url();
        s.mint.redis_consumer.name = Some("east".into());
    })
    .await;
    wait_for_quotes(&mint, 2).await;
    assert_eq!(
        harness::http::sample(&mint.metrics.render(), "mint_quote_redis_requeued_total"),
        2.0,
        "both are counted as re-queued"
    );
    assert!(mint.stop().await);
}
