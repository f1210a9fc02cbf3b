//! What the client needs to know: the mints, the keys, the limits.

use std::time::Duration;

use mint_quote_config::dev_keys::{self, PublishedKeyUse};
use mint_quote_config::{BusyPolicy, MintSource};
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey};

use crate::outbox::OutboxConfig;

/// One mint the client keeps a connection to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintEndpoint {
    /// `host:port` of the mint's Sv2 listener.
    pub address: String,
    /// The mint's authority key; any other server at `address` is refused.
    pub key: AuthorityPublicKey,
    /// Where `key` was configured, as `section.key`, for warnings.
    pub key_setting: String,
}

impl MintEndpoint {
    /// The mint at `address` with `key`, configured as the one mint of
    /// `pool.toml` (`sv2_messaging.mint_authority_pubkey`).
    pub fn new(address: impl Into<String>, key: AuthorityPublicKey) -> Self {
        MintEndpoint {
            address: address.into(),
            key,
            key_setting: MintSource::Single.pubkey_key(),
        }
    }
}

/// Everything the client needs to know.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The mints, at least one: the client keeps a connection to each and
    /// sends every share to one of them (see [`crate::client`]).
    pub mints: Vec<MintEndpoint>,
    /// This pool's key, which the mint must allow.
    pub pool_keypair: AuthorityKeypair,
    /// This pool's name, for the mint's logs.
    pub device_id: String,
    /// Handshake timeout, frame limit and write timeout.
    pub transport: TransportConfig,
    /// Time a call waits for its quote; past it the call says the share is
    /// pending, and the client goes on sending it.
    pub request_deadline: Duration,
    /// Requests on the wire at once, per connection (so per mint).
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
    /// configuration uses: the pool's own key, or a mint key it pins
    /// (then anyone can pose as that mint).
    pub fn published_keys(&self) -> Vec<PublishedKeyUse> {
        let mut uses = Vec::new();
        if dev_keys::is_published(&self.pool_keypair.public()) {
            uses.push(PublishedKeyUse {
                key: "pool_secret_key".into(),
                public_key: self.pool_keypair.public(),
            });
        }
        for mint in &self.mints {
            if dev_keys::is_published(&mint.key) {
                uses.push(PublishedKeyUse {
                    key: mint.key_setting.clone(),
                    public_key: mint.key,
                });
            }
        }
        uses
    }
}
