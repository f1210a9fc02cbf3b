//! Several mints consuming one Redis list: what a mint that died for good
//! held in processing is put back by a live one once its lease has
//! expired, and mints sharing a list (and a database) make one quote per
//! share between them.

use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests as harness;
use integration_tests::{MintProcess, MintProcessConfig, RedisServer};
use redis::Commands;

/// A short lease, so that the test sees a dead mint's entries come back.
const LEASE_MS: u64 = 1_000;

fn consumer(dir: &Path, redis: &RedisServer, postgres_url: Option<String>) -> MintProcessConfig {
    let mut config = MintProcessConfig::new(dir);
    config.redis_url = Some(redis.url());
    config
        .mint_overrides
        .push(("redis_consumer", format!("lease_ms = {LEASE_MS}")));
    if postgres_url.is_some() {
        config.postgres_url = postgres_url;
    }
    config
}

fn keyset(redis: &RedisServer) -> mint_quote_proto::KeysetId {
    let mut con = redis.connection();
    let deadline = Instant::now() + harness::TIMEOUT;
    loop {
        let json: Option<String> = con.get("mint:keyset:active").unwrap();
        if let Some(json) = json {
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            return value["id"].as_str().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no keyset published");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(what: &str, mint: &MintProcess, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}; log:\n{}",
            mint.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_mint_that_died_holding_entries_is_relieved_once_its_lease_expires() {
    let redis = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A takes a batch onto its processing list and hangs there, before
    // making any quote.
    let mut a_config = consumer(dir_a.path(), &redis, None);
    a_config
        .env
        .push(("FAILPOINTS".into(), "redis-consumer=sleep(600000)".into()));
    let mut a = MintProcess::start(a_config);
    let keyset = keyset(&redis);
    let mut con = redis.connection();
    let count = 50u64;
    for i in 0..count {
        harness::push_request(&mut con, &harness::request(0, 1 + i, &keyset));
    }
    let a_processing = harness::redis_server::processing_list(dir_a.path());
    wait_for("A took entries", &a, || {
        con.llen::<_, u64>(&a_processing).unwrap() > 0
    });
    // A hangs on its first batch, settling nothing; once it is dead what
    // it holds stays put.
    a.kill();
    let held: u64 = con.llen(&a_processing).unwrap();

    // B, on the same database when the tests run on PostgreSQL (there A
    // and B are two machines of one deployment), never saw those entries.
    let b_config = consumer(dir_b.path(), &redis, a.config().postgres_url.clone());
    std::fs::copy(dir_a.path().join("seed.hex"), dir_b.path().join("seed.hex")).unwrap();
    let b = MintProcess::start(b_config);
    wait_for("B made A's quotes", &b, || {
        b.database().count("SELECT COUNT(*) FROM mint_quote") == count
    });
    assert_eq!(con.llen::<_, u64>(&a_processing).unwrap(), 0);
    let registry: Vec<String> = con.smembers("mint:quotes:create:consumers").unwrap();
    let a_name = a_processing.rsplit(':').next().unwrap().to_owned();
    assert!(
        !registry.contains(&a_name),
        "{a_name} still listed: {registry:?}; B's log:\n{}",
        b.log_tail(30)
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let requeued = harness::http::sample(
        &runtime.block_on(b.scrape()),
        "mint_quote_redis_requeued_total",
    );
    assert_eq!(
        requeued, held as f64,
        "what A held, and only that, came back"
    );
    assert!(
        b.log()
            .contains("re-queued what a redis consumer whose lease expired left"),
        "{}",
        b.log_tail(20)
    );
}

#[test]
fn mints_sharing_a_list_and_a_database_make_one_quote_per_share() {
    let Some(server) = harness::postgres::server_or_skip(
        "mints_sharing_a_list_and_a_database_make_one_quote_per_share",
    ) else {
        return;
    };
    let redis = RedisServer::start();
    let url = harness::postgres::create_database(&server);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = MintProcess::start(consumer(dir_a.path(), &redis, Some(url.clone())));
    let keyset = keyset(&redis);
    std::fs::copy(dir_a.path().join("seed.hex"), dir_b.path().join("seed.hex")).unwrap();
    let b = MintProcess::start(consumer(dir_b.path(), &redis, Some(url)));

    // Every share pushed twice, as a pool that retried its RPUSH would:
    // the copies may land on different mints.
    let mut con = redis.connection();
    let count = 3_000u64;
    let requests: Vec<_> = (0..count)
        .map(|i| harness::request(0, 1 + i, &keyset))
        .collect();
    for request in requests.iter().chain(&requests) {
        harness::push_request(&mut con, request);
    }
    wait_for("every share quoted", &a, || {
        con.llen::<_, u64>("mint:quotes:create").unwrap() == 0
            && a.database().count("SELECT COUNT(*) FROM mint_quote") == count
    });
    let db = a.database();
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM (SELECT request FROM mint_quote GROUP BY request HAVING COUNT(*) > 1) AS doubled"
        ),
        0,
        "no share has two quotes"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (name, mint) in [("A", &a), ("B", &b)] {
        let scrape = runtime.block_on(mint.scrape());
        let made =
            harness::http::sample(&scrape, "mint_quote_quotes_created_total{path=\"redis\"}")
                + harness::http::sample(
                    &scrape,
                    "mint_quote_quotes_repeated_total{path=\"redis\"}",
                );
        assert!(made > 0.0, "mint {name} served nothing from the list");
    }
}
