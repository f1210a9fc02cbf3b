//! `config/shared/pool.toml`: the sections both processes read.

use std::path::Path;
use std::time::Duration;

use mint_quote_proto::constants::{
    DEFAULT_MAX_PAYLOAD_LEN, MAX_PAYLOAD_LEN_LIMIT, MIN_PAYLOAD_LEN_LIMIT,
};
use mint_quote_proto::AuthorityPublicKey;
use serde::Deserialize;

use crate::load::{load_toml, parse_toml, ConfigError};
use crate::mints::{self, ConfiguredMint, MintEntry, MintSource, DEFAULT_MINT_ADDRESS};
use crate::range::{check_ranges, Range};

/// The whole shared file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    /// The direct Sv2 link.
    #[serde(default)]
    pub sv2_messaging: Sv2MessagingConfig,
    /// The Redis path.
    #[serde(default)]
    pub redis: RedisConfig,
}

/// What the pool does when its bound on requests in flight is reached.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum BusyPolicy {
    /// Wait for a slot (until the request's deadline).
    #[default]
    Wait,
    /// Fail the request at once with a "busy" error.
    Fail,
}

/// `[sv2_messaging]`: the direct, Noise-encrypted Sv2 link.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Sv2MessagingConfig {
    /// Whether the link is used. The mint listens and the pool connects only
    /// when this is true.
    pub enabled: bool,
    /// `host:port` the mint listens on and the pool connects to, when the
    /// pool uses one mint; absent, [`DEFAULT_MINT_ADDRESS`] (unless
    /// `mints` is given). Read both forms through [`Self::endpoints`].
    pub mint_address: Option<String>,
    /// The mint's authority public key (Sv2 base58check form), when the
    /// pool uses one mint. The pool pins it; the mint checks that its
    /// secret key matches it.
    pub mint_authority_pubkey: Option<String>,
    /// `[[sv2_messaging.mints]]`: several mints, each with its address and
    /// key, instead of `mint_address` and `mint_authority_pubkey`.
    pub mints: Option<Vec<MintEntry>>,
    /// Largest frame payload either side accepts, in bytes.
    pub max_payload_len: usize,
    /// Time allowed for the Noise handshake and the connection setup, in ms.
    pub handshake_timeout_ms: u64,
    /// Pool: time a quote request may take, end to end, in ms.
    pub request_deadline_ms: u64,
    /// Pool: bound on requests in flight on the connection.
    pub max_in_flight: usize,
    /// Pool: what to do when `max_in_flight` is reached.
    pub when_busy: BusyPolicy,
    /// Pool: first reconnect delay, in ms.
    pub reconnect_initial_ms: u64,
    /// Pool: longest reconnect delay, in ms.
    pub reconnect_max_ms: u64,
    /// Pool: send a `Ping` when nothing has been received for this long,
    /// in ms.
    pub keepalive_interval_ms: u64,
    /// Both: a connection on which nothing has been received for this long
    /// is dead and is closed, in ms.
    pub keepalive_timeout_ms: u64,
    /// Both: time one write may take before the connection is dropped, in
    /// ms.
    pub write_timeout_ms: u64,
}

impl Default for Sv2MessagingConfig {
    fn default() -> Self {
        Sv2MessagingConfig {
            enabled: true,
            mint_address: None,
            mint_authority_pubkey: None,
            mints: None,
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
            handshake_timeout_ms: 10_000,
            request_deadline_ms: 30_000,
            max_in_flight: 1024,
            when_busy: BusyPolicy::Wait,
            reconnect_initial_ms: 100,
            reconnect_max_ms: 10_000,
            keepalive_interval_ms: 5_000,
            keepalive_timeout_ms: 15_000,
            write_timeout_ms: 10_000,
        }
    }
}

impl Sv2MessagingConfig {
    /// The documented range of every numeric key of the section.
    pub const RANGES: [Range; 9] = [
        Range::new(
            "sv2_messaging.max_payload_len",
            MIN_PAYLOAD_LEN_LIMIT as u64,
            MAX_PAYLOAD_LEN_LIMIT as u64,
        ),
        Range::new("sv2_messaging.handshake_timeout_ms", 100, 60_000),
        Range::new("sv2_messaging.request_deadline_ms", 100, 3_600_000),
        Range::new("sv2_messaging.max_in_flight", 1, 65_536),
        Range::new("sv2_messaging.reconnect_initial_ms", 1, 60_000),
        Range::new("sv2_messaging.reconnect_max_ms", 1, 600_000),
        Range::new("sv2_messaging.keepalive_interval_ms", 100, 600_000),
        Range::new("sv2_messaging.keepalive_timeout_ms", 300, 3_600_000),
        Range::new("sv2_messaging.write_timeout_ms", 100, 600_000),
    ];

    /// Each numeric key's value beside its range.
    fn ranges(&self) -> [(Range, u64); 9] {
        let [payload, handshake, deadline, in_flight, initial, max, interval, timeout, write] =
            Self::RANGES;
        [
            (payload, self.max_payload_len as u64),
            (handshake, self.handshake_timeout_ms),
            (deadline, self.request_deadline_ms),
            (in_flight, self.max_in_flight as u64),
            (initial, self.reconnect_initial_ms),
            (max, self.reconnect_max_ms),
            (interval, self.keepalive_interval_ms),
            (timeout, self.keepalive_timeout_ms),
            (write, self.write_timeout_ms),
        ]
    }

    /// The keepalive interval as a `Duration`.
    pub fn keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.keepalive_interval_ms)
    }

    /// The keepalive timeout as a `Duration`.
    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }

    /// The write timeout as a `Duration`.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// The handshake timeout as a `Duration`.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// The request deadline as a `Duration`.
    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }

    /// The parsed `mint_authority_pubkey` (the single form), if given.
    pub fn mint_key(&self, path: &Path) -> Result<Option<AuthorityPublicKey>, ConfigError> {
        let key = MintSource::Single.pubkey_key();
        self.mint_authority_pubkey
            .as_deref()
            .map(|text| mints::parse_key(path, &key, text))
            .transpose()
    }

    /// Every mint of the file, in the order written, whichever form names
    /// them: the one of `mint_address` and `mint_authority_pubkey`, or
    /// the entries of `[[sv2_messaging.mints]]`. Refuses both forms at
    /// once, an empty or too long list, an empty or repeated address and
    /// a key that does not parse, naming `path` and the key.
    pub fn endpoints(&self, path: &Path) -> Result<Vec<ConfiguredMint>, ConfigError> {
        let Some(entries) = &self.mints else {
            let address = self.mint_address.as_deref().unwrap_or(DEFAULT_MINT_ADDRESS);
            if address.trim().is_empty() {
                return Err(ConfigError::invalid(
                    path,
                    MintSource::Single.address_key(),
                    "must not be empty",
                ));
            }
            return Ok(vec![ConfiguredMint {
                address: address.to_owned(),
                authority_pubkey: self.mint_key(path)?,
                source: MintSource::Single,
            }]);
        };
        let single = [
            ("mint_address", self.mint_address.is_some()),
            (
                "mint_authority_pubkey",
                self.mint_authority_pubkey.is_some(),
            ),
        ];
        if let Some((given, _)) = single.iter().find(|(_, given)| *given) {
            return Err(ConfigError::invalid(
                path,
                format!("sv2_messaging.{given}"),
                "is given together with [[sv2_messaging.mints]]: name one mint with mint_address and mint_authority_pubkey, or several with [[sv2_messaging.mints]] tables (address and authority_pubkey each), not both",
            ));
        }
        mints::resolve_list(path, entries)
    }
}

/// `[redis]`: the list the pool pushes requests onto and the mint pops.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Whether the Redis path is used.
    pub enabled: bool,
    /// Redis url, such as `redis://127.0.0.1:6379`.
    pub url: String,
    /// List the pool `RPUSH`es quote requests onto; the mint takes the oldest first.
    pub create_quote_prefix: String,
    /// Key the mint `SET`s its active keyset at, as JSON.
    pub active_keyset_prefix: String,
    /// List the mint moves unreadable requests to, with the reason.
    pub dead_letter_key: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            enabled: false,
            url: "redis://127.0.0.1:6379".into(),
            create_quote_prefix: "mint:quotes:create".into(),
            active_keyset_prefix: "mint:keyset:active".into(),
            dead_letter_key: "mint:quotes:dead".into(),
        }
    }
}

impl SharedConfig {
    /// The documented range of every numeric key of the shared file.
    pub const RANGES: [Range; 9] = Sv2MessagingConfig::RANGES;

    /// Reads and checks the shared file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config: SharedConfig = load_toml(path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses and checks `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: SharedConfig = parse_toml(path, text)?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let s = &self.sv2_messaging;
        s.endpoints(path)?;
        check_ranges(path, &s.ranges())?;
        if s.keepalive_timeout_ms < 3 * s.keepalive_interval_ms {
            return Err(ConfigError::invalid(
                path,
                "sv2_messaging.keepalive_timeout_ms",
                format!(
                    "{} is less than three times keepalive_interval_ms ({}): a live connection would be taken for dead",
                    s.keepalive_timeout_ms, s.keepalive_interval_ms
                ),
            ));
        }
        if s.reconnect_max_ms < s.reconnect_initial_ms {
            return Err(ConfigError::invalid(
                path,
                "sv2_messaging.reconnect_max_ms",
                format!(
                    "{} is less than reconnect_initial_ms ({})",
                    s.reconnect_max_ms, s.reconnect_initial_ms
                ),
            ));
        }
        let r = &self.redis;
        if r.enabled
            && !(r.url.starts_with("redis://")
                || r.url.starts_with("rediss://")
                || r.url.starts_with("unix://"))
        {
            return Err(ConfigError::invalid(
                path,
                "redis.url",
                format!("{:?} is not a redis:// url", r.url),
            ));
        }
        for (key, value) in [
            ("redis.create_quote_prefix", &r.create_quote_prefix),
            ("redis.active_keyset_prefix", &r.active_keyset_prefix),
            ("redis.dead_letter_key", &r.dead_letter_key),
        ] {
            if value.is_empty() {
                return Err(ConfigError::invalid(path, key, "must not be empty"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SharedConfig, ConfigError> {
        SharedConfig::parse(Path::new("pool.toml"), text)
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../config/shared/pool.toml");
        let config = parse(text).unwrap();
        assert!(config.sv2_messaging.enabled);
        assert!(config
            .sv2_messaging
            .mint_key(Path::new("x"))
            .unwrap()
            .is_some());
        assert_eq!(config.redis.create_quote_prefix, "mint:quotes:create");
    }

    #[test]
    fn an_empty_file_gives_working_defaults() {
        let config = parse("").unwrap();
        let endpoints = config.sv2_messaging.endpoints(Path::new("x")).unwrap();
        assert_eq!(
            endpoints,
            vec![ConfiguredMint {
                address: "127.0.0.1:34260".into(),
                authority_pubkey: None,
                source: MintSource::Single,
            }]
        );
        assert!(!config.redis.enabled);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name_and_the_file() {
        let err = parse("[sv2_messaging]\nmint_adress = \"x:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pool.toml"), "{err}");
        assert!(err.contains("mint_adress"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = parse("[sv2_messaging]\nmint_authority_pubkey = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sv2_messaging.mint_authority_pubkey"), "{err}");
        let err = parse("[sv2_messaging]\nmax_payload_len = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_payload_len"), "{err}");
        let err = parse("[redis]\nenabled = true\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis.url"), "{err}");
        let err = parse("[sv2_messaging]\nmax_in_flight = -1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_in_flight"), "{err}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = SharedConfig::load(Path::new("/nonexistent/pool.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/pool.toml"), "{err}");
    }
}
