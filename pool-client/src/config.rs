//! What the client needs to know: the mint, the keys, the limits.

use std::time::Duration;

use mint_quote_config::dev_keys::{self, PublishedKeyUse};
use mint_quote_config::BusyPolicy;
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey};

use crate::outbox::OutboxConfig;

/// Everything the client needs to know.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the mint's Sv2 listener.
    pub mint_address: String,
    /// The mint's authority key; any other server is refused.
    pub mint_key: AuthorityPublicKey,
    /// This pool's key, which the mint must allow.
    pub pool_keypair: AuthorityKeypair,
    /// This pool's name, for the mint's logs.
    pub device_id: String,
    /// Handshake timeout, frame limit and write timeout.
    pub transport: TransportConfig,
    /// Time a call waits for its quote; past it the call says the share is
    /// pending, and the client goes on sending it.
    pub request_deadline: Duration,
    /// Requests on the wire at once, per connection.
    pub max_in_flight: usize,
    /// What a call does when the outbox is full: wait for room (until its
    /// deadline) or give up at once.
    pub when_busy: BusyPolicy,
    /// First reconnect delay.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Send a `Ping` when nothing has been received for this long.
    pub keepalive_interval: Duration,
    /// A connection on which nothing has been received for this long is
    /// dead: it is closed, and its requests sent again on a new one.
    pub keepalive_timeout: Duration,
    /// Where shares wait for their answers.
    pub outbox: OutboxConfig,
}

impl ClientConfig {
    /// The development keys (published in the repository) this
    /// configuration uses: the pool's own key, or the mint key it pins
    /// (then anyone can pose as the mint).
    pub fn published_keys(&self) -> Vec<PublishedKeyUse> {
        let mut uses = Vec::new();
        if dev_keys::is_published(&self.pool_keypair.public()) {
            uses.push(PublishedKeyUse {
                key: "pool_secret_key".into(),
                public_key: self.pool_keypair.public(),
            });
        }
        if dev_keys::is_published(&self.mint_key) {
            uses.push(PublishedKeyUse {
                key: "sv2_messaging.mint_authority_pubkey".into(),
                public_key: self.mint_key,
            });
        }
        uses
    }
}
