//! `mint-server`: the mint daemon.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mint_quote_proto::AuthorityKeypair;
use mint_server::config::Settings;
use mint_server::{app, fd_limit};
use tracing_subscriber::EnvFilter;

/// A Cashu mint that turns a pool's accepted shares into paid mint quotes.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The mint's own configuration file.
    #[arg(long, default_value = "config/mint.toml")]
    config: PathBuf,
    /// The configuration shared with the pool.
    #[arg(long, default_value = "config/shared/pool.toml")]
    shared: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the mint (the default).
    Run,
    /// Print a fresh authority keypair in the Sv2 base58check form, for the
    /// mint (`mint.authority_secret_key` and the shared file's
    /// `sv2_messaging.mint_authority_pubkey`) or for a pool.
    Keygen,
    /// Check both configuration files and exit.
    CheckConfig,
}

/// The log filter when `RUST_LOG` is not set. CDK's HTTP layer logs every
/// failed wallet request at ERROR: a stranger could fill the disk with
/// them, and they say nothing the HTTP metrics do not.
const DEFAULT_LOG_FILTER: &str = "info,cdk_axum=off";

/// Log lines held for the writer thread; beyond, lines are dropped.
const LOG_BUFFER_LINES: usize = 16 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    match cli.command.take().unwrap_or(Command::Run) {
        Command::Keygen => {
            let pair = AuthorityKeypair::generate();
            println!("public_key = \"{}\"", pair.public());
            println!("secret_key = \"{}\"", pair.secret().to_base58check());
            Ok(())
        }
        Command::CheckConfig => {
            let settings = Settings::load(&cli.config, &cli.shared)?;
            for used in settings.published_keys() {
                eprintln!("WARN: {used}; the mint serves with it on loopback only");
            }
            println!(
                "ok: mint key {}, {} allowed pool(s), Sv2 {}, Redis {}",
                settings.keypair.public(),
                settings.allowed_pools.len(),
                if settings.shared.sv2_messaging.enabled {
                    settings.sv2_listen.to_string()
                } else {
                    "off".into()
                },
                if settings.shared.redis.enabled {
                    settings.shared.redis.url.as_str()
                } else {
                    "off"
                },
            );
            Ok(())
        }
        Command::Run => run(cli).await,
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Logs go to stderr (stdout stays for command output), in colour only
    // on a terminal so that log files and journald get plain text. A
    // dedicated thread writes them: a slow reader of stderr (a full pipe,
    // a stalled journald) must never stall the runtime that answers
    // pools, so under such pressure lines are dropped, not waited for.
    let (writer, _log_thread) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .lossy(true)
        .thread_name("mint-log-writer")
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .init();
    // Fault points for the crash tests (FAILPOINTS=name=action); nothing
    // unless built with the `failpoints` feature.
    let _faults = fail::FailScenario::setup();
    let settings = Settings::load(&cli.config, &cli.shared)?;
    check_open_file_limit(&settings);
    let mint = app::start(settings).await.context("starting the mint")?;
    let failure = tokio::select! {
        signal = wait_for_signal() => {
            signal?;
            None
        }
        reason = mint.failure() => Some(reason),
    };
    match failure {
        None => {
            if mint.stop().await {
                tracing::info!("stopped");
            }
            Ok(())
        }
        Some(reason) => {
            // Half a mint must not keep running: stop what still runs and
            // exit non-zero, so that the service manager restarts it.
            tracing::error!(%reason, "stopping: a worker of the mint died");
            mint.stop().await;
            Err(anyhow::anyhow!("a worker of the mint died: {reason}"))
        }
    }
}

/// Raises the open-file limit and says whether it covers the connection
/// caps of `settings`.
fn check_open_file_limit(settings: &Settings) {
    let needed = settings.file_descriptors_needed();
    match fd_limit::raise() {
        Ok(limit) => {
            tracing::info!(
                before = limit.before,
                now = limit.now,
                hard = limit.hard,
                "open-file limit"
            );
            if limit.now < needed {
                tracing::warn!(
                    limit = limit.now,
                    needed,
                    "the open-file limit is below what the connection caps allow; \
                     raise it (LimitNOFILE= in systemd, ulimit -n) or lower the caps"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, needed, "cannot raise the open-file limit"),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
