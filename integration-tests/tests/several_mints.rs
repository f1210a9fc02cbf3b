//! A pool with two mints: two real mints in this process, each on its own
//! SQLite database (one keyset seed, as mints that serve one pool share),
//! and one client configured with both. Shares spread over both; when one
//! mint dies or stops mid-run the other answers its shares, every share
//! ends in one quote for the pool, and the client's stats say what each
//! mint did.
//!
//! With a database per mint, a share that the dying mint had already
//! written but not answered gets a second quote from the survivor; the
//! kill test bounds those by the shares that were in flight on the dead
//! mint. On one shared PostgreSQL database, a share resent after a
//! failover gets the quote the dead mint made: its original quote.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use integration_tests as harness;
use mint_quote_proto::{AuthorityKeypair, KeysetId};
use mint_server::app::RunningMint;
use pool_client::{EndpointSnapshot, MintEndpoint, MintQuoteClient, Quote, Share};

/// Two running mints with one keyset seed (the second with a key of its
/// own) and their directories.
struct TwoMints {
    a: RunningMint,
    b: RunningMint,
    b_key: AuthorityKeypair,
    dir_a: tempfile::TempDir,
    dir_b: tempfile::TempDir,
}

async fn two_mints() -> TwoMints {
    two_mints_on(None).await
}

/// Two mints, on the PostgreSQL database `shared` if given, else each on
/// its own (the harness's) database.
async fn two_mints_on(shared: Option<String>) -> TwoMints {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on_shared = |s: &mut mint_server::config::Settings| {
        if let Some(url) = &shared {
            s.mint.mint.database = mint_server::config::DatabaseKind::Postgres;
            s.mint.postgres.url = url.clone();
        }
    };
    let a = harness::start_mint(dir_a.path(), on_shared).await;
    // The same seed: both mints serve the same keyset, so a share for it
    // is good at either.
    std::fs::copy(dir_a.path().join("seed.hex"), dir_b.path().join("seed.hex")).unwrap();
    let b_key = AuthorityKeypair::generate();
    let b = harness::start_mint(dir_b.path(), |s| {
        on_shared(s);
        s.keypair = b_key;
    })
    .await;
    TwoMints {
        a,
        b,
        b_key,
        dir_a,
        dir_b,
    }
}

/// A client of the mint at `a` (the development key) and of mint `b` at
/// its own address and key.
fn client(a: &str, mints: &TwoMints) -> Arc<MintQuoteClient> {
    let mut config = harness::client_config(a);
    config.request_deadline = Duration::from_secs(30);
    config.mints.push(MintEndpoint::new(
        mints.b.sv2_addr.unwrap().to_string(),
        mints.b_key.public(),
    ));
    Arc::new(harness::start_client(config))
}

/// Waits until `ok` holds for the client's per-mint stats.
async fn wait_for(client: &MintQuoteClient, what: &str, ok: impl Fn(&[EndpointSnapshot]) -> bool) {
    let deadline = tokio::time::Instant::now() + harness::TIMEOUT;
    loop {
        let stats = client.stats();
        if ok(&stats.endpoints) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not in time; {:?}",
            stats.endpoints
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn keyset(client: &MintQuoteClient) -> KeysetId {
    wait_for(client, "both mints connected", |e| {
        e.iter().all(|e| e.connected)
    })
    .await;
    client
        .wait_for_keyset(harness::TIMEOUT)
        .await
        .expect("the mints announce their keyset")
        .keyset_id
}

fn share(keyset: &KeysetId) -> Share {
    Share::from(harness::request(0, 1, keyset))
}

/// Shares one at a time: with nothing in flight the mints take turns.
async fn one_at_a_time(
    client: &MintQuoteClient,
    keyset: &KeysetId,
    count: usize,
) -> Vec<(Share, Quote)> {
    let mut done = Vec::new();
    for _ in 0..count {
        let share = share(keyset);
        let quote = client.request_quote(&share).await.unwrap();
        done.push((share, quote));
    }
    done
}

/// Hands `count` shares in at once.
fn many(
    client: &Arc<MintQuoteClient>,
    keyset: &KeysetId,
    count: usize,
) -> tokio::task::JoinSet<(Share, Result<Quote, pool_client::QuoteError>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (client, share) = (client.clone(), share(keyset));
        tasks.spawn(async move {
            let quote = client.request_quote(&share).await;
            (share, quote)
        });
    }
    tasks
}

async fn all_quoted(
    mut tasks: tokio::task::JoinSet<(Share, Result<Quote, pool_client::QuoteError>)>,
) -> Vec<(Share, Quote)> {
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (share, quote) = joined.unwrap();
        let quote = quote.unwrap_or_else(|e| panic!("share {}: {e}", share.header_hash));
        done.push((share, quote));
    }
    done
}

/// A mint's database: quote id by share (the `request` column holds the
/// header hash), after checking that no share has two quotes there.
fn quotes_in(dir: &Path) -> HashMap<String, String> {
    let mut quotes = HashMap::new();
    for (share, id) in harness::MintDb::of_dir(dir).quote_rows() {
        assert!(
            quotes.insert(share.clone(), id).is_none(),
            "share {share} has two quotes in {}",
            dir.display()
        );
    }
    quotes
}

/// What the pool was told, checked against both databases: every share
/// has its own quote, found in exactly one database (the one of the mint
/// that answered). Returns the shares both databases hold.
fn audit(
    told: &[(Share, Quote)],
    a: &HashMap<String, String>,
    b: &HashMap<String, String>,
) -> usize {
    let mut ids = HashSet::new();
    for (share, quote) in told {
        assert_eq!(
            quote.header_hash, share.header_hash,
            "the quote is for this share"
        );
        assert!(
            ids.insert(quote.quote_id.clone()),
            "quote {} told twice",
            quote.quote_id
        );
        let key = share.header_hash.to_string();
        let in_a = a.get(&key) == Some(&quote.quote_id);
        let in_b = b.get(&key) == Some(&quote.quote_id);
        assert!(
            in_a != in_b,
            "quote {} of share {key}: in a {in_a}, in b {in_b}",
            quote.quote_id
        );
    }
    a.keys().filter(|share| b.contains_key(*share)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mint_that_dies_mid_run_leaves_its_shares_in_flight_to_the_other() {
    let mints = two_mints().await;
    // Mint a is reached through a relay, so that the test can kill its
    // connections as a crash would, with requests on them.
    let relay = harness::relay::Relay::start(mints.a.sv2_addr.unwrap()).await;
    let client = client(&relay.addr().to_string(), &mints);
    let keyset = keyset(&client).await;

    // Both mints get shares.
    let mut told = one_at_a_time(&client, &keyset, 20).await;
    let stats = client.stats();
    assert!(
        stats.endpoints.iter().all(|e| e.answered >= 5),
        "both mints answer: {:?}",
        stats.endpoints
    );

    // Mint a's writes stall, so that shares wait on it; then it dies.
    // Its writes wait, so that shares are in flight on it when it dies.
    let lock = harness::MintDb::of_dir(mints.dir_a.path()).lock();
    let load = many(&client, &keyset, 2000);
    wait_for(&client, "shares in flight on mint a", |e| {
        e[0].in_flight >= 20
    })
    .await;
    relay.cut();
    relay.reset_all();
    // The resets land before mint a can write again.
    wait_for(&client, "mint a's connection lost", |e| !e[0].connected).await;
    drop(lock);
    let stopped = mints.a.stop().await;
    told.extend(all_quoted(load).await);
    let stats = client.stats();
    client.shutdown();
    let (a, b) = (&stats.endpoints[0], &stats.endpoints[1]);
    let context = format!("stopped {stopped}, {stats:?}");

    let (in_a, in_b) = (quotes_in(mints.dir_a.path()), quotes_in(mints.dir_b.path()));
    let in_both = audit(&told, &in_a, &in_b);
    let lost_on_a = a.sent - a.answered;
    assert!(
        lost_on_a >= 20,
        "shares were in flight on the dead mint: {context}"
    );
    // Each went to mint b: a share that mint a had written before it died
    // has a quote there too, which the pool was never told.
    assert!(
        in_both as u64 <= lost_on_a,
        "{in_both} shares in both: {context}"
    );
    assert_eq!(in_a.len() - in_both, a.answered as usize, "{context}");
    assert_eq!(in_b.len(), b.answered as usize, "{context}");
    assert!(stats.resent >= lost_on_a, "{context}");

    // The stats per mint add up to the totals and say what happened.
    assert_eq!(a.answered + b.answered, 2020, "{context}");
    assert_eq!(stats.answered, 2020, "{context}");
    assert_eq!(a.sent + b.sent, stats.sent, "{context}");
    assert!(!a.connected && b.connected, "{context}");
    assert!(
        a.last_error.is_some() && b.last_error.is_none(),
        "{context}"
    );
    assert_eq!((a.in_flight, b.in_flight), (0, 0), "{context}");
    assert_eq!(a.address, relay.addr().to_string());
    assert_eq!(b.address, mints.b.sv2_addr.unwrap().to_string());
    assert!(mints.b.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mint_stopped_mid_run_hands_its_new_shares_to_the_other_and_no_share_gets_two_quotes() {
    let mints = two_mints().await;
    let client = client(&mints.a.sv2_addr.unwrap().to_string(), &mints);
    let keyset = keyset(&client).await;

    let load = many(&client, &keyset, 2000);
    harness::wait_until_answered(&client, 200).await;
    // A graceful stop answers what mint a has read and refuses the rest
    // with `shutting-down`: those go to mint b.
    assert!(
        mints.a.stop().await,
        "mint a stopped within its grace period"
    );
    let told = all_quoted(load).await;
    let stats = client.stats();
    client.shutdown();
    let (a, b) = (&stats.endpoints[0], &stats.endpoints[1]);
    let context = format!("{stats:?}");

    let (in_a, in_b) = (quotes_in(mints.dir_a.path()), quotes_in(mints.dir_b.path()));
    assert_eq!(
        audit(&told, &in_a, &in_b),
        0,
        "no share has two quotes: {context}"
    );
    assert_eq!(in_a.len() + in_b.len(), 2000, "{context}");
    assert_eq!(
        (in_a.len(), in_b.len()),
        (a.answered as usize, b.answered as usize)
    );
    assert!(a.answered >= 1 && b.answered >= 1, "{context}");
    assert!(!a.connected && b.connected, "{context}");
    assert!(mints.b.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_database_a_share_resent_after_a_failover_gets_its_original_quote() {
    let Some(server) = harness::postgres::server_or_skip(
        "on_one_database_a_share_resent_after_a_failover_gets_its_original_quote",
    ) else {
        return;
    };
    let url = harness::postgres::create_database(&server);
    let mints = two_mints_on(Some(url.clone())).await;
    // Mint a's answers are held back in a relay, so that it has written
    // quotes the pool has not heard of when its connection dies.
    let relay = harness::relay::Relay::start(mints.a.sv2_addr.unwrap()).await;
    let client = client(&relay.addr().to_string(), &mints);
    let keyset = keyset(&client).await;
    relay.set_delay(Duration::from_millis(300));
    let count = 600;
    let load = many(&client, &keyset, count);
    let db = harness::MintDb::Postgres(url);
    let deadline = tokio::time::Instant::now() + harness::TIMEOUT;
    while db.count("SELECT COUNT(*) FROM mint_quote") < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mint a wrote nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay.cut();
    relay.reset_all();
    let told = all_quoted(load).await;
    let stats = client.stats();
    client.shutdown();
    let context = format!("{stats:?}");

    // One quote per share in the database, and it is the one the pool was
    // told, whichever mint answered.
    let rows = db.quote_rows();
    assert_eq!(rows.len(), count, "{context}");
    let stored: HashMap<String, String> = rows.into_iter().collect();
    assert_eq!(stored.len(), count, "no share has two quotes; {context}");
    for (share, quote) in &told {
        assert_eq!(
            stored.get(&share.header_hash.to_string()),
            Some(&quote.quote_id),
            "share {}: the pool was told another quote than the stored one; {context}",
            share.header_hash
        );
    }
    // Some of them mint a had made and never delivered: mint b answered
    // those with mint a's quote.
    let repeated = harness::http::sample(
        &mints.b.metrics.render(),
        "mint_quote_quotes_repeated_total{path=\"sv2\"}",
    );
    assert!(
        repeated >= 1.0,
        "mint b found no quote of mint a's to answer with: {context}"
    );
    assert!(stats.resent >= 1, "{context}");
    mints.a.stop().await;
    assert!(mints.b.stop().await);
}
