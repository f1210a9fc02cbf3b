//! The Redis path, kept beside the Sv2 link: pools `RPUSH` JSON quote
//! requests onto a list, this task pops them and creates the quotes through
//! the same [`QuoteIssuer`] as the Sv2 path.
//!
//! Popping is crash-safe: `BLMOVE` takes an entry from the same end `BRPOP`
//! did and parks it on a processing list until its quote is stored (or it
//! has been dead-lettered); entries left parked by a crash are moved back at
//! the next start. Repeats are harmless because quote creation is idempotent
//! per share. Entries that cannot become quotes go to the dead-letter list
//! with the reason, never silently away.
//!
//! The task also `SET`s the active keyset, as NUT-01 JSON, at start and on
//! every change.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mint_quote_config::RedisConfig;
use mint_quote_proto::json::JsonQuoteRequest;
use mint_quote_proto::ActiveKeyset;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, Direction};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{MintMetrics, Path};
use crate::quotes::{QuoteError, QuoteIssuer};

/// How long one `BLMOVE` waits for an entry; also how quickly the task
/// notices shutdown and keyset changes.
const POP_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnect delays double from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Attempts at an entry whose quote fails inside the mint, or finds the
/// mint busy, before it is dead-lettered.
const INTERNAL_ATTEMPTS: u32 = 3;

/// The list entries wait on while their quote is being made.
pub fn processing_key(config: &RedisConfig) -> String {
    format!("{}:processing", config.create_quote_prefix)
}

/// Runs the consumer until `shutdown`, reconnecting with backoff whenever
/// Redis is unreachable. The Sv2 path does not depend on it.
pub async fn run(
    config: RedisConfig,
    issuer: QuoteIssuer,
    metrics: MintMetrics,
    mut keyset: watch::Receiver<ActiveKeyset>,
    shutdown: CancellationToken,
) {
    let mut delay = BACKOFF_FIRST;
    let mut attempt: u32 = 0;
    while !shutdown.is_cancelled() {
        match connect(&config).await {
            Ok(mut con) => {
                tracing::info!(url = %config.url, list = %config.create_quote_prefix, "redis consumer connected");
                delay = BACKOFF_FIRST;
                attempt = 0;
                match consume(&mut con, &config, &issuer, &metrics, &mut keyset, &shutdown).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(error = %e, "redis connection lost"),
                }
            }
            Err(e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, retry_in_ms = delay.as_millis() as u64, "redis unreachable");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
    tracing::info!("redis consumer stopped");
}

async fn connect(config: &RedisConfig) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(config.url.as_str())?;
    // A blocking pop must not be cut short by the client's default 500 ms
    // response timeout: a reply dropped that way would be an entry lost.
    let options = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(POP_TIMEOUT + Duration::from_secs(10)));
    client
        .get_multiplexed_async_connection_with_config(&options)
        .await
}

async fn consume(
    con: &mut MultiplexedConnection,
    config: &RedisConfig,
    issuer: &QuoteIssuer,
    metrics: &MintMetrics,
    keyset: &mut watch::Receiver<ActiveKeyset>,
    shutdown: &CancellationToken,
) -> redis::RedisResult<()> {
    let processing = processing_key(config);
    // Entries a crash left half-done go back to be popped first.
    let mut recovered = 0;
    while let Some(_entry) = con
        .lmove::<_, _, Option<String>>(
            &processing,
            &config.create_quote_prefix,
            Direction::Left,
            Direction::Right,
        )
        .await?
    {
        recovered += 1;
    }
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "re-queued entries left in processing by an earlier run"
        );
    }
    let current = keyset.borrow_and_update().clone();
    publish_keyset(con, config, issuer, &current).await?;

    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if keyset.has_changed().unwrap_or(false) {
            let now = keyset.borrow_and_update().clone();
            publish_keyset(con, config, issuer, &now).await?;
        }
        let entry: Option<String> = con
            .blmove(
                &config.create_quote_prefix,
                &processing,
                Direction::Right,
                Direction::Left,
                POP_TIMEOUT.as_secs_f64(),
            )
            .await?;
        let Some(entry) = entry else { continue };
        if let Some((reason, code)) = handle_entry(issuer, metrics, &entry).await {
            metrics.dead_lettered();
            let dead = json!({
                "payload": entry,
                "reason": reason,
                "code": code,
                "at": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            })
            .to_string();
            let _: usize = con.lpush(&config.dead_letter_key, dead).await?;
        }
        let _: usize = con.lrem(&processing, 1, &entry).await?;
    }
}

/// Makes the quote for one entry. `Some((reason, code))` when the entry
/// must go to the dead-letter list.
async fn handle_entry(
    issuer: &QuoteIssuer,
    metrics: &MintMetrics,
    entry: &str,
) -> Option<(String, &'static str)> {
    let started = std::time::Instant::now();
    let request = match JsonQuoteRequest::parse(entry, 0) {
        Ok(request) => request,
        Err(e) => {
            metrics.quote_refused(Path::Redis, e.error_code());
            tracing::warn!(reason = %e, entry = %truncate(entry), "dead-lettering an unreadable redis entry");
            return Some((e.to_string(), e.error_code().as_str()));
        }
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match issuer.create(&request).await {
            Ok(quote) => {
                metrics.quote_answered(Path::Redis, quote.repeated, started.elapsed());
                tracing::info!(
                    path = "redis",
                    quote_id = %quote.response.quote_id,
                    header_hash = %quote.response.header_hash,
                    amount = quote.response.amount,
                    repeated = quote.repeated,
                    "quote created"
                );
                return None;
            }
            Err(e @ (QuoteError::Internal(_) | QuoteError::Busy(_)))
                if attempt < INTERNAL_ATTEMPTS =>
            {
                tracing::warn!(error = %e, attempt, header_hash = %request.header_hash, "quote not made now; retrying");
                tokio::time::sleep(BACKOFF_FIRST * attempt).await;
            }
            Err(e) => {
                metrics.quote_refused(Path::Redis, e.code());
                tracing::warn!(reason = %e, header_hash = %request.header_hash, "dead-lettering a refused redis request");
                return Some((e.to_string(), e.code().as_str()));
            }
        }
    }
}

/// Writes the active keyset as NUT-01 JSON (id, unit, active, fee, keys).
async fn publish_keyset(
    con: &mut MultiplexedConnection,
    config: &RedisConfig,
    issuer: &QuoteIssuer,
    active: &ActiveKeyset,
) -> redis::RedisResult<()> {
    let keyset = issuer
        .mint()
        .pubkeys()
        .keysets
        .into_iter()
        .find(|k| k.id.to_bytes() == active.keyset_id.as_bytes());
    let Some(keyset) = keyset else {
        tracing::error!(keyset_id = %active.keyset_id, "active keyset has no keys; not published");
        return Ok(());
    };
    match serde_json::to_string(&keyset) {
        Ok(text) => {
            let _: () = con.set(&config.active_keyset_prefix, text).await?;
            tracing::info!(key = %config.active_keyset_prefix, keyset_id = %active.keyset_id, "published the active keyset to redis");
        }
        Err(e) => tracing::error!(error = %e, "cannot serialize the active keyset"),
    }
    Ok(())
}

fn truncate(entry: &str) -> &str {
    let mut end = entry.len().min(200);
    while !entry.is_char_boundary(end) {
        end -= 1;
    }
    &entry[..end]
}
