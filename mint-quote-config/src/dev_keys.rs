//! Keys whose secrets are published in this repository.
//!
//! The example files in `config/` carry a development mint key and a
//! development pool key so that the README's first command works. Their
//! secrets are public: anyone with the repository can impersonate a mint
//! or a pool that uses them. Only their public keys are listed here (a
//! public key gives nothing away); a test checks that every secret in
//! `config/` belongs to one of them, so a new example key cannot be added
//! without being listed.

use std::fmt;

use mint_quote_proto::AuthorityPublicKey;

/// The public keys of every secret key published in `config/`, and of
/// other published secrets this repository mentions.
pub const PUBLISHED_KEYS: [&str; 3] = [
    // config/mint.toml: mint.authority_secret_key
    "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2",
    // config/pool-secret.toml: pool_secret_key
    "9bexoMCsYDZNYbRdePtd6L64mPHuMy3JSi7aXzWtrxrNuJPR9Lf",
    // The authority key of the SRI example configurations (its secret is
    // in mint-quote-proto's key tests and in every SRI checkout).
    "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72",
];

/// Whether `key`'s secret is published in this repository.
pub fn is_published(key: &AuthorityPublicKey) -> bool {
    let shown = key.to_string();
    PUBLISHED_KEYS.contains(&shown.as_str())
}

/// One use of a published key in a configuration, for warnings and
/// refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKeyUse {
    /// The key in the configuration that holds it, as `section.key`.
    pub key: String,
    /// The public key.
    pub public_key: AuthorityPublicKey,
}

impl fmt::Display for PublishedKeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is a development key published in this repository ({}); anyone can use it. \
             Make real keys with `mint-server keygen`",
            self.key, self.public_key
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mint_quote_proto::{AuthorityKeypair, AuthoritySecretKey};

    /// Every base58 secret in the example files.
    fn published_secrets() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut secrets = Vec::new();
        for file in ["mint.toml", "pool-secret.toml"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            for line in text.lines() {
                let line = line.trim();
                if line.starts_with('#') || !line.contains("secret_key") {
                    continue;
                }
                if let Some((_, value)) = line.split_once('=') {
                    secrets.push(value.trim().trim_matches('"').to_owned());
                }
            }
        }
        secrets
    }

    #[test]
    fn every_secret_in_config_is_listed() {
        let secrets = published_secrets();
        assert_eq!(secrets.len(), 2, "{secrets:?}");
        for secret in secrets {
            let secret: AuthoritySecretKey = secret.parse().unwrap();
            let public = AuthorityKeypair::from_secret(secret).public();
            assert!(is_published(&public), "{public} is not listed");
        }
    }

    #[test]
    fn a_fresh_key_is_not_published() {
        assert!(!is_published(&AuthorityKeypair::generate().public()));
    }
}
