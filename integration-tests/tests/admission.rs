//! Admission under attack, against the real `mint-server` binary, with the
//! attacker in a process of its own (`mint-attack`) on other loopback
//! addresses, as a stranger on another machine would be:
//!
//! - 500 unauthenticated connections, reopened as soon as they are dropped
//!   (idle TCP, and stalled after the Noise handshake; from one address and
//!   spread over eight): a pool opening a fresh connection still
//!   authenticates and gets a quote, 20 times out of 20, each within 2 s;
//!   from 128 addresses too, once the mint knows the pool's address
//!   (learned from an earlier authentication, or configured);
//! - 60 connections announcing 16 MiB frames at the largest frame limit:
//!   the mint's memory stays under 100 MB and every one is closed;
//! - 1,000 idle HTTP connections neither stop a new pool connection nor
//!   stay open past the idle timeout, and a mint that ran out of file
//!   descriptors accepts again once they are freed;
//! - thousands of failed wallet requests write (almost) nothing to the log.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests as harness;
use integration_tests::attack::Mode;
use integration_tests::attack_process::AttackProcess;
use integration_tests::mint_process::open_files_of;
use integration_tests::relay::Relay;
use integration_tests::{MintProcess, MintProcessConfig};
use pool_client::Share;

const ATTACKER: &str = env!("CARGO_BIN_EXE_mint-attack");

/// One attack at a time: these are load tests, and seven attacks at once
/// on two cores would measure the machine, not the mint.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn attack(mode: Mode, target: SocketAddr, connections: usize, sources: u8) -> AttackProcess {
    AttackProcess::start(Path::new(ATTACKER), &[], mode, target, connections, sources)
}

/// A fresh pool client (a new connection, from the pool's address) and
/// the time it took to get one quote.
async fn fresh_pool_quote(mint: &MintProcess, n: u64) -> Duration {
    let started = Instant::now();
    let mut config = harness::client_config(&mint.sv2_address());
    config.request_deadline = Duration::from_secs(10);
    let client = integration_tests::start_client(config);
    let keyset = match client.wait_for_keyset(Duration::from_secs(10)).await {
        Some(keyset) => keyset.keyset_id,
        None => panic!(
            "the fresh connection did not authenticate: {:?}\nmint log:\n{}",
            client.stats(),
            mint.log_tail(15)
        ),
    };
    let share = Share::from(harness::request(0, 1 + n, &keyset));
    client
        .request_quote(&share)
        .await
        .expect("the fresh connection got a quote");
    client.shutdown();
    started.elapsed()
}

async fn pools_get_through(mode: Mode, sources: u8) {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(MintProcessConfig::new(dir.path()));
    let target: SocketAddr = mint.sv2_address().parse().unwrap();
    let attacker = attack(mode, target, 500, sources);
    // The attack is on: the mint has accepted and dropped its connections.
    let held = attacker
        .wait_for_count("closed_by_target", 100, Duration::from_secs(20))
        .await;
    assert!(held >= 100, "the attack did not get going: {held}");
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let took = fresh_pool_quote(&mint, n).await;
        assert!(
            took < Duration::from_secs(2),
            "attempt {n} under {mode:?} from {sources} source(s) took {took:?}"
        );
        slowest = slowest.max(took);
    }
    let refused = harness::http::sample(
        &mint.scrape().await,
        "mint_quote_connections_refused_total{listener=\"sv2\",reason=\"source-limit\"}",
    );
    eprintln!(
        "{mode:?} from {sources} source(s): 20 of 20 fresh pools quoted, slowest {slowest:?}; \
         attacker {}; refused at the source limit: {refused}",
        attacker.count("connected")
    );
    assert!(
        mint.log().lines().count() < 200,
        "no log line per attacking connection:\n{}",
        mint.log_tail(20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_do_not_lock_pools_out() {
    let _turn = ONE_AT_A_TIME.lock().await;
    pools_get_through(Mode::Idle, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_eight_addresses_do_not_lock_pools_out() {
    let _turn = ONE_AT_A_TIME.lock().await;
    pools_get_through(Mode::Idle, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_from_one_address_do_not_lock_pools_out() {
    let _turn = ONE_AT_A_TIME.lock().await;
    pools_get_through(Mode::NoiseStall, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_from_eight_addresses_do_not_lock_pools_out() {
    let _turn = ONE_AT_A_TIME.lock().await;
    pools_get_through(Mode::NoiseStall, 8).await;
}

/// How the mint knows the pool's address before the attack.
#[derive(Debug, Clone, Copy)]
enum Trust {
    /// The pool authenticated from it once, before the attack.
    Learned,
    /// It is in `listener.pool_networks`.
    Configured,
}

/// Idle connections from 128 addresses turn a small unauthenticated
/// budget over thousands of times a second; a pool whose address the
/// mint knows is never displaced: every single attempt, with no retry,
/// authenticates, though it comes from across a WAN (50 ms each way, so
/// its setup takes half a second).
async fn a_known_pool_is_never_displaced(trust: Trust) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = MintProcessConfig::new(dir.path());
    for line in [
        "max_unauthenticated = 4",
        "connection_rate_per_source = 1000",
        "connection_burst_per_source = 1000",
    ] {
        config.mint_overrides.push(("listener", line.into()));
    }
    if let Trust::Configured = trust {
        config
            .mint_overrides
            .push(("listener", "pool_networks = [\"127.0.0.1/32\"]".into()));
    }
    let mint = MintProcess::start(config);
    if let Trust::Learned = trust {
        fresh_pool_quote(&mint, 0).await;
    }
    let target: SocketAddr = mint.sv2_address().parse().unwrap();
    let attacker = attack(Mode::Idle, target, 500, 128);
    let displaced = attacker
        .wait_for_count("closed_by_target", 1000, Duration::from_secs(20))
        .await;
    assert!(
        displaced >= 1000,
        "the attack did not get going: {displaced}"
    );
    let wan = Relay::start(target).await;
    wan.set_delay(Duration::from_millis(50));
    let address = wan.addr().to_string();
    for n in 0..20 {
        if let Err(e) = harness::Conn::try_ready_at(&address).await {
            panic!(
                "attempt {n} of a known pool ({trust:?}) failed: {e}; \
                 attacker connections {}",
                attacker.count("connected")
            );
        }
    }
    eprintln!(
        "known pool ({trust:?}): 20 of 20 single attempts authenticated across 50 ms; \
         attacker connections {}",
        attacker.count("connected")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_128_addresses_do_not_displace_a_known_pool() {
    let _turn = ONE_AT_A_TIME.lock().await;
    a_known_pool_is_never_displaced(Trust::Learned).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_128_addresses_do_not_displace_a_configured_pool_network() {
    let _turn = ONE_AT_A_TIME.lock().await;
    a_known_pool_is_never_displaced(Trust::Configured).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_16_mib_frames_at_the_largest_limit_stay_under_100_mb() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = MintProcessConfig::new(dir.path());
    config
        .shared_overrides
        .push(("sv2_messaging", "max_payload_len = 65519".into()));
    // Room for all 60 at once, so the frame limit (not admission) is what
    // each of them meets.
    config
        .mint_overrides
        .push(("listener", "max_unauthenticated = 64".into()));
    let mint = MintProcess::start(config);
    let before = mint.rss_kib().unwrap();
    let target: SocketAddr = mint.sv2_address().parse().unwrap();
    let attacker = attack(Mode::BigFrame, target, 60, 15);
    let mut peak = before;
    let deadline = Instant::now() + Duration::from_secs(60);
    while attacker.count("closed_by_target") < 60 && Instant::now() < deadline {
        peak = peak.max(mint.rss_kib().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peak = peak.max(mint.rss_kib().unwrap());
    assert_eq!(
        attacker.count("closed_by_target"),
        60,
        "every connection is closed (handshakes {})",
        attacker.count("handshakes")
    );
    assert_eq!(attacker.count("handshakes"), 60);
    eprintln!("60 x 16 MiB frames: mint RSS {before} KiB before, peak {peak} KiB");
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    // The connections ended at the frame limit, in setup.
    harness::http::wait_for_sample(
        mint.metrics_address(),
        "mint_quote_unauthenticated_closed_total{reason=\"setup-failed\"}",
        |v| v >= 60.0,
    )
    .await;
    // And the mint still serves a pool.
    fresh_pool_quote(&mint, 1).await;
}

/// Waits until `attacker` reports every one of its `n` connections ended
/// by the mint (reset at once, or closed later), and returns how long
/// that took.
async fn all_closed(attacker: &AttackProcess, n: u64, within: Duration) -> Duration {
    let started = Instant::now();
    let ended = attacker.wait_for_ended(n, within).await;
    assert_eq!(
        ended, n,
        "idle HTTP connections still open after {within:?}"
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_http_connections_neither_stop_pools_nor_stay() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = MintProcessConfig::new(dir.path());
    config
        .mint_overrides
        .push(("http", "idle_timeout_ms = 3000".into()));
    config
        .mint_overrides
        .push(("http", "header_read_timeout_ms = 3000".into()));
    let mint = MintProcess::start(config);
    // From 16 addresses: each stays under the per-source cap (64).
    let attacker = attack(Mode::HttpIdle, mint.http_address(), 1000, 16);
    // The HTTP cap (512) resets the rest at once.
    attacker
        .wait_for_count("connected", 512, Duration::from_secs(20))
        .await;
    // A pool is not stopped.
    let took = fresh_pool_quote(&mint, 1).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    // And none stays past the timeout (3 s, plus the once-a-second report).
    let waited = all_closed(&attacker, 1000, Duration::from_secs(10)).await;
    eprintln!(
        "1,000 idle HTTP connections: a pool quoted in {took:?}; all closed within {waited:?}"
    );
    let scrape = mint.scrape().await;
    assert!(
        harness::http::sample(
            &scrape,
            "mint_quote_connections_refused_total{listener=\"http\",reason=\"connection-limit\"}"
        ) >= 400.0,
        "{scrape}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_wallet_requests_do_not_fill_the_log() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(MintProcessConfig::new(dir.path()));
    let http = mint.http_address();
    let lines_before = mint.log().lines().count();
    // CDK logs each of these at ERROR: a keyset that does not exist, and
    // a quote that does not exist.
    for n in 0..500u32 {
        let path = if n % 2 == 0 {
            format!("/v1/keys/00{n:014x}")
        } else {
            format!("/v1/mint/quote/mining_share/{n}")
        };
        let (status, _) = harness::http::request(http, "GET", &path, "").await;
        assert!(!status.contains("200"), "{path}: {status}");
    }
    let grown = mint.log().lines().count() - lines_before;
    assert!(
        grown < 10,
        "500 failed wallet requests wrote {grown} log lines:\n{}",
        mint.log_tail(10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mint_accepts_again_after_running_out_of_file_descriptors() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = MintProcessConfig::new(dir.path());
    // Caps above the open-file limit, so descriptors (not the caps) run
    // out: the mint warns about this configuration at start.
    config.open_files = Some(256);
    config
        .mint_overrides
        .push(("http", "max_connections = 2000".into()));
    config
        .mint_overrides
        .push(("http", "idle_timeout_ms = 3000".into()));
    config
        .mint_overrides
        .push(("http", "header_read_timeout_ms = 3000".into()));
    let mint = MintProcess::start(config);
    assert!(
        mint.wait_for_log("open-file limit is below", harness::TIMEOUT),
        "{}",
        mint.log_tail(20)
    );
    let pid = mint.pid().unwrap();
    // From 16 addresses: each stays under the per-source cap (64).
    let attacker = attack(Mode::HttpIdle, mint.http_address(), 1000, 16);
    // Descriptors run out: the process holds (nearly) all it may.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut peak = 0;
    while Instant::now() < deadline {
        peak = peak.max(open_files_of(pid));
        if peak >= 250 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        peak >= 250,
        "descriptors did not run out: peak {peak} of 256"
    );
    // The idle connections are dropped at their timeout (those the
    // kernel queued meanwhile are accepted and dropped in turn), and the
    // descriptors come back. Connections the kernel gave up queueing while
    // the process was full never reach the mint; they hold nothing here.
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_files_of(pid) > 64 {
        assert!(
            Instant::now() < deadline,
            "descriptors still held: {}",
            open_files_of(pid)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The accept loops, which failed meanwhile, serve again: a pool
    // connects and quotes, HTTP answers.
    let took = fresh_pool_quote(&mint, 2).await;
    let (status, _) = harness::http::request(mint.http_address(), "GET", "/v1/info", "").await;
    assert!(status.contains("200"), "{status}");
    let scrape = mint.scrape().await;
    assert!(
        harness::http::sample(&scrape, "mint_quote_accept_errors_total{listener=\"http\"}") >= 1.0,
        "accepts failed while descriptors were out: {scrape}"
    );
    eprintln!(
        "out of descriptors (peak {peak} of 256), then a pool quoted in {took:?}; attacker {}",
        attacker.count("connected")
    );
}
