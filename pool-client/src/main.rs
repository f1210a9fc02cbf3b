//! `pool-client`: send quote requests to the mint from the command line,
//! one (`quote`) or many (`load`), by the paths `pool.toml` enables.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use mint_quote_config::RedisConfig;
use mint_quote_proto::{HeaderHash, KeysetId, LockingKey, Unit};
use pool_client::{Dispatcher, MintQuoteClient, PoolSettings, QuoteError, RedisPusher, Share};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

/// The pool's client of the mint.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration shared with the mint.
    #[arg(long, default_value = "config/shared/pool.toml")]
    shared: PathBuf,
    /// The pool's own secret file.
    #[arg(long, default_value = "config/pool-secret.toml")]
    secret: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send one quote request and print the answer.
    Quote(QuoteArgs),
    /// Send many requests over Sv2 and print throughput and latency.
    Load(LoadArgs),
}

#[derive(clap::Args)]
struct QuoteArgs {
    /// Amount of the quote.
    #[arg(long, default_value_t = 1)]
    amount: u64,
    /// Header hash of the share (64 hex); random if omitted.
    #[arg(long)]
    header_hash: Option<HeaderHash>,
    /// The miner's NUT-20 key (66 hex); a fresh one (secret printed) if omitted.
    #[arg(long)]
    locking_key: Option<LockingKey>,
    /// Keyset id; the one the mint announces if omitted.
    #[arg(long)]
    keyset_id: Option<KeysetId>,
    /// Description stored with the quote.
    #[arg(long)]
    description: Option<String>,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Requests to send.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Amount of each quote.
    #[arg(long, default_value_t = 1)]
    amount: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    let settings = PoolSettings::load(&cli.shared, &cli.secret)?;
    match cli.command {
        Command::Quote(args) => quote(settings, args).await,
        Command::Load(args) => load(settings, args).await,
    }
}

fn random_share(amount: u64, keyset_id: KeysetId) -> (Share, Option<secp256k1::SecretKey>) {
    let secp = secp256k1::Secp256k1::new();
    let (secret, public) = secp.generate_keypair(&mut secp256k1::rand::thread_rng());
    (
        Share {
            amount,
            unit: Unit::hash(),
            header_hash: random_header_hash(),
            description: None,
            locking_key: LockingKey::from(public),
            keyset_id,
        },
        Some(secret),
    )
}

fn random_header_hash() -> HeaderHash {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] |= 1; // never all zeroes
    HeaderHash::new(bytes).unwrap_or_else(|_| unreachable!("byte 0 is non-zero"))
}

fn redis_pusher(
    config: &RedisConfig,
    deadline: Duration,
) -> anyhow::Result<Option<Arc<RedisPusher>>> {
    if !config.enabled {
        return Ok(None);
    }
    Ok(Some(Arc::new(RedisPusher::new(config.clone(), deadline)?)))
}

async fn quote(settings: PoolSettings, args: QuoteArgs) -> anyhow::Result<()> {
    let deadline = settings.shared.sv2_messaging.request_deadline();
    let client = match settings.client.clone() {
        Some(config) => Some(Arc::new(MintQuoteClient::start(config)?)),
        None => None,
    };
    if let Some(client) = &client {
        report_earlier_answers(client).await;
    }
    let redis = redis_pusher(&settings.shared.redis, deadline)?;
    if client.is_none() && redis.is_none() {
        bail!(
            "both [sv2_messaging] and [redis] are disabled in {}",
            "pool.toml"
        );
    }
    let keyset_id = match args.keyset_id {
        Some(id) => id,
        None => announced_keyset(client.as_deref(), redis.as_deref(), deadline).await?,
    };
    let (mut share, secret) = random_share(args.amount, keyset_id);
    if let Some(hash) = args.header_hash {
        share.header_hash = hash;
    }
    let secret = match args.locking_key {
        Some(key) => {
            share.locking_key = key;
            None
        }
        None => secret,
    };
    share.description = args.description;

    println!("share        {}", share.header_hash);
    println!("locking key  {}", share.locking_key);
    if let Some(secret) = secret {
        println!(
            "locking key secret (the miner needs it to mint) {}",
            hex::encode(secret.secret_bytes())
        );
    }
    let outcome = Dispatcher::new(client, redis).dispatch(&share).await;
    let mut failed = false;
    let mut pending = false;
    if let Some(result) = outcome.sv2 {
        match result {
            Ok(q) => println!(
                "sv2: quote {} amount {} {} state {} expires at {}",
                q.quote_id, q.amount, q.unit, q.state, q.expires_at
            ),
            Err(e) if e.is_pending() => {
                pending = true;
                println!(
                    "sv2: {e}; the next run of this command sends it again and prints its answer"
                );
            }
            Err(e) => {
                failed = true;
                println!("sv2: no quote: {e}");
            }
        }
    }
    if let Some(result) = outcome.redis {
        match result {
            Ok(()) => println!("redis: request queued on the list"),
            Err(e) => {
                failed = true;
                println!("redis: not queued: {e}");
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    if pending {
        std::process::exit(2);
    }
    Ok(())
}

/// Prints (and takes) the answers of shares an earlier run left pending.
async fn report_earlier_answers(client: &MintQuoteClient) {
    while let Some(settled) = client.try_next_settled() {
        match &settled.outcome {
            Ok(q) => println!(
                "earlier share {}: quote {} amount {} {}",
                settled.share.header_hash, q.quote_id, q.amount, q.unit
            ),
            Err(r) => println!(
                "earlier share {}: refused: {}: {}",
                settled.share.header_hash, r.code, r.message
            ),
        }
        client.acknowledge(&settled).await;
    }
}

async fn announced_keyset(
    client: Option<&MintQuoteClient>,
    redis: Option<&RedisPusher>,
    wait: Duration,
) -> anyhow::Result<KeysetId> {
    if let Some(client) = client {
        if let Some(keyset) = client.wait_for_keyset(wait).await {
            return Ok(keyset.keyset_id);
        }
    }
    if let Some(redis) = redis {
        if let Some(id) = redis.active_keyset_id().await? {
            return Ok(id);
        }
    }
    bail!("the mint announced no keyset within {wait:?}; is it running? (or pass --keyset-id)")
}

/// The summary `load` prints.
#[derive(Debug, Serialize)]
struct LoadSummary {
    count: u64,
    concurrency: usize,
    ok: u64,
    failed: u64,
    errors: std::collections::BTreeMap<String, u64>,
    seconds: f64,
    quotes_per_second: f64,
    latency_ms: Percentiles,
    client: pool_client::StatsSnapshot,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    samples.sort_unstable();
    let at = |q: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
    }
}

fn error_kind(e: &QuoteError) -> String {
    use pool_client::{OutboxError, PendingReason};
    match e {
        QuoteError::Rejected { code, .. } => format!("rejected:{}", code.as_str()),
        QuoteError::Pending(reason) => format!(
            "pending:{}",
            match reason {
                PendingReason::Timeout(_) => "timeout",
                PendingReason::MintUnreachable { .. } => "mint-unreachable",
                PendingReason::WrongMintKey { .. } => "wrong-mint-key",
                PendingReason::NotAuthorised(_) => "not-authorised",
                PendingReason::Stopped => "stopped",
            }
        ),
        QuoteError::Outbox(OutboxError::Full(_)) => "outbox-full".into(),
        QuoteError::Outbox(_) => "outbox".into(),
        QuoteError::Invalid(_) => "invalid".into(),
        QuoteError::ShuttingDown => "shutting-down".into(),
        QuoteError::Failed(_) => "failed".into(),
    }
}

async fn load(settings: PoolSettings, args: LoadArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let config = settings
        .client
        .clone()
        .context("load measures the Sv2 path: enable [sv2_messaging] in pool.toml")?;
    let wait = config.request_deadline;
    let client = Arc::new(MintQuoteClient::start(config)?);
    report_earlier_answers(&client).await;
    let keyset = client
        .wait_for_keyset(wait)
        .await
        .context("the mint announced no keyset; is it running?")?
        .keyset_id;

    let progress = if std::io::stderr().is_terminal() && !args.json {
        let bar = indicatif::ProgressBar::new(args.count);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} quotes  {per_sec}  eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, next, keyset, progress) = (
            client.clone(),
            next.clone(),
            keyset.clone(),
            progress.clone(),
        );
        let amount = args.amount;
        let count = args.count;
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let (share, _) = random_share(amount, keyset.clone());
                let sent = Instant::now();
                let result = client.request_quote(&share).await;
                latencies.push(sent.elapsed());
                if let Err(e) = result {
                    errors.push(error_kind(&e));
                }
                progress.inc(1);
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::with_capacity(args.count as usize);
    let mut errors = std::collections::BTreeMap::new();
    while let Some(joined) = workers.join_next().await {
        let (l, e) = joined.context("a load worker failed")?;
        latencies.extend(l);
        for kind in e {
            *errors.entry(kind).or_insert(0u64) += 1;
        }
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let failed: u64 = errors.values().sum();
    let summary = LoadSummary {
        count: args.count,
        concurrency: args.concurrency,
        ok: args.count - failed,
        failed,
        errors,
        seconds,
        quotes_per_second: (args.count - failed) as f64 / seconds.max(f64::EPSILON),
        latency_ms: percentiles(latencies),
        client: client.stats(),
    };
    client.shutdown();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{} requests, concurrency {}: {} quotes, {} failed in {:.2} s = {:.0} quotes/s",
            summary.count,
            summary.concurrency,
            summary.ok,
            summary.failed,
            summary.seconds,
            summary.quotes_per_second
        );
        let l = &summary.latency_ms;
        println!(
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.max
        );
        for (kind, n) in &summary.errors {
            println!("  {kind}: {n}");
        }
        for endpoint in &summary.client.endpoints {
            println!("{endpoint}");
        }
    }
    if summary.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
