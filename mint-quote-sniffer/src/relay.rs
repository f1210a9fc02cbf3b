//! Accepting pools, connecting each to the mint, and relaying frames both
//! ways unchanged while printing them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mint_quote_proto::transport::{self, FrameReader, FrameWriter, TransportConfig};
use mint_quote_proto::{AuthorityKeypair, AuthorityPublicKey};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::describe::{Direction, Printer};

/// What the sniffer needs.
#[derive(Debug, Clone)]
pub struct SnifferConfig {
    /// `host:port` of the mint.
    pub upstream: String,
    /// The keypair the sniffer answers pools with: the mint's own, so that
    /// pools keep their pinned key.
    pub keypair: AuthorityKeypair,
    /// The key the mint must prove; `None` trusts any upstream.
    pub upstream_key: Option<AuthorityPublicKey>,
    /// Handshake timeout and frame limit, both sides.
    pub transport: TransportConfig,
    /// Pools relayed at once; more are reset at once.
    pub max_connections: usize,
}

/// Accepts pools on `listener` until `shutdown`, relaying each to the mint.
pub async fn serve(
    listener: TcpListener,
    config: Arc<SnifferConfig>,
    printer: Printer,
    shutdown: CancellationToken,
) {
    let next = AtomicU64::new(1);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut pause = Duration::from_millis(10);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => {
                    pause = Duration::from_millis(10);
                    pair
                }
                Err(e) => {
                    // Usually out of file descriptors: wait, more each time.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let conn = next.fetch_add(1, Ordering::Relaxed);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            printer.note(
                conn,
                &format!(
                    "refused {peer}: {} pools are relayed already (--max-connections)",
                    config.max_connections
                ),
            );
            let _ = stream.set_zero_linger();
            continue;
        };
        let (config, printer, shutdown) = (config.clone(), printer.clone(), shutdown.clone());
        tokio::spawn(async move {
            printer.note(conn, &format!("pool connected from {peer}"));
            let reason = tokio::select! {
                _ = shutdown.cancelled() => "sniffer shutting down".to_owned(),
                reason = relay(stream, &config, &printer, conn) => reason,
            };
            printer.note(conn, &format!("closed: {reason}"));
            drop(slot);
        });
    }
}

/// Runs one pool's session to its end and says why it ended.
async fn relay(pool: TcpStream, config: &SnifferConfig, printer: &Printer, conn: u64) -> String {
    let _ = pool.set_nodelay(true);
    let (pool_reader, pool_writer) =
        match transport::accept(pool, &config.keypair, &config.transport).await {
            Ok(halves) => halves,
            Err(e) => return format!("pool handshake failed: {e}"),
        };
    let timeout = config.transport.handshake_timeout;
    let mint = match tokio::time::timeout(timeout, TcpStream::connect(&config.upstream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return format!("cannot reach the mint at {}: {e}", config.upstream),
        Err(_) => {
            return format!(
                "the mint at {} did not answer within {timeout:?}",
                config.upstream
            )
        }
    };
    let _ = mint.set_nodelay(true);
    let connected = match &config.upstream_key {
        Some(key) => transport::connect(mint, key, &config.transport).await,
        None => transport::connect_unpinned(mint, &config.transport).await,
    };
    let (mint_reader, mint_writer) = match connected {
        Ok(halves) => halves,
        Err(e) => return format!("mint handshake failed: {e}"),
    };
    printer.note(
        conn,
        &format!("relaying to the mint at {}", config.upstream),
    );
    // Whichever direction ends first ends the session.
    tokio::select! {
        reason = pump(pool_reader, mint_writer, Direction::PoolToMint, printer, conn) => reason,
        reason = pump(mint_reader, pool_writer, Direction::MintToPool, printer, conn) => reason,
    }
}

/// Copies frames from `reader` to `writer` unchanged, printing each.
async fn pump<R, W>(
    mut reader: FrameReader<R>,
    mut writer: FrameWriter<W>,
    direction: Direction,
    printer: &Printer,
    conn: u64,
) -> String
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let from = match direction {
        Direction::PoolToMint => "pool",
        Direction::MintToPool => "mint",
    };
    loop {
        let frame = match reader.read_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                let _ = writer.shutdown().await;
                return format!("the {from} closed the connection");
            }
            Err(e) => return format!("reading from the {from}: {e}"),
        };
        printer.frame(conn, direction, &frame);
        if let Err(e) = writer.write_frame(&frame).await {
            return format!("writing {}: {e}", direction.as_str());
        }
        if let Err(e) = writer.flush().await {
            return format!("writing {}: {e}", direction.as_str());
        }
    }
}
