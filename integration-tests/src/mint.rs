//! A mint started in this process, and the development keys of `config/`.

use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey, AuthoritySecretKey};
use mint_server::app::{self, RunningMint};
use mint_server::config::Settings;

/// The example settings on `dir` and free ports, changed by `edit`.
pub fn settings(dir: &std::path::Path, edit: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = Settings::example(dir);
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
