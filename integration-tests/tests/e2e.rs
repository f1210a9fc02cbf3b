//! The whole system as people run it: the `mint-server` binary, the pool
//! client library, a real `redis-server`. Each test is one scenario of
//! issue 5; a failure prints counts and the tail of the mint's log.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests as harness;
use integration_tests::{MintProcess, MintProcessConfig};
use mint_quote_config::RedisConfig;
use mint_quote_proto::constants::{mint_quote, EXTENSION_TYPE_MINT_QUOTE};
use mint_quote_proto::transport::{self, TransportConfig};
use mint_quote_proto::{pool_auth, ErrorCode, Frame, KeysetId, Message, PoolAuthProof, Unit};
use pool_client::{Dispatcher, MintQuoteClient, QuoteError, RedisPusher, Share};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// One row of the mint's quote table.
#[derive(Debug)]
struct Row {
    id: String,
    amount: u64,
    amount_paid: u64,
    unit: String,
    pubkey: String,
}

/// The mint's quotes by share (the quote's `request` is the header hash).
fn quotes_by_share(mint: &MintProcess) -> HashMap<String, Vec<Row>> {
    let rows = mint.database().text_rows(
        "SELECT request, id, CAST(amount AS TEXT), CAST(amount_paid AS TEXT), unit, pubkey FROM mint_quote",
    );
    let mut by_share: HashMap<String, Vec<Row>> = HashMap::new();
    for row in rows {
        let text = |i: usize| row[i].clone().unwrap_or_default();
        let number = |i: usize| text(i).parse::<u64>().unwrap();
        by_share.entry(text(0)).or_default().push(Row {
            id: text(1),
            amount: number(2),
            amount_paid: number(3),
            unit: text(4),
            pubkey: text(5),
        });
    }
    by_share
}

fn share(keyset: &KeysetId, amount: u64) -> Share {
    Share::from(harness::request(0, amount, keyset))
}

async fn client_for(mint: &MintProcess, deadline: Duration) -> (Arc<MintQuoteClient>, KeysetId) {
    let mut config = harness::client_config(&mint.sv2_address());
    config.request_deadline = deadline;
    let client = Arc::new(integration_tests::start_client(config));
    let keyset = client
        .wait_for_keyset(harness::TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("no keyset announced; log:\n{}", mint.log_tail(20)))
        .keyset_id;
    (client, keyset)
}

/// Waits until the database holds `count` quotes.
async fn wait_for_count(mint: &MintProcess, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = quotes_by_share(mint).values().map(Vec::len).sum::<usize>();
        if n >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} of {count} quotes; log:\n{}",
            mint.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_1_two_thousand_shares_over_sv2_become_two_thousand_right_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(MintProcessConfig::new(dir.path()));
    let (client, keyset) = client_for(&mint, Duration::from_secs(20)).await;

    let shares: Vec<Share> = (0..2000u64).map(|i| share(&keyset, 1 + i % 977)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for s in &shares {
        let (client, s) = (client.clone(), s.clone());
        tasks.spawn(async move {
            let quote = client.request_quote(&s).await;
            (s, quote)
        });
    }
    let mut told = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (s, quote) = joined.unwrap();
        let quote = quote.unwrap_or_else(|e| panic!("{e}; log:\n{}", mint.log_tail(20)));
        assert_eq!(quote.header_hash, s.header_hash);
        told.insert(s.header_hash.to_hex(), quote.quote_id);
    }

    let stored = quotes_by_share(&mint);
    assert_eq!(stored.len(), 2000, "one entry per share");
    for s in &shares {
        let rows = &stored[&s.header_hash.to_hex()];
        assert_eq!(rows.len(), 1, "exactly one quote for {}", s.header_hash);
        let row = &rows[0];
        assert_eq!(row.id, told[&s.header_hash.to_hex()]);
        assert_eq!(
            (row.amount, row.amount_paid),
            (s.amount, s.amount),
            "paid in full"
        );
        assert_eq!(row.unit.to_lowercase(), "hash");
        assert_eq!(row.pubkey, s.locking_key.to_string());
    }

    // At INFO the log says it in a summary line per interval, never a
    // line per quote.
    let deadline = Instant::now() + Duration::from_secs(25);
    while summarised_sv2_quotes(&mint.log()) < 2000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = mint.log();
    assert_eq!(summarised_sv2_quotes(&log), 2000, "{}", mint.log_tail(10));
    let quote_lines = told.values().filter(|id| log.contains(id.as_str())).count();
    assert_eq!(quote_lines, 0, "quote ids in the INFO log");
}

/// The Sv2 quotes the log's periodic summary lines count, added up.
fn summarised_sv2_quotes(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(" quotes ") || l.ends_with(" quotes"))
        .filter_map(|l| l.split("created_sv2=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_2_both_paths_at_once_make_one_quote_per_share() {
    let redis = harness::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = MintProcessConfig::new(dir.path());
    config.redis_url = Some(redis.url());
    let mint = MintProcess::start(config);
    let (client, keyset) = client_for(&mint, Duration::from_secs(20)).await;
    let redis_config = RedisConfig {
        enabled: true,
        url: redis.url(),
        ..RedisConfig::default()
    };
    let pusher = Arc::new(RedisPusher::new(redis_config, Duration::from_secs(2)).unwrap());
    let both = Dispatcher::new(Some(client.clone()), Some(pusher.clone()));
    let sv2_only = Dispatcher::new(Some(client.clone()), None);
    let redis_only = Dispatcher::new(None, Some(pusher));

    let mut tasks = tokio::task::JoinSet::new();
    let mut all = HashSet::new();
    for i in 0..600u64 {
        let s = share(&keyset, 1 + i);
        all.insert(s.header_hash.to_hex());
        let dispatcher = match i % 3 {
            0 => both.clone(),
            1 => sv2_only.clone(),
            _ => redis_only.clone(),
        };
        tasks.spawn(async move { dispatcher.dispatch(&s).await });
    }
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.unwrap();
        if let Some(sv2) = outcome.sv2 {
            sv2.unwrap();
        }
        if let Some(redis) = outcome.redis {
            redis.unwrap();
        }
    }
    wait_for_count(&mint, 600).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = quotes_by_share(&mint);
    let keys: HashSet<String> = stored.keys().cloned().collect();
    assert_eq!(keys, all, "every share, by whatever path, became a quote");
    assert!(
        stored.values().all(|rows| rows.len() == 1),
        "a share sent by both paths has one quote"
    );
    let dead: usize = redis::Commands::llen(&mut redis.connection(), "mint:quotes:dead").unwrap();
    assert_eq!(
        dead,
        0,
        "nothing was dead-lettered; log:\n{}",
        mint.log_tail(20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_4_sigterm_answers_what_is_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = MintProcess::start(MintProcessConfig::new(dir.path()));
    let (client, keyset) = client_for(&mint, Duration::from_secs(3)).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..3000u64 {
        let (client, s) = (client.clone(), share(&keyset, 1 + i % 50));
        tasks.spawn(async move { client.request_quote(&s).await });
    }
    // SIGTERM once a tenth of the run is answered, so that the stop meets
    // requests in flight.
    let answered = harness::wait_until_answered(&client, 300).await;
    let status = mint.terminate(Duration::from_secs(15));
    assert!(
        answered < 3000,
        "the stop came mid-run ({answered} of 3000 answered)"
    );
    let log = mint.log_tail(15);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status {status:?}; log:\n{log}"
    );

    let (mut acknowledged, mut errors) = (Vec::new(), HashMap::new());
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(quote) => acknowledged.push(quote.quote_id),
            Err(e) => {
                *errors
                    .entry(format!("{:?}", std::mem::discriminant(&e)))
                    .or_insert(0) += 1
            }
        }
    }
    assert!(!acknowledged.is_empty(), "the run was under way");
    let stored: HashSet<String> = quotes_by_share(&mint)
        .into_values()
        .flatten()
        .map(|r| r.id)
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert!(log.contains("stopped"), "{log}");
    // Requests left when the mint went away end with a reason, not a hang.
    assert_eq!(
        acknowledged.len() + errors.values().sum::<usize>(),
        3000,
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_5_a_redis_outage_leaves_sv2_working_and_redis_resumes() {
    let mut redis = harness::RedisServer::start();
    let port = redis.port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = MintProcessConfig::new(dir.path());
    config.redis_url = Some(redis.url());
    let mint = MintProcess::start(config);
    let (client, keyset) = client_for(&mint, Duration::from_secs(10)).await;

    let mut con = redis.connection();
    let mut pushed = Vec::new();
    for i in 0..50 {
        let s = share(&keyset, 1 + i);
        harness::push_request(&mut con, &s.to_request(0));
        pushed.push(s.header_hash.to_hex());
    }
    wait_for_count(&mint, 50).await;

    redis.stop();
    let started = Instant::now();
    for i in 0..300u64 {
        client
            .request_quote(&share(&keyset, 1 + i))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Sv2 failed during the Redis outage: {e}; log:\n{}",
                    mint.log_tail(20)
                )
            });
    }
    let during = started.elapsed();

    let redis = harness::RedisServer::start_on(port);
    let mut con = redis.connection();
    for i in 0..50 {
        let s = share(&keyset, 100 + i);
        harness::push_request(&mut con, &s.to_request(0));
        pushed.push(s.header_hash.to_hex());
    }
    wait_for_count(&mint, 400).await;
    let stored = quotes_by_share(&mint);
    assert!(
        pushed.iter().all(|h| stored.contains_key(h)),
        "every pushed entry became a quote"
    );
    let dead: usize = redis::Commands::llen(&mut con, "mint:quotes:dead").unwrap();
    assert_eq!(dead, 0);
    assert!(
        mint.wait_for_log("redis", harness::TIMEOUT)
            && (mint.log().contains("redis unreachable")
                || mint.log().contains("redis connection lost")),
        "the outage was logged"
    );
    eprintln!("300 sequential Sv2 quotes during the Redis outage took {during:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_6_a_replayed_authentication_is_refused_by_the_real_mint() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(MintProcessConfig::new(dir.path()));
    let pool = harness::dev_pool();

    // Runs setup by hand up to the challenge, answers with `proof` (or a
    // fresh one), and returns the mint's verdict.
    async fn authenticate(address: &str, proof: Option<PoolAuthProof>) -> (Message, PoolAuthProof) {
        let stream = TcpStream::connect(address).await.unwrap();
        let (mut reader, mut writer) = transport::connect(
            stream,
            &harness::dev_mint_key(),
            &TransportConfig::default(),
        )
        .await
        .unwrap();
        writer
            .send_message(&harness::setup_connection("attacker"))
            .await
            .unwrap();
        mint_quote_proto::setup::next_message(&mut reader)
            .await
            .unwrap();
        writer
            .send_message(&Message::RequestExtensions(
                mint_quote_proto::RequestExtensions {
                    request_id: 1,
                    requested_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
                },
            ))
            .await
            .unwrap();
        mint_quote_proto::setup::next_message(&mut reader)
            .await
            .unwrap();
        let Message::PoolAuthChallenge(challenge) =
            mint_quote_proto::setup::next_message(&mut reader)
                .await
                .unwrap()
        else {
            panic!("no challenge");
        };
        let proof = proof.unwrap_or(PoolAuthProof {
            pool_key: harness::dev_pool().public(),
            signature: pool_auth::sign_proof(
                &harness::dev_pool(),
                &harness::dev_mint_key(),
                &challenge.nonce,
            ),
        });
        writer
            .send_message(&Message::PoolAuthProof(proof))
            .await
            .unwrap();
        (
            mint_quote_proto::setup::next_message(&mut reader)
                .await
                .unwrap(),
            proof,
        )
    }

    let (verdict, captured) = authenticate(&mint.sv2_address(), None).await;
    assert!(matches!(verdict, Message::PoolAuthSuccess(s) if s.pool_key == pool.public()));
    let (verdict, _) = authenticate(&mint.sv2_address(), Some(captured)).await;
    match verdict {
        Message::PoolAuthError(e) => assert_eq!(e.error_code, ErrorCode::NotAuthorised),
        other => panic!("a replayed proof must be refused, got {other:?}"),
    }
    // Counted (and summarised in the log), never a line per attempt; the
    // count moves just after the refusal is sent.
    harness::http::wait_for_sample(
        mint.metrics_address(),
        "mint_quote_unauthenticated_closed_total{reason=\"auth-refused\"}",
        |v| v == 1.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_7_hostile_input_does_not_hurt_a_healthy_pool_or_grow_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(MintProcessConfig::new(dir.path()));
    let address = mint.sv2_address();
    let (client, keyset) = client_for(&mint, Duration::from_secs(10)).await;
    let healthy = |client: Arc<MintQuoteClient>, keyset: KeysetId| async move {
        for i in 0..20 {
            client
                .request_quote(&share(&keyset, 1 + i))
                .await
                .expect("the healthy pool is served");
        }
    };
    healthy(client.clone(), keyset.clone()).await;
    let rss_before = mint.rss_kib().unwrap();

    let mint_addr: std::net::SocketAddr = address.parse().unwrap();
    for round in 0..3u8 {
        // From a stranger's address (one per round, so the per-source
        // limits leave room for each round): random bytes, a handshake cut
        // short, a silent connection, a 16 MiB frame.
        let stranger = harness::net::attacker_source(2 + round);
        let mut garbage = harness::net::connect_from(stranger, mint_addr)
            .await
            .unwrap();
        let _ = garbage.write_all(&[0xa5; 4096]).await;
        let mut cut = harness::net::connect_from(stranger, mint_addr)
            .await
            .unwrap();
        let _ = cut.write_all(&[1; 30]).await;
        drop(cut);
        let _silent = harness::net::connect_from(stranger, mint_addr)
            .await
            .unwrap();
        let mut conn = harness::Conn::noise_from(stranger, &address).await;

        // An authenticated pool sending hostile frames.
        let (mut pool, _) = harness::Conn::ready_at(&address).await;
        // Unknown extension and unknown message type: ignored.
        pool.writer
            .write_frame(&Frame::new(0x4001, false, 7, &[0; 40]).unwrap())
            .await
            .unwrap();
        pool.writer
            .write_frame(&Frame::new(EXTENSION_TYPE_MINT_QUOTE, false, 0xee, &[0; 8]).unwrap())
            .await
            .unwrap();
        // Truncated payload, invalid locking key, amount 0, unit sat: answered.
        let request = harness::request(1, 5, &keyset);
        let good = Message::MintQuoteRequest(request.clone())
            .to_frame()
            .unwrap();
        let mut bad_key = good.payload().to_vec();
        bad_key[4 + 8 + 5 + 32 + 1 + 1] = 0x09;
        let mut zero = good.payload().to_vec();
        zero[4..12].fill(0);
        for payload in [&good.payload()[..10], &bad_key[..], &zero[..]] {
            let frame = Frame::new(
                EXTENSION_TYPE_MINT_QUOTE,
                false,
                mint_quote::MINT_QUOTE_REQUEST,
                payload,
            )
            .unwrap();
            pool.writer.write_frame(&frame).await.unwrap();
        }
        let mut sat = request.clone();
        sat.unit = Unit::new("sat").unwrap();
        pool.writer
            .write_frame(&Message::MintQuoteRequest(sat).to_frame().unwrap())
            .await
            .unwrap();
        pool.writer.flush().await.unwrap();
        let mut codes = Vec::new();
        for _ in 0..4 {
            if let Message::MintQuoteError(e) = pool.next().await {
                codes.push(e.error_code);
            }
        }
        codes.sort_by_key(|c| c.to_u32());
        assert_eq!(
            codes,
            vec![
                ErrorCode::MalformedRequest,
                ErrorCode::UnknownUnit,
                ErrorCode::InvalidAmount,
                ErrorCode::InvalidLockingKey
            ],
            "round {round}"
        );
        // A 16 MiB length field on another connection: closed.
        conn.send_16mib_frame().await;
        assert!(
            conn.is_closed().await,
            "oversized frame closes its connection"
        );

        // A thousand connections at once from the stranger: the per-source
        // limits reset most of them at once.
        let mut flood = Vec::new();
        for _ in 0..1000 {
            if let Ok(stream) = harness::net::connect_from(stranger, mint_addr).await {
                flood.push(stream);
            }
        }
        healthy(client.clone(), keyset.clone()).await;
        drop(flood);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    healthy(client.clone(), keyset.clone()).await;
    let rss_after = mint.rss_kib().unwrap();
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    // What strangers did is counted, not logged line by line.
    let scrape = mint.scrape().await;
    let refused = harness::http::sample(
        &scrape,
        "mint_quote_connections_refused_total{listener=\"sv2\",reason=\"source-limit\"}",
    ) + harness::http::sample(
        &scrape,
        "mint_quote_connections_refused_total{listener=\"sv2\",reason=\"rate-limited\"}",
    );
    assert!(refused >= 2900.0, "floods refused: {refused}\n{scrape}");
    assert!(
        harness::http::sample(
            &scrape,
            "mint_quote_unauthenticated_closed_total{reason=\"setup-failed\"}"
        ) >= 3.0,
        "16 MiB frames end their connections: {scrape}"
    );
    // What an authenticated pool does wrong is logged.
    for reason in ["refused a malformed request", "ignoring a frame"] {
        assert!(
            mint.wait_for_log(reason, harness::TIMEOUT),
            "the mint did not log {reason:?}; tail:\n{}",
            mint.log_tail(30)
        );
    }
    eprintln!(
        "mint RSS {rss_before} KiB before, {rss_after} KiB after three rounds of hostile input"
    );
    assert!(matches!(
        client.request_quote(&share(&keyset, 3)).await,
        Ok(_) | Err(QuoteError::Rejected { .. })
    ));
}
