//! Serving an axum router to strangers: the Cashu HTTP API (wallets) and
//! the metrics endpoint (scrapers).
//!
//! `axum::serve` has no limits at all; wallets are strangers, so this
//! serves each connection with hyper directly, under limits that bound
//! what one client, or many, can hold:
//!
//! - a cap on open connections, in all and per source (more are reset at
//!   once);
//! - a deadline for each request's headers, which also closes keep-alive
//!   connections that sit idle (hyper's `header_read_timeout`);
//! - an idle timeout on the socket itself: no byte read or written for
//!   that long and the connection is dropped, whatever stage it is in
//!   (a slow reader of responses, a stalled body, an idle websocket);
//! - a cap on requests worked on at once, beyond which requests are
//!   answered 503 at once, and a deadline per request (503 when reached);
//! - a body limit.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accept::{next_connection, refuse};
use crate::admission::Source;
use crate::metrics::{GaugeGuard, Listener, MintMetrics};

/// Largest request head (request line and headers) hyper buffers.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// At shutdown, how long requests in progress may finish, at most: wallets
/// retry, and a stranger trickling a body must not hold up a restart.
const MAX_DRAIN: Duration = Duration::from_secs(2);

/// The time HTTP connections get to finish at shutdown, out of `grace`.
pub fn drain_time(grace: Duration) -> Duration {
    grace.min(MAX_DRAIN)
}

/// Answers `/v1/ws` with 404. The mint supports no NUT-17 subscription
/// (its info says so), and a websocket would escape the body limit and
/// the request deadline: a stranger could hold megabytes per connection.
pub async fn without_websockets(request: Request, next: Next) -> Response {
    if request.uri().path() == "/v1/ws" {
        return (StatusCode::NOT_FOUND, "no websocket subscriptions here").into_response();
    }
    next.run(request).await
}

/// The limits of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Requests worked on at once; more are answered 503 at once.
    pub max_concurrent_requests: usize,
    /// Time to send a request's headers (and the longest a keep-alive
    /// connection waits idle for the next request).
    pub header_read_timeout: Duration,
    /// A connection on which nothing moves for this long is dropped.
    pub idle_timeout: Duration,
    /// Time one request may take.
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Connections of one source (an IPv4 address, an IPv6 /64) at once.
    pub max_connections_per_source: usize,
}

impl HttpLimits {
    /// The metrics endpoint's limits: a few scrapers, small requests, no
    /// configuration beyond the connection cap.
    pub fn metrics(max_connections: usize) -> Self {
        HttpLimits {
            max_connections,
            max_concurrent_requests: max_connections,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 4096,
            max_connections_per_source: max_connections,
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown`; then
/// lets requests in progress finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    which: Listener,
    metrics: MintMetrics,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let requests = Arc::new(Semaphore::new(limits.max_concurrent_requests));
    let router = router
        .layer(axum::middleware::from_fn_with_state(
            RequestLimits {
                permits: requests,
                timeout: limits.request_timeout,
                body_timeout: limits.header_read_timeout,
                max_body_bytes: limits.max_body_bytes,
            },
            limit_request,
        ))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_source = SourceCounts::new(limits.max_connections_per_source);
    let connections = TaskTracker::new();
    while let Some((stream, peer)) = next_connection(&listener, which, &metrics, &shutdown).await {
        let Some(source_slot) = per_source.take(Source::from(peer.ip())) else {
            metrics.connection_refused(which, "source-limit");
            refuse(stream);
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connection_refused(which, "connection-limit");
            refuse(stream);
            continue;
        };
        let io = WatchedIo::new(
            stream,
            limits.idle_timeout,
            (slot, source_slot),
            metrics.http_connection_opened(which),
        );
        connections.spawn(serve_connection(
            io,
            router.clone(),
            limits,
            shutdown.clone(),
        ));
    }
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = which.as_str(),
            "HTTP connections still open after the grace period"
        );
    }
}

async fn serve_connection(
    io: WatchedIo,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let connection = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(router))
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.cancelled() => {}
    }
    // Finish the request in progress, if any; the caller bounds the wait.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

#[derive(Clone)]
struct RequestLimits {
    permits: Arc<Semaphore>,
    timeout: Duration,
    body_timeout: Duration,
    max_body_bytes: usize,
}

/// Reads the whole body first (under its own deadline and the size
/// limit), so that a client trickling its body never holds one of the
/// request permits; then sheds requests beyond the concurrency cap and
/// ends those that run past the deadline, both with 503 so clients know
/// to retry.
async fn limit_request(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
                .into_response()
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the request body came too slowly",
            )
                .into_response()
        }
    };
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let Ok(_permit) = limits.permits.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the mint is busy; retry shortly",
        )
            .into_response();
    };
    // The tests' way to hold a request's place for a while
    // (FAILPOINTS=http-request=return(ms)); nothing in a normal build.
    #[cfg(feature = "failpoints")]
    if let Some(ms) = fail::eval("http-request", |arg| arg.and_then(|a| a.parse().ok())).flatten() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took too long; retry shortly",
        )
            .into_response(),
    }
}

/// A client socket that fails with `TimedOut` once nothing has moved in
/// either direction for `idle` (so whatever waits on it, hyper or an
/// upgraded websocket, lets go), and that holds the connection's slot and
/// gauge for as long as the socket lives.
struct WatchedIo {
    stream: TcpStream,
    idle: Duration,
    last_progress: Instant,
    /// One timer per direction, so that a reader and a writer in two tasks
    /// (after an upgrade) each get woken.
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    _slots: (OwnedSemaphorePermit, SourceSlot),
    _open: GaugeGuard,
}

impl WatchedIo {
    fn new(
        stream: TcpStream,
        idle: Duration,
        slots: (OwnedSemaphorePermit, SourceSlot),
        open: GaugeGuard,
    ) -> Self {
        let now = Instant::now();
        WatchedIo {
            stream,
            idle,
            last_progress: now,
            read_timer: Box::pin(tokio::time::sleep_until(now + idle)),
            write_timer: Box::pin(tokio::time::sleep_until(now + idle)),
            _slots: slots,
            _open: open,
        }
    }

    /// Whether the connection has been idle too long; otherwise arms
    /// `timer` (which the caller has just found pending or expired) for
    /// the current deadline.
    fn poll_idle(
        timer: &mut Pin<Box<Sleep>>,
        last_progress: Instant,
        idle: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<io::Error> {
        let deadline = last_progress + idle;
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no data moved for {idle:?}"),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.last_progress = Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending => {
                WatchedIo::poll_idle(&mut this.read_timer, this.last_progress, this.idle, cx)
                    .map(Err)
            }
        }
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.last_progress = Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending => {
                WatchedIo::poll_idle(&mut this.write_timer, this.last_progress, this.idle, cx)
                    .map(Err)
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Connections held per source, with a cap.
#[derive(Clone)]
struct SourceCounts {
    counts: Arc<std::sync::Mutex<HashMap<Source, usize>>>,
    max: usize,
}

impl SourceCounts {
    fn new(max: usize) -> Self {
        SourceCounts {
            counts: Arc::default(),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Source, usize>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for one more connection of `source`, if it has room.
    fn take(&self, source: Source) -> Option<SourceSlot> {
        let mut counts = self.lock();
        let held = counts.entry(source).or_default();
        if *held >= self.max {
            return None;
        }
        *held += 1;
        Some(SourceSlot {
            counts: self.clone(),
            source,
        })
    }
}

/// One connection's place in its source's count; given back when dropped.
struct SourceSlot {
    counts: SourceCounts,
    source: Source,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        if let Some(held) = counts.get_mut(&self.source) {
            *held -= 1;
            if *held == 0 {
                counts.remove(&self.source);
            }
        }
    }
}
