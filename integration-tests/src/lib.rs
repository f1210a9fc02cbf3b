//! The harness the end-to-end tests share: a mint started in-process on a
//! fresh directory, a Noise connection that runs the real setup, shares and
//! locking keys, and a real `redis-server` on a free port.
//!
//! Everything here is real: real TCP, real Noise, a real CDK mint on a real
//! SQLite file (or a real PostgreSQL server: [`postgres`]), a real Redis.
//! Nothing is mocked.

pub mod attack;
pub mod attack_process;
mod child;
pub mod conn;
pub mod http;
pub mod journal;
pub mod mint;
pub mod mint_db;
pub mod mint_process;
pub mod net;
pub mod pool_sim;
pub mod pool_sim_process;
pub mod postgres;
pub mod redis_server;
pub mod relay;
pub mod shares;
pub mod wallet;

/// How long a test waits for any one answer before it fails.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub use conn::{setup_connection, Conn};
pub use mint::{
    client_config, dev_mint_key, dev_pool, example_settings, rotate_keyset, settings, start_client,
    start_mint, start_mint_with_redis, stored_quotes, wait_until_answered,
};
pub use mint_db::MintDb;
pub use mint_process::{MintProcess, MintProcessConfig};
pub use redis_server::{push_request, RedisServer};
pub use shares::{fresh_share, locking_key, request};
