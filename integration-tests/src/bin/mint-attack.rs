//! `mint-attack`: one of the attacks of `integration_tests::attack`,
//! against a mint, in a process of its own, until killed or for
//! `--seconds`. Prints its counts once a second.

use clap::Parser;
use integration_tests::attack::{run_process, AttackArgs};

/// Attacks a mint the way strangers do (for tests and benchmarks).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    attack: AttackArgs,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    run_process(Cli::parse().attack).await;
}
