//! Quote creation against a real CDK mint on a real database (SQLite, or
//! PostgreSQL when the tests run on it).

use integration_tests as harness;

use std::sync::Arc;

use mint_quote_proto::{ErrorCode, KeysetId, QuoteState, Unit};
use mint_server::cashu_mint::{build_mint, cdk_unit, open_database, Database};
use mint_server::quotes::{QuoteError, QuoteIssuer};
use mint_server::supervisor::Supervisor;

async fn issuer(dir: &std::path::Path) -> (QuoteIssuer, Database, KeysetId) {
    let settings = harness::settings(dir, |_| {});
    let db = open_database(&settings).await.unwrap();
    let mint = build_mint(&settings, db.clone()).await.unwrap();
    let keyset = mint.get_active_keysets()[&cdk_unit(&settings.unit)];
    let keyset = KeysetId::from_slice(&keyset.to_bytes()).unwrap();
    let supervisor = Supervisor::new(tokio_util::sync::CancellationToken::new());
    let issuer = QuoteIssuer::new(
        mint,
        db.clone(),
        settings.unit.clone(),
        settings.issuer_limits(),
        mint_server::metrics::MintMetrics::new().writer(),
        supervisor.guard("the quote writer"),
    );
    (issuer, db, keyset)
}

#[tokio::test]
async fn a_share_becomes_one_paid_quote_and_a_repeat_gets_the_same_quote() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, db, keyset) = issuer(dir.path()).await;
    let request = harness::request(1, 64, &keyset);
    let quote = issuer.create(&request).await.unwrap();
    assert_eq!(quote.response.state, QuoteState::Paid);
    assert_eq!(quote.response.amount, 64);
    assert!(!quote.repeated);

    let stored = db.get_mint_quotes().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), quote.response.quote_id);
    assert_eq!(stored[0].amount_paid().value(), 64);
    assert_eq!(
        stored[0].pubkey.unwrap().to_bytes().to_vec(),
        request.locking_key.serialize().to_vec()
    );

    let again = issuer.create(&request).await.unwrap();
    assert_eq!(again.response.quote_id, quote.response.quote_id);
    assert!(again.repeated);
    assert_eq!(db.get_mint_quotes().await.unwrap().len(), 1);

    let mut changed = request.clone();
    changed.amount = 65;
    changed.locking_key = harness::locking_key().1;
    let err = issuer.create(&changed).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DuplicateShareMismatch);
    assert!(
        err.to_string().contains("amount") && err.to_string().contains("locking key"),
        "{err}"
    );
}

#[tokio::test]
async fn the_mint_checks_unit_amount_and_keyset() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, db, keyset) = issuer(dir.path()).await;
    let mut sat = harness::request(1, 1, &keyset);
    sat.unit = Unit::new("sat").unwrap();
    assert!(matches!(
        issuer.create(&sat).await,
        Err(QuoteError::UnknownUnit { .. })
    ));
    let huge = harness::request(2, u64::MAX, &keyset);
    assert_eq!(
        issuer.create(&huge).await.unwrap_err().code(),
        ErrorCode::InvalidAmount
    );
    let stranger = harness::request(3, 1, &"00ffffffffffffff".parse().unwrap());
    assert_eq!(
        issuer.create(&stranger).await.unwrap_err().code(),
        ErrorCode::UnknownKeyset
    );
    assert!(db.get_mint_quotes().await.unwrap().is_empty());
}

/// File SQLite deadlocks ("database is locked") when writers overlap on few
/// workers. The issuer serialises writes: many concurrent creations on a
/// two-worker runtime all succeed, and concurrent repeats of one share make
/// exactly one quote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_on_a_file_database_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, db, keyset) = issuer(dir.path()).await;
    let issuer = Arc::new(issuer);

    let mut tasks = Vec::new();
    for i in 0..200 {
        let issuer = issuer.clone();
        let request = harness::request(i, 1 + u64::from(i), &keyset);
        tasks.push(tokio::spawn(async move { issuer.create(&request).await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let one_share = harness::request(999, 8, &keyset);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let issuer = issuer.clone();
        let request = one_share.clone();
        tasks.push(tokio::spawn(async move { issuer.create(&request).await }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().response.quote_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one share, one quote");
    assert_eq!(db.get_mint_quotes().await.unwrap().len(), 201);
}

#[tokio::test]
async fn a_restart_with_another_seed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_issuer, _db, _keyset) = issuer(dir.path()).await;
    }
    let seed = dir.path().join("seed.hex");
    std::fs::remove_file(&seed).unwrap();
    std::fs::write(&seed, "ab".repeat(64)).unwrap();
    let settings = harness::settings(dir.path(), |_| {});
    let db = open_database(&settings).await.unwrap();
    let Err(err) = build_mint(&settings, db).await else {
        panic!("a mint with another seed must not start");
    };
    assert!(err.to_string().contains("seed"), "{err}");
}
