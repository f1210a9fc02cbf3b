//! The Redis path pools use today, kept beside the Sv2 link: `RPUSH` of the
//! JSON request onto `create_quote_prefix`, and the active keyset read from
//! `active_keyset_prefix`.

use std::time::Duration;

use mint_quote_config::RedisConfig;
use mint_quote_proto::json::JsonQuoteRequest;
use mint_quote_proto::KeysetId;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use tokio::sync::Mutex;

use crate::share::Share;

/// Why the Redis path failed for one share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisPathError {
    /// Redis refused or the connection failed.
    #[error("redis: {0}")]
    Redis(String),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The active keyset key holds something unreadable.
    #[error("{key} does not hold a keyset: {reason}")]
    BadKeyset {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Pushes quote requests onto the Redis list. Reconnects on the next call
/// after a failure.
pub struct RedisPusher {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    config: RedisConfig,
    timeout: Duration,
}

impl RedisPusher {
    /// A pusher for `config`; each operation gives up after `timeout`.
    pub fn new(config: RedisConfig, timeout: Duration) -> Result<Self, RedisPathError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| RedisPathError::Redis(e.to_string()))?;
        Ok(RedisPusher {
            client,
            connection: Mutex::new(None),
            config,
            timeout,
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisPathError> {
        let mut cached = self.connection.lock().await;
        if let Some(con) = cached.as_ref() {
            return Ok(con.clone());
        }
        let con = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| RedisPathError::Redis(e.to_string()))?;
        *cached = Some(con.clone());
        Ok(con)
    }

    async fn forget_connection(&self) {
        *self.connection.lock().await = None;
    }

    /// Runs `op` on a connection under the timeout; a failure drops the
    /// cached connection so the next call reconnects.
    async fn with_connection<T, F, Fut>(&self, op: F) -> Result<T, RedisPathError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let result = tokio::time::timeout(self.timeout, async {
            let con = self.connection().await?;
            op(con)
                .await
                .map_err(|e| RedisPathError::Redis(e.to_string()))
        })
        .await
        .unwrap_or(Err(RedisPathError::Timeout(self.timeout)));
        if result.is_err() {
            self.forget_connection().await;
        }
        result
    }

    /// `RPUSH`es the JSON request for `share`.
    pub async fn push(&self, share: &Share) -> Result<(), RedisPathError> {
        let json = JsonQuoteRequest::from_request(&share.to_request(0)).to_json();
        let key = self.config.create_quote_prefix.clone();
        self.with_connection(|mut con| async move { con.rpush::<_, _, usize>(key, json).await })
            .await
            .map(|_| ())
    }

    /// The keyset id the mint published, if any.
    pub async fn active_keyset_id(&self) -> Result<Option<KeysetId>, RedisPathError> {
        let key = self.config.active_keyset_prefix.clone();
        let key_for_op = key.clone();
        let text: Option<String> = self
            .with_connection(|mut con| async move { con.get(key_for_op).await })
            .await?;
        let Some(text) = text else { return Ok(None) };
        let bad = |reason: String| RedisPathError::BadKeyset {
            key: key.clone(),
            reason,
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let id = json
            .get("id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("no \"id\" string".into()))?;
        id.parse()
            .map(Some)
            .map_err(|e: mint_quote_proto::ValueError| bad(e.to_string()))
    }
}
