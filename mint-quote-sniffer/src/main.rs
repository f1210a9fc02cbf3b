//! `mint-quote-sniffer`: relay a pool's Sv2 connection to the mint and print
//! every frame.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mint_quote_config::SharedConfig;
use mint_quote_proto::transport::TransportConfig;
use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey, AuthoritySecretKey};
use mint_quote_sniffer::{serve, Format, Printer, SnifferConfig};
use tokio_util::sync::CancellationToken;

/// Relays pools to the mint over Noise Sv2 and prints every frame.
///
/// Point the pool's `mint_address` at `--listen`; give the sniffer the
/// mint's authority secret key so the pool's pinned key still matches.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Where pools connect.
    #[arg(long, default_value = "127.0.0.1:34261")]
    listen: String,
    /// The mint's Sv2 address.
    #[arg(long, default_value = "127.0.0.1:34260")]
    upstream: String,
    /// Authority secret key the sniffer answers pools with (base58check),
    /// normally the mint's own.
    #[arg(long, env = "MINT_QUOTE_SNIFFER_SECRET", hide_env_values = true)]
    authority_secret_key: String,
    /// The mint's public key to pin upstream; defaults to the public key of
    /// --authority-secret-key.
    #[arg(long, conflicts_with = "trust_any_upstream")]
    upstream_key: Option<AuthorityPublicKey>,
    /// Do not authenticate the mint (encrypted, but any server is accepted).
    #[arg(long)]
    trust_any_upstream: bool,
    /// One JSON object per frame instead of text lines.
    #[arg(long)]
    json: bool,
    /// Print only these messages (comma-separated names, such as
    /// MintQuoteRequest,MintQuoteResponse); undecodable frames always print.
    #[arg(long, value_delimiter = ',')]
    filter: Vec<String>,
    /// The shared `pool.toml`: the sniffer then uses its frame limit and
    /// handshake timeout, as the pool and the mint do.
    #[arg(long)]
    shared: Option<std::path::PathBuf>,
    /// Largest frame payload accepted, in bytes (overrides `--shared`).
    #[arg(long)]
    max_payload_len: Option<usize>,
    /// Pools relayed at once; more are reset at once. The mint sees every
    /// relayed pool coming from the sniffer's address, so its per-source
    /// limits (`[listener]` in mint.toml) apply to them together.
    #[arg(long, default_value_t = 16)]
    max_connections: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let secret: AuthoritySecretKey = cli
        .authority_secret_key
        .parse()
        .context("--authority-secret-key")?;
    let keypair = AuthorityKeypair::from_secret(secret);
    let upstream_key = if cli.trust_any_upstream {
        None
    } else {
        Some(cli.upstream_key.unwrap_or(keypair.public()))
    };
    let mut transport = TransportConfig::default();
    if let Some(path) = &cli.shared {
        let shared = SharedConfig::load(path)?;
        transport.max_payload_len = shared.sv2_messaging.max_payload_len;
        transport.handshake_timeout = shared.sv2_messaging.handshake_timeout();
    }
    if let Some(max) = cli.max_payload_len {
        transport.max_payload_len = max;
    }
    transport
        .validate()
        .map_err(anyhow::Error::msg)
        .context("--max-payload-len")?;
    if cli.max_connections == 0 {
        anyhow::bail!("--max-connections must be at least 1");
    }
    let config = Arc::new(SnifferConfig {
        upstream: cli.upstream.clone(),
        keypair,
        upstream_key,
        transport,
        max_connections: cli.max_connections,
    });
    let format = if cli.json { Format::Json } else { Format::Text };
    let filter =
        (!cli.filter.is_empty()).then(|| cli.filter.iter().cloned().collect::<HashSet<_>>());
    let printer = Printer::new(
        format,
        filter,
        Arc::new(|line| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }),
    );
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    eprintln!(
        "sniffing: pools -> {} -> mint at {} (mint key {})",
        cli.listen,
        cli.upstream,
        upstream_key.map_or("not checked".to_owned(), |k| k.to_string())
    );
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, config, printer, shutdown.clone()));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    Ok(())
}
