//! One measurement each: the in-process ceiling, the Sv2 path at a given
//! concurrency or offered load, the Redis path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use integration_tests::{client_config, RedisServer};
use mint_quote_proto::KeysetId;
use mint_server::app::{self, RunningMint};
use mint_server::config::DatabaseKind;
use pool_client::{MintQuoteClient, Share};

use crate::stats::{Latency, Recorder};

/// A mint started in this process on a fresh directory.
pub struct Mint {
    pub running: RunningMint,
    pub keyset: KeysetId,
    _dir: tempfile::TempDir,
}

pub async fn start_mint(database: DatabaseKind, redis_url: Option<String>) -> anyhow::Result<Mint> {
    let dir = tempfile::tempdir()?;
    let mut settings = integration_tests::example_settings(dir.path());
    settings.mint.mint.database = database;
    settings.mint.mint.max_pending_quotes = 1 << 20;
    settings.mint.listener.max_in_flight_per_connection = 1024;

    if let Some(url) = redis_url {
        settings.shared.redis.enabled = true;
        settings.shared.redis.url = url;
    }
    let running = app::start(settings).await.context("starting the mint")?;
    let keysets = running.mint.get_active_keysets();
    let id = keysets.values().next().context("an active keyset")?;
    let keyset = KeysetId::from_slice(&id.to_bytes())?;
    Ok(Mint {
        running,
        keyset,
        _dir: dir,
    })
}

/// Share number `n`: a fresh header hash, and one of a few locking keys
/// made once, so that generating keys (a scalar multiplication each) does
/// not compete with the mint for the CPU while it is measured.
pub fn share(keyset: &KeysetId, n: u64) -> Share {
    static KEYS: std::sync::OnceLock<Vec<mint_quote_proto::LockingKey>> =
        std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..64)
            .map(|_| integration_tests::locking_key().1)
            .collect()
    });
    Share {
        amount: 1 + n % 1000,
        unit: mint_quote_proto::Unit::hash(),
        header_hash: integration_tests::fresh_share(),
        description: None,
        locking_key: keys[(n % 64) as usize],
        keyset_id: keyset.clone(),
    }
}

/// Runs `count` jobs with `concurrency` workers; returns quotes per second.
async fn closed_loop<F, Fut>(count: u64, concurrency: usize, job: F) -> anyhow::Result<f64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (job, next) = (job.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                job(n).await?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Quotes per second calling the quote issuer directly: no network.
pub async fn ceiling(
    database: DatabaseKind,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let mint = start_mint(database, None).await?;
    let issuer = mint.running.issuer.clone();
    let keyset = mint.keyset.clone();
    let rate = closed_loop(count, concurrency, move |n| {
        let (issuer, request) = (issuer.clone(), share(&keyset, n).to_request(0));
        async move {
            issuer.create(&request).await?;
            Ok(())
        }
    })
    .await?;
    mint.running.stop().await;
    Ok(rate)
}

/// Where the pool client keeps its outbox in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    /// In memory: the transport alone.
    Memory,
    /// A redb file in a fresh directory, as a pool runs it (every share
    /// stored before it is sent, commits grouped).
    File,
}

/// A pool client of `mint` with `max_in_flight`; an outbox file lives in
/// the returned directory, removed when it drops.
pub async fn client_for(
    mint: &Mint,
    max_in_flight: usize,
    outbox: Outbox,
) -> anyhow::Result<(Arc<MintQuoteClient>, tempfile::TempDir)> {
    let address = mint.running.sv2_addr.context("sv2 enabled")?.to_string();
    let mut config = client_config(&address);
    config.max_in_flight = max_in_flight.max(1);
    let dir = tempfile::tempdir()?;
    if outbox == Outbox::File {
        config.outbox.path = Some(dir.path().join("outbox.redb"));
    }
    let client = Arc::new(integration_tests::start_client(config));
    if !client.wait_connected(Duration::from_secs(10)).await {
        bail!("the client did not connect");
    }
    Ok((client, dir))
}

/// Quotes per second from the pool client over loopback Noise.
pub async fn sv2(
    database: DatabaseKind,
    count: u64,
    concurrency: usize,
    outbox: Outbox,
) -> anyhow::Result<f64> {
    let mint = start_mint(database, None).await?;
    let (client, _dir) = client_for(&mint, concurrency, outbox).await?;
    let keyset = mint.keyset.clone();
    let worker_client = client.clone();
    let rate = closed_loop(count, concurrency, move |n| {
        let (client, s) = (worker_client.clone(), share(&keyset, n));
        async move {
            client.request_quote(&s).await?;
            Ok(())
        }
    })
    .await?;
    client.shutdown();
    mint.running.stop().await;
    Ok(rate)
}

/// Latency at a fixed offered load: one request every 1/rate seconds,
/// whatever the answers do, for `seconds`.
pub async fn sv2_latency(
    database: DatabaseKind,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<(Latency, f64)> {
    let mint = start_mint(database, None).await?;
    let (client, _outbox) = client_for(&mint, 4096, Outbox::Memory).await?;
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        tokio::time::sleep_until(started + interval.mul_f64(n as f64)).await;
        let (client, s) = (client.clone(), share(&mint.keyset, n));
        tasks.spawn(async move {
            let sent = Instant::now();
            client.request_quote(&s).await.map(|_| sent.elapsed())
        });
    }
    let mut recorder = Recorder::new();
    while let Some(done) = tasks.join_next().await {
        recorder.record(done??);
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    client.shutdown();
    mint.running.stop().await;
    Ok((recorder.latency(), achieved))
}

/// Quotes per second made by the mint's Redis consumer from `count`
/// entries pushed at once onto the list.
pub async fn redis(database: DatabaseKind, count: u64) -> anyhow::Result<f64> {
    let server = RedisServer::start();
    let mint = start_mint(database, Some(server.url())).await?;
    let mut con = server.connection();
    // Wait for the consumer: it publishes the keyset when connected.
    let ready = Instant::now();
    while redis::Commands::get::<_, Option<String>>(&mut con, "mint:keyset:active")?.is_none() {
        if ready.elapsed() > Duration::from_secs(10) {
            bail!("the redis consumer did not connect");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let entries: Vec<String> = (0..count)
        .map(|n| {
            let request = share(&mint.keyset, n).to_request(0);
            mint_quote_proto::json::JsonQuoteRequest::from_request(&request).to_json()
        })
        .collect();
    let created = |text: &str| {
        integration_tests::http::sample(text, "mint_quote_quotes_created_total{path=\"redis\"}")
    };
    let started = Instant::now();
    for chunk in entries.chunks(1000) {
        let _: usize = redis::Commands::rpush(&mut con, "mint:quotes:create", chunk)?;
    }
    while created(&mint.running.metrics.render()) < count as f64 {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the redis path did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    mint.running.stop().await;
    Ok(rate)
}
