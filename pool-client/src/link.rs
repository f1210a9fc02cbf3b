//! The background task behind [`crate::MintQuoteClient`]: it owns the
//! connection and every request in flight.
//!
//! One task decides everything, so there are no locks: it connects (with
//! backoff), sends requests, matches answers by `request_id`, resends what a
//! dropped connection left unanswered, and ends every request at its
//! deadline. Socket reads and writes run in their own tasks, connected to it
//! by bounded channels, so a slow socket never stops it from timing requests
//! out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mint_quote_proto::setup::{self, InitiatorSetup, SetupError};
use mint_quote_proto::transport::{self, FrameReader, FrameWriter, TransportError};
use mint_quote_proto::{
    ActiveKeyset, Backoff, DecodeError, ErrorCode, Frame, Message, MintQuoteRequest,
};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::ClientConfig;
use crate::error::QuoteError;
use crate::share::Quote;
use crate::stats::Stats;

/// How often deadlines and delayed resends are checked.
const SWEEP: Duration = Duration::from_millis(20);
/// Delay before a request the mint answered `mint-busy` is sent again.
const BUSY_RETRY: Duration = Duration::from_millis(50);

type Reply = oneshot::Sender<Result<Quote, QuoteError>>;

/// From the client handle to the link.
pub(crate) enum Command {
    Submit {
        request: MintQuoteRequest,
        frame: Frame,
        deadline: Instant,
        reply: Reply,
        /// Held until the request ends, so the in-flight bound holds even
        /// when a caller stops waiting.
        slot: OwnedSemaphorePermit,
    },
}

/// From the socket tasks to the link.
enum Event {
    Message(Message),
    Closed(String),
}

struct Pending {
    request: MintQuoteRequest,
    frame: Frame,
    deadline: Instant,
    reply: Reply,
    _slot: OwnedSemaphorePermit,
    /// Written on the current connection.
    sent: bool,
    /// Written on any connection.
    ever_sent: bool,
    /// Not to be sent again before this instant (after `mint-busy`).
    not_before: Option<Instant>,
}

struct Up {
    outbound: mpsc::Sender<Frame>,
    events: mpsc::Receiver<Event>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

enum State {
    Down { retry_at: Instant },
    Connecting(JoinHandle<Result<Connected, Failure>>),
    Up(Up),
}

type Connected = (
    FrameReader<ReadHalf<TcpStream>>,
    FrameWriter<WriteHalf<TcpStream>>,
);

/// Why a connection attempt failed; `fatal` ones are told to callers at
/// once instead of at their deadline.
struct Failure {
    reason: String,
    fatal: Option<QuoteError>,
}

enum Action {
    Shutdown,
    Command(Command),
    Connect,
    // Boxed: a connection's two halves are large next to the other variants.
    Connected(Box<Result<Connected, Failure>>),
    Event(Event),
    Sweep,
}

pub(crate) struct Link {
    config: Arc<ClientConfig>,
    commands: mpsc::Receiver<Command>,
    keyset: watch::Sender<Option<ActiveKeyset>>,
    connected: watch::Sender<bool>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    pending: HashMap<u32, Pending>,
    state: State,
    backoff: Backoff,
    last_error: String,
    fatal: Option<QuoteError>,
    ever_connected: bool,
}

impl Link {
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        commands: mpsc::Receiver<Command>,
        keyset: watch::Sender<Option<ActiveKeyset>>,
        connected: watch::Sender<bool>,
        stats: Arc<Stats>,
        shutdown: CancellationToken,
    ) -> Self {
        Link {
            backoff: Backoff::new(config.reconnect_initial, config.reconnect_max),
            config,
            commands,
            keyset,
            connected,
            stats,
            shutdown,
            pending: HashMap::new(),
            state: State::Down {
                retry_at: Instant::now(),
            },
            last_error: "not connected yet".into(),
            fatal: None,
            ever_connected: false,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let action = match &mut self.state {
                State::Down { retry_at } => {
                    let at = *retry_at;
                    tokio::select! {
                        _ = self.shutdown.cancelled() => Action::Shutdown,
                        c = self.commands.recv() => c.map_or(Action::Shutdown, Action::Command),
                        _ = tokio::time::sleep_until(at) => Action::Connect,
                        _ = sweep.tick() => Action::Sweep,
                    }
                }
                State::Connecting(handle) => tokio::select! {
                    _ = self.shutdown.cancelled() => Action::Shutdown,
                    c = self.commands.recv() => c.map_or(Action::Shutdown, Action::Command),
                    r = handle => Action::Connected(Box::new(r.unwrap_or_else(|e| Err(Failure {
                        reason: format!("connect task failed: {e}"),
                        fatal: None,
                    })))),
                    _ = sweep.tick() => Action::Sweep,
                },
                State::Up(up) => tokio::select! {
                    _ = self.shutdown.cancelled() => Action::Shutdown,
                    c = self.commands.recv() => c.map_or(Action::Shutdown, Action::Command),
                    e = up.events.recv() => Action::Event(e.unwrap_or(Event::Closed("connection tasks ended".into()))),
                    _ = sweep.tick() => Action::Sweep,
                },
            };
            match action {
                Action::Shutdown => break,
                Action::Command(command) => self.on_command(command),
                Action::Connect => self.start_connecting(),
                Action::Connected(result) => self.on_connected(*result),
                Action::Event(event) => self.on_event(event),
                Action::Sweep => self.sweep(),
            }
        }
        self.stop();
    }

    fn stop(&mut self) {
        if let State::Up(up) = &self.state {
            up.reader.abort();
            up.writer.abort();
        }
        if let State::Connecting(handle) = &self.state {
            handle.abort();
        }
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(QuoteError::ShuttingDown));
        }
        self.connected.send_replace(false);
        tracing::info!("mint quote client stopped");
    }

    fn on_command(&mut self, command: Command) {
        let Command::Submit {
            request,
            frame,
            deadline,
            reply,
            slot,
        } = command;
        let up = matches!(self.state, State::Up(_));
        if let (false, Some(fatal)) = (up, &self.fatal) {
            let _ = reply.send(Err(fatal.clone()));
            return;
        }
        let request_id = request.request_id;
        if self.pending.contains_key(&request_id) {
            let _ = reply.send(Err(QuoteError::Invalid(format!(
                "request id {request_id} is still in flight"
            ))));
            return;
        }
        self.pending.insert(
            request_id,
            Pending {
                request,
                frame,
                deadline,
                reply,
                _slot: slot,
                sent: false,
                ever_sent: false,
                not_before: None,
            },
        );
        self.send_unsent();
    }

    /// Writes every request not yet on the current connection.
    fn send_unsent(&mut self) {
        let State::Up(up) = &self.state else { return };
        let now = Instant::now();
        let mut broken = false;
        for pending in self.pending.values_mut() {
            if pending.sent || pending.not_before.is_some_and(|t| t > now) {
                continue;
            }
            match up.outbound.try_send(pending.frame.clone()) {
                Ok(()) => {
                    if pending.ever_sent {
                        Stats::bump(&self.stats.resent);
                    }
                    pending.sent = true;
                    pending.ever_sent = true;
                    pending.not_before = None;
                    Stats::bump(&self.stats.sent);
                }
                Err(_) => {
                    // The writer has stopped; the reader will report why.
                    broken = true;
                    break;
                }
            }
        }
        if broken {
            tracing::debug!("writer queue unavailable; waiting for the connection to be rebuilt");
        }
    }

    fn start_connecting(&mut self) {
        let config = self.config.clone();
        tracing::info!(
            mint = %config.mint_address,
            attempt = self.backoff.attempts() + 1,
            "connecting to the mint"
        );
        self.state = State::Connecting(tokio::spawn(connect(config)));
    }

    fn on_connected(&mut self, result: Result<Connected, Failure>) {
        match result {
            Ok((reader, writer)) => {
                let capacity = self.config.max_in_flight + 16;
                let (outbound, outbox) = mpsc::channel(capacity);
                let (events_tx, events) = mpsc::channel(capacity);
                let reader = tokio::spawn(read_loop(reader, events_tx.clone()));
                let writer = tokio::spawn(write_loop(writer, outbox, events_tx));
                self.state = State::Up(Up {
                    outbound,
                    events,
                    reader,
                    writer,
                });
                if self.ever_connected {
                    Stats::bump(&self.stats.reconnects);
                }
                self.ever_connected = true;
                self.backoff.reset();
                self.fatal = None;
                self.connected.send_replace(true);
                tracing::info!(mint = %self.config.mint_address, in_flight = self.pending.len(), "connected to the mint");
                self.send_unsent();
            }
            Err(failure) => {
                let delay = self.backoff.next_delay();
                tracing::warn!(
                    mint = %self.config.mint_address,
                    reason = %failure.reason,
                    attempt = self.backoff.attempts(),
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot reach the mint"
                );
                self.last_error = failure.reason;
                if let Some(fatal) = failure.fatal {
                    // Nothing will work until an operator fixes the keys:
                    // say so now rather than at each deadline.
                    for (_, pending) in self.pending.drain() {
                        let _ = pending.reply.send(Err(fatal.clone()));
                    }
                    self.fatal = Some(fatal);
                }
                self.state = State::Down {
                    retry_at: Instant::now() + delay,
                };
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Message(message) => self.on_message(message),
            Event::Closed(reason) => {
                if let State::Up(up) = &self.state {
                    up.reader.abort();
                    up.writer.abort();
                }
                for pending in self.pending.values_mut() {
                    pending.sent = false;
                }
                let delay = self.backoff.next_delay();
                tracing::warn!(
                    %reason,
                    in_flight = self.pending.len(),
                    retry_in_ms = delay.as_millis() as u64,
                    "connection to the mint lost"
                );
                self.last_error = reason;
                self.connected.send_replace(false);
                self.state = State::Down {
                    retry_at: Instant::now() + delay,
                };
            }
        }
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::MintQuoteResponse(response) => {
                let Some(pending) = self.pending.remove(&response.request_id) else {
                    Stats::bump(&self.stats.unknown_answers);
                    tracing::warn!(request_id = response.request_id, quote_id = %response.quote_id, "response for no request in flight; dropped");
                    return;
                };
                if response.header_hash != pending.request.header_hash {
                    tracing::error!(
                        request_id = response.request_id,
                        "the mint answered with another share's quote"
                    );
                    let _ = pending.reply.send(Err(QuoteError::Rejected {
                        code: ErrorCode::InternalError,
                        message: format!(
                            "answer for share {} to a request for share {}",
                            response.header_hash, pending.request.header_hash
                        ),
                    }));
                    return;
                }
                Stats::bump(&self.stats.answered);
                tracing::debug!(request_id = response.request_id, quote_id = %response.quote_id, "quote received");
                let _ = pending.reply.send(Ok(Quote::from(response)));
            }
            Message::MintQuoteError(error) => {
                let Some(pending) = self.pending.get_mut(&error.request_id) else {
                    Stats::bump(&self.stats.unknown_answers);
                    tracing::warn!(request_id = error.request_id, code = %error.error_code, message = %error.error_message, "error for no request in flight; dropped");
                    return;
                };
                match error.error_code {
                    // Retried until the deadline: the mint asked for it.
                    ErrorCode::MintBusy => {
                        pending.sent = false;
                        pending.not_before = Some(Instant::now() + BUSY_RETRY);
                    }
                    // The mint is closing this connection; resend on the next.
                    ErrorCode::ShuttingDown => pending.sent = false,
                    code => {
                        if let Some(pending) = self.pending.remove(&error.request_id) {
                            Stats::bump(&self.stats.rejected);
                            tracing::info!(request_id = error.request_id, %code, message = %error.error_message, "request refused by the mint");
                            let _ = pending.reply.send(Err(QuoteError::Rejected {
                                code,
                                message: error.error_message,
                            }));
                        }
                    }
                }
            }
            Message::ActiveKeyset(keyset) => {
                tracing::info!(keyset_id = %keyset.keyset_id, unit = %keyset.unit, "mint announced its active keyset");
                self.keyset.send_replace(Some(keyset));
            }
            other => tracing::warn!(
                message = other.name(),
                "unexpected message from the mint; ignored"
            ),
        }
    }

    /// Ends requests past their deadline and sends delayed retries.
    fn sweep(&mut self) {
        let now = Instant::now();
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(pending) = self.pending.remove(&id) else {
                continue;
            };
            Stats::bump(&self.stats.timed_out);
            let error = if pending.ever_sent {
                QuoteError::Timeout(self.config.request_deadline)
            } else if let Some(fatal) = &self.fatal {
                fatal.clone()
            } else {
                QuoteError::MintUnreachable {
                    deadline: self.config.request_deadline,
                    reason: self.last_error.clone(),
                }
            };
            tracing::warn!(request_id = id, header_hash = %pending.request.header_hash, reason = %error, "request ended without a quote");
            let _ = pending.reply.send(Err(error));
        }
        self.send_unsent();
    }
}

/// TCP, Noise (pinning the mint key) and setup, under the configured
/// timeouts.
async fn connect(config: Arc<ClientConfig>) -> Result<Connected, Failure> {
    let transient = |reason: String| Failure {
        reason,
        fatal: None,
    };
    let timeout = config.transport.handshake_timeout;
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&config.mint_address))
        .await
        .map_err(|_| transient(format!("TCP connect timed out after {timeout:?}")))?
        .map_err(|e| transient(format!("TCP connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let classify = |e: SetupError| match e {
        SetupError::Transport(TransportError::CertificateRefused { pinned, reason }) => Failure {
            reason: format!("the mint's certificate was refused: {reason}"),
            fatal: Some(QuoteError::WrongMintKey { pinned, reason }),
        },
        // The mint is at its connection limit: try again after backoff.
        SetupError::AuthRefused { code, message } if code.is_retryable() => transient(format!(
            "the mint cannot take this connection now: {code}: {message}"
        )),
        SetupError::AuthRefused { code, message } => Failure {
            reason: format!("pool authentication refused: {code}: {message}"),
            fatal: Some(QuoteError::NotAuthorised(message)),
        },
        other => transient(other.to_string()),
    };
    let (mut reader, mut writer) = transport::connect(stream, &config.mint_key, &config.transport)
        .await
        .map_err(|e| classify(SetupError::Transport(e)))?;
    let setup = InitiatorSetup {
        mint_key: config.mint_key,
        pool_keypair: config.pool_keypair,
        endpoint_host: config
            .mint_address
            .rsplit_once(':')
            .map(|(h, _)| h.to_owned())
            .unwrap_or_default(),
        endpoint_port: config
            .mint_address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0),
        device_id: config.device_id.clone(),
    };
    setup::initiate(&mut reader, &mut writer, &setup, timeout)
        .await
        .map_err(classify)?;
    Ok((reader, writer))
}

async fn read_loop(mut reader: FrameReader<ReadHalf<TcpStream>>, events: mpsc::Sender<Event>) {
    let reason = loop {
        match reader.read_frame().await {
            Ok(Some(frame)) => match Message::from_frame(&frame) {
                Ok(message) => {
                    if events.send(Event::Message(message)).await.is_err() {
                        return;
                    }
                }
                Err(
                    e @ (DecodeError::UnknownExtension(_) | DecodeError::UnknownMessageType { .. }),
                ) => {
                    tracing::debug!(reason = %e, "ignoring a frame this client does not know");
                }
                Err(e) => break format!("undecodable message from the mint: {e}"),
            },
            Ok(None) => break "the mint closed the connection".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = events.send(Event::Closed(reason)).await;
}

async fn write_loop(
    mut writer: FrameWriter<WriteHalf<TcpStream>>,
    mut outbox: mpsc::Receiver<Frame>,
    events: mpsc::Sender<Event>,
) {
    while let Some(frame) = outbox.recv().await {
        let written = match writer.write_frame(&frame).await {
            Ok(()) if outbox.is_empty() => writer.flush().await,
            other => other,
        };
        if let Err(e) = written {
            let _ = events
                .send(Event::Closed(format!("write failed: {e}")))
                .await;
            return;
        }
    }
    let _ = writer.shutdown().await;
}
