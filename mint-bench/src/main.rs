//! `mint-bench`: how fast shares become quotes, side by side.
//!
//! `cargo run --release -p mint-bench` prints a table and writes it as
//! JSON; `cargo run --release -p mint-bench -- soak` runs the mint binary
//! through a million quotes and reports its memory. See
//! docs/performance.md.

mod chart;
mod codec;
mod isolation;
mod runs;
mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use mint_server::config::DatabaseKind;
use serde::{Deserialize, Serialize};

use crate::stats::Latency;

#[derive(Parser)]
#[command(about = "Quote throughput and latency: ceiling, Sv2 path, Redis path")]
struct Cli {
    /// Quotes per throughput measurement (a tenth of it at concurrency 1).
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Seconds of each fixed-load latency measurement.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/mint-bench.json")]
    json: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// One measurement of the ceiling or the Sv2 path, for profiling.
    One {
        /// `ceiling`, `sv2` (outbox in memory) or `sv2-outbox` (outbox on
        /// a file, as a pool runs it).
        #[arg(long, default_value = "ceiling")]
        path: String,
        /// `sqlite` (file), `memory`, or `postgres` (the server
        /// MINT_TEST_POSTGRES names, as for the tests: a fresh database).
        #[arg(long, default_value = "sqlite")]
        database: String,
        /// Quotes.
        #[arg(long, default_value_t = 20_000)]
        count: u64,
        /// Requests in flight.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
    /// Only the isolation measurements: a pool's quote rate alone and
    /// while strangers load the mint from another process.
    Isolation {
        #[command(flatten)]
        setup: isolation::Setup,
    },
    /// The isolation measurement itself, printing JSON (what `isolation`
    /// runs, pinned to one CPU).
    #[command(hide = true)]
    IsolationWorker {
        #[command(flatten)]
        setup: isolation::Setup,
    },
    /// Draws the charts again from the JSON of an earlier run (`--json`).
    Charts,
    /// Run as an attacker process (what the isolation measurement starts).
    Attack(integration_tests::attack::AttackArgs),
    /// Run the mint-server binary (file database) through many quotes and
    /// report its memory.
    Soak {
        /// Quotes to create.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Requests in flight.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
}

#[derive(Serialize, Deserialize)]
struct Machine {
    cores: usize,
    cpu: String,
    profile: String,
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu,
        profile: if cfg!(debug_assertions) {
            "debug (numbers not meaningful)"
        } else {
            "release"
        }
        .into(),
    }
}

#[derive(Serialize, Deserialize)]
struct Throughput {
    concurrency: usize,
    ceiling_qps: f64,
    sv2_qps: f64,
    sv2_over_ceiling: f64,
    /// The Sv2 path with the pool's outbox on a file (the default for a
    /// pool), and what that costs against the outbox in memory.
    sv2_outbox_file_qps: f64,
    outbox_cost: f64,
}

#[derive(Serialize, Deserialize)]
struct FixedLoad {
    offered_qps: u64,
    achieved_qps: f64,
    latency: Latency,
}

#[derive(Serialize, Deserialize)]
struct DatabaseResults {
    database: String,
    throughput: Vec<Throughput>,
    latency: Vec<FixedLoad>,
    redis_qps: f64,
    sv2_over_redis: f64,
}

#[derive(Serialize, Deserialize)]
struct Report {
    machine: Machine,
    codec_noise_round_trip_ns: CodecNs,
    databases: Vec<DatabaseResults>,
    isolation: Vec<isolation::Isolation>,
}

#[derive(Serialize, Deserialize)]
struct CodecNs {
    request: f64,
    response: f64,
}

fn sample_messages() -> (mint_quote_proto::Message, mint_quote_proto::Message) {
    let keyset: mint_quote_proto::KeysetId = format!("01{}", "ab".repeat(32))
        .parse()
        .unwrap_or_else(|_| unreachable!());
    let request = integration_tests::request(7, 4096, &keyset);
    let response = mint_quote_proto::MintQuoteResponse {
        request_id: 7,
        quote_id: "01a20bfe-7e77-763c-9465-f8c46abd387f".into(),
        amount: 4096,
        unit: mint_quote_proto::Unit::hash(),
        expires_at: 1_800_000_000,
        state: mint_quote_proto::QuoteState::Paid,
        header_hash: request.header_hash,
    };
    (
        mint_quote_proto::Message::MintQuoteRequest(request),
        mint_quote_proto::Message::MintQuoteResponse(response),
    )
}

fn database_kind(name: &str) -> anyhow::Result<DatabaseKind> {
    match name {
        "memory" => Ok(DatabaseKind::Memory),
        "sqlite" => Ok(DatabaseKind::Sqlite),
        "postgres" if integration_tests::postgres::server().is_some() => Ok(DatabaseKind::Postgres),
        "postgres" => anyhow::bail!(
            "--database postgres needs {} (scripts/test-postgres start)",
            integration_tests::postgres::SERVER_VAR
        ),
        other => anyhow::bail!("--database: sqlite, memory or postgres, not {other:?}"),
    }
}

/// This binary, which the isolation measurement re-runs as the attacker.
fn this_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("the benchmark's own path")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Soak { count, concurrency }) => return soak(count, concurrency).await,
        Some(Command::Charts) => {
            let text = std::fs::read_to_string(&cli.json)
                .with_context(|| format!("reading {}", cli.json.display()))?;
            let report: Report = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a mint-bench report", cli.json.display()))?;
            for written in draw_charts(&report, &cli.json)? {
                println!("written to {}", written.display());
            }
            return Ok(());
        }
        Some(Command::Attack(args)) => {
            integration_tests::attack::run_process(args).await;
            return Ok(());
        }
        Some(Command::Isolation { setup }) => {
            print_isolation(&isolation::run(&this_binary()?, setup).await?);
            return Ok(());
        }
        Some(Command::IsolationWorker { setup }) => {
            let results = isolation::measure(&this_binary()?, Some(1), setup).await?;
            println!("{}", serde_json::to_string(&results)?);
            return Ok(());
        }
        Some(Command::One {
            path,
            database,
            count,
            concurrency,
        }) => {
            let kind = database_kind(&database)?;
            let rate = match path.as_str() {
                "sv2" => runs::sv2(kind, count, concurrency, runs::Outbox::Memory).await?,
                "sv2-outbox" => runs::sv2(kind, count, concurrency, runs::Outbox::File).await?,
                _ => runs::ceiling(kind, count, concurrency).await?,
            };
            println!("{path} on {database}, {concurrency} in flight: {rate:.0} quotes/s");
            return Ok(());
        }
        None => {}
    }
    let machine = machine();
    eprintln!(
        "machine: {} cores, {} ({})",
        machine.cores, machine.cpu, machine.profile
    );

    let (request, response) = sample_messages();
    let codec = CodecNs {
        request: codec::noise_round_trip_ns(&request, 100_000).await?,
        response: codec::noise_round_trip_ns(&response, 100_000).await?,
    };
    eprintln!(
        "codec: request {:.0} ns, response {:.0} ns",
        codec.request, codec.response
    );

    let mut databases = Vec::new();
    for (name, kind) in [
        ("sqlite file", DatabaseKind::Sqlite),
        ("sqlite memory", DatabaseKind::Memory),
    ] {
        let mut throughput = Vec::new();
        for concurrency in [1usize, 16, 256] {
            let count = if concurrency == 1 {
                cli.count / 10
            } else {
                cli.count
            };
            let ceiling = runs::ceiling(kind, count, concurrency).await?;
            let sv2 = runs::sv2(kind, count, concurrency, runs::Outbox::Memory).await?;
            let durable = runs::sv2(kind, count, concurrency, runs::Outbox::File).await?;
            eprintln!("{name}: concurrency {concurrency}: ceiling {ceiling:.0}/s, sv2 {sv2:.0}/s, sv2 with the outbox on a file {durable:.0}/s");
            throughput.push(Throughput {
                concurrency,
                ceiling_qps: ceiling,
                sv2_qps: sv2,
                sv2_over_ceiling: sv2 / ceiling,
                sv2_outbox_file_qps: durable,
                outbox_cost: 1.0 - durable / sv2,
            });
        }
        let saturation = throughput.iter().map(|t| t.sv2_qps).fold(0.0, f64::max);
        let mut latency = Vec::new();
        for rate in sweep(saturation) {
            let (l, achieved) = runs::sv2_latency(kind, rate, cli.seconds).await?;
            eprintln!(
                "{name}: {rate}/s offered: p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                l.p50_ms, l.p99_ms, l.max_ms
            );
            latency.push(FixedLoad {
                offered_qps: rate,
                achieved_qps: achieved,
                latency: l,
            });
        }
        let redis = runs::redis(kind, cli.count / 2).await?;
        eprintln!("{name}: redis {redis:.0}/s");
        let best_sv2 = throughput.iter().map(|t| t.sv2_qps).fold(0.0, f64::max);
        databases.push(DatabaseResults {
            database: name.into(),
            throughput,
            latency,
            redis_qps: redis,
            sv2_over_redis: best_sv2 / redis,
        });
    }
    let isolation = isolation::run(
        &this_binary()?,
        isolation::Setup {
            in_flight: 64,
            seconds: 4.0,
            rounds: 3,
        },
    )
    .await?;
    let report = Report {
        machine,
        codec_noise_round_trip_ns: codec,
        databases,
        isolation,
    };
    print_table(&report);
    if let Some(dir) = cli.json.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&cli.json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", cli.json.display()))?;
    println!("\nwritten to {}", cli.json.display());
    for written in draw_charts(&report, &cli.json)? {
        println!("written to {}", written.display());
    }
    Ok(())
}

/// The offered rates of the latency sweep: from 500 per second up to the
/// saturation rate (the best Sv2 throughput of the same database), always
/// including 1,000 and 5,000 (the rates the targets name).
fn sweep(saturation: f64) -> Vec<u64> {
    let top = (saturation / 100.0).round() as u64 * 100;
    let mut rates: Vec<u64> = [
        500u64, 1000, 2000, 3000, 5000, 7500, 10_000, 15_000, 20_000, 30_000,
    ]
    .into_iter()
    .filter(|&r| r < top * 95 / 100 || r == 1000 || r == 5000)
    .collect();
    rates.push(top.max(500));
    rates.sort_unstable();
    rates.dedup();
    rates
}

/// Draws the run's two charts as SVG files beside `json`; returns their
/// paths.
fn draw_charts(report: &Report, json: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    use chart::{Axes, Panel, Series};
    let series = |label: &str, points: Vec<(f64, f64)>| Series {
        label: label.into(),
        points,
        dashed: false,
    };
    let throughput: Vec<Panel> = report
        .databases
        .iter()
        .map(|db| {
            let at = |f: &dyn Fn(&Throughput) -> f64| {
                db.throughput
                    .iter()
                    .map(|t| (t.concurrency as f64, f(t)))
                    .collect::<Vec<_>>()
            };
            Panel {
                title: db.database.clone(),
                series: vec![
                    series("ceiling (in process)", at(&|t| t.ceiling_qps)),
                    series("Sv2", at(&|t| t.sv2_qps)),
                    series("Sv2, outbox on a file", at(&|t| t.sv2_outbox_file_qps)),
                    Series {
                        label: "Redis (backlog of shares)".into(),
                        points: at(&|_| db.redis_qps),
                        dashed: true,
                    },
                ],
            }
        })
        .collect();
    let latency: Vec<Panel> = report
        .databases
        .iter()
        .map(|db| {
            let at = |f: fn(&Latency) -> f64| {
                db.latency
                    .iter()
                    .map(|l| (l.offered_qps as f64, f(&l.latency)))
                    .collect::<Vec<_>>()
            };
            Panel {
                title: db.database.clone(),
                series: vec![
                    series("p50", at(|l| l.p50_ms)),
                    series("p90", at(|l| l.p90_ms)),
                    series("p99", at(|l| l.p99_ms)),
                    series("p99.9", at(|l| l.p999_ms)),
                    series("max", at(|l| l.max_ms)),
                ],
            }
        })
        .collect();
    let beside = |suffix: &str| json.with_file_name(format!("mint-bench-{suffix}.svg"));
    let (throughput_svg, latency_svg) = (beside("throughput"), beside("latency"));
    chart::draw(
        &throughput_svg,
        "Quotes per second against requests in flight",
        &Axes {
            x: "requests in flight",
            y: "quotes per second",
            y_format: |y| format!("{y:.0}"),
        },
        &throughput,
    )?;
    chart::draw(
        &latency_svg,
        "Sv2 latency against offered load (open loop)",
        &Axes {
            x: "offered quotes per second",
            y: "latency, ms",
            y_format: |y| match y {
                y if y >= 10.0 => format!("{y:.0}"),
                y if y >= 1.0 => format!("{y:.1}"),
                y => format!("{y:.2}"),
            },
        },
        &latency,
    )?;
    Ok(vec![throughput_svg, latency_svg])
}

fn print_table(report: &Report) {
    let m = &report.machine;
    println!("\nmachine: {} cores, {} ({})", m.cores, m.cpu, m.profile);
    println!(
        "codec (encode+encrypt+decrypt+decode): request {:.0} ns, response {:.0} ns",
        report.codec_noise_round_trip_ns.request, report.codec_noise_round_trip_ns.response
    );
    for db in &report.databases {
        println!("\n{}", db.database);
        println!(
            "  {:>11} | {:>12} | {:>12} | {:>10} | {:>16} | {:>11}",
            "in flight", "ceiling q/s", "Sv2 q/s", "Sv2/ceil", "Sv2+outbox q/s", "outbox cost"
        );
        for t in &db.throughput {
            println!(
                "  {:>11} | {:>12.0} | {:>12.0} | {:>9.0}% | {:>16.0} | {:>10.0}%",
                t.concurrency,
                t.ceiling_qps,
                t.sv2_qps,
                t.sv2_over_ceiling * 100.0,
                t.sv2_outbox_file_qps,
                t.outbox_cost * 100.0
            );
        }
        for l in &db.latency {
            println!(
                "  offered {:>5}/s (achieved {:>6.0}/s): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
                l.offered_qps,
                l.achieved_qps,
                l.latency.p50_ms,
                l.latency.p90_ms,
                l.latency.p99_ms,
                l.latency.p999_ms,
                l.latency.max_ms
            );
        }
        println!(
            "  Redis path: {:.0} q/s; best Sv2 / Redis = {:.1}x",
            db.redis_qps, db.sv2_over_redis
        );
    }
    print_isolation(&report.isolation);
}

fn print_isolation(results: &[isolation::Isolation]) {
    let pinned = results.first().is_some_and(|r| r.pinned);
    println!(
        "\nisolation of the quote path (SQLite file, 64 in flight; strangers in another process{})",
        if pinned {
            "; mint on CPU 0, strangers on CPU 1"
        } else {
            "; one CPU shared"
        }
    );
    println!(
        "  {:<38} | {:>9} | {:>9} | {:>6} | {:>14}",
        "load", "clean q/s", "loaded", "ratio", "strangers op/s"
    );
    for r in results {
        println!(
            "  {:<38} | {:>9.0} | {:>9.0} | {:>5.0}% | {:>14.0}",
            r.load,
            r.clean_qps,
            r.loaded_qps,
            r.ratio * 100.0,
            r.stranger_ops_per_s
        );
    }
}

async fn soak(count: u64, concurrency: usize) -> anyhow::Result<()> {
    use integration_tests::{client_config, MintProcess, MintProcessConfig};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir()?;
    let mint = Arc::new(MintProcess::start(MintProcessConfig::new(dir.path())));
    let mut config = client_config(&mint.sv2_address());
    config.max_in_flight = concurrency;
    let client = Arc::new(integration_tests::start_client(config));
    let keyset = client
        .wait_for_keyset(Duration::from_secs(10))
        .await
        .context("no keyset announced")?
        .keyset_id;
    let start_rss = mint.rss_kib().unwrap_or(0);
    let done = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(start_rss));
    let sampler = {
        let (mint, done, peak) = (mint.clone(), done.clone(), peak.clone());
        tokio::spawn(async move {
            let mut next_report = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let rss = mint.rss_kib().unwrap_or(0);
                peak.fetch_max(rss, Ordering::Relaxed);
                let n = done.load(Ordering::Relaxed);
                if n >= next_report {
                    println!("{n:>9} quotes: mint RSS {} MiB", rss / 1024);
                    next_report += count / 10;
                }
                if n >= count {
                    return;
                }
            }
        })
    };
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, keyset, next, done) =
            (client.clone(), keyset.clone(), next.clone(), done.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let n = done.load(Ordering::Relaxed);
                client.request_quote(&runs::share(&keyset, n)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), pool_client::QuoteError>(())
        });
    }
    while let Some(w) = workers.join_next().await {
        w??;
    }
    let _ = sampler.await;
    let end_rss = mint.rss_kib().unwrap_or(0);
    println!(
        "{count} quotes in {:.0} s ({:.0}/s); mint RSS {} MiB at start, {} MiB at the end, peak {} MiB",
        started.elapsed().as_secs_f64(),
        count as f64 / started.elapsed().as_secs_f64(),
        start_rss / 1024,
        end_rss / 1024,
        peak.load(Ordering::Relaxed) / 1024
    );
    Ok(())
}
