//! The pool's client against a real mint: answers land on the right
//! callers, deadlines, the in-flight bound, a mint killed and restarted
//! mid-run, a wrong mint key, and each path surviving the other's outage.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use integration_tests as harness;
use mint_quote_config::{BusyPolicy, RedisConfig};
use mint_quote_proto::{AuthorityKeypair, KeysetId};
use pool_client::{Dispatcher, MintQuoteClient, PendingReason, QuoteError, RedisPusher, Share};

fn share(keyset: &KeysetId, amount: u64) -> Share {
    Share::from(harness::request(0, amount, keyset))
}

async fn keyset(client: &MintQuoteClient) -> KeysetId {
    client
        .wait_for_keyset(harness::TIMEOUT)
        .await
        .expect("the mint announces its keyset")
        .keyset_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_each_get_their_own_quote() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let address = mint.sv2_addr.unwrap().to_string();
    let client = Arc::new(integration_tests::start_client(harness::client_config(
        &address,
    )));
    let keyset = keyset(&client).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000u64 {
        let client = client.clone();
        let share = share(&keyset, 1 + i);
        tasks.spawn(async move {
            let quote = client.request_quote(&share).await;
            (share, quote)
        });
    }
    let mut ids = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (share, quote) = joined.unwrap();
        let quote = quote.unwrap();
        assert_eq!(
            quote.header_hash, share.header_hash,
            "the answer is for this caller's share"
        );
        assert_eq!(quote.amount, share.amount);
        assert!(ids.insert(quote.quote_id));
    }
    let stats = client.stats();
    assert_eq!(
        (stats.answered, stats.in_flight, stats.unknown_answers),
        (1000, 0, 0)
    );
    assert!(mint.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_deadline_a_share_is_pending_and_its_late_quote_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let mut config = harness::client_config(&mint.sv2_addr.unwrap().to_string());
    config.request_deadline = Duration::from_millis(400);
    let client = integration_tests::start_client(config);
    let keyset = keyset(&client).await;

    let lock = harness::MintDb::of_dir(dir.path()).lock();
    let started = std::time::Instant::now();
    let share = share(&keyset, 1);
    let err = client.request_quote(&share).await.unwrap_err();
    assert_eq!(
        err,
        QuoteError::Pending(PendingReason::Timeout(Duration::from_millis(400)))
    );
    // The database stays locked until after this check, so the mint cannot
    // answer at all: the client must end the call itself. The bound is
    // loose because a loaded CI machine is slow, not because it may hang.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} for a 400 ms deadline"
    );
    assert_eq!(client.stats().pending, 1);
    assert_eq!(client.stats().outstanding, 1, "the client keeps the share");
    // The mint answers once its database is free: the quote is delivered.
    drop(lock);
    let settled = tokio::time::timeout(harness::TIMEOUT, client.next_settled())
        .await
        .expect("the late quote is delivered");
    assert_eq!(settled.share, share);
    let quote = settled.outcome.clone().expect("a quote");
    assert_eq!(quote.header_hash, share.header_hash);
    client.acknowledge(&settled).await;
    assert_eq!(client.stats().late, 1);
    let stored = harness::stored_quotes(&mint).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), quote.quote_id);
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_bound_holds_and_a_full_outbox_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let mut config = harness::client_config(&mint.sv2_addr.unwrap().to_string());
    config.max_in_flight = 4;
    config.when_busy = BusyPolicy::Fail;
    config.outbox = pool_client::OutboxConfig::in_memory(6);
    config.request_deadline = Duration::from_secs(5);
    let client = Arc::new(integration_tests::start_client(config));
    let keyset = keyset(&client).await;

    let lock = harness::MintDb::of_dir(dir.path()).lock();
    let mut stuck = Vec::new();
    for n in 0..6 {
        let (client, share) = (client.clone(), share(&keyset, 10 + n));
        stuck.push(tokio::spawn(
            async move { client.request_quote(&share).await },
        ));
    }
    // Wait until all six are taken; the bound says four of them on the
    // wire, never more.
    let deadline = tokio::time::Instant::now() + harness::TIMEOUT;
    let stats = loop {
        let stats = client.stats();
        assert!(stats.in_flight <= 4, "{stats:?}");
        if stats.outstanding == 6 || tokio::time::Instant::now() >= deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((stats.in_flight, stats.outstanding), (4, 6), "{stats:?}");
    assert_eq!(
        client.request_quote(&share(&keyset, 1)).await,
        Err(QuoteError::Outbox(pool_client::OutboxError::Full(6)))
    );

    // Released: the six go through.
    drop(lock);
    for task in stuck {
        task.await.unwrap().unwrap();
    }
    let stats = client.stats();
    assert_eq!((stats.in_flight, stats.outstanding), (0, 0), "{stats:?}");
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_key_that_is_not_the_mints_is_refused_before_any_share_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    let mut config = harness::client_config(&mint.sv2_addr.unwrap().to_string());
    let impostor = AuthorityKeypair::generate().public();
    config.mints[0].key = impostor;
    let client = integration_tests::start_client(config);
    let keyset: KeysetId = "00ffffffffffffff".parse().unwrap();
    match client.request_quote(&share(&keyset, 1)).await {
        Err(QuoteError::Pending(PendingReason::WrongMintKey { pinned, .. })) => {
            assert_eq!(pinned, impostor)
        }
        other => panic!("expected WrongMintKey, got {other:?}"),
    }
    assert_eq!(client.stats().sent, 0, "nothing was sent");
    assert!(!client.is_connected());
    assert!(harness::stored_quotes(&mint).await.is_empty());
    mint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_the_mint_does_not_allow_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let mint = harness::start_mint(dir.path(), |s| s.allowed_pools.clear()).await;
    let client = integration_tests::start_client(harness::client_config(
        &mint.sv2_addr.unwrap().to_string(),
    ));
    let keyset: KeysetId = "00ffffffffffffff".parse().unwrap();
    let err = client.request_quote(&share(&keyset, 1)).await.unwrap_err();
    assert!(
        matches!(err, QuoteError::Pending(PendingReason::NotAuthorised(_))),
        "{err}"
    );
    mint.stop().await;
}

/// Shares that got more than one quote, and quote ids the database lacks.
fn audit(db: &harness::MintDb, told: &[String]) -> (usize, Vec<String>) {
    let doubles = db.count(
        "SELECT COUNT(*) FROM (SELECT request FROM mint_quote GROUP BY request HAVING COUNT(*) > 1) AS doubled",
    ) as usize;
    let stored: std::collections::HashSet<String> =
        db.quote_rows().into_iter().map(|(_, id)| id).collect();
    let missing = told
        .iter()
        .filter(|id| !stored.contains(*id))
        .cloned()
        .collect();
    (doubles, missing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mint_killed_and_restarted_mid_run_loses_nothing_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = harness::MintProcess::start(harness::MintProcessConfig::new(dir.path()));
    let mut config = harness::client_config(&mint.sv2_address());
    // Longer than the whole run, kill and restart included, on either
    // database (a debug build on PostgreSQL writes about 650 quotes/s on
    // two cores): every call must end in its quote, none in "pending".
    config.request_deadline = Duration::from_secs(40);
    let client = Arc::new(integration_tests::start_client(config));
    let keyset = keyset(&client).await;

    let count = 5000u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (client, share) = (client.clone(), share(&keyset, 1 + i % 100));
        tasks.spawn(async move { client.request_quote(&share).await });
    }
    // Kill it once a tenth of the run is answered: the rest is in flight
    // or not yet sent.
    let answered = harness::wait_until_answered(&client, count / 10).await;
    mint.kill();
    assert!(
        answered < count,
        "the kill came mid-run ({answered} of {count} answered)"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    mint.restart();

    let (mut quotes, mut errors) = (Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(quote) => quotes.push(quote.quote_id),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let stats = client.stats();
    client.shutdown();
    let (doubles, missing) = audit(&mint.database(), &quotes);
    let context = format!(
        "{} quotes, {} errors {:?}, stats {stats:?}\nmint log:\n{}",
        quotes.len(),
        errors.len(),
        errors.iter().take(3).collect::<Vec<_>>(),
        mint.log_tail(20)
    );
    assert_eq!(quotes.len() + errors.len(), count as usize, "{context}");
    assert_eq!(doubles, 0, "a share got two quotes: {context}");
    assert!(
        missing.is_empty(),
        "quotes the client was told about are missing: {missing:?} {context}"
    );
    assert!(stats.reconnects >= 1, "{context}");
    assert!(
        errors.is_empty(),
        "with a deadline longer than the run every request gets its quote: {context}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_path_survives_the_other_going_down() {
    let mut redis = harness::RedisServer::start();
    let redis_port = redis.port();
    let dir = tempfile::tempdir().unwrap();
    let mut process = harness::MintProcessConfig::new(dir.path());
    process.redis_url = Some(redis.url());
    let mut mint = harness::MintProcess::start(process);

    let mut config = harness::client_config(&mint.sv2_address());
    config.request_deadline = Duration::from_secs(2);
    let client = Arc::new(integration_tests::start_client(config));
    let keyset = keyset(&client).await;
    let redis_config = RedisConfig {
        enabled: true,
        url: redis.url(),
        ..RedisConfig::default()
    };
    let pusher = Arc::new(RedisPusher::new(redis_config, Duration::from_millis(500)).unwrap());
    let dispatcher = Dispatcher::new(Some(client.clone()), Some(pusher));

    // Both up: both paths succeed, one quote per share.
    let outcome = dispatcher.dispatch(&share(&keyset, 5)).await;
    assert!(outcome.sv2.unwrap().is_ok());
    assert_eq!(outcome.redis, Some(Ok(())));

    // Redis down: Sv2 still makes quotes, Redis reports its failure.
    redis.stop();
    for _ in 0..10 {
        let outcome = dispatcher.dispatch(&share(&keyset, 5)).await;
        assert!(outcome.sv2.unwrap().is_ok(), "Sv2 must not depend on Redis");
        assert!(matches!(outcome.redis, Some(Err(_))));
    }

    // Redis back, Sv2 down: Redis queues, Sv2 reports its failure.
    let redis = harness::RedisServer::start_on(redis_port);
    mint.kill();
    let outcome = dispatcher.dispatch(&share(&keyset, 7)).await;
    assert_eq!(outcome.redis, Some(Ok(())), "Redis must not depend on Sv2");
    assert!(matches!(outcome.sv2, Some(Err(_))));
    let queued: usize =
        redis::Commands::llen(&mut redis.connection(), "mint:quotes:create").unwrap();
    assert_eq!(queued, 1);

    // The mint comes back and drains what Redis queued while it was down.
    mint.restart();
    let deadline = std::time::Instant::now() + harness::TIMEOUT;
    loop {
        let n = mint.database().count("SELECT COUNT(*) FROM mint_quote");
        if n == 12 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} quotes; log:\n{}",
            mint.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A peer that speaks the real protocol (real Noise, real setup) but
/// answers a request under another id first: the client must drop that
/// answer, count it, and still match the right one to its caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_an_unknown_request_id_is_dropped_and_counted() {
    use mint_quote_proto::transport::{self, TransportConfig};
    use mint_quote_proto::{Message, MintQuoteResponse, QuoteState};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mint_keypair = {
        let secret: mint_quote_proto::AuthoritySecretKey =
            "wpRLddnhWjGZvYcE8m5GqMw9gRBHNNLSgnEFjbw49ktfTc3sB"
                .parse()
                .unwrap();
        AuthorityKeypair::from_secret(secret)
    };
    let keyset: KeysetId = "009a1f293253e41e".parse().unwrap();
    let announced = keyset.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) =
            transport::accept(stream, &mint_keypair, &TransportConfig::default())
                .await
                .unwrap();
        mint_quote_proto::setup::respond(
            &mut reader,
            &mut writer,
            &mint_keypair.public(),
            |_| Ok(()),
            harness::TIMEOUT,
        )
        .await
        .unwrap();
        writer
            .send_message(&Message::ActiveKeyset(mint_quote_proto::ActiveKeyset {
                unit: mint_quote_proto::Unit::hash(),
                keyset_id: announced,
                input_fee_ppk: 0,
            }))
            .await
            .unwrap();
        let Message::MintQuoteRequest(request) = mint_quote_proto::setup::next_message(&mut reader)
            .await
            .unwrap()
        else {
            panic!("expected a request");
        };
        let answer = |request_id| {
            Message::MintQuoteResponse(MintQuoteResponse {
                request_id,
                quote_id: format!("q{request_id}"),
                amount: request.amount,
                unit: request.unit.clone(),
                expires_at: 0,
                state: QuoteState::Paid,
                header_hash: request.header_hash,
            })
        };
        writer
            .send_message(&answer(request.request_id.wrapping_add(1000)))
            .await
            .unwrap();
        writer
            .send_message(&answer(request.request_id))
            .await
            .unwrap();
        // Keep the connection open until the client is done.
        let _ = mint_quote_proto::setup::next_message(&mut reader).await;
    });

    let client = integration_tests::start_client(harness::client_config(&address));
    let s = share(&keyset, 3);
    let quote = client.request_quote(&s).await.unwrap();
    assert_eq!(quote.header_hash, s.header_hash);
    assert_eq!(client.stats().unknown_answers, 1);
    assert_eq!(client.stats().answered, 1);
}
