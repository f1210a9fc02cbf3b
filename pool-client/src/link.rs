//! The background task behind [`crate::MintQuoteClient`]: the input and
//! output around the [`Machine`], which makes every decision.
//!
//! One task owns the machine, so there are no locks. It feeds it what
//! happens (a share handed in, a connection up or lost, a message) with the
//! time it happened, carries out what it asks (connect, write, close,
//! settle), and sleeps until the machine's next wake-up. Socket reads and
//! writes run in tasks of their own, connected to it by bounded channels,
//! so a slow socket never stops it from keeping time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mint_quote_proto::setup::{self, InitiatorSetup, SetupError};
use mint_quote_proto::transport::{self, FrameReader, FrameWriter, TransportError};
use mint_quote_proto::{ActiveKeyset, DecodeError, Frame, Message};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{ClientConfig, MintEndpoint};
use crate::error::PendingReason;
use crate::machine::{Action, Failure, Machine, Reply, SendItem};
use crate::outbox::Outbox;
use crate::settled::SettledQueue;
use crate::share::Share;

/// From the client handle to the link.
pub(crate) enum Command {
    /// A share stored in the outbox as `seq`, and where its answer goes.
    Submit {
        seq: u64,
        share: Share,
        reply: Reply,
    },
}

/// Gauges the link keeps up to date for `stats()`.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    pub(crate) in_flight: AtomicU64,
    pub(crate) outstanding: AtomicU64,
}

/// From connection tasks to the link, tagged with the connection.
enum Event {
    /// Setup is done; the link starts the connection's tasks (so that no
    /// message of it can arrive before the machine knows it is up).
    Connected {
        endpoint: usize,
        generation: u64,
        halves: Box<Halves>,
    },
    ConnectFailed {
        endpoint: usize,
        generation: u64,
        failure: Failure,
    },
    Message {
        endpoint: usize,
        generation: u64,
        message: Message,
    },
    Closed {
        endpoint: usize,
        generation: u64,
        reason: String,
    },
    /// A write failed; the reader goes on until the end of what the mint
    /// sent.
    WriteFailed {
        endpoint: usize,
        generation: u64,
        reason: String,
    },
}

/// A live connection's tasks and the channel to its writer.
struct Connection {
    generation: u64,
    outbound: mpsc::Sender<Frame>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Connection {
    fn abort(&self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Channels between the link and the client handle.
pub(crate) struct Outputs {
    pub(crate) keyset: watch::Sender<Option<ActiveKeyset>>,
    pub(crate) connected: watch::Sender<bool>,
    pub(crate) settled: Arc<SettledQueue>,
    pub(crate) gauges: Arc<Gauges>,
}

pub(crate) struct Link {
    config: Arc<ClientConfig>,
    machine: Machine,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Receiver<Event>,
    events_tx: mpsc::Sender<Event>,
    connections: Vec<Option<Connection>>,
    outbox: Outbox,
    outputs: Outputs,
    shutdown: CancellationToken,
}

impl Link {
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        machine: Machine,
        commands: mpsc::Receiver<Command>,
        outbox: Outbox,
        outputs: Outputs,
        shutdown: CancellationToken,
    ) -> Self {
        let (events_tx, events) = mpsc::channel(config.max_in_flight + 64);
        Link {
            connections: config.mints.iter().map(|_| None).collect(),
            config,
            machine,
            commands,
            events,
            events_tx,
            outbox,
            outputs,
            shutdown,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            self.machine.tick(Instant::now());
            self.carry_out().await;
            self.outputs
                .gauges
                .in_flight
                .store(self.machine.in_flight() as u64, Ordering::Relaxed);
            self.outputs
                .gauges
                .outstanding
                .store(self.machine.outstanding() as u64, Ordering::Relaxed);
            self.machine.publish_gauges();
            fail::fail_point!("pool-link");
            let wake = self.machine.next_wakeup();
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                command = self.commands.recv() => match command {
                    Some(Command::Submit { seq, share, reply }) => {
                        self.machine.submit(seq, share, reply, Instant::now())
                    }
                    None => break,
                },
                event = self.events.recv() => {
                    // The link holds a sender itself: never `None`.
                    if let Some(event) = event {
                        self.on_event(event);
                    }
                }
                _ = sleep_until(wake) => {}
            }
        }
        self.machine.stop();
        self.carry_out().await;
        for connection in self.connections.iter().flatten() {
            connection.abort();
        }
        self.outputs.connected.send_replace(false);
        tracing::info!("mint quote client stopped");
    }

    fn on_event(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::Connected {
                endpoint,
                generation,
                halves,
            } => {
                tracing::info!(mint = %self.address(endpoint), outstanding = self.machine.outstanding(), "connected to the mint");
                let (reader, writer) = *halves;
                let (outbound, outbox) = mpsc::channel(self.config.max_in_flight + 64);
                let events = self.events_tx.clone();
                let connection = Connection {
                    generation,
                    outbound,
                    reader: tokio::spawn(read_loop(reader, endpoint, generation, events.clone())),
                    writer: tokio::spawn(write_loop(writer, outbox, endpoint, generation, events)),
                };
                if let Some(old) = self.slot(endpoint).replace(connection) {
                    old.abort();
                }
                self.machine.connected(endpoint, generation, now);
            }
            Event::ConnectFailed {
                endpoint,
                generation,
                failure,
            } => {
                let reason = failure.reason();
                tracing::warn!(mint = %self.address(endpoint), %reason, "cannot reach the mint");
                self.machine
                    .connect_failed(endpoint, generation, failure, now);
            }
            Event::Message {
                endpoint,
                generation,
                message,
            } => self.machine.received(endpoint, generation, message, now),
            Event::Closed {
                endpoint,
                generation,
                reason,
            } => {
                if self.is_current(endpoint, generation) {
                    tracing::warn!(mint = %self.address(endpoint), %reason, outstanding = self.machine.outstanding(), "connection to the mint lost");
                    if let Some(old) = self.slot(endpoint).take() {
                        old.abort();
                    }
                }
                self.machine.closed(endpoint, generation, reason, now);
            }
            Event::WriteFailed {
                endpoint,
                generation,
                reason,
            } => {
                tracing::warn!(mint = %self.address(endpoint), %reason, outstanding = self.machine.outstanding(), "cannot write to the mint; reading its last answers");
                self.machine.write_failed(endpoint, generation, reason, now);
            }
        }
    }

    /// Mint `endpoint`'s address, for logs.
    fn address(&self, endpoint: usize) -> &str {
        self.config
            .mints
            .get(endpoint)
            .map_or("(no such mint)", |m| m.address.as_str())
    }

    fn slot(&mut self, endpoint: usize) -> &mut Option<Connection> {
        if self.connections.len() <= endpoint {
            self.connections.resize_with(endpoint + 1, || None);
        }
        &mut self.connections[endpoint]
    }

    fn is_current(&self, endpoint: usize, generation: u64) -> bool {
        self.connections
            .get(endpoint)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.generation == generation)
    }

    /// Does what the machine asked, until it asks nothing more.
    async fn carry_out(&mut self) {
        loop {
            let actions = self.machine.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                self.carry_out_one(action).await;
            }
        }
    }

    async fn carry_out_one(&mut self, action: Action) {
        match action {
            Action::Connect {
                endpoint,
                generation,
            } => {
                tracing::debug!(mint = %self.address(endpoint), generation, "connecting to the mint");
                tokio::spawn(connect(
                    self.config.clone(),
                    endpoint,
                    generation,
                    self.events_tx.clone(),
                ));
            }
            Action::Send {
                endpoint,
                generation,
                message,
            } => {
                let frame = match message {
                    SendItem::Request(frame) => frame,
                    SendItem::Message(message) => match message.to_frame() {
                        Ok(frame) => frame,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot encode a keepalive message");
                            return;
                        }
                    },
                };
                let sent = match self.connections.get(endpoint).and_then(Option::as_ref) {
                    Some(c) if c.generation == generation => c.outbound.try_send(frame).is_ok(),
                    _ => false,
                };
                if !sent && self.is_current(endpoint, generation) {
                    // The writer is gone or hopelessly behind; the reader
                    // may still have answers to deliver.
                    self.machine.write_failed(
                        endpoint,
                        generation,
                        "the connection's writer stopped".into(),
                        Instant::now(),
                    );
                }
            }
            Action::Close {
                endpoint,
                generation,
            } => {
                if self.is_current(endpoint, generation) {
                    if let Some(old) = self.slot(endpoint).take() {
                        old.abort();
                    }
                }
            }
            Action::Forget { seq } => self.outbox.forget(seq).await,
            Action::Settle(settled) => {
                tracing::debug!(seq = settled.seq, header_hash = %settled.share.header_hash, "an answer came after its caller left; settled");
                self.outbox
                    .settle(settled.seq, &settled.share, &settled.outcome)
                    .await;
                self.outputs.settled.push(settled);
            }
            Action::Keyset(keyset) => {
                tracing::info!(keyset_id = %keyset.keyset_id, unit = %keyset.unit, "mint announced its active keyset");
                self.outputs.keyset.send_replace(Some(keyset));
            }
            Action::Connected(up) => {
                self.outputs.connected.send_replace(up);
            }
        }
    }
}

/// Sleeps until `wake`, or forever when nothing is due.
async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

type Halves = (
    FrameReader<ReadHalf<TcpStream>>,
    FrameWriter<WriteHalf<TcpStream>>,
);

/// TCP, Noise (pinning the mint key) and setup with mint `endpoint`,
/// under the configured timeouts; the outcome is reported to the link.
async fn connect(
    config: Arc<ClientConfig>,
    endpoint: usize,
    generation: u64,
    events: mpsc::Sender<Event>,
) {
    let opened = match config.mints.get(endpoint) {
        Some(mint) => open(&config, mint).await,
        None => Err(Failure::Transient(format!(
            "no mint {endpoint} in the configuration (ClientConfig::mints has {})",
            config.mints.len()
        ))),
    };
    let event = match opened {
        Ok(halves) => Event::Connected {
            endpoint,
            generation,
            halves: Box::new(halves),
        },
        Err(failure) => Event::ConnectFailed {
            endpoint,
            generation,
            failure,
        },
    };
    let _ = events.send(event).await;
}

async fn open(config: &ClientConfig, mint: &MintEndpoint) -> Result<Halves, Failure> {
    let transient = |reason: String| Failure::Transient(reason);
    let timeout = config.transport.handshake_timeout;
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&mint.address))
        .await
        .map_err(|_| transient(format!("TCP connect timed out after {timeout:?}")))?
        .map_err(|e| transient(format!("TCP connect: {e}")))?;
    let _ = transport::tune_tcp(&stream, config.keepalive_timeout);
    let classify = |e: SetupError| match e {
        SetupError::Transport(TransportError::CertificateRefused { pinned, reason }) => {
            Failure::Fatal(PendingReason::WrongMintKey { pinned, reason })
        }
        // The mint is at its connection limit: try again after backoff.
        SetupError::AuthRefused { code, message } if code.is_retryable() => transient(format!(
            "the mint cannot take this connection now: {code}: {message}"
        )),
        SetupError::AuthRefused { message, .. } => {
            Failure::Fatal(PendingReason::NotAuthorised(message))
        }
        other => transient(other.to_string()),
    };
    let (mut reader, mut writer) = transport::connect(stream, &mint.key, &config.transport)
        .await
        .map_err(|e| classify(SetupError::Transport(e)))?;
    let (host, port) = match mint.address.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(0)),
        None => (mint.address.clone(), 0),
    };
    let setup = InitiatorSetup {
        mint_key: mint.key,
        pool_keypair: config.pool_keypair,
        endpoint_host: host,
        endpoint_port: port,
        device_id: config.device_id.clone(),
    };
    setup::initiate(&mut reader, &mut writer, &setup, timeout)
        .await
        .map_err(classify)?;
    Ok((reader, writer))
}

async fn read_loop(
    mut reader: FrameReader<ReadHalf<TcpStream>>,
    endpoint: usize,
    generation: u64,
    events: mpsc::Sender<Event>,
) {
    let reason = loop {
        match reader.read_frame().await {
            Ok(Some(frame)) => match Message::from_frame(&frame) {
                Ok(message) => {
                    let event = Event::Message {
                        endpoint,
                        generation,
                        message,
                    };
                    if events.send(event).await.is_err() {
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
    let _ = events
        .send(Event::Closed {
            endpoint,
            generation,
            reason,
        })
        .await;
}

async fn write_loop(
    mut writer: FrameWriter<WriteHalf<TcpStream>>,
    mut outbox: mpsc::Receiver<Frame>,
    endpoint: usize,
    generation: u64,
    events: mpsc::Sender<Event>,
) {
    while let Some(frame) = outbox.recv().await {
        let written = match writer.write_frame(&frame).await {
            Ok(()) if outbox.is_empty() => writer.flush().await,
            other => other,
        };
        if let Err(e) = written {
            let _ = events
                .send(Event::WriteFailed {
                    endpoint,
                    generation,
                    reason: format!("write failed: {e}"),
                })
                .await;
            return;
        }
    }
    let _ = writer.shutdown().await;
}
