//! The pool's configuration: the shared `pool.toml` and the pool's own
//! secret file.

use std::path::Path;
use std::time::Duration;

use mint_quote_config::{load_toml, ConfigError, SharedConfig};
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthoritySecretKey};
use serde::Deserialize;

use crate::client::ClientConfig;

/// The pool-only file (default `config/pool-secret.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSecretFile {
    /// The pool's secret key (Sv2 base58check), proved to the mint.
    pool_secret_key: String,
    /// The pool's name in the mint's logs.
    #[serde(default = "default_device_id")]
    device_id: String,
}

fn default_device_id() -> String {
    "pool".into()
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
                    ..TransportConfig::default()
                },
                request_deadline: s.request_deadline(),
                max_in_flight: s.max_in_flight,
                when_busy: s.when_busy,
                reconnect_initial: Duration::from_millis(s.reconnect_initial_ms),
                reconnect_max: Duration::from_millis(s.reconnect_max_ms),
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
