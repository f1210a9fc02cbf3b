//! Sending each share by every path `pool.toml` enables.
//!
//! The paths run concurrently and independently, each bounded by its own
//! deadline: a failure or a stall on one never fails or delays the other's
//! work, and the outcome of each is reported. Sending a share by both paths
//! is safe: the mint makes one quote per share.

use std::sync::Arc;

use crate::client::MintQuoteClient;
use crate::error::QuoteError;
use crate::redis_path::{RedisPathError, RedisPusher};
use crate::share::{Quote, Share};

/// What happened to one share on each enabled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchOutcome {
    /// The Sv2 path's result, if it is enabled.
    pub sv2: Option<Result<Quote, QuoteError>>,
    /// The Redis path's result, if it is enabled. Redis gives no quote back:
    /// success means the request is queued for the mint.
    pub redis: Option<Result<(), RedisPathError>>,
}

/// Sends shares by the enabled paths.
#[derive(Clone, Default)]
pub struct Dispatcher {
    sv2: Option<Arc<MintQuoteClient>>,
    redis: Option<Arc<RedisPusher>>,
}

impl Dispatcher {
    /// A dispatcher over the given paths; `None` disables a path.
    pub fn new(sv2: Option<Arc<MintQuoteClient>>, redis: Option<Arc<RedisPusher>>) -> Self {
        Dispatcher { sv2, redis }
    }

    /// The Sv2 client, if enabled.
    pub fn sv2(&self) -> Option<&Arc<MintQuoteClient>> {
        self.sv2.as_ref()
    }

    /// Sends `share` by every enabled path at once and reports each result.
    /// Bounded by the slower path's deadline; a pool that must not wait at
    /// all spawns this.
    pub async fn dispatch(&self, share: &Share) -> DispatchOutcome {
        let sv2 = async {
            match &self.sv2 {
                Some(client) => Some(client.request_quote(share).await),
                None => None,
            }
        };
        let redis = async {
            match &self.redis {
                Some(pusher) => Some(pusher.push(share).await),
                None => None,
            }
        };
        let (sv2, redis) = tokio::join!(sv2, redis);
        DispatchOutcome { sv2, redis }
    }
}
