//! The Sv2 listener: accepts TCP connections and gives each its own task.
//!
//! The handshake runs inside the connection's task, so a client that opens a
//! socket and says nothing holds one task until its handshake times out and
//! never the accept loop. Connections beyond the configured cap are closed
//! at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::session::{self, SessionContext};

/// Accepts connections on `listener` until `shutdown`; every session is
/// spawned on `sessions`, which the caller waits on at shutdown.
pub async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<SessionContext>,
    max_connections: usize,
    shutdown: CancellationToken,
    sessions: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: wait for some to free.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max_connections, "refusing a connection: at the connection limit");
            ctx.metrics.connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        sessions.spawn(async move {
            session::serve(stream, peer, ctx, shutdown).await;
            drop(slot);
        });
    }
    tracing::info!("listener stopped accepting");
}
