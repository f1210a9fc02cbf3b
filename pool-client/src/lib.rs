//! What a mining pool embeds to get paid mint quotes for its shares.
//!
//! [`MintQuoteClient`] keeps one persistent, self-healing Noise Sv2
//! connection to the mint and matches answers to requests by `request_id`;
//! [`RedisPusher`] keeps the Redis `RPUSH` path pools use today; and
//! [`Dispatcher`] sends each share by the paths `pool.toml` enables, so that
//! a failure or stall on one never holds up the other.
#![deny(missing_docs)]

pub mod client;
pub mod dispatch;
pub mod error;
mod link;
pub mod redis_path;
pub mod settings;
pub mod share;
pub mod stats;

pub use client::{ClientConfig, MintQuoteClient};
pub use dispatch::{DispatchOutcome, Dispatcher};
pub use error::QuoteError;
pub use redis_path::{RedisPathError, RedisPusher};
pub use settings::PoolSettings;
pub use share::{Quote, Share};
pub use stats::StatsSnapshot;
