//! Crash-only workers: when a worker of the mint dies, the process exits
//! non-zero with the cause in its log, instead of staying up half-alive.
//! Each worker is made to panic through a fault point (the `fail` crate;
//! `FAILPOINTS=name=panic`, compiled in only for these tests).

use std::time::Duration;

use integration_tests as harness;
use integration_tests::{MintProcess, MintProcessConfig};
use mint_quote_proto::Message;

fn mint_with_fault(dir: &std::path::Path, fault: &str) -> MintProcess {
    let mut config = MintProcessConfig::new(dir);
    config
        .env
        .push(("FAILPOINTS".into(), format!("{fault}=panic")));
    MintProcess::start(config)
}

fn assert_died_of(mint: &mut MintProcess, cause: &str) {
    let status = mint.wait_exit(Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "the mint kept running (was mint-server built with the `failpoints` feature? \
                 `cargo test --workspace` builds it so); log:\n{}",
            mint.log_tail(30)
        )
    });
    assert!(!status.success(), "exit status {status}");
    let log = mint.log();
    assert!(
        log.contains(cause) && log.contains("a worker of the mint died"),
        "the cause is not in the log:\n{}",
        mint.log_tail(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_quote_writer_stops_the_mint_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = mint_with_fault(dir.path(), "quote-writer");
    let (mut conn, keyset) = harness::Conn::ready_at(&mint.sv2_address()).await;
    conn.send(&Message::MintQuoteRequest(harness::request(
        1,
        5,
        &keyset.keyset_id,
    )))
    .await;
    assert_died_of(&mut mint, "the quote writer panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_listener_stops_the_mint_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // The listener panics on the first connection after start (the
    // harness's own readiness probe).
    let mut mint = mint_with_fault(dir.path(), "sv2-listener");
    assert_died_of(&mut mint, "the Sv2 listener panicked");
}
