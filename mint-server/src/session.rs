//! One pool connection, from the Noise handshake to its close.
//!
//! Until the pool has proved an allowed key, the connection holds an
//! unauthenticated slot (see [`crate::admission`]) and runs under one
//! deadline from accept; it ends early if a newcomer displaces it. Setup
//! runs first (`mint_quote_proto::setup::respond`). Then a reader loop
//! takes quote requests and starts each in its own task, up to a per-
//! connection bound; beyond it the loop stops reading, so a fast pool is
//! slowed by TCP rather than buffered in memory. Answers go to one writer
//! task through a bounded channel and leave as soon as each is ready, in any
//! order. Only a broken frame or a protocol violation ends the connection;
//! a bad request gets a `MintQuoteError` and the connection goes on.
//!
//! Connections that never authenticate are logged at DEBUG only, and
//! counted: the listener's summary line reports them (an attack must not
//! write a log line per connection).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mint_quote_proto::pool_auth::AuthError;
use mint_quote_proto::setup::{self, AcceptedPool, SetupError};
use mint_quote_proto::transport::{self, Channel, FrameWriter, TransportConfig, TransportError};
use mint_quote_proto::{
    ActiveKeyset, AuthorityKeypair, AuthorityPublicKey, DecodeError, ErrorCode, Message,
    MintQuoteError, MintQuoteRequest, Pong,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::admission::{Authenticated, Refusal, Unauthenticated};
use crate::metrics::{self, Listener, MintMetrics, Path};
use crate::quotes::QuoteIssuer;

/// What every session needs, shared by all of them.
pub struct SessionContext {
    /// Creates the quotes.
    pub issuer: QuoteIssuer,
    /// The mint's authority keypair (Noise responder, auth binding).
    pub keypair: AuthorityKeypair,
    /// Pools allowed to create quotes.
    pub allowed_pools: Vec<AuthorityPublicKey>,
    /// Frame limit, certificate validity and write timeout.
    pub transport: TransportConfig,
    /// Time from accept to a successful pool authentication.
    pub auth_timeout: Duration,
    /// Quote requests of one connection worked on at once.
    pub max_in_flight: usize,
    /// The active keyset, announced after setup and on change.
    pub keyset: watch::Receiver<ActiveKeyset>,
    /// Counters.
    pub metrics: MintMetrics,
    /// At shutdown, how long a session may keep draining.
    pub shutdown_grace: Duration,
    /// An authenticated connection on which nothing arrives for this long
    /// is dead (the pool pings while idle) and is closed.
    pub idle_timeout: Duration,
    /// The quote path's runtime, where authenticated connections are
    /// served (the admission runtime handles them until then).
    pub main: tokio::runtime::Handle,
    /// Every authenticated session, waited on at shutdown.
    pub sessions: tokio_util::task::TaskTracker,
}

/// Why a session ended early. Logged; never crosses to another session.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    #[error("protocol violation: {0}")]
    Violation(String),
    #[error("nothing received for {0:?}: the pool is gone")]
    Idle(Duration),
}

impl SessionEnd {
    /// The label of the metric that counts how sessions end.
    fn reason(result: &Result<(), SessionEnd>) -> &'static str {
        match result {
            Ok(()) => "closed",
            Err(SessionEnd::Idle(_)) => "idle",
            Err(SessionEnd::Violation(_)) => "violation",
            Err(SessionEnd::Transport(TransportError::WriteTimeout(_))) => "write-timeout",
            Err(SessionEnd::Transport(_)) => "lost",
        }
    }
}

/// Serves one admitted connection: runs its handshake and setup here (on
/// the admission runtime), then moves it to the quote path's runtime
/// (`ctx.main`) and serves it there until the pool leaves, the connection
/// breaks, or `shutdown` is cancelled (then requests in flight are
/// finished first).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<SessionContext>,
    ticket: Unauthenticated,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("session", %peer, pool = tracing::field::Empty);
    let Some((channel, accepted, slot)) = authenticate(stream, &ctx, ticket, &shutdown)
        .instrument(span.clone())
        .await
    else {
        return;
    };
    span.record("pool", tracing::field::display(&accepted.pool_key));
    // A socket belongs to the runtime that registered it: take it out of
    // this one and register it again on the quote path's.
    let (stream, parts) = transport::into_parts(channel);
    let moved = match stream.into_std() {
        Ok(moved) => moved,
        Err(e) => {
            span.in_scope(|| tracing::warn!(error = %e, "cannot hand the connection over"));
            return;
        }
    };
    let main = ctx.main.clone();
    let sessions = ctx.sessions.clone();
    let session = async move {
        let stream = match TcpStream::from_std(moved) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the connection over");
                return;
            }
        };
        tracing::info!(device_id = %accepted.device_id, software = %accepted.software, ignored_frames = accepted.ignored_frames, "pool authenticated");
        let _open = ctx.metrics.connection_stage("authenticated");
        let _slot: Authenticated = slot;
        let result = run(transport::from_parts(stream, parts), &ctx, &shutdown).await;
        ctx.metrics.session_ended(SessionEnd::reason(&result));
        match result {
            Ok(()) => tracing::info!("connection closed"),
            Err(SessionEnd::Transport(TransportError::Io(e))) => {
                tracing::info!(error = %e, "connection lost")
            }
            Err(e) => tracing::warn!(reason = %e, "connection ended"),
        }
    };
    sessions.spawn_on(session.instrument(span), &main);
}

/// Runs the handshake and setup under the accept-to-authentication
/// deadline. `None` (counted and logged at DEBUG) when the connection
/// ends before a pool is authenticated and admitted.
async fn authenticate(
    stream: TcpStream,
    ctx: &Arc<SessionContext>,
    ticket: Unauthenticated,
    shutdown: &CancellationToken,
) -> Option<(Channel<TcpStream>, AcceptedPool, Authenticated)> {
    let _stage = ctx.metrics.connection_stage("unauthenticated");
    let deadline = Instant::now() + ctx.auth_timeout;
    let evicted = ticket.evicted().clone();
    let attempt = async {
        let (mut reader, mut writer) = transport::accept(stream, &ctx.keypair, &ctx.transport)
            .await
            .map_err(|e| (ending_of_handshake(&e), e.to_string()))?;
        let admit = |key: &AuthorityPublicKey| {
            if !ctx.allowed_pools.contains(key) {
                return Err(AuthError::NotAllowed(*key));
            }
            ticket.authenticate(*key).map_err(|refusal| {
                ctx.metrics.connection_refused(Listener::Sv2, refusal.as_str());
                AuthError::Unavailable {
                    code: ErrorCode::MintBusy,
                    reason: match refusal {
                        Refusal::PoolLimit => format!(
                            "pool key {key} already holds its share of this mint's connections; try again later"
                        ),
                        _ => "the mint is at its limit of pool connections; try again later".into(),
                    },
                }
            })
        };
        let (accepted, slot) = setup::respond(
            &mut reader,
            &mut writer,
            &ctx.keypair.public(),
            admit,
            ctx.auth_timeout,
        )
        .await
        .map_err(|e| {
            if matches!(e, SetupError::RequestBeforeAuthentication { .. }) {
                // Answered with an error frame: counted like any refusal.
                ctx.metrics
                    .quote_refused(Path::Sv2, ErrorCode::NotAuthorised);
            }
            (ending_of_setup(&e), e.to_string())
        })?;
        Ok::<_, (metrics::Unauthenticated, String)>(((reader, writer), accepted, slot))
    };
    let outcome = tokio::select! {
        _ = shutdown.cancelled() => Err((metrics::Unauthenticated::Shutdown, "the mint is shutting down".into())),
        _ = evicted.cancelled() => Err((metrics::Unauthenticated::Evicted, "displaced by a newer connection".into())),
        _ = tokio::time::sleep_until(deadline) => Err((
            metrics::Unauthenticated::TimedOut,
            format!("no pool authenticated within {:?}", ctx.auth_timeout),
        )),
        outcome = attempt => outcome,
    };
    match outcome {
        Ok(done) => Some(done),
        Err((how, reason)) => {
            ctx.metrics.unauthenticated_closed(how);
            tracing::debug!(ending = how.as_str(), %reason, "connection ended before authenticating");
            None
        }
    }
}

fn ending_of_handshake(e: &TransportError) -> metrics::Unauthenticated {
    match e {
        TransportError::Closed | TransportError::Truncated | TransportError::Io(_) => {
            metrics::Unauthenticated::Closed
        }
        _ => metrics::Unauthenticated::HandshakeFailed,
    }
}

fn ending_of_setup(e: &SetupError) -> metrics::Unauthenticated {
    match e {
        SetupError::Closed
        | SetupError::Transport(
            TransportError::Closed | TransportError::Truncated | TransportError::Io(_),
        ) => metrics::Unauthenticated::Closed,
        SetupError::NotAuthorised(_) => metrics::Unauthenticated::AuthRefused,
        _ => metrics::Unauthenticated::SetupFailed,
    }
}

/// Serves an authenticated connection: quote requests in, answers and
/// keyset announcements out.
async fn run<S>(
    (mut reader, writer): Channel<S>,
    ctx: &Arc<SessionContext>,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    // Room for every answer in flight plus keyset announcements: a task
    // holding a permit never waits long for the channel.
    let (answers, outbox) = mpsc::channel::<Message>(ctx.max_in_flight + 4);
    let writer_task =
        tokio::spawn(write_loop(writer, outbox, ctx.keyset.clone()).in_current_span());

    let in_flight = Arc::new(Semaphore::new(ctx.max_in_flight));
    let mut result = read_loop(&mut reader, ctx, &answers, &in_flight, shutdown).await;
    if result.is_ok() && shutdown.is_cancelled() {
        result = drain(&mut reader, ctx, &answers, &in_flight).await;
    }

    // Finish what was started: every accepted request gets its answer.
    let _ = in_flight.acquire_many(all_permits(ctx)).await;
    drop(answers);
    match writer_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::info!(error = %e, "could not deliver every answer"),
        Err(e) => tracing::error!(error = %e, "writer task failed"),
    }
    result
}

async fn read_loop<R: AsyncRead + Unpin>(
    reader: &mut transport::FrameReader<R>,
    ctx: &Arc<SessionContext>,
    answers: &mpsc::Sender<Message>,
    in_flight: &Arc<Semaphore>,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    loop {
        // Wait for room before reading: the backpressure point.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            permit = in_flight.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
        };
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            frame = tokio::time::timeout(ctx.idle_timeout, reader.read_frame()) => match frame {
                Err(_) => return Err(SessionEnd::Idle(ctx.idle_timeout)),
                Ok(frame) => match frame? {
                    Some(frame) => frame,
                    None => return Ok(()),
                },
            },
        };
        let request = match Message::from_frame(&frame) {
            Ok(Message::MintQuoteRequest(request)) => request,
            Ok(Message::Ping(ping)) => {
                if answers
                    .send(Message::Pong(Pong { nonce: ping.nonce }))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                continue;
            }
            Ok(Message::Pong(_)) => continue,
            Ok(other) => {
                return Err(SessionEnd::Violation(format!(
                    "{} after setup; only MintQuoteRequest is expected",
                    other.name()
                )))
            }
            Err(
                e @ (DecodeError::UnknownExtension(_) | DecodeError::UnknownMessageType { .. }),
            ) => {
                tracing::warn!(reason = %e, "ignoring a frame this mint does not know");
                continue;
            }
            Err(DecodeError::ChannelBitSet { message }) => {
                return Err(SessionEnd::Violation(format!(
                    "{message} with the channel_msg bit set"
                )))
            }
            Err(e) if e.is_bad_quote_request() => {
                let request_id = e.request_id().unwrap_or(0);
                tracing::warn!(request_id, code = %e.error_code(), reason = %e, "refused a malformed request");
                ctx.metrics.quote_refused(Path::Sv2, e.error_code());
                let answer = MintQuoteError::new(request_id, e.error_code(), e.to_string());
                if answers.send(Message::MintQuoteError(answer)).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(SessionEnd::Violation(e.to_string())),
        };
        let issuer = ctx.issuer.clone();
        let metrics = ctx.metrics.clone();
        let answers = answers.clone();
        tokio::spawn(
            async move {
                let answer = answer_request(&issuer, &metrics, request).await;
                // The writer only goes away when the connection is gone;
                // the pool will resend on its next connection.
                let _ = answers.send(answer).await;
                drop(permit);
            }
            .in_current_span(),
        );
    }
}

fn all_permits(ctx: &SessionContext) -> u32 {
    u32::try_from(ctx.max_in_flight).unwrap_or(u32::MAX)
}

/// During shutdown: answers every request that arrives `shutting-down`
/// (so the pool learns at once to send it again on another connection)
/// and pings as usual, until the requests in flight are answered; then
/// the connection closes. A pool that keeps sending cannot hold the mint
/// past its in-flight work, and never past the grace period.
async fn drain<R: AsyncRead + Unpin>(
    reader: &mut transport::FrameReader<R>,
    ctx: &Arc<SessionContext>,
    answers: &mpsc::Sender<Message>,
    in_flight: &Arc<Semaphore>,
) -> Result<(), SessionEnd> {
    let give_up = tokio::time::Instant::now() + ctx.shutdown_grace;
    let settled = in_flight.acquire_many(all_permits(ctx));
    tokio::pin!(settled);
    loop {
        let frame = tokio::select! {
            _ = &mut settled => return Ok(()),
            _ = tokio::time::sleep_until(give_up) => return Ok(()),
            frame = reader.read_frame() => match frame? {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        let answer = match Message::from_frame(&frame) {
            Ok(Message::MintQuoteRequest(request)) => {
                ctx.metrics
                    .quote_refused(Path::Sv2, ErrorCode::ShuttingDown);
                Message::MintQuoteError(MintQuoteError::new(
                    request.request_id,
                    ErrorCode::ShuttingDown,
                    "the mint is shutting down; send this request again on another connection",
                ))
            }
            Ok(Message::Ping(ping)) => Message::Pong(Pong { nonce: ping.nonce }),
            _ => continue,
        };
        if answers.send(answer).await.is_err() {
            return Ok(());
        }
    }
}

async fn answer_request(
    issuer: &QuoteIssuer,
    metrics: &MintMetrics,
    request: MintQuoteRequest,
) -> Message {
    let request_id = request.request_id;
    let started = std::time::Instant::now();
    match issuer.create(&request).await {
        Ok(quote) => {
            metrics.quote_answered(Path::Sv2, quote.repeated, started.elapsed());
            let r = &quote.response;
            tracing::debug!(
                request_id,
                quote_id = %r.quote_id,
                header_hash = %r.header_hash,
                amount = r.amount,
                repeated = quote.repeated,
                "quote created"
            );
            Message::MintQuoteResponse(quote.response)
        }
        Err(e) => {
            metrics.quote_refused(Path::Sv2, e.code());
            // Only the mint's own failures are worth a line each: a pool
            // sending bad requests must not flood the log (the refusal
            // metric counts them by code).
            if e.code() == ErrorCode::InternalError {
                tracing::warn!(request_id, header_hash = %request.header_hash, code = %e.code(), reason = %e, "quote refused");
            } else {
                tracing::debug!(request_id, header_hash = %request.header_hash, code = %e.code(), reason = %e, "quote refused");
            }
            Message::MintQuoteError(MintQuoteError::new(request_id, e.code(), e.to_string()))
        }
    }
}

/// Sends answers as they come and the active keyset when it changes;
/// flushes whenever nothing more is waiting, so answers are batched under
/// load and sent at once when idle.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: FrameWriter<W>,
    mut outbox: mpsc::Receiver<Message>,
    mut keyset: watch::Receiver<ActiveKeyset>,
) -> Result<(), transport::TransportError> {
    let first = keyset.borrow_and_update().clone();
    writer.send_message(&Message::ActiveKeyset(first)).await?;
    let mut keyset_open = true;
    loop {
        let message = tokio::select! {
            message = outbox.recv() => match message {
                Some(m) => m,
                None => break,
            },
            changed = keyset.changed(), if keyset_open => {
                if changed.is_err() {
                    keyset_open = false;
                    continue;
                }
                Message::ActiveKeyset(keyset.borrow_and_update().clone())
            }
        };
        writer.write_frame(&message.to_frame()?).await?;
        if outbox.is_empty() {
            writer.flush().await?;
        }
    }
    writer.flush().await?;
    writer.shutdown().await
}
