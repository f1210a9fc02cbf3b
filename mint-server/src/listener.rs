//! The Sv2 listener: accepts TCP connections, asks admission whether each
//! may stay, and gives each admitted one its own task.
//!
//! The handshake runs inside the connection's task, so a client that opens
//! a socket and says nothing holds one unauthenticated slot until its
//! deadline, never the accept loop. Refused connections are reset at once.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use mint_quote_proto::transport;

use crate::accept::{next_connection, refuse};
use crate::admission::Admission;
use crate::metrics::Listener;
use crate::session::{self, SessionContext};

/// Accepts connections on `listener` until `shutdown`; every session is
/// spawned on `sessions`, which the caller waits on at shutdown.
pub async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<SessionContext>,
    admission: Arc<Admission>,
    shutdown: CancellationToken,
    sessions: TaskTracker,
) {
    while let Some((stream, peer)) =
        next_connection(&listener, Listener::Sv2, &ctx.metrics, &shutdown).await
    {
        fail::fail_point!("sv2-listener");
        let ticket = match admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                ctx.metrics
                    .connection_refused(Listener::Sv2, refusal.as_str());
                refuse(stream);
                continue;
            }
        };
        let _ = transport::tune_tcp(&stream, ctx.idle_timeout);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        sessions.spawn(session::serve(stream, peer, ctx, ticket, shutdown));
    }
    tracing::info!("Sv2 listener stopped accepting");
}
