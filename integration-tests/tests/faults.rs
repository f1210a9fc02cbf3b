//! Production faults on the pool-mint link, inflicted on real processes
//! over real sockets: the `mint-server` binary, the `pool-sim` pool (the
//! real client with its durable outbox, journaling what it learns), a TCP
//! relay between them that delays, blackholes or cuts, and a real
//! `redis-server`. Every test ends with the share audit of
//! `integration_tests::journal`: each share handed to the client has
//! exactly one quote known to the pool or a definite refusal, no share has
//! two quotes, and the database holds no quote the pool never heard of.
//!
//! Liveness settings are short here (keepalive 500 ms, dead after 1.5 s)
//! so that the bounds show in seconds; the shipped defaults are 5 s and
//! 15 s.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests as harness;
use integration_tests::journal::{Event, Ledger};
use integration_tests::pool_sim_process::{PoolSimConfig, PoolSimProcess};
use integration_tests::relay::Relay;
use integration_tests::{MintProcess, MintProcessConfig, RedisServer};
use mint_quote_config::RedisConfig;
use pool_client::{RedisPusher, Share};

const POOL_SIM: &str = env!("CARGO_BIN_EXE_pool-sim");
/// The client's and the mint's keepalive timeout in these tests.
const DEAD_AFTER: Duration = Duration::from_millis(1_500);
/// The simulator's longest reconnect delay.
const RECONNECT_MAX: Duration = Duration::from_millis(500);

/// A mint with the short liveness settings of these tests.
fn mint_config(dir: &Path) -> MintProcessConfig {
    let mut config = MintProcessConfig::new(dir);
    config.shared_overrides = vec![
        ("sv2_messaging", "keepalive_interval_ms = 500".into()),
        (
            "sv2_messaging",
            format!("keepalive_timeout_ms = {}", DEAD_AFTER.as_millis()),
        ),
    ];
    config
}

/// A simulated pool in `dir` sending `shares` shares to `mint`.
fn pool(dir: &Path, mint: &str, shares: u64) -> PoolSimConfig {
    PoolSimConfig::new(POOL_SIM, &dir.join("pool"), mint)
        .arg("shares", shares)
        .arg("keepalive-timeout-ms", DEAD_AFTER.as_millis())
        .arg("reconnect-max-ms", RECONNECT_MAX.as_millis())
}

/// The audit that ends every pool test; also returns the ledger.
fn audit(pool: &PoolSimProcess, mint: &MintProcess, handed: usize) -> Ledger {
    let ledger = pool.ledger();
    let rows = mint.database().quote_rows();
    let context = format!(
        "pool output:\n{}\nmint log:\n{}",
        pool.output(),
        mint.log_tail(20)
    );
    let audit = ledger.audit(&rows);
    audit.assert_clean(&context);
    assert_eq!(
        ledger.handed(),
        handed,
        "every share was handed: {audit:?}\n{context}"
    );
    ledger
}

fn shares_pending_at_some_point(ledger: &Ledger) -> usize {
    ledger
        .shares
        .values()
        .filter(|events| events.contains(&Event::Pending))
        .count()
}

fn signal(mint: &MintProcess, signal: libc::c_int) {
    let pid = mint.pid().expect("the mint runs") as libc::pid_t;
    // SAFETY: kill(2) with a valid signal number on our own child.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

#[test]
fn a_mint_killed_three_times_mid_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = MintProcess::start(mint_config(dir.path()));
    let shares = 6_000;
    let mut pool = PoolSimProcess::start(pool(dir.path(), &mint.sv2_address(), shares));
    for settled in [1_000, 2_500, 4_000] {
        pool.wait_settled(settled, Duration::from_secs(60));
        mint.kill();
        std::thread::sleep(Duration::from_millis(300));
        mint.restart();
    }
    pool.expect_done(Duration::from_secs(120), &mint.log_tail(20));
    audit(&pool, &mint, shares as usize);
}

#[test]
fn a_mint_stopped_past_the_request_deadline_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(mint_config(dir.path()));
    let shares = 3_000;
    let mut pool = PoolSimProcess::start(
        pool(dir.path(), &mint.sv2_address(), shares)
            .arg("deadline-ms", 1_000)
            .arg("rate", 500),
    );
    pool.wait_settled(500, Duration::from_secs(60));
    signal(&mint, libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(4));
    signal(&mint, libc::SIGCONT);
    pool.expect_done(Duration::from_secs(120), &mint.log_tail(20));
    let ledger = audit(&pool, &mint, shares as usize);
    // The stop outlasted the deadline: calls said "pending", and their
    // quotes came later, through next_settled.
    assert!(
        shares_pending_at_some_point(&ledger) > 0,
        "no call outlived its deadline: the fault missed"
    );
}

#[test]
fn a_blackholed_connection_is_replaced_within_the_liveness_bound() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(mint_config(dir.path()));
    let target = mint.sv2_address().parse().unwrap();
    let relay = runtime.block_on(Relay::start(target));
    let shares = 4_000;
    let mut pool =
        PoolSimProcess::start(pool(dir.path(), &relay.addr().to_string(), shares).arg("rate", 500));
    pool.wait_settled(1_000, Duration::from_secs(60));
    // Nothing moves on the pool's connection from now on, and neither end
    // is told: no FIN, no RST.
    let before = pool.ledger().settled();
    let blackholed = Instant::now();
    relay.blackhole_existing();
    // Quotes flow again once the pool has declared the connection dead
    // and opened another through the relay (which forwards new ones).
    pool.wait_settled(before + 200, Duration::from_secs(30));
    let stalled = blackholed.elapsed();
    let bound = DEAD_AFTER + RECONNECT_MAX + Duration::from_secs(2);
    assert!(
        stalled < bound,
        "quotes stalled {stalled:?}, over the liveness bound plus backoff ({bound:?})"
    );
    pool.expect_done(Duration::from_secs(60), &mint.log_tail(20));
    audit(&pool, &mint, shares as usize);
    assert!(
        pool.output().contains("dead_connections: 1"),
        "the client counted the dead connection: {}",
        pool.output()
    );
}

#[test]
fn vanished_pools_free_their_slots_within_the_liveness_bound() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = mint_config(dir.path());
    config.mint_overrides.extend([
        ("listener", "max_connections = 16".to_owned()),
        ("listener", "max_connections_per_pool = 16".to_owned()),
    ]);
    let mint = MintProcess::start(config);
    let relay = runtime.block_on(Relay::start(mint.sv2_address().parse().unwrap()));
    runtime.block_on(async {
        // Sixteen pools take every slot through the relay, then vanish in
        // a network cut: their sockets stay open, nothing moves.
        let mut vanished = Vec::new();
        for i in 0..16 {
            match harness::Conn::try_ready_at(&relay.addr().to_string()).await {
                Ok(conn) => vanished.push(conn),
                Err(e) => panic!("pool {i}: {e}; log:\n{}", mint.log_tail(10)),
            }
        }
        relay.blackhole_existing();
        let gone = Instant::now();
        let refused = harness::Conn::try_ready_at(&mint.sv2_address()).await;
        assert!(refused.is_err(), "the mint is full while they hold slots");
        // The mint declares every one of them dead and frees its slot.
        let freed = loop {
            let metrics = mint.scrape().await;
            if metrics.contains("mint_quote_sessions_ended_total{reason=\"idle\"} 16")
                && metrics.contains("mint_quote_connections_open{stage=\"authenticated\"} 0")
            {
                break gone.elapsed();
            }
            assert!(
                gone.elapsed() < Duration::from_secs(20),
                "slots still held; metrics:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let bound = DEAD_AFTER + Duration::from_secs(2);
        assert!(
            freed < bound,
            "slots freed after {freed:?}, bound {bound:?}"
        );
        // And a new pool gets in.
        let fresh = harness::Conn::try_ready_at(&mint.sv2_address()).await;
        assert!(fresh.is_ok(), "{:?}", fresh.err());
        drop(vanished);
    });
}

#[test]
fn a_thirty_second_cut_loses_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(mint_config(dir.path()));
    let relay = runtime.block_on(Relay::start(mint.sv2_address().parse().unwrap()));
    let shares = 4_000;
    let mut pool = PoolSimProcess::start(
        pool(dir.path(), &relay.addr().to_string(), shares)
            .arg("rate", 100)
            .arg("concurrency", 256)
            .arg("deadline-ms", 1_000),
    );
    pool.wait_settled(500, Duration::from_secs(60));
    relay.cut();
    std::thread::sleep(Duration::from_secs(30));
    relay.heal();
    pool.expect_done(Duration::from_secs(120), &mint.log_tail(20));
    let ledger = audit(&pool, &mint, shares as usize);
    assert!(
        shares_pending_at_some_point(&ledger) >= 1_500,
        "the cut held back shares for 30 s"
    );
}

#[test]
fn a_pool_killed_while_the_mint_is_down_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = MintProcess::start(mint_config(dir.path()));
    let shares = 3_000;
    let mut pool = PoolSimProcess::start(
        pool(dir.path(), &mint.sv2_address(), shares)
            .arg("rate", 500)
            .arg("deadline-ms", 500),
    );
    pool.wait_settled(800, Duration::from_secs(60));
    mint.kill();
    // The pool goes on handing shares to a dead mint: they are pending,
    // held in its outbox only. (Counted as unsettled, not as "pending at
    // some point": on a slow database a share can be pending for a moment
    // before the kill and still get its quote.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.ledger().unsettled().len() < 300 {
        assert!(Instant::now() < deadline, "{}", pool.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    pool.kill();
    let stranded = pool.ledger().unsettled();
    assert!(stranded.len() >= 300, "{} stranded", stranded.len());

    // Both come back. The pool hands only the shares it had not handed;
    // the ones it had come back from its outbox.
    mint.restart();
    pool.restart();
    pool.expect_done(Duration::from_secs(120), &mint.log_tail(20));
    let ledger = audit(&pool, &mint, shares as usize);
    for share in &stranded {
        assert!(
            ledger.shares[share]
                .iter()
                .any(|e| matches!(e, Event::Quote(_) | Event::Refused(_))),
            "{share} was in the outbox when the pool died and never settled"
        );
    }
}

#[test]
fn a_busy_mint_stops_gracefully_long_before_its_grace_period_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = MintProcess::start(mint_config(dir.path()));
    let shares = 6_000;
    let mut pool = PoolSimProcess::start(pool(dir.path(), &mint.sv2_address(), shares));
    pool.wait_settled(1_000, Duration::from_secs(60));
    // Grace period: the example's 10 s. Requests in flight are answered,
    // new ones get shutting-down and the pool takes them elsewhere (here:
    // to the same mint once it is back).
    let asked = Instant::now();
    let status = mint.terminate(Duration::from_secs(15));
    let took = asked.elapsed();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        took < Duration::from_secs(3),
        "a busy mint took {took:?} to stop (grace period 10 s)\n{}",
        mint.log_tail(20)
    );
    mint.restart();
    pool.expect_done(Duration::from_secs(120), &mint.log_tail(20));
    audit(&pool, &mint, shares as usize);
}

#[test]
fn a_dead_link_task_fails_every_call_and_a_restart_recovers_its_shares() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(mint_config(dir.path()));
    let shares = 2_000;
    let mut config = pool(dir.path(), &mint.sv2_address(), shares).arg("rate", 500);
    // The link task panics after a few hundred turns of its loop.
    config.env = vec![("FAILPOINTS".into(), "pool-link=300*off->panic".into())];
    let mut pool = PoolSimProcess::start(config.clone());
    let status = pool.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(i32::from(integration_tests::pool_sim::EXIT_CLIENT_FAILED)),
        "{}",
        pool.output()
    );
    let ledger = pool.ledger();
    assert!(
        ledger
            .shares
            .values()
            .flatten()
            .any(|e| matches!(e, Event::NotTaken(reason) if reason.contains("failed"))),
        "calls after the failure are refused with the cause: {}",
        pool.output()
    );
    assert!(pool.output().contains("failed: Some("), "{}", pool.output());

    // The pool restarts its client: what the dead one held is sent again,
    // and the shares it did not take are handed now.
    let mut again = PoolSimProcess::start(PoolSimConfig {
        env: Vec::new(),
        ..config
    });
    again.expect_done(Duration::from_secs(120), &mint.log_tail(20));
    let ledger = again.ledger();
    let rows = mint.database().quote_rows();
    ledger.audit(&rows).assert_clean(&again.output());
    assert!(ledger.settled() >= shares as usize);
}

#[test]
fn two_mints_started_at_once_on_one_data_directory_make_one() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let start = |name: &str| {
            let mut config = MintProcessConfig::new(&dir.path().join(name));
            std::fs::create_dir_all(&config.dir).unwrap();
            config.mint_overrides.push((
                "mint",
                format!("data_dir = {:?}", data.display().to_string()),
            ));
            // On PostgreSQL, the database of the shared directory too.
            config.postgres_url = harness::postgres::database_for(&data);
            config
        };
        let (a, b) = (start("a"), start("b"));
        let mut mints = [MintProcess::spawn(a), MintProcess::spawn(b)];
        // One serves; the other stops, naming the holder.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut exited = Vec::new();
        let (winner, loser) = loop {
            for (i, mint) in mints.iter_mut().enumerate() {
                if let Some(status) = mint.wait_exit(Duration::ZERO) {
                    assert!(!status.success(), "round {round}: mint {i} exited 0");
                    exited.push(i);
                }
            }
            if exited.len() == 1 && mints[1 - exited[0]].is_listening() {
                break (1 - exited[0], exited[0]);
            }
            assert!(
                exited.len() < 2 && Instant::now() < deadline,
                "round {round}: exited {exited:?}; logs:\n{}\n---\n{}",
                mints[0].log_tail(10),
                mints[1].log_tail(10)
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let holder = format!("PID {}", mints[winner].pid().unwrap());
        assert!(
            mints[loser].log().contains("in use by another mint")
                && mints[loser].log().contains(&holder),
            "round {round}: {}",
            mints[loser]
                .log()
                .lines()
                .take_while(|l| !l.starts_with("Stack backtrace"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let keysets = harness::MintDb::of_dir(&data).count("SELECT COUNT(*) FROM keyset");
        assert_eq!(keysets, 1, "round {round}: one keyset");
    }
}

/// Pushes every share until Redis acknowledges it, as a pool does;
/// records what it tried and what was acknowledged.
async fn push_all(
    pusher: Arc<RedisPusher>,
    shares: Vec<Share>,
    tried: Arc<Mutex<HashSet<String>>>,
    acknowledged: Arc<Mutex<HashSet<String>>>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in shares.chunks(shares.len().div_ceil(16)) {
        let chunk = chunk.to_vec();
        let (pusher, tried, acknowledged) = (pusher.clone(), tried.clone(), acknowledged.clone());
        tasks.spawn(async move {
            for share in chunk {
                let hash = share.header_hash.to_hex();
                loop {
                    tried.lock().unwrap().insert(hash.clone());
                    if pusher.push(&share).await.is_ok() {
                        acknowledged.lock().unwrap().insert(hash.clone());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[test]
fn redis_killed_with_persistence_on_loses_no_acknowledged_push() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let port = harness::mint_process::free_port();
    let mut redis = RedisServer::start_durable(port, &redis_dir);
    let mut config = mint_config(&dir.path().join("mint"));
    std::fs::create_dir_all(&config.dir).unwrap();
    config.redis_url = Some(redis.url());
    let mint = MintProcess::start(config);
    assert!(
        mint.wait_for_log("redis keeps every acknowledged push", harness::TIMEOUT),
        "the mint finds Redis durable: {}",
        mint.log_tail(10)
    );

    let pusher = Arc::new(
        RedisPusher::new(
            RedisConfig {
                enabled: true,
                url: redis.url(),
                ..RedisConfig::default()
            },
            Duration::from_millis(500),
        )
        .unwrap(),
    );
    let keyset = runtime.block_on(async {
        let deadline = Instant::now() + harness::TIMEOUT;
        loop {
            if let Ok(Some(keyset)) = pusher.active_keyset_id().await {
                break keyset;
            }
            assert!(Instant::now() < deadline, "{}", mint.log_tail(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let count = 4_000;
    let shares: Vec<Share> = (0..count)
        .map(|i| Share::from(harness::request(0, 1 + i % 100, &keyset)))
        .collect();
    let tried = Arc::new(Mutex::new(HashSet::new()));
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let pushing = runtime.spawn(push_all(
        pusher,
        shares,
        tried.clone(),
        acknowledged.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 1_000 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    redis.stop(); // SIGKILL
    std::thread::sleep(Duration::from_millis(500));
    let _redis = RedisServer::start_durable(port, &redis_dir);
    runtime.block_on(pushing).unwrap();

    // Every acknowledged push becomes one quote.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = mint.database().quote_rows();
        let quoted: HashSet<&String> = rows.iter().map(|(share, _)| share).collect();
        let missing = acknowledged
            .lock()
            .unwrap()
            .iter()
            .filter(|s| !quoted.contains(s))
            .count();
        if missing == 0 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged pushes have no quote; log:\n{}",
            mint.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut seen = HashSet::new();
    let tried = tried.lock().unwrap();
    for (share, id) in &rows {
        assert!(seen.insert(share), "share {share} has two quotes");
        assert!(tried.contains(share), "quote {id} for a share never pushed");
    }
    assert_eq!(rows.len(), count as usize);
}

/// A mint consuming the Redis list of `redis`, and the keyset it
/// published there.
fn mint_on_redis(dir: &Path, redis: &RedisServer) -> (MintProcess, mint_quote_proto::KeysetId) {
    let mut config = mint_config(dir);
    config.redis_url = Some(redis.url());
    let mint = MintProcess::start(config);
    let mut con = redis.connection();
    let deadline = Instant::now() + harness::TIMEOUT;
    let keyset = loop {
        let json: Option<String> = redis::Commands::get(&mut con, "mint:keyset:active").unwrap();
        if let Some(json) = json {
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            break value["id"].as_str().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "{}", mint.log_tail(10));
        std::thread::sleep(Duration::from_millis(50));
    };
    (mint, keyset)
}

#[test]
fn a_redis_backlog_is_served_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let (mut mint, keyset) = mint_on_redis(dir.path(), &redis);
    // A backlog builds while the mint is down.
    mint.kill();
    let mut con = redis.connection();
    let requests: Vec<_> = (0..2_000)
        .map(|i| harness::request(0, 1 + i % 100, &keyset))
        .collect();
    for request in &requests {
        harness::push_request(&mut con, request);
    }
    let newest: String = redis::Commands::lindex(&mut con, "mint:quotes:create", -1).unwrap();
    mint.restart();
    // While the backlog drains, the newest entry stays where it is: the
    // mint takes from the other end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut samples = 0;
    loop {
        let left: usize = redis::Commands::llen(&mut con, "mint:quotes:create").unwrap();
        if left == 0 {
            break;
        }
        if left < requests.len() {
            // None: the list emptied since LLEN.
            let tail: Option<String> =
                redis::Commands::lindex(&mut con, "mint:quotes:create", -1).unwrap();
            let Some(tail) = tail else { break };
            assert_eq!(
                tail, newest,
                "the newest entry was taken first ({left} left)"
            );
            samples += 1;
        }
        assert!(Instant::now() < deadline, "{}", mint.log_tail(10));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        samples > 0,
        "the backlog drained before it could be watched"
    );
    while mint.database().quote_rows().len() < requests.len() {
        assert!(Instant::now() < deadline, "{}", mint.log_tail(10));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_passing_database_failure_never_dead_letters_a_redis_request() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let (mint, keyset) = mint_on_redis(dir.path(), &redis);
    // The quote table disappears under the running mint: every insert
    // fails (internal-error) until it is back.
    let db = mint.database();
    db.execute("ALTER TABLE mint_quote RENAME TO mint_quote_away");
    let mut con = redis.connection();
    let count = 50;
    for i in 0..count {
        harness::push_request(&mut con, &harness::request(0, 1 + i, &keyset));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + harness::TIMEOUT;
    while !runtime
        .block_on(mint.scrape())
        .contains("mint_quote_quote_errors_total{path=\"redis\",code=\"internal-error\"}")
    {
        assert!(Instant::now() < deadline, "{}", mint.log_tail(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the consumer fail a few more times, then heal the database.
    runtime.block_on(harness::http::wait_for_sample(
        mint.metrics_address(),
        "mint_quote_quote_errors_total{path=\"redis\",code=\"internal-error\"}",
        |failed| failed >= 3.0,
    ));
    db.execute("ALTER TABLE mint_quote_away RENAME TO mint_quote");
    let deadline = Instant::now() + Duration::from_secs(30);
    while mint.database().quote_rows().len() < count as usize {
        assert!(Instant::now() < deadline, "{}", mint.log_tail(10));
        std::thread::sleep(Duration::from_millis(100));
    }
    let dead: usize = redis::Commands::llen(&mut con, "mint:quotes:dead").unwrap();
    assert_eq!(dead, 0, "a well-formed request was dead-lettered");
    assert_eq!(mint.database().quote_rows().len(), count as usize);
}
