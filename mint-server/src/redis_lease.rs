//! Several mints consuming one Redis list: each has a name, a processing
//! list of its own and a lease; the live ones put back what a dead one
//! left.
//!
//! - **Name.** `redis_consumer.name` in `mint.toml`, or else a random one
//!   the mint creates in its data directory (`redis-consumer`) at its first
//!   start and keeps: a restarted mint finds its own processing list.
//! - **Lease.** The mint holds `<list>:consumer:<name>` with an expiry of
//!   `redis_consumer.lease_ms`, renewed every third of it by a task of its
//!   own (so a mint busy retrying a failing database still renews), and is
//!   listed in the set `<list>:consumers`.
//! - **Recovery.** At every renewal, each mint looks for listed consumers
//!   whose lease has expired and, atomically (one Lua script), moves their
//!   processing lists back to the head of the list, oldest first, and
//!   forgets them. So what a mint that died for good left is served again
//!   by whichever live mint renews first, between one and one and a third
//!   leases after its last renewal. A mint restarted within its lease puts
//!   its own list back itself, at start.
//! - **A lease that lapsed on a live mint** (paused longer than the lease)
//!   means its entries may be served by another too: harmless, because the
//!   mints consuming one list share one database, where a share has one
//!   quote whoever makes it. The mint warns and takes its lease again.
//!
//! The script names keys it computes (the dead consumers' lists), so it
//! needs one Redis server, not a Redis Cluster.

use std::path::Path;
use std::time::Duration;

use mint_quote_config::RedisConfig;
use redis::aio::MultiplexedConnection;

/// The name of the file holding the consumer name the mint made itself.
const NAME_FILE: &str = "redis-consumer";

/// This mint as a consumer of the list.
#[derive(Debug, Clone)]
pub struct ConsumerKeys {
    /// Its name.
    pub name: String,
    /// Its processing list.
    pub processing: String,
    /// Its lease key.
    pub lease: String,
    /// The set of consumers of the list.
    pub registry: String,
    /// The key prefix of every consumer's processing list and lease.
    prefix: String,
}

impl ConsumerKeys {
    /// The keys of consumer `name` of `config`'s list.
    pub fn new(config: &RedisConfig, name: &str) -> Self {
        let prefix = config.create_quote_prefix.clone();
        ConsumerKeys {
            name: name.to_owned(),
            processing: format!("{prefix}:processing:{name}"),
            lease: format!("{prefix}:consumer:{name}"),
            registry: format!("{prefix}:consumers"),
            prefix,
        }
    }

    /// The processing list of versions that had one consumer only; a
    /// mint puts it back at start, so an upgrade strands nothing.
    pub fn legacy_processing(&self) -> String {
        format!("{}:processing", self.prefix)
    }
}

/// Why the consumer name cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// A name with characters that do not belong in a Redis key name.
    #[error("redis_consumer.name {0:?}: 1 to 64 characters of A-Z a-z 0-9 _ . -")]
    Invalid(String),
    /// The name file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether `name` may name a consumer.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The configured name, or the one kept in `data_dir` (made at the first
/// start).
pub fn consumer_name(configured: Option<&str>, data_dir: &Path) -> Result<String, NameError> {
    if let Some(name) = configured {
        return if valid_name(name) {
            Ok(name.to_owned())
        } else {
            Err(NameError::Invalid(name.to_owned()))
        };
    }
    let path = data_dir.join(NAME_FILE);
    let file_error = |source| NameError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = text.trim();
            if valid_name(name) {
                Ok(name.to_owned())
            } else {
                Err(NameError::Invalid(name.to_owned()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            let mut bytes = [0u8; 6];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let name = format!("mint-{}", hex::encode(bytes));
            std::fs::create_dir_all(data_dir).map_err(file_error)?;
            std::fs::write(&path, format!("{name}\n")).map_err(file_error)?;
            Ok(name)
        }
        Err(e) => Err(file_error(e)),
    }
}

/// Takes or renews the lease (KEYS[1], ARGV[1] ms) and lists the consumer
/// (ARGV[2]) in the registry (KEYS[2]); 1 if the lease was still held.
const RENEW: &str = r#"
local held = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return held
"#;

/// For every consumer in the registry (KEYS[1]) but ARGV[2] whose lease
/// (ARGV[1]..':consumer:'..name) is gone: moves its processing list
/// (ARGV[1]..':processing:'..name) to the head of the list (KEYS[2]),
/// oldest first, and forgets it. Returns the names and counts, flat.
const REAP: &str = r#"
local reaped = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if name ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. ':consumer:' .. name) == 0 then
    local processing = ARGV[1] .. ':processing:' .. name
    local moved = 0
    while redis.call('LMOVE', processing, KEYS[2], 'RIGHT', 'LEFT') do
      moved = moved + 1
    end
    redis.call('SREM', KEYS[1], name)
    reaped[#reaped + 1] = name
    reaped[#reaped + 1] = moved
  end
end
return reaped
"#;

/// Renews this consumer's lease; false if it had lapsed (another mint
/// may have put back, and be serving, what this one holds).
pub async fn renew(
    con: &mut MultiplexedConnection,
    keys: &ConsumerKeys,
    lease: Duration,
) -> redis::RedisResult<bool> {
    let held: i64 = redis::Script::new(RENEW)
        .key(&keys.lease)
        .key(&keys.registry)
        .arg(lease.as_millis() as u64)
        .arg(&keys.name)
        .invoke_async(con)
        .await?;
    Ok(held == 1)
}

/// Puts back what consumers with an expired lease left; the consumers
/// and how many entries each had.
pub async fn reap(
    con: &mut MultiplexedConnection,
    config: &RedisConfig,
    keys: &ConsumerKeys,
) -> redis::RedisResult<Vec<(String, u64)>> {
    let flat: Vec<redis::Value> = redis::Script::new(REAP)
        .key(&keys.registry)
        .key(&config.create_quote_prefix)
        .arg(&config.create_quote_prefix)
        .arg(&keys.name)
        .invoke_async(con)
        .await?;
    let mut reaped = Vec::new();
    for pair in flat.chunks(2) {
        if let [name, moved] = pair {
            let name: String = redis::from_redis_value(name.clone())?;
            let moved: u64 = redis::from_redis_value(moved.clone())?;
            reaped.push((name, moved));
        }
    }
    Ok(reaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_a_key_and_nothing_else_does() {
        assert!(valid_name("mint-a"));
        assert!(valid_name("mint_1.eu-west"));
        for bad in ["", "a b", "a:b", "a*", "é", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_made_name_is_kept_across_starts_and_a_configured_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = consumer_name(None, dir.path()).unwrap();
        assert!(valid_name(&first) && first.starts_with("mint-"), "{first}");
        assert_eq!(consumer_name(None, dir.path()).unwrap(), first);
        assert_eq!(consumer_name(Some("east"), dir.path()).unwrap(), "east");
        assert!(consumer_name(Some("a:b"), dir.path()).is_err());
        std::fs::write(dir.path().join(NAME_FILE), "not a name\n").unwrap();
        assert!(consumer_name(None, dir.path()).is_err());
    }
}
