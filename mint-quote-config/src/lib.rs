//! Configuration shared by the pool and the mint, and the one way this
//! project reads a TOML file.
//!
//! `config/shared/pool.toml` holds what both processes must agree on: where
//! the mint listens and its authority public key, or those of several mints
//! (`[sv2_messaging]`), and
//! the Redis url and key names (`[redis]`). Both read the same file, so a
//! change is made once. Secrets never live here: the mint's secret key is in
//! `mint.toml`, the pool's in its own file.

pub mod dev_keys;
mod load;
mod mints;
mod range;
mod shared;

pub use load::{load_toml, parse_toml, ConfigError};
pub use mints::{ConfiguredMint, MintEntry, MintSource, DEFAULT_MINT_ADDRESS, MINTS_ALLOWED};
pub use range::{check_ranges, Range};
pub use shared::{BusyPolicy, RedisConfig, SharedConfig, Sv2MessagingConfig};
