//! What a mining pool embeds to get paid mint quotes for its shares.
//!
//! [`MintQuoteClient`] keeps a persistent, self-healing Noise Sv2
//! connection to the mint (or to each of several mints, failing over
//! between them), matches answers to requests by `request_id`, and
//! holds every share in a durable outbox until the mint has answered it:
//! each share ends, for the pool, in one quote or one definite refusal,
//! whatever fails meanwhile (see [`client`]). [`RedisPusher`] keeps the
//! Redis `RPUSH` path pools use today; [`Dispatcher`] sends each share by
//! the paths `pool.toml` enables, so that a failure or stall on one never
//! holds up the other.
//!
//! Layers, from the pool's side inwards: `client` (the handle) starts
//! `link` (the task that does input and output), which drives `machine`
//! (every decision, no input or output) and writes to `outbox` (the store).
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod dispatch;
pub mod error;
mod link;
mod machine;
pub mod outbox;
pub mod redis_path;
pub mod settings;
pub mod settled;
pub mod share;
pub mod stats;

pub use client::MintQuoteClient;
pub use config::{ClientConfig, MintEndpoint};
pub use dispatch::{DispatchOutcome, Dispatcher};
pub use error::{PendingReason, QuoteError};
pub use outbox::{OutboxConfig, OutboxError};
pub use redis_path::{RedisPathError, RedisPusher};
pub use settings::PoolSettings;
pub use settled::{Outcome, Refusal, Settled};
pub use share::{Quote, Share};
pub use stats::{EndpointSnapshot, StatsSnapshot};
