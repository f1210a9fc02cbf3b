//! `config/mint.toml`: what only the mint knows.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mint_quote_config::{load_toml, parse_toml, require_positive, ConfigError, SharedConfig};
use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey, AuthoritySecretKey, Unit};
use serde::Deserialize;

/// The mint's own configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MintConfig {
    /// `[mint]`: identity, storage and quote policy.
    pub mint: MintSection,
    /// `[http]`: the public Cashu HTTP API.
    #[serde(default)]
    pub http: HttpSection,
    /// `[listener]`: limits of the Sv2 listener.
    #[serde(default)]
    pub listener: ListenerSection,
    /// `[metrics]`: the Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// `[pools]`: who may create quotes.
    #[serde(default)]
    pub pools: PoolsSection,
}

/// Which database holds the mint's state.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    /// A SQLite file, `mint.sqlite`, in `data_dir`.
    #[default]
    Sqlite,
    /// In-memory SQLite: everything is lost at exit. For tests and benchmarks.
    Memory,
}

/// `[mint]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MintSection {
    /// The mint's Sv2 authority secret key (base58check). Its public key must
    /// be the `mint_authority_pubkey` of the shared file.
    pub authority_secret_key: String,
    /// Directory for the database and the seed, created on first start.
    /// Relative paths are relative to the working directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Database kind.
    #[serde(default)]
    pub database: DatabaseKind,
    /// Unit quotes are issued in.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Largest amount of one quote.
    #[serde(default = "default_max_quote_amount")]
    pub max_quote_amount: u64,
    /// How long a quote stays valid, in seconds.
    #[serde(default = "default_quote_ttl_secs")]
    pub quote_ttl_secs: u64,
    /// Quotes waiting to be written, at most; beyond it requests are
    /// answered `mint-busy`.
    #[serde(default = "default_max_pending_quotes")]
    pub max_pending_quotes: usize,
    /// Quotes written in one database transaction, at most. Concurrent
    /// requests are grouped; a lone request is written at once.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Fee per thousand inputs of the unit's keyset (NUT-02).
    #[serde(default)]
    pub input_fee_ppk: u64,
    /// Name shown in the mint's NUT-06 info.
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/mint")
}
fn default_unit() -> String {
    "hash".into()
}
fn default_max_quote_amount() -> u64 {
    1 << 40
}
fn default_quote_ttl_secs() -> u64 {
    30 * 24 * 3600
}
fn default_max_pending_quotes() -> usize {
    4096
}
fn default_max_batch() -> usize {
    256
}
fn default_name() -> String {
    "mining-share mint".into()
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Whether to serve the Cashu HTTP API.
    pub enabled: bool,
    /// Address of the Cashu HTTP API.
    pub listen: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            listen: "127.0.0.1:3338".into(),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Whether to serve Prometheus metrics.
    pub enabled: bool,
    /// Address of the metrics endpoint (`GET /metrics`).
    pub listen: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            listen: "127.0.0.1:9091".into(),
        }
    }
}

/// `[listener]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerSection {
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Quote requests of one connection worked on at once. When reached, the
    /// mint stops reading that connection until one finishes.
    pub max_in_flight_per_connection: usize,
    /// On SIGINT/SIGTERM, time allowed for requests in flight to finish, ms.
    pub shutdown_grace_ms: u64,
    /// Validity of the Noise certificate the mint issues, in seconds.
    pub cert_validity_secs: u64,
}

impl Default for ListenerSection {
    fn default() -> Self {
        ListenerSection {
            max_connections: 64,
            max_in_flight_per_connection: 256,
            shutdown_grace_ms: 10_000,
            cert_validity_secs: 3600,
        }
    }
}

/// `[pools]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PoolsSection {
    /// Public keys (Sv2 base58check) of the pools allowed to create quotes.
    pub allowed: Vec<String>,
}

/// Both files, checked and with keys parsed: everything the mint needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The mint's own file, as written.
    pub mint: MintConfig,
    /// The shared file, as written.
    pub shared: SharedConfig,
    /// The mint's authority keypair.
    pub keypair: AuthorityKeypair,
    /// Pools allowed to create quotes.
    pub allowed_pools: Vec<AuthorityPublicKey>,
    /// The unit quotes are issued in.
    pub unit: Unit,
    /// Where the Sv2 listener binds.
    pub sv2_listen: SocketAddr,
    /// Where the HTTP API binds, if enabled.
    pub http_listen: Option<SocketAddr>,
    /// Where the metrics endpoint binds, if enabled.
    pub metrics_listen: Option<SocketAddr>,
}

impl Settings {
    /// Reads and checks both files.
    pub fn load(mint_path: &Path, shared_path: &Path) -> Result<Self, ConfigError> {
        let mint: MintConfig = load_toml(mint_path)?;
        let shared = SharedConfig::load(shared_path)?;
        Self::check(mint, mint_path, shared, shared_path)
    }

    /// Parses and checks both files from text (for tests).
    pub fn parse(mint_text: &str, shared_text: &str) -> Result<Self, ConfigError> {
        let mint_path = Path::new("mint.toml");
        let shared_path = Path::new("pool.toml");
        let mint: MintConfig = parse_toml(mint_path, mint_text)?;
        let shared = SharedConfig::parse(shared_path, shared_text)?;
        Self::check(mint, mint_path, shared, shared_path)
    }

    fn check(
        mint: MintConfig,
        mint_path: &Path,
        shared: SharedConfig,
        shared_path: &Path,
    ) -> Result<Self, ConfigError> {
        let secret: AuthoritySecretKey = mint
            .mint
            .authority_secret_key
            .parse()
            .map_err(|e| ConfigError::invalid(mint_path, "mint.authority_secret_key", e))?;
        let keypair = AuthorityKeypair::from_secret(secret);
        if let Some(public) = shared.sv2_messaging.mint_key(shared_path)? {
            if public != keypair.public() {
                return Err(ConfigError::invalid(
                    shared_path,
                    "sv2_messaging.mint_authority_pubkey",
                    format!(
                        "{public} is not the public key of mint.authority_secret_key in {} (that is {})",
                        mint_path.display(),
                        keypair.public()
                    ),
                ));
            }
        }
        let allowed_pools = mint
            .pools
            .allowed
            .iter()
            .enumerate()
            .map(|(i, key)| {
                key.parse()
                    .map_err(|e| ConfigError::invalid(mint_path, format!("pools.allowed[{i}]"), e))
            })
            .collect::<Result<Vec<AuthorityPublicKey>, _>>()?;
        let unit = Unit::new(&mint.mint.unit)
            .map_err(|e| ConfigError::invalid(mint_path, "mint.unit", e))?;
        let l = &mint.listener;
        require_positive(
            mint_path,
            &[
                ("mint.max_quote_amount", mint.mint.max_quote_amount),
                (
                    "mint.max_pending_quotes",
                    mint.mint.max_pending_quotes as u64,
                ),
                ("mint.max_batch", mint.mint.max_batch as u64),
                ("mint.quote_ttl_secs", mint.mint.quote_ttl_secs),
                ("listener.max_connections", l.max_connections as u64),
                (
                    "listener.max_in_flight_per_connection",
                    l.max_in_flight_per_connection as u64,
                ),
            ],
        )?;
        if l.cert_validity_secs < 60 {
            return Err(ConfigError::invalid(
                mint_path,
                "listener.cert_validity_secs",
                "must be at least 60",
            ));
        }
        let sv2_listen = parse_addr(
            shared_path,
            "sv2_messaging.mint_address",
            &shared.sv2_messaging.mint_address,
        )?;
        let http_listen = if mint.http.enabled {
            Some(parse_addr(mint_path, "http.listen", &mint.http.listen)?)
        } else {
            None
        };
        let metrics_listen = if mint.metrics.enabled {
            Some(parse_addr(
                mint_path,
                "metrics.listen",
                &mint.metrics.listen,
            )?)
        } else {
            None
        };
        Ok(Settings {
            mint,
            shared,
            keypair,
            allowed_pools,
            unit,
            sv2_listen,
            http_listen,
            metrics_listen,
        })
    }

    /// The example configuration of `config/`, built in, with the data
    /// directory moved to `data_dir` and every listener on a free port: a
    /// mint for tests, benchmarks and demos that needs no files. Fields can
    /// be changed before starting; everything but the listen addresses is
    /// read from `mint` and `shared` at start.
    pub fn example(data_dir: &Path) -> Self {
        const MINT: &str = include_str!("../../config/mint.toml");
        const SHARED: &str = include_str!("../../config/shared/pool.toml");
        // The example files are tested to parse (see the tests below).
        let mut settings = match Settings::parse(MINT, SHARED) {
            Ok(settings) => settings,
            Err(e) => unreachable!("the built-in example configuration is valid: {e}"),
        };
        settings.mint.mint.data_dir = data_dir.to_path_buf();
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

    /// The quote issuer's limits.
    pub fn issuer_limits(&self) -> crate::quotes::IssuerLimits {
        crate::quotes::IssuerLimits {
            max_amount: self.mint.mint.max_quote_amount,
            ttl_secs: self.mint.mint.quote_ttl_secs,
            max_pending: self.mint.mint.max_pending_quotes,
            max_batch: self.mint.mint.max_batch,
        }
    }

    /// Grace period for requests in flight at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.mint.listener.shutdown_grace_ms)
    }
}

fn parse_addr(path: &Path, key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    value
        .to_socket_addrs()
        .map_err(|e| ConfigError::invalid(path, key, format!("{value:?}: {e}")))?
        .next()
        .ok_or_else(|| ConfigError::invalid(path, key, format!("{value:?} resolves to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &str = include_str!("../../config/shared/pool.toml");
    const MINT: &str = include_str!("../../config/mint.toml");

    #[test]
    fn the_example_files_work_together() {
        let settings = Settings::parse(MINT, SHARED).unwrap();
        assert_eq!(settings.unit, Unit::hash());
        assert_eq!(settings.allowed_pools.len(), 1);
        assert!(settings.http_listen.is_some());
    }

    #[test]
    fn the_built_in_example_moves_data_and_ports() {
        let settings = Settings::example(Path::new("/tmp/x"));
        assert_eq!(settings.mint.mint.data_dir, Path::new("/tmp/x"));
        assert_eq!(settings.sv2_listen.port(), 0);
        assert_eq!(settings.http_listen.map(|a| a.port()), Some(0));
        assert_eq!(settings.metrics_listen.map(|a| a.port()), Some(0));
    }

    #[test]
    fn a_secret_that_does_not_match_the_shared_public_key_is_refused() {
        let other = AuthorityKeypair::generate().secret().to_base58check();
        let mint = MINT.replace("wpRLddnhWjGZvYcE8m5GqMw9gRBHNNLSgnEFjbw49ktfTc3sB", &other);
        let err = Settings::parse(&mint, SHARED).unwrap_err().to_string();
        assert!(err.contains("sv2_messaging.mint_authority_pubkey"), "{err}");
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let err = Settings::parse(&MINT.replace("[pools]", "[pools]\ntypo = 1"), SHARED)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mint.toml") && err.contains("typo"), "{err}");
        let err = Settings::parse(&MINT.replace("allowed = [", "allowed = [\"bad\", "), SHARED)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pools.allowed[0]"), "{err}");
    }
}
