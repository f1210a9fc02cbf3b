//! `config/mint.toml`: what only the mint knows, and [`Settings`], both
//! files checked together.

mod listen;
mod sections;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mint_quote_config::dev_keys::{self, PublishedKeyUse};
use mint_quote_config::{check_ranges, load_toml, parse_toml, ConfigError, SharedConfig};
use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey, AuthoritySecretKey, Unit};

pub use sections::{
    DatabaseKind, HttpSection, ListenerSection, MetricsSection, MintConfig, MintSection,
    PoolsSection, PostgresSection, RedisConsumerSection,
};

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
    /// `listener.pool_networks`, parsed.
    pub pool_networks: Vec<ipnet::IpNet>,
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
        let sv2_listen = listen::own_sv2_listen(
            &shared.sv2_messaging,
            shared_path,
            &keypair.public(),
            mint_path,
        )?;
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
        if RESERVED_UNITS.contains(&unit.as_str()) {
            return Err(ConfigError::invalid(
                mint_path,
                "mint.unit",
                format!(
                    "{unit} is a unit CDK keeps for Lightning; mining-share quotes need a unit of their own, such as hash"
                ),
            ));
        }
        if mint.mint.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                mint_path,
                "mint.data_dir",
                "must not be empty (use \".\" for the working directory)",
            ));
        }
        let pool_networks = mint
            .listener
            .pool_networks
            .iter()
            .enumerate()
            .map(|(i, net)| {
                net.parse::<ipnet::IpNet>().map_err(|e| {
                    ConfigError::invalid(
                        mint_path,
                        format!("listener.pool_networks[{i}]"),
                        format!("{net:?}: {e} (a network such as 10.0.0.0/24)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_ranges(mint_path, &mint.mint.ranges())?;
        check_ranges(mint_path, &mint.http.ranges())?;
        check_ranges(mint_path, &mint.metrics.ranges())?;
        check_ranges(mint_path, &mint.listener.ranges())?;
        check_ranges(mint_path, &mint.postgres.ranges())?;
        check_ranges(mint_path, &mint.redis_consumer.ranges())?;
        if let Some(name) = &mint.redis_consumer.name {
            if !crate::redis_lease::valid_name(name) {
                return Err(ConfigError::invalid(
                    mint_path,
                    "redis_consumer.name",
                    crate::redis_lease::NameError::Invalid(name.clone()),
                ));
            }
        }
        if mint.mint.database == DatabaseKind::Postgres {
            check_postgres_url(mint_path, &mint.postgres.url)?;
            // Each writer holds a connection; the HTTP API and the keyset
            // refresh need theirs.
            let needed = mint.postgres.writers + 2;
            if mint.postgres.max_connections < needed {
                return Err(ConfigError::invalid(
                    mint_path,
                    "postgres.max_connections",
                    format!(
                        "{} is fewer than postgres.writers + 2 = {needed}",
                        mint.postgres.max_connections
                    ),
                ));
            }
        }
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
        let settings = Settings {
            mint,
            shared,
            keypair,
            allowed_pools,
            unit,
            sv2_listen,
            http_listen,
            metrics_listen,
            pool_networks,
        };
        settings
            .refuse_published_keys_beyond_loopback()
            .map_err(|e| ConfigError::invalid(mint_path, e.setting, e))?;
        Ok(settings)
    }

    /// The development keys (published in this repository) this
    /// configuration uses: the mint's own key, and allowed pool keys.
    pub fn published_keys(&self) -> Vec<PublishedKeyUse> {
        let mut uses = Vec::new();
        if dev_keys::is_published(&self.keypair.public()) {
            uses.push(PublishedKeyUse {
                key: "mint.authority_secret_key".into(),
                public_key: self.keypair.public(),
            });
        }
        for (i, key) in self.allowed_pools.iter().enumerate() {
            if dev_keys::is_published(key) {
                uses.push(PublishedKeyUse {
                    key: format!("pools.allowed[{i}]"),
                    public_key: *key,
                });
            }
        }
        uses
    }

    /// The listeners that serve beyond this machine (an address that is
    /// not loopback, the unspecified address included).
    fn public_listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut listeners = Vec::new();
        let s = &self.shared.sv2_messaging;
        if s.enabled && !self.sv2_listen.ip().is_loopback() {
            let setting = match s.mints {
                Some(_) => "sv2_messaging.mints",
                None => "sv2_messaging.mint_address",
            };
            listeners.push((setting, self.sv2_listen));
        }
        if let Some(addr) = self.http_listen.filter(|a| !a.ip().is_loopback()) {
            listeners.push(("http.listen", addr));
        }
        listeners
    }

    /// Refuses development keys on a listener that other machines can
    /// reach: with them anyone holding this repository could mint as the
    /// mint or act as its pool. On loopback they are allowed (with a
    /// warning) so that the README's first command works.
    pub fn refuse_published_keys_beyond_loopback(&self) -> Result<(), Box<PublishedKeyRefusal>> {
        let keys = self.published_keys();
        match (keys.first(), self.public_listeners().first()) {
            (Some(used), Some((setting, addr))) => Err(Box::new(PublishedKeyRefusal {
                setting,
                addr: *addr,
                used: used.clone(),
            })),
            _ => Ok(()),
        }
    }

    /// File descriptors the configured connection caps allow at once,
    /// plus a reserve for the database, Redis and the listening sockets:
    /// what the open-file limit must cover for the caps, not the kernel,
    /// to be what refuses connections.
    pub fn file_descriptors_needed(&self) -> u64 {
        const RESERVE: u64 = 64;
        let l = &self.mint.listener;
        let mut needed = RESERVE + l.max_connections as u64 + l.max_unauthenticated as u64;
        if self.http_listen.is_some() {
            needed += self.mint.http.max_connections as u64;
        }
        if self.metrics_listen.is_some() {
            needed += self.mint.metrics.max_connections as u64;
        }
        needed
    }

    /// The accept-to-authentication deadline of the Sv2 listener.
    pub fn auth_timeout(&self) -> Duration {
        self.mint.listener.auth_timeout()
    }

    /// The quote issuer's limits.
    pub fn issuer_limits(&self) -> crate::quotes::IssuerLimits {
        crate::quotes::IssuerLimits {
            max_amount: self.mint.mint.max_quote_amount,
            ttl_secs: self.mint.mint.quote_ttl_secs,
            max_pending: self.mint.mint.max_pending_quotes,
            max_batch: self.mint.mint.max_batch,
            writers: match self.mint.mint.database {
                DatabaseKind::Postgres => self.mint.postgres.writers,
                DatabaseKind::Sqlite | DatabaseKind::Memory => 1,
            },
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

/// Checks a PostgreSQL connection string without connecting. Messages
/// never repeat it: it may hold a password.
fn check_postgres_url(path: &Path, url: &str) -> Result<(), ConfigError> {
    const KEY: &str = "postgres.url";
    if url.trim().is_empty() {
        return Err(ConfigError::invalid(
            path,
            KEY,
            "must be set when mint.database = \"postgres\"",
        ));
    }
    #[cfg(feature = "postgres")]
    return cdk_postgres::PgConfig::from(url).validate().map_err(|e| {
        ConfigError::invalid(
            path,
            KEY,
            format!("not a PostgreSQL connection string: {e}"),
        )
    });
    #[cfg(not(feature = "postgres"))]
    Err(ConfigError::invalid(
        path,
        "mint.database",
        crate::cashu_mint::BuildError::NoPostgres,
    ))
}

/// Units CDK defines for itself; a mining-share mint must not take them.
const RESERVED_UNITS: [&str; 5] = ["sat", "msat", "usd", "eur", "auth"];

/// A published development key on a listener other machines can reach.
#[derive(Debug, Clone, thiserror::Error)]
#[error("refusing to serve on {addr} ({setting}): {used}")]
pub struct PublishedKeyRefusal {
    /// The setting of the listener.
    pub setting: &'static str,
    /// Its address.
    pub addr: SocketAddr,
    /// The key.
    pub used: PublishedKeyUse,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &str = include_str!("../../../config/shared/pool.toml");
    const MINT: &str = include_str!("../../../config/mint.toml");

    #[test]
    fn the_example_files_work_together() {
        let settings = Settings::parse(MINT, SHARED).unwrap();
        assert_eq!(settings.unit, Unit::hash());
        assert_eq!(settings.allowed_pools.len(), 1);
        assert!(settings.http_listen.is_some());
    }

    #[test]
    fn a_secret_that_does_not_match_the_shared_public_key_is_refused() {
        let other = AuthorityKeypair::generate().secret().to_base58check();
        let mint = MINT.replace("wpRLddnhWjGZvYcE8m5GqMw9gRBHNNLSgnEFjbw49ktfTc3sB", &other);
        let err = Settings::parse(&mint, SHARED).unwrap_err().to_string();
        assert!(err.contains("sv2_messaging.mint_authority_pubkey"), "{err}");
    }

    /// Every numeric key of both files, with its documented range.
    fn all_ranges() -> Vec<(&'static str, mint_quote_config::Range)> {
        let mint = MintConfig::ranges().into_iter().map(|r| ("mint", r));
        let shared = SharedConfig::RANGES.iter().map(|r| ("shared", *r));
        mint.chain(shared).collect()
    }

    /// The example files with `key` (`section.key`) of `file` set to
    /// `value`.
    fn with_value(file: &str, key: &str, value: i64) -> (String, String) {
        let (section, name) = key.split_once('.').unwrap();
        let set = |text: &str| {
            let mut doc: toml::Table = toml::from_str(text).unwrap();
            let table = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table
                .as_table_mut()
                .unwrap()
                .insert(name.to_owned(), toml::Value::Integer(value));
            toml::to_string(&doc).unwrap()
        };
        match file {
            "mint" => (set(MINT), SHARED.to_owned()),
            _ => (MINT.to_owned(), set(SHARED)),
        }
    }

    /// Bounds a key gets from the example's value of another key.
    fn bounds_from_other_keys(key: &str) -> (u64, u64) {
        match key {
            "sv2_messaging.reconnect_max_ms" => (100, u64::MAX),
            "sv2_messaging.reconnect_initial_ms" => (0, 10_000),
            // keepalive_timeout_ms (15,000) >= 3 x keepalive_interval_ms (5,000).
            "sv2_messaging.keepalive_timeout_ms" => (15_000, u64::MAX),
            "sv2_messaging.keepalive_interval_ms" => (0, 5_000),
            _ => (0, u64::MAX),
        }
    }

    fn check_one(file: &str, range: mint_quote_config::Range, value: i64) {
        let (mint, shared) = with_value(file, range.key, value);
        let parsed = Settings::parse(&mint, &shared);
        let (floor, ceiling) = bounds_from_other_keys(range.key);
        let allowed =
            value >= 0 && (range.min.max(floor)..=range.max.min(ceiling)).contains(&(value as u64));
        match parsed {
            Ok(settings) => {
                assert!(allowed, "{} = {value} was accepted", range.key);
                drop(settings);
            }
            Err(e) => {
                assert!(!allowed, "{} = {value} was refused: {e}", range.key);
                let text = e.to_string();
                let name = range.key.split_once('.').unwrap().1;
                let file_name = if file == "mint" {
                    "mint.toml"
                } else {
                    "pool.toml"
                };
                assert!(
                    text.contains(file_name) && text.contains(name),
                    "the error names neither the file nor the key: {text}"
                );
                if value >= 0 && !(range.min..=range.max).contains(&(value as u64)) {
                    assert!(
                        text.contains(&value.to_string())
                            && text.contains(&format!("{}..={}", range.min, range.max)),
                        "the error gives neither the value nor the range: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_setting_accepts_its_range_and_refuses_the_rest_at_the_edges() {
        for (file, range) in all_ranges() {
            let min = range.min as i64;
            let max = i64::try_from(range.max).unwrap_or(i64::MAX);
            for value in [
                i64::MIN,
                -1,
                0,
                min - 1,
                min,
                min + 1,
                max - 1,
                max,
                max.saturating_add(1),
                i64::MAX,
            ] {
                check_one(file, range, value);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2048,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any integer a TOML file can hold, in any numeric setting of
        /// either file: the loader accepts exactly the documented range and
        /// otherwise says which file, key, value and range; it never panics.
        #[test]
        fn any_integer_in_any_setting_is_checked(
            which in 0usize..64,
            value in proptest::prelude::any::<i64>(),
            small in 0i64..2_000_000,
            pick_small in proptest::prelude::any::<bool>(),
        ) {
            let ranges = all_ranges();
            let (file, range) = ranges[which % ranges.len()];
            check_one(file, range, if pick_small { small } else { value });
        }
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
