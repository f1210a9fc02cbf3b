//! The pool's configuration: the shared `pool.toml` and the pool's own
//! secret file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mint_quote_config::{check_ranges, load_toml, ConfigError, Range, SharedConfig};
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthoritySecretKey};
use serde::Deserialize;

use crate::config::ClientConfig;
use crate::outbox::OutboxConfig;

/// The pool-only file (default `config/pool-secret.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSecretFile {
    /// The pool's secret key (Sv2 base58check), proved to the mint.
    pool_secret_key: String,
    /// The pool's name in the mint's logs.
    #[serde(default = "default_device_id")]
    device_id: String,
    /// `[outbox]`: where shares wait for their answers.
    #[serde(default)]
    outbox: OutboxSection,
}

fn default_device_id() -> String {
    "pool".into()
}

/// `[outbox]` of the pool's own file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSection {
    /// The outbox file (a redb database), created on first start;
    /// relative to the working directory. Empty: in memory, for tests and
    /// tools only (shares are lost with the process).
    pub path: String,
    /// Shares held at most: waiting for an answer, or answered and waiting
    /// for the pool to take the answer.
    pub max_shares: usize,
}

impl Default for OutboxSection {
    fn default() -> Self {
        OutboxSection {
            path: "data/pool-outbox.redb".into(),
            max_shares: 100_000,
        }
    }
}

impl OutboxSection {
    /// The documented range of every numeric key of `[outbox]`.
    pub const RANGES: [Range; 1] = [Range::new("outbox.max_shares", 1, 10_000_000)];
}

/// Both files, checked.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// The shared file.
    pub shared: SharedConfig,
    /// The pool's keypair.
    pub pool_keypair: AuthorityKeypair,
    /// The pool's name.
    pub device_id: String,
    /// The Sv2 client configuration, when `[sv2_messaging]` is enabled.
    pub client: Option<ClientConfig>,
}

impl PoolSettings {
    /// Reads and checks the shared file and the pool's secret file.
    pub fn load(shared_path: &Path, secret_path: &Path) -> Result<Self, ConfigError> {
        let shared = SharedConfig::load(shared_path)?;
        let secret: PoolSecretFile = load_toml(secret_path)?;
        let key: AuthoritySecretKey = secret
            .pool_secret_key
            .parse()
            .map_err(|e| ConfigError::invalid(secret_path, "pool_secret_key", e))?;
        let pool_keypair = AuthorityKeypair::from_secret(key);
        if secret.device_id.len() > 255 {
            return Err(ConfigError::invalid(
                secret_path,
                "device_id",
                format!(
                    "{} bytes; at most 255 fit in SetupConnection",
                    secret.device_id.len()
                ),
            ));
        }
        let [max_shares] = OutboxSection::RANGES;
        check_ranges(
            secret_path,
            &[(max_shares, secret.outbox.max_shares as u64)],
        )?;
        let outbox = OutboxConfig {
            path: (!secret.outbox.path.trim().is_empty())
                .then(|| PathBuf::from(&secret.outbox.path)),
            max_shares: secret.outbox.max_shares,
        };
        let s = &shared.sv2_messaging;
        let client = if s.enabled {
            let mint_key = s.mint_key(shared_path)?.ok_or_else(|| {
                ConfigError::invalid(
                    shared_path,
                    "sv2_messaging.mint_authority_pubkey",
                    "is required when sv2_messaging is enabled: the pool must pin the mint's key",
                )
            })?;
            Some(ClientConfig {
                mint_address: s.mint_address.clone(),
                mint_key,
                pool_keypair,
                device_id: secret.device_id.clone(),
                transport: TransportConfig {
                    handshake_timeout: s.handshake_timeout(),
                    max_payload_len: s.max_payload_len,
                    write_timeout: s.write_timeout(),
                    ..TransportConfig::default()
                },
                request_deadline: s.request_deadline(),
                max_in_flight: s.max_in_flight,
                when_busy: s.when_busy,
                reconnect_initial: Duration::from_millis(s.reconnect_initial_ms),
                reconnect_max: Duration::from_millis(s.reconnect_max_ms),
                keepalive_interval: s.keepalive_interval(),
                keepalive_timeout: s.keepalive_timeout(),
                outbox,
            })
        } else {
            None
        };
        Ok(PoolSettings {
            shared,
            pool_keypair,
            device_id: secret.device_id,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> (std::path::PathBuf, std::path::PathBuf) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("config");
        (root.join("shared/pool.toml"), root.join("pool-secret.toml"))
    }

    #[test]
    fn the_example_files_configure_a_client() {
        let (shared, secret) = example();
        let settings = PoolSettings::load(&shared, &secret).unwrap();
        let client = settings.client.unwrap();
        assert_eq!(client.mint_address, "127.0.0.1:34260");
        assert_eq!(client.max_in_flight, 1024);
        assert_eq!(
            settings.pool_keypair.public().to_string(),
            "9bexoMCsYDZNYbRdePtd6L64mPHuMy3JSi7aXzWtrxrNuJPR9Lf"
        );
    }

    #[test]
    fn a_bad_secret_file_is_named() {
        let (shared, _) = example();
        let dir = tempfile_dir();
        let secret = dir.join("secret.toml");
        std::fs::write(&secret, "pool_secret_key = \"nope\"\n").unwrap();
        let err = PoolSettings::load(&shared, &secret)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("secret.toml") && err.contains("pool_secret_key"),
            "{err}"
        );
        std::fs::write(&secret, "pool_secret = \"x\"\n").unwrap();
        let err = PoolSettings::load(&shared, &secret)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pool_secret"), "{err}");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pool-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
