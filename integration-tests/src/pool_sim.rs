//! A pool, reduced to what the fault tests need: it hands shares to the
//! real [`MintQuoteClient`] (with its durable outbox), takes late answers
//! from `next_settled`, and writes everything it learns to a
//! [journal](crate::journal) before it acknowledges it. The `pool-sim`
//! binary runs it in a process of its own, so that a test can `kill -9`
//! it and start it again on the same outbox and journal.
//!
//! Shares are numbered: share `i` of seed `s` always has the same header
//! hash, so a restarted simulator knows which shares it handed before
//! (from the journal) and hands only the others. At the end it waits until
//! every share it ever handed has a quote or a refusal in the journal.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mint_quote_proto::{HeaderHash, KeysetId, LockingKey, Unit};
use pool_client::{MintQuoteClient, OutboxConfig, QuoteError, Share};
use tokio::sync::{Notify, Semaphore};

use crate::journal::{Event, Journal, Ledger};

/// The simulator's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct PoolSimArgs {
    /// The mint's Sv2 address (or a relay's).
    #[arg(long)]
    pub mint: String,
    /// The client's outbox file.
    #[arg(long)]
    pub outbox: PathBuf,
    /// The journal file.
    #[arg(long)]
    pub journal: PathBuf,
    /// Shares to hand in all (numbered 0..shares; those the journal shows
    /// handed already are skipped).
    #[arg(long, default_value_t = 0)]
    pub shares: u64,
    /// Makes the header hashes of this run differ from another's.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// Calls waiting at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Shares handed per second at most (0: as fast as the calls return).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// The client's request deadline.
    #[arg(long, default_value_t = 2_000)]
    pub deadline_ms: u64,
    /// The client's keepalive interval.
    #[arg(long, default_value_t = 500)]
    pub keepalive_interval_ms: u64,
    /// The client's keepalive timeout.
    #[arg(long, default_value_t = 1_500)]
    pub keepalive_timeout_ms: u64,
    /// The client's longest reconnect delay.
    #[arg(long, default_value_t = 500)]
    pub reconnect_max_ms: u64,
    /// The client's handshake timeout.
    #[arg(long, default_value_t = 2_000)]
    pub handshake_timeout_ms: u64,
    /// Once every share is handed, how long to wait for the last outcomes.
    #[arg(long, default_value_t = 120)]
    pub settle_secs: u64,
}

/// Exit status when some handed share had no outcome by `--settle-secs`.
pub const EXIT_UNSETTLED: u8 = 3;
/// Exit status when the client reported a failure.
pub const EXIT_CLIENT_FAILED: u8 = 4;

/// The header hash of share `index` of `seed`.
pub fn share_hash(seed: u32, index: u64) -> HeaderHash {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&seed.to_le_bytes());
    bytes[4..12].copy_from_slice(&index.to_le_bytes());
    bytes[31] = 0xa5;
    // Byte 31 is set, so the hash is never all zeroes.
    HeaderHash::new(bytes).unwrap_or_else(|_| unreachable!())
}

/// The miners' locking key of every share of `seed`: the same in every
/// run, so that a share handed again after a crash is the same share.
pub fn locking_key_of(seed: u32) -> LockingKey {
    let mut bytes = [0x11u8; 32];
    bytes[..4].copy_from_slice(&seed.to_le_bytes());
    let secret = secp256k1::SecretKey::from_slice(&bytes).unwrap_or_else(|_| unreachable!());
    let secp = secp256k1::Secp256k1::signing_only();
    LockingKey::from(secp256k1::PublicKey::from_secret_key(&secp, &secret))
}

/// Which handed shares still wait for an outcome.
#[derive(Default)]
struct Waiting {
    shares: Mutex<HashSet<String>>,
    changed: Notify,
}

impl Waiting {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.shares.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn add(&self, share: String) {
        self.set().insert(share);
    }
    fn settle(&self, share: &str) {
        self.set().remove(share);
        self.changed.notify_waiters();
    }
    async fn until_empty(&self) {
        loop {
            let changed = self.changed.notified();
            if self.set().is_empty() {
                return;
            }
            changed.await;
        }
    }
}

/// Records `event` or ends the process: a journal that cannot be written
/// makes every later check meaningless.
fn record(journal: &Journal, share: &str, event: &Event) {
    if let Err(e) = journal.record(share, event) {
        eprintln!("pool-sim: cannot write the journal: {e}");
        std::process::exit(2);
    }
}

fn client_for(args: &PoolSimArgs) -> Result<MintQuoteClient, String> {
    let mut config = crate::mint::client_config(&args.mint);
    config.request_deadline = Duration::from_millis(args.deadline_ms);
    config.keepalive_interval = Duration::from_millis(args.keepalive_interval_ms);
    config.keepalive_timeout = Duration::from_millis(args.keepalive_timeout_ms);
    config.reconnect_max = Duration::from_millis(args.reconnect_max_ms);
    config.transport.handshake_timeout = Duration::from_millis(args.handshake_timeout_ms);
    config.outbox = OutboxConfig {
        path: Some(args.outbox.clone()),
        max_shares: 1_000_000,
    };
    MintQuoteClient::start(config).map_err(|e| e.to_string())
}

/// Runs the simulator; the process's exit status.
pub async fn run(args: PoolSimArgs) -> ExitCode {
    let _failpoints = fail::FailScenario::setup();
    let before = Ledger::read(&args.journal);
    let journal = match Journal::open(&args.journal) {
        Ok(journal) => Arc::new(journal),
        Err(e) => {
            eprintln!("pool-sim: cannot open the journal: {e}");
            return ExitCode::from(2);
        }
    };
    let client = match client_for(&args) {
        Ok(client) => Arc::new(client),
        Err(e) => {
            eprintln!("pool-sim: the client did not start: {e}");
            return ExitCode::from(2);
        }
    };
    let waiting = Arc::new(Waiting::default());
    for (share, events) in &before.shares {
        let taken = events.iter().any(|e| !matches!(e, Event::NotTaken(_)));
        let settled = events
            .iter()
            .any(|e| matches!(e, Event::Quote(_) | Event::Refused(_)));
        if taken && !settled {
            waiting.add(share.clone());
        }
    }
    tokio::spawn(take_settled(
        client.clone(),
        journal.clone(),
        waiting.clone(),
    ));

    // Shares the client took before are its business now (its outbox);
    // shares it did not take are handed again.
    let to_hand: Vec<u64> = (0..args.shares)
        .filter(|i| {
            let events = before.shares.get(&share_hash(args.seed, *i).to_hex());
            !events.is_some_and(|events| events.iter().any(|e| !matches!(e, Event::NotTaken(_))))
        })
        .collect();
    if !to_hand.is_empty() {
        let Some(keyset) = client.wait_for_keyset(Duration::from_secs(60)).await else {
            eprintln!("pool-sim: no keyset announced within 60 s");
            return ExitCode::from(2);
        };
        hand(
            &args,
            &client,
            &journal,
            &waiting,
            &to_hand,
            keyset.keyset_id,
        )
        .await;
    }

    let settled = tokio::time::timeout(Duration::from_secs(args.settle_secs), async {
        // A failed client settles nothing more: stop waiting at once.
        tokio::select! {
            _ = waiting.until_empty() => {}
            _ = failed(&client) => {}
        }
    })
    .await;
    let stats = client.stats();
    client.shutdown();
    println!("stats {stats:?}");
    if stats.failed.is_some() {
        return ExitCode::from(EXIT_CLIENT_FAILED);
    }
    if settled.is_err() {
        println!("unsettled {}", waiting.set().len());
        return ExitCode::from(EXIT_UNSETTLED);
    }
    println!("done");
    ExitCode::SUCCESS
}

/// Resolves once the client reports a failure.
async fn failed(client: &MintQuoteClient) {
    while client.failure().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Hands the shares `indexes`, `--concurrency` calls at a time, at most
/// `--rate` a second; stops handing once the client has failed.
async fn hand(
    args: &PoolSimArgs,
    client: &Arc<MintQuoteClient>,
    journal: &Arc<Journal>,
    waiting: &Arc<Waiting>,
    indexes: &[u64],
    keyset_id: KeysetId,
) {
    let locking_key = locking_key_of(args.seed);
    let calls = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut ticker = (args.rate > 0).then(|| {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        ticker
    });
    let mut tasks = tokio::task::JoinSet::new();
    for &index in indexes {
        if client.failure().is_some() {
            break;
        }
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let Ok(permit) = calls.clone().acquire_owned().await else {
            break;
        };
        let share = Share {
            amount: 1 + index % 100,
            unit: Unit::hash(),
            header_hash: share_hash(args.seed, index),
            description: None,
            locking_key,
            keyset_id: keyset_id.clone(),
        };
        let (client, journal, waiting) = (client.clone(), journal.clone(), waiting.clone());
        tasks.spawn(async move {
            let hash = share.header_hash.to_hex();
            // Waiting first: a late answer may come before the call returns.
            waiting.add(hash.clone());
            let event = match client.request_quote(&share).await {
                Ok(quote) => Event::Quote(quote.quote_id),
                Err(QuoteError::Rejected { code, .. }) => Event::Refused(code.to_string()),
                Err(QuoteError::Pending(_)) => Event::Pending,
                Err(other) => Event::NotTaken(other.to_string()),
            };
            record(&journal, &hash, &event);
            match event {
                Event::Pending => {}
                Event::Quote(_) | Event::Refused(_) | Event::NotTaken(_) => waiting.settle(&hash),
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Journals every late answer, then acknowledges it (so that a crash in
/// between shows it again at the next start, never loses it).
async fn take_settled(client: Arc<MintQuoteClient>, journal: Arc<Journal>, waiting: Arc<Waiting>) {
    loop {
        let settled = client.next_settled().await;
        let hash = settled.share.header_hash.to_hex();
        let event = match &settled.outcome {
            Ok(quote) => Event::Quote(quote.quote_id.clone()),
            Err(refusal) => Event::Refused(refusal.code.to_string()),
        };
        record(&journal, &hash, &event);
        client.acknowledge(&settled).await;
        waiting.settle(&hash);
    }
}
