//! The pool's configuration: the shared `pool.toml` and the pool's own
//! secret file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mint_quote_config::{check_ranges, load_toml, ConfigError, Range, SharedConfig};
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthoritySecretKey};
use serde::Deserialize;

use crate::config::{ClientConfig, MintEndpoint};
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
            let mints = s
                .endpoints(shared_path)?
                .into_iter()
                .map(|mint| {
                    let key = mint.authority_pubkey.ok_or_else(|| {
                        ConfigError::invalid(
                            shared_path,
                            mint.source.pubkey_key(),
                            "is required when sv2_messaging is enabled: the pool must pin the mint's key",
                        )
                    })?;
                    Ok(MintEndpoint {
                        address: mint.address,
                        key,
                        key_setting: mint.source.pubkey_key(),
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            Some(ClientConfig {
                mints,
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
        assert_eq!(
            client.mints,
            vec![MintEndpoint::new(
                "127.0.0.1:34260",
                "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2"
                    .parse()
                    .unwrap()
            )]
        );
        assert_eq!(client.max_in_flight, 1024);
        assert_eq!(
            settings.pool_keypair.public().to_string(),
            "9bexoMCsYDZNYbRdePtd6L64mPHuMy3JSi7aXzWtrxrNuJPR9Lf"
        );
    }

    #[test]
    fn several_mints_configure_one_endpoint_each_with_its_own_key() {
        let (shared, secret) = example();
        let text = std::fs::read_to_string(&shared).unwrap();
        let single: String = text
            .lines()
            .filter(|l| !l.starts_with("mint_address") && !l.starts_with("mint_authority_pubkey"))
            .map(|l| format!("{l}\n"))
            .collect();
        let other = AuthorityKeypair::generate().public();
        let dev = "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2";
        let several = format!(
            "{single}[[sv2_messaging.mints]]\naddress = \"10.0.0.1:34260\"\nauthority_pubkey = \"{other}\"\n\
             [[sv2_messaging.mints]]\naddress = \"10.0.0.2:34260\"\nauthority_pubkey = \"{dev}\"\n"
        );
        let dir = tempfile_dir();
        let path = dir.join("several.toml");
        std::fs::write(&path, several).unwrap();
        let client = PoolSettings::load(&path, &secret).unwrap().client.unwrap();
        let mints: Vec<(&str, String, &str)> = client
            .mints
            .iter()
            .map(|m| {
                (
                    m.address.as_str(),
                    m.key.to_string(),
                    m.key_setting.as_str(),
                )
            })
            .collect();
        assert_eq!(
            mints,
            vec![
                (
                    "10.0.0.1:34260",
                    other.to_string(),
                    "sv2_messaging.mints[0].authority_pubkey"
                ),
                (
                    "10.0.0.2:34260",
                    dev.to_owned(),
                    "sv2_messaging.mints[1].authority_pubkey"
                ),
            ]
        );
        // The development key is reported under the entry that holds it.
        let published: Vec<String> = client.published_keys().into_iter().map(|u| u.key).collect();
        assert_eq!(
            published,
            vec!["pool_secret_key", "sv2_messaging.mints[1].authority_pubkey"]
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
