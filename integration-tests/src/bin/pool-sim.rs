//! `pool-sim`: a pool handing numbered shares to the real client with a
//! durable outbox, journaling every outcome (see
//! `integration_tests::pool_sim`). The fault tests kill and restart it.

use clap::Parser;
use integration_tests::pool_sim::{run, PoolSimArgs};

/// A pool for fault tests.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: PoolSimArgs,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    run(Cli::parse().sim).await
}
