//! A TCP relay between a pool and a mint that a test can disturb.
//!
//! The machines the tests run on have no `sch_netem` and no firewall
//! tools, so the faults a network inflicts are made here, in user space,
//! on real sockets:
//!
//! - **delay**: every chunk is forwarded a fixed time after it was read
//!   (latency, without a bandwidth limit: chunks waiting coalesce);
//! - **cut**: nothing moves on any connection, old or new, and nobody is
//!   told: no FIN, no RST. New connections are accepted but never reach
//!   the mint, as when SYNs are lost. `heal` lets everything move again,
//!   as TCP would once the link is back;
//! - **blackhole the existing connections**: they move nothing ever again
//!   while both their sockets stay open; new connections flow;
//! - **reset**: every open connection is reset at both ends.
//!
//! While a connection is held the relay does not read it, so the sender's
//! kernel buffers fill and its writes block, as they would on a dead link.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the relay does to traffic, now.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    delay: Duration,
    cut: bool,
    /// Connections numbered below this are blackholed for good.
    dead_below: u64,
    /// Bumped to reset every connection open at the time.
    resets: u64,
}

/// A relay listening on a loopback port, forwarding to one target.
pub struct Relay {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
    stop: CancellationToken,
}

impl Relay {
    /// Starts a relay to `target` on a free loopback port. It connects to
    /// the target from 127.0.0.1, as the pool would.
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let (faults, _) = watch::channel(Faults::default());
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(
            listener,
            target,
            faults.clone(),
            next_id.clone(),
            stop.clone(),
        ));
        Relay {
            addr,
            faults,
            next_id,
            stop,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forwards every chunk `delay` after it was read (zero: at once).
    pub fn set_delay(&self, delay: Duration) {
        self.faults.send_modify(|f| f.delay = delay);
    }

    /// Nothing moves, on any connection, until [`Relay::heal`].
    pub fn cut(&self) {
        self.faults.send_modify(|f| f.cut = true);
    }

    /// Ends a [`Relay::cut`].
    pub fn heal(&self) {
        self.faults.send_modify(|f| f.cut = false);
    }

    /// Every connection open now moves nothing ever again, its sockets
    /// left open; later connections flow.
    pub fn blackhole_existing(&self) {
        let below = self.next_id.load(std::sync::atomic::Ordering::SeqCst);
        self.faults.send_modify(|f| f.dead_below = below);
    }

    /// Resets every connection open now, at both ends.
    pub fn reset_all(&self) {
        self.faults.send_modify(|f| f.resets += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.next_id.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    faults: watch::Sender<Faults>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
    stop: CancellationToken,
) {
    loop {
        let client = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => continue,
            },
        };
        let id = next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let faults = faults.subscribe();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = relay_one(id, client, target, faults) => {}
            }
        });
    }
}

/// Whether connection `id` may move bytes under `f`.
fn flows(id: u64, f: &Faults) -> bool {
    !f.cut && id >= f.dead_below
}

async fn relay_one(
    id: u64,
    client: TcpStream,
    target: SocketAddr,
    mut faults: watch::Receiver<Faults>,
) {
    let resets_at_start = faults.borrow().resets;
    // A cut link carries no SYN either: connect only once it flows.
    if faults.wait_for(|f| flows(id, f)).await.is_err() {
        return;
    }
    let Ok(Ok(server)) = tokio::time::timeout(
        Duration::from_secs(5),
        crate::net::connect_from(crate::net::POOL_SOURCE, target),
    )
    .await
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Second handles on both sockets, to ask for a reset (zero linger)
    // once the halves are owned by the pumps.
    let handles = [socket_handle(&client), socket_handle(&server)];
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(id, client_read, server_write, faults.clone());
    let down = pump(id, server_read, client_write, faults.clone());
    let reset = faults.wait_for(|f| f.resets > resets_at_start);
    tokio::select! {
        // One direction ended: a FIN or an error, passed on by dropping
        // both halves of the other side.
        _ = up => {}
        _ = down => {}
        _ = reset => {
            for handle in handles.iter().flatten() {
                let _ = handle.set_linger(Some(Duration::ZERO));
            }
        }
    }
    // Returning drops every handle of both sockets: they close, with a
    // FIN, or with a RST where a zero linger was set.
}

/// Another handle on `stream`'s socket (a duplicated descriptor).
fn socket_handle(stream: &TcpStream) -> Option<socket2::Socket> {
    use std::os::fd::AsFd;
    stream
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(socket2::Socket::from)
}

/// Copies `from` to `to` under the faults; ends at EOF or an error.
async fn pump(
    id: u64,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut faults: watch::Receiver<Faults>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if faults.wait_for(|f| flows(id, f)).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let read_at = Instant::now();
        // Hold what was read while the connection may not move.
        if faults.wait_for(|f| flows(id, f)).await.is_err() {
            return;
        }
        let delay = faults.borrow().delay;
        tokio::time::sleep_until(read_at + delay).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
