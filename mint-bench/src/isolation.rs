//! Isolation of the quote path: a connected pool's quote rate alone, and
//! again while strangers load the mint from another process (200 wallets
//! hammering the HTTP API; handshakes as fast as one process can open
//! them). The ratios to the clean run, measured in the same run, are what
//! issue 10 asks to keep at 80 % or more.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use integration_tests::attack::Mode;
use integration_tests::attack_process::AttackProcess;
use mint_server::config::DatabaseKind;
use serde::Serialize;

use crate::runs::{client_for, share, start_mint};

/// One load beside the pool.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Load {
    /// What the strangers did.
    pub name: &'static str,
    #[serde(skip)]
    mode: Mode,
    #[serde(skip)]
    connections: usize,
    #[serde(skip)]
    sources: u8,
}

/// The loads measured, in order.
pub const LOADS: [Load; 3] = [
    Load {
        name: "200 HTTP clients hammering the API",
        mode: Mode::HttpHammer,
        connections: 200,
        sources: 4,
    },
    Load {
        name: "handshake flood, one address",
        mode: Mode::HandshakeFlood,
        connections: 64,
        sources: 1,
    },
    Load {
        name: "handshake flood, 64 addresses",
        mode: Mode::HandshakeFlood,
        connections: 64,
        sources: 64,
    },
];

/// The pool's rate under one load, beside the clean rate.
#[derive(Debug, Clone, Serialize)]
pub struct Isolation {
    /// The load.
    pub load: &'static str,
    /// Quotes per second with nothing else going on.
    pub clean_qps: f64,
    /// Quotes per second under the load.
    pub loaded_qps: f64,
    /// `loaded_qps / clean_qps`.
    pub ratio: f64,
    /// What the strangers got done meanwhile (HTTP responses, or
    /// completed handshakes), per second.
    pub stranger_ops_per_s: f64,
}

/// Quotes per second one pool client gets with `in_flight` requests
/// outstanding, for `seconds`.
async fn pool_rate(
    client: &Arc<pool_client::MintQuoteClient>,
    keyset: &mint_quote_proto::KeysetId,
    in_flight: usize,
    seconds: f64,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(1 << 40));
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, keyset, done, next) =
            (client.clone(), keyset.clone(), done.clone(), next.clone());
        workers.spawn(async move {
            while Instant::now() < stop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                client.request_quote(&share(&keyset, n)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), pool_client::QuoteError>(())
        });
    }
    let started = Instant::now();
    while let Some(w) = workers.join_next().await {
        w??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Measures every load of [`LOADS`]: for each, the clean rate, then the
/// rate while `attacker` (this binary re-run with `attack`) applies it.
pub async fn measure(
    attacker: &Path,
    database: DatabaseKind,
    in_flight: usize,
    seconds: f64,
) -> anyhow::Result<Vec<Isolation>> {
    let mint = start_mint(database, None).await?;
    let client = client_for(&mint, in_flight).await?;
    let sv2 = mint.running.sv2_addr.context("sv2 enabled")?;
    let http = mint.running.http_addr.context("http enabled")?;
    // Warm up: the first quotes fill caches and grow the database file.
    pool_rate(&client, &mint.keyset, in_flight, 1.0).await?;
    let mut results = Vec::new();
    for load in LOADS {
        let clean = pool_rate(&client, &mint.keyset, in_flight, seconds).await?;
        let target = if load.mode == Mode::HttpHammer {
            http
        } else {
            sv2
        };
        let strangers = AttackProcess::start(
            attacker,
            &["attack"],
            load.mode,
            target,
            load.connections,
            load.sources,
        );
        // Let the load build up before measuring under it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ops = |a: &AttackProcess| a.count("responses") + a.count("handshakes");
        let ops_before = ops(&strangers);
        let started = Instant::now();
        let loaded = pool_rate(&client, &mint.keyset, in_flight, seconds).await?;
        // The attacker reports once a second; wait for a fresh line.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let stranger_ops = (ops(&strangers) - ops_before) as f64 / started.elapsed().as_secs_f64();
        drop(strangers);
        eprintln!(
            "isolation: {}: clean {clean:.0}/s, loaded {loaded:.0}/s ({:.0} %), strangers {stranger_ops:.0} ops/s",
            load.name,
            100.0 * loaded / clean
        );
        results.push(Isolation {
            load: load.name,
            clean_qps: clean,
            loaded_qps: loaded,
            ratio: loaded / clean,
            stranger_ops_per_s: stranger_ops,
        });
        // Let the mint drop what the strangers left.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    client.shutdown();
    mint.running.stop().await;
    Ok(results)
}
