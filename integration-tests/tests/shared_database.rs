//! Several mints on one PostgreSQL database (docs/operations.md, "Several
//! mints"): they serve the same keyset from copies of one seed file, a
//! mint with another seed refuses to start, a share sent to two mints at
//! once gets one quote, a rotation by one is announced by the other, and
//! a quote one mint made is minted through the other's HTTP API.
//!
//! These need a PostgreSQL server (`scripts/test-postgres start`, then
//! `MINT_TEST_POSTGRES`); without one they say so and pass, except where
//! `MINT_TEST_REQUIRE_POSTGRES` is set (CI), where they fail.

use std::path::Path;
use std::time::Duration;

use integration_tests as harness;
use integration_tests::postgres;
use integration_tests::wallet::{total, MinerWallet};
use mint_quote_proto::{Message, MintQuoteRequest};
use mint_server::app::RunningMint;
use mint_server::config::DatabaseKind;

/// How often the mints of these tests read the shared keysets.
const REFRESH_MS: u64 = 200;

/// Starts a mint on `dir` whose database is `url`.
async fn mint_on(dir: &Path, url: &str) -> RunningMint {
    match mint_server::app::start(settings_on(dir, url)).await {
        Ok(mint) => mint,
        Err(e) => panic!("the mint on {} did not start: {e}", dir.display()),
    }
}

fn settings_on(dir: &Path, url: &str) -> mint_server::config::Settings {
    harness::settings(dir, |s| {
        s.mint.mint.database = DatabaseKind::Postgres;
        s.mint.postgres.url = url.to_owned();
        s.mint.postgres.keyset_refresh_ms = REFRESH_MS;
    })
}

/// Gives `to` a copy of the seed of the mint on `from`, as an operator
/// copies the seed file to a second machine.
fn copy_seed(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("seed.hex"), to.join("seed.hex")).unwrap();
}

/// Two mints on one fresh database, the second with the first's seed.
async fn two_mints(
    server: &str,
) -> (
    RunningMint,
    RunningMint,
    tempfile::TempDir,
    tempfile::TempDir,
    String,
) {
    let url = postgres::create_database(server);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = mint_on(dir_a.path(), &url).await;
    copy_seed(dir_a.path(), dir_b.path());
    let b = mint_on(dir_b.path(), &url).await;
    (a, b, dir_a, dir_b, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_sent_to_two_mints_at_once_gets_one_quote() {
    let Some(server) = postgres::server_or_skip("a_share_sent_to_two_mints_at_once_gets_one_quote")
    else {
        return;
    };
    let (a, b, _da, _db, url) = two_mints(&server).await;
    let (mut to_a, keyset_a) = harness::Conn::ready(&a).await;
    let (mut to_b, keyset_b) = harness::Conn::ready(&b).await;
    assert_eq!(
        keyset_a, keyset_b,
        "mints on one database with one seed serve one keyset"
    );

    // The same shares to both mints at once, in opposite orders, so that
    // some reach the two writers together.
    let shares = 300u32;
    let requests: Vec<MintQuoteRequest> = (1..=shares)
        .map(|id| harness::request(id, 100 + u64::from(id), &keyset_a.keyset_id))
        .collect();
    let reversed: Vec<MintQuoteRequest> = requests.iter().rev().cloned().collect();
    let (answers_a, answers_b) = tokio::join!(
        async {
            to_a.pipeline(requests.clone()).await;
            quote_ids(&mut to_a, shares).await
        },
        async {
            to_b.pipeline(reversed).await;
            quote_ids(&mut to_b, shares).await
        },
    );
    for id in 1..=shares {
        assert_eq!(
            answers_a[&id], answers_b[&id],
            "request {id}: the two mints answered different quotes"
        );
    }
    let db = harness::MintDb::Postgres(url);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM mint_quote"),
        u64::from(shares),
        "one quote per share in the database"
    );
    a.stop().await;
    b.stop().await;
}

/// The quote id of each of `n` answers, by request id; any error fails.
async fn quote_ids(conn: &mut harness::Conn, n: u32) -> std::collections::HashMap<u32, String> {
    let mut ids = std::collections::HashMap::new();
    while ids.len() < n as usize {
        match conn.next().await {
            Message::MintQuoteResponse(r) => {
                ids.insert(r.request_id, r.quote_id);
            }
            other => panic!("expected a quote, got {other:?}"),
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mint_with_another_seed_refuses_to_start_and_changes_nothing() {
    let Some(server) =
        postgres::server_or_skip("a_mint_with_another_seed_refuses_to_start_and_changes_nothing")
    else {
        return;
    };
    let url = postgres::create_database(&server);
    let dir_a = tempfile::tempdir().unwrap();
    let a = mint_on(dir_a.path(), &url).await;
    let (mut conn, before) = harness::Conn::ready(&a).await;

    let info_before = a.mint.mint_info().await.unwrap();

    // A second machine set up without copying the seed: it makes its own.
    let dir_c = tempfile::tempdir().unwrap();
    let refused = match mint_server::app::start(settings_on(dir_c.path(), &url)).await {
        Ok(_) => panic!("a mint with another seed started on the shared database"),
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("does not match its keys") && refused.contains("seed"),
        "{refused}"
    );

    // The database is as it was: one keyset, still the active one, and the
    // first mint serves on it.
    let db = harness::MintDb::Postgres(url);
    assert_eq!(db.count("SELECT COUNT(*) FROM keyset"), 1);
    assert_eq!(
        a.mint.mint_info().await.unwrap().pubkey,
        info_before.pubkey,
        "the refused mint left the public info (its key) alone"
    );
    conn.send(&Message::MintQuoteRequest(harness::request(
        1,
        64,
        &before.keyset_id,
    )))
    .await;
    assert!(matches!(conn.next().await, Message::MintQuoteResponse(_)));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_by_one_mint_is_announced_by_the_other() {
    let Some(server) = postgres::server_or_skip("a_rotation_by_one_mint_is_announced_by_the_other")
    else {
        return;
    };
    let (a, b, _da, _db, _url) = two_mints(&server).await;
    let (mut to_b, first) = harness::Conn::ready(&b).await;

    let new_id = harness::rotate_keyset(&a.mint, &first.unit).await;
    assert_ne!(new_id, first.keyset_id);

    // B reads the shared keysets every REFRESH_MS and its watcher polls
    // every second: the announcement comes within a few seconds.
    match tokio::time::timeout(Duration::from_secs(10), to_b.next()).await {
        Ok(Message::ActiveKeyset(k)) => {
            assert_eq!(k.keyset_id, new_id, "B announces A's new keyset")
        }
        Ok(other) => panic!("expected ActiveKeyset, got {other:?}"),
        Err(_) => panic!("B never announced the rotation"),
    }
    // And B makes quotes on it.
    to_b.send(&Message::MintQuoteRequest(harness::request(1, 64, &new_id)))
        .await;
    assert!(matches!(to_b.next().await, Message::MintQuoteResponse(_)));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_made_by_one_mint_is_minted_through_the_other() {
    let Some(server) =
        postgres::server_or_skip("a_quote_made_by_one_mint_is_minted_through_the_other")
    else {
        return;
    };
    let (a, b, _da, _db, _url) = two_mints(&server).await;
    let (mut to_a, keyset) = harness::Conn::ready(&a).await;
    let (secret, key) = harness::locking_key();
    let mut request = harness::request(1, 1000, &keyset.keyset_id);
    request.locking_key = key;
    to_a.send(&Message::MintQuoteRequest(request)).await;
    let quote = match to_a.next().await {
        Message::MintQuoteResponse(r) => r,
        other => panic!("expected a quote, got {other:?}"),
    };

    // The miner's wallet talks to B only.
    let through_b = MinerWallet::new(b.http_addr.expect("B serves the HTTP API"), 9).await;
    through_b.take_quote(&quote.quote_id, &secret).await;
    let proofs = through_b.mint(&quote.quote_id).await.unwrap();
    assert_eq!(
        total(&proofs),
        1000,
        "B issued the whole amount of A's quote"
    );

    // A knows it is issued: a second mint through A is refused.
    let through_a = MinerWallet::new(a.http_addr.expect("A serves the HTTP API"), 9).await;
    through_a.take_quote(&quote.quote_id, &secret).await;
    assert!(
        through_a.mint(&quote.quote_id).await.is_err(),
        "a quote issued through B cannot be minted again through A"
    );
    a.stop().await;
    b.stop().await;
}
