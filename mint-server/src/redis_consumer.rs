//! The Redis path, kept beside the Sv2 link: pools `RPUSH` JSON quote
//! requests onto a list, this task takes them and creates the quotes through
//! the same [`QuoteIssuer`] as the Sv2 path.
//!
//! - **Oldest first.** Pools push at the tail; the consumer takes from the
//!   head, so under a backlog the oldest share is quoted first.
//! - **In batches.** One round trip moves up to [`BATCH`] entries (a Lua
//!   script of `LMOVE`s, atomic), and their quotes are created together,
//!   so the quote writer commits them in one transaction; when the list is
//!   empty, one blocking `BLMOVE` waits for the next entry.
//! - **Crash-safe.** Each entry is moved onto this mint's processing list
//!   and removed from it only once its quote is stored (or it is
//!   dead-lettered); entries a crash left there go back to the head of the
//!   list at the next start, or, if the mint does not come back within its
//!   lease, when another mint on the list notices ([`crate::redis_lease`]).
//!   Repeats are harmless: quote creation is idempotent per share.
//! - **Never dead-lettered for a passing failure.** A request the mint
//!   cannot serve now (busy, database error) waits and is tried again, with
//!   backoff, as the retry policy says; only entries that cannot become
//!   quotes (unreadable, or refused for good) go to the dead-letter list,
//!   with the reason.
//!
//! The task also `SET`s the active keyset, as NUT-01 JSON, at start and on
//! every change, and warns at connect when Redis is configured so that an
//! acknowledged `RPUSH` may not survive a Redis crash.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mint_quote_config::RedisConfig;
use mint_quote_proto::json::JsonQuoteRequest;
use mint_quote_proto::{ActiveKeyset, Backoff, MintQuoteRequest, Retry};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, Direction};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{MintMetrics, Path};
use crate::quotes::{QuoteError, QuoteIssuer};
use crate::redis_lease::{self, ConsumerKeys};

/// How long one `BLMOVE` waits for an entry; also how quickly the task
/// notices shutdown and keyset changes while the list is empty.
const POP_TIMEOUT: Duration = Duration::from_secs(1);
/// Entries taken in one round trip, at most.
pub const BATCH: usize = 256;
/// Backoff between reconnects, and between tries of a request the mint
/// could not serve for the moment.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Moves up to ARGV[1] entries from the head of KEYS[1] to the tail of
/// KEYS[2], atomically, and returns them oldest first.
const TAKE_BATCH: &str = r#"
local moved = {}
for i = 1, tonumber(ARGV[1]) do
  local entry = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not entry then break end
  moved[#moved + 1] = entry
end
return moved
"#;

/// This mint on the list: its keys, and how long its lease lasts.
#[derive(Debug, Clone)]
pub struct ConsumerIdentity {
    /// Its processing list, lease and registry keys.
    pub keys: ConsumerKeys,
    /// How long its lease lasts unrenewed.
    pub lease: Duration,
}

/// Runs the consumer until `shutdown`, reconnecting with backoff whenever
/// Redis is unreachable. The Sv2 path does not depend on it.
pub async fn run(
    config: RedisConfig,
    identity: ConsumerIdentity,
    issuer: QuoteIssuer,
    metrics: MintMetrics,
    mut keyset: watch::Receiver<ActiveKeyset>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_MAX);
    let consumer = Consumer {
        config: &config,
        identity: &identity,
        issuer: &issuer,
        metrics: &metrics,
        shutdown: &shutdown,
    };
    while !shutdown.is_cancelled() {
        match connect(&config).await {
            Ok(mut con) => {
                tracing::info!(url = %config.url, list = %config.create_quote_prefix, consumer = %identity.keys.name, "redis consumer connected");
                backoff.reset();
                warn_about_persistence(&mut con).await;
                match consumer.consume(&mut con, &mut keyset).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(error = %e, "redis connection lost"),
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, attempt = backoff.attempts(), retry_in_ms = delay.as_millis() as u64, "redis unreachable");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
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

/// What Redis's persistence settings mean for an acknowledged `RPUSH`
/// when Redis itself crashes (not when the mint does: the processing list
/// covers that).
pub fn persistence_risk(appendonly: &str, appendfsync: &str) -> Option<&'static str> {
    match (appendonly, appendfsync) {
        ("yes", "always") => None,
        ("yes", "everysec") => Some(
            "appendfsync is everysec: a Redis crash can lose the last second of acknowledged pushes",
        ),
        ("yes", _) => Some(
            "appendfsync is neither always nor everysec: a Redis crash can lose acknowledged pushes the operating system had not yet written",
        ),
        _ => Some(
            "appendonly is off: a Redis crash loses every acknowledged push since the last snapshot",
        ),
    }
}

/// Reads Redis's persistence settings and warns when an acknowledged push
/// could be lost in a Redis crash.
async fn warn_about_persistence(con: &mut MultiplexedConnection) {
    async fn setting(con: &mut MultiplexedConnection, name: &str) -> redis::RedisResult<String> {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(con)
            .await?;
        Ok(pair.get(1).cloned().unwrap_or_default())
    }
    match (
        setting(con, "appendonly").await,
        setting(con, "appendfsync").await,
    ) {
        (Ok(appendonly), Ok(appendfsync)) => match persistence_risk(&appendonly, &appendfsync) {
            Some(risk) => tracing::warn!(
                appendonly,
                appendfsync,
                "{risk}; see \"What survives what\" in docs/operations.md"
            ),
            None => tracing::info!(
                appendonly,
                appendfsync,
                "redis keeps every acknowledged push"
            ),
        },
        (Err(e), _) | (_, Err(e)) => tracing::warn!(
            error = %e,
            "cannot read redis's persistence settings (CONFIG GET); check them by hand"
        ),
    }
}

/// One entry taken off the list, and what became of it.
struct Entry {
    raw: String,
    request: Result<MintQuoteRequest, (String, &'static str)>,
}

struct Consumer<'a> {
    config: &'a RedisConfig,
    identity: &'a ConsumerIdentity,
    issuer: &'a QuoteIssuer,
    metrics: &'a MintMetrics,
    shutdown: &'a CancellationToken,
}

impl Consumer<'_> {
    async fn consume(
        &self,
        con: &mut MultiplexedConnection,
        keyset: &mut watch::Receiver<ActiveKeyset>,
    ) -> redis::RedisResult<()> {
        // The lease first: a mint that holds one is not reaped while it
        // puts back its own list.
        redis_lease::renew(con, &self.identity.keys, self.identity.lease).await?;
        self.recover(con).await?;
        // Renewed and reaping beside the work: a batch the database makes
        // wait (retried for as long as it takes) must not cost the lease.
        let _lease = LeaseTask::start(con.clone(), self.config, self.identity, self.metrics);
        let current = keyset.borrow_and_update().clone();
        publish_keyset(con, self.config, self.issuer, &current).await?;
        let take = redis::Script::new(TAKE_BATCH);
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            if keyset.has_changed().unwrap_or(false) {
                let now = keyset.borrow_and_update().clone();
                publish_keyset(con, self.config, self.issuer, &now).await?;
            }
            let entries = self.take(con, &take).await?;
            if !entries.is_empty() {
                self.process(con, entries).await?;
            }
        }
    }

    /// Entries a crash left in this mint's processing list (and in the
    /// single one of earlier versions) go back to the head of the list, in
    /// their order, to be served first.
    async fn recover(&self, con: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let keys = &self.identity.keys;
        for processing in [keys.legacy_processing(), keys.processing.clone()] {
            let mut recovered = 0;
            while con
                .lmove::<_, _, Option<String>>(
                    &processing,
                    &self.config.create_quote_prefix,
                    Direction::Right,
                    Direction::Left,
                )
                .await?
                .is_some()
            {
                recovered += 1;
            }
            if recovered > 0 {
                self.metrics.redis_requeued(recovered);
                tracing::warn!(
                    recovered,
                    list = %processing,
                    "re-queued entries left in processing by an earlier run"
                );
            }
        }
        Ok(())
    }

    /// Up to [`BATCH`] entries, oldest first, moved onto the processing
    /// list; waits up to [`POP_TIMEOUT`] for one when the list is empty.
    async fn take(
        &self,
        con: &mut MultiplexedConnection,
        take: &redis::Script,
    ) -> redis::RedisResult<Vec<String>> {
        let processing = &self.identity.keys.processing;
        let entries: Vec<String> = take
            .key(&self.config.create_quote_prefix)
            .key(processing)
            .arg(BATCH)
            .invoke_async(con)
            .await?;
        if !entries.is_empty() {
            return Ok(entries);
        }
        let one: Option<String> = con
            .blmove(
                &self.config.create_quote_prefix,
                processing,
                Direction::Left,
                Direction::Right,
                POP_TIMEOUT.as_secs_f64(),
            )
            .await?;
        Ok(one.into_iter().collect())
    }

    /// Makes the quotes of `raw` entries together, retrying those the
    /// mint cannot serve now, and then takes every entry off the
    /// processing list (dead-lettering those that cannot become quotes).
    async fn process(
        &self,
        con: &mut MultiplexedConnection,
        raw: Vec<String>,
    ) -> redis::RedisResult<()> {
        fail::fail_point!("redis-consumer");
        let started = std::time::Instant::now();
        let mut waiting: Vec<Entry> = raw
            .into_iter()
            .map(|raw| {
                let request = JsonQuoteRequest::parse(&raw, 0).map_err(|e| {
                    self.metrics.quote_refused(Path::Redis, e.error_code());
                    (e.to_string(), e.error_code().as_str())
                });
                Entry { raw, request }
            })
            .collect();
        let mut finished: Vec<(String, Option<(String, &'static str)>)> = Vec::new();
        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_MAX);
        while !waiting.is_empty() {
            let outcomes = futures::future::join_all(waiting.iter().map(|entry| async move {
                match &entry.request {
                    Ok(request) => Some(self.issuer.create(request).await),
                    Err(_) => None,
                }
            }))
            .await;
            let mut again = Vec::new();
            for (entry, outcome) in waiting.into_iter().zip(outcomes) {
                let request = match entry.request {
                    Ok(request) => request,
                    Err(unreadable) => {
                        tracing::warn!(reason = %unreadable.0, entry = %truncate(&entry.raw), "dead-lettering an unreadable redis entry");
                        finished.push((entry.raw, Some(unreadable)));
                        continue;
                    }
                };
                match outcome {
                    Some(Ok(quote)) => {
                        self.metrics
                            .quote_answered(Path::Redis, quote.repeated, started.elapsed());
                        tracing::debug!(
                            path = "redis",
                            quote_id = %quote.response.quote_id,
                            header_hash = %quote.response.header_hash,
                            amount = quote.response.amount,
                            repeated = quote.repeated,
                            "quote created"
                        );
                        finished.push((entry.raw, None));
                    }
                    Some(Err(e)) if e.code().retry() == Retry::Never => {
                        self.metrics.quote_refused(Path::Redis, e.code());
                        tracing::warn!(reason = %e, header_hash = %request.header_hash, "dead-lettering a refused redis request");
                        finished.push((entry.raw, Some(refusal(&e))));
                    }
                    // Not now (busy, a database error): it waits.
                    outcome => {
                        if let Some(Err(e)) = outcome {
                            // Counted like an Sv2 refusal: each failed try.
                            self.metrics.quote_refused(Path::Redis, e.code());
                            tracing::debug!(error = %e, header_hash = %request.header_hash, "quote not made now; trying again");
                        }
                        again.push(Entry {
                            raw: entry.raw,
                            request: Ok(request),
                        });
                    }
                }
            }
            waiting = again;
            if !waiting.is_empty() {
                let delay = backoff.next_delay();
                tracing::warn!(
                    waiting = waiting.len(),
                    retry_in_ms = delay.as_millis() as u64,
                    "the mint cannot serve redis requests now; they wait"
                );
                tokio::select! {
                    // Left on the processing list: the next start serves them.
                    _ = self.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
        self.settle(con, finished).await
    }

    /// Takes finished entries off the processing list, dead-lettering
    /// those with a reason, in one round trip.
    async fn settle(
        &self,
        con: &mut MultiplexedConnection,
        finished: Vec<(String, Option<(String, &'static str)>)>,
    ) -> redis::RedisResult<()> {
        if finished.is_empty() {
            return Ok(());
        }
        let processing = &self.identity.keys.processing;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (raw, dead) in &finished {
            if let Some((reason, code)) = dead {
                self.metrics.dead_lettered();
                let letter = json!({
                    "payload": raw,
                    "reason": reason,
                    "code": code,
                    "at": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                })
                .to_string();
                pipe.lpush(&self.config.dead_letter_key, letter).ignore();
            }
            pipe.lrem(processing, 1, raw).ignore();
        }
        pipe.query_async::<()>(con).await
    }
}

/// Renews the lease every third of it and puts back what dead consumers
/// left; stops when dropped (the connection is lost or the consumer ends).
struct LeaseTask(tokio::task::JoinHandle<()>);

impl LeaseTask {
    fn start(
        mut con: MultiplexedConnection,
        config: &RedisConfig,
        identity: &ConsumerIdentity,
        metrics: &MintMetrics,
    ) -> Self {
        let (config, identity, metrics) = (config.clone(), identity.clone(), metrics.clone());
        LeaseTask(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(identity.lease / 3);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match redis_lease::renew(&mut con, &identity.keys, identity.lease).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        consumer = %identity.keys.name,
                        lease_ms = identity.lease.as_millis() as u64,
                        "this mint's redis lease had lapsed: another mint may have re-queued its entries (harmless: one database, one quote per share); lease taken again"
                    ),
                    // The consumer notices a lost connection on its own.
                    Err(e) => tracing::debug!(error = %e, "cannot renew the redis lease"),
                }
                match redis_lease::reap(&mut con, &config, &identity.keys).await {
                    Ok(reaped) => {
                        for (consumer, entries) in reaped {
                            metrics.redis_requeued(entries);
                            tracing::warn!(
                                dead_consumer = %consumer,
                                entries,
                                "re-queued what a redis consumer whose lease expired left in processing"
                            );
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot look for dead redis consumers"),
                }
            }
        }))
    }
}

impl Drop for LeaseTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn refusal(e: &QuoteError) -> (String, &'static str) {
    (e.to_string(), e.code().as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_fsync_per_write_keeps_every_push() {
        assert_eq!(persistence_risk("yes", "always"), None);
        assert!(persistence_risk("yes", "everysec")
            .unwrap()
            .contains("last second"));
        assert!(persistence_risk("no", "always")
            .unwrap()
            .contains("appendonly is off"));
        assert!(persistence_risk("yes", "no").is_some());
    }
}
