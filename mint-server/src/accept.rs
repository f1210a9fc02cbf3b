//! Accepting TCP connections without ever dying, and refusing them
//! cheaply. Shared by the Sv2 listener and the HTTP listeners.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Listener, MintMetrics};

/// First pause after a failed accept; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause between accepts after repeated failures.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Accepts the next connection on `listener`. A failed accept (usually
/// EMFILE: out of file descriptors) is counted and followed by a pause
/// that grows while failures repeat, so the loop neither dies nor spins;
/// connections already open keep being served meanwhile. `None` once
/// `shutdown` is cancelled.
pub async fn next_connection(
    listener: &TcpListener,
    which: Listener,
    metrics: &MintMetrics,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    let mut pause = FIRST_PAUSE;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(pair) => return Some(pair),
            Err(e) => {
                metrics.accept_failed(which);
                // Counted, and summarised in the log by `summary`: one
                // line per failure would flood the log exactly when the
                // machine is short of resources.
                tracing::debug!(listener = which.as_str(), error = %e, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Closes a refused connection at once with a reset rather than a FIN,
/// so that a flood of refusals leaves no sockets in TIME_WAIT here.
pub fn refuse(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
