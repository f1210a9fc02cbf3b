//! A mint started in this process, and the development keys of `config/`.

use std::time::Duration;

use mint_quote_config::BusyPolicy;
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey, AuthoritySecretKey};
use mint_server::app::{self, RunningMint};
use mint_server::config::Settings;
use pool_client::ClientConfig;

/// The example configuration of `config/` (development keys included),
/// with the data directory moved to `data_dir` and every listener on a
/// free port: a mint for tests and benchmarks that needs no files. When
/// the tests run on PostgreSQL ([`crate::postgres`]), the database is the
/// one the harness gives `data_dir`. Fields can be changed before
/// starting.
pub fn example_settings(data_dir: &std::path::Path) -> Settings {
    const MINT: &str = include_str!("../../config/mint.toml");
    const SHARED: &str = include_str!("../../config/shared/pool.toml");
    let mut settings = match Settings::parse(MINT, SHARED) {
        Ok(settings) => settings,
        Err(e) => panic!("the example configuration is valid: {e}"),
    };
    settings.mint.mint.data_dir = data_dir.to_path_buf();
    if let Some(url) = crate::postgres::database_for(data_dir) {
        settings.mint.mint.database = mint_server::config::DatabaseKind::Postgres;
        settings.mint.postgres.url = url;
    }
    settings.sv2_listen.set_port(0);
    for addr in [
        settings.http_listen.as_mut(),
        settings.metrics_listen.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        addr.set_port(0);
    }
    settings
}

/// The example settings on `dir` and free ports, changed by `edit`.
pub fn settings(dir: &std::path::Path, edit: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = example_settings(dir);
    edit(&mut settings);
    settings
}

/// Starts a mint in this process; panics if it cannot (a test failure).
pub async fn start_mint(dir: &std::path::Path, edit: impl FnOnce(&mut Settings)) -> RunningMint {
    match app::start(settings(dir, edit)).await {
        Ok(mint) => mint,
        Err(e) => panic!("the mint did not start: {e}"),
    }
}

/// Rotates `mint`'s keyset of `unit` (as an operator would, with the
/// unit's amounts and no fee) and returns the new keyset's id.
pub async fn rotate_keyset(
    mint: &cdk::Mint,
    unit: &mint_quote_proto::Unit,
) -> mint_quote_proto::KeysetId {
    let rotated = mint
        .rotate_keyset(
            mint_server::cashu_mint::cdk_unit(unit),
            mint_server::cashu_mint::keyset_amounts(),
            0,
            true,
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("rotating the keyset: {e}"));
    match mint_quote_proto::KeysetId::from_slice(&rotated.id.to_bytes()) {
        Ok(id) => id,
        Err(e) => panic!("the new keyset id: {e}"),
    }
}

/// Every quote in a running mint's database.
pub async fn stored_quotes(mint: &RunningMint) -> Vec<cdk::mint::MintQuote> {
    match mint.issuer.mint().localstore().get_mint_quotes().await {
        Ok(quotes) => quotes,
        Err(e) => panic!("reading the mint's quotes: {e}"),
    }
}

/// Starts a mint in this process with its Redis consumer on `redis_url`.
pub async fn start_mint_with_redis(dir: &std::path::Path, redis_url: String) -> RunningMint {
    start_mint(dir, |s| {
        s.shared.redis.enabled = true;
        s.shared.redis.url = redis_url;
    })
    .await
}

/// The development pool key of `config/pool-secret.toml`, which the example
/// `mint.toml` allows.
pub fn dev_pool() -> AuthorityKeypair {
    let secret: AuthoritySecretKey =
        match "autqWLmd3q4fBqhZBitdv6b2Yp8bBzc9e1pjjCQHXjQDCxXeJ".parse() {
            Ok(secret) => secret,
            Err(e) => panic!("the development pool key is valid: {e}"),
        };
    AuthorityKeypair::from_secret(secret)
}

/// The development mint's public key from the example shared file.
pub fn dev_mint_key() -> AuthorityPublicKey {
    match "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2".parse() {
        Ok(key) => key,
        Err(e) => panic!("the development mint key is valid: {e}"),
    }
}

/// A pool client configuration for the mint at `address`, as the
/// development pool, with the example file's limits and fast reconnects.
pub fn client_config(address: &str) -> ClientConfig {
    ClientConfig {
        mints: vec![pool_client::MintEndpoint::new(address, dev_mint_key())],
        pool_keypair: dev_pool(),
        device_id: "test-pool".into(),
        transport: TransportConfig::default(),
        request_deadline: Duration::from_secs(10),
        max_in_flight: 1024,
        when_busy: BusyPolicy::Wait,
        reconnect_initial: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(500),
        keepalive_interval: Duration::from_secs(5),
        keepalive_timeout: Duration::from_secs(15),
        outbox: pool_client::OutboxConfig::in_memory(100_000),
    }
}

/// Starts a pool client; panics if its outbox cannot open (a test
/// failure).
pub fn start_client(config: ClientConfig) -> pool_client::MintQuoteClient {
    match pool_client::MintQuoteClient::start(config) {
        Ok(client) => client,
        Err(e) => panic!("the pool client did not start: {e}"),
    }
}

/// Waits until `client` has had at least `count` quotes answered, and
/// returns how many it had then: a test uses it to act (kill, stop) in the
/// middle of a run whatever the speed of the machine.
pub async fn wait_until_answered(client: &pool_client::MintQuoteClient, count: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + crate::TIMEOUT;
    loop {
        let answered = client.stats().answered;
        if answered >= count {
            return answered;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {answered} of {count} quotes answered in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
