//! What strangers do to a mint, as the attacks that found the admission
//! problems did it: many idle sockets reopened as soon as they are
//! dropped, handshakes then silence, handshakes as fast as possible, frames
//! that announce 16 MiB, idle HTTP connections, and wallets hammering the
//! HTTP API. The `mint-attack` binary runs one of them in a process of its
//! own; tests and `mint-bench` start it beside a real mint.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mint_quote_proto::transport::{self, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::mint::dev_mint_key;
use crate::net::{attacker_source, connect_from};

/// One kind of attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Hold idle TCP connections; reopen each as soon as it is dropped.
    Idle,
    /// Complete the Noise handshake, then say nothing; reopen when dropped.
    NoiseStall,
    /// Open, handshake and close, as fast as possible, in a loop.
    HandshakeFlood,
    /// Complete the Noise handshake and send a frame whose header declares
    /// 16 MiB, with its payload.
    BigFrame,
    /// Hold idle HTTP connections (no request); do not reopen them.
    HttpIdle,
    /// Send HTTP requests back to back on keep-alive connections.
    HttpHammer,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "idle" => Mode::Idle,
            "noise-stall" => Mode::NoiseStall,
            "handshake-flood" => Mode::HandshakeFlood,
            "big-frame" => Mode::BigFrame,
            "http-idle" => Mode::HttpIdle,
            "http-hammer" => Mode::HttpHammer,
            other => return Err(format!("unknown attack {other:?}")),
        })
    }
}

/// The command line of an attack process (`mint-attack`, and
/// `mint-bench attack`, which re-runs the benchmark binary as one).
#[derive(Debug, Clone, clap::Args)]
pub struct AttackArgs {
    /// idle, noise-stall, handshake-flood, big-frame, http-idle, http-hammer.
    #[arg(long)]
    pub mode: Mode,
    /// The mint's Sv2 or HTTP address.
    #[arg(long)]
    pub target: SocketAddr,
    /// Connections held (or cycled) at once.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Loopback source addresses to spread over (127.0.0.2 onwards).
    #[arg(long, default_value_t = 1)]
    pub sources: u8,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    pub seconds: Option<u64>,
}

/// Runs the attack `args` describe, printing the counts once a second
/// (`counts name=value ...`), until killed or for `--seconds`.
pub async fn run_process(args: AttackArgs) {
    let attack = Attack {
        mode: args.mode,
        target: args.target,
        connections: args.connections,
        sources: args.sources,
    };
    let counts = Arc::new(Counts::default());
    let stop = CancellationToken::new();
    let run = tokio::spawn(attack.run(counts.clone(), stop.clone()));
    let deadline = args
        .seconds
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("counts {}", counts.line());
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
    }
    stop.cancel();
    let _ = run.await;
    println!("done {}", counts.line());
}

/// What an attack did, counted as it goes.
#[derive(Debug, Default)]
pub struct Counts {
    /// TCP connections established.
    pub connected: AtomicU64,
    /// Connections the target closed (or reset) on its own.
    pub closed_by_target: AtomicU64,
    /// Connections that could not be established.
    pub connect_failed: AtomicU64,
    /// Noise handshakes completed.
    pub handshakes: AtomicU64,
    /// HTTP responses read.
    pub responses: AtomicU64,
}

impl Counts {
    /// `name=value` pairs, for a line of output.
    pub fn line(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "connected={} closed_by_target={} connect_failed={} handshakes={} responses={}",
            get(&self.connected),
            get(&self.closed_by_target),
            get(&self.connect_failed),
            get(&self.handshakes),
            get(&self.responses)
        )
    }
}

/// An attack on `target` with `connections` workers, from `sources`
/// loopback addresses (127.0.0.2 onwards), until `stop`.
#[derive(Debug, Clone, Copy)]
pub struct Attack {
    /// The kind.
    pub mode: Mode,
    /// The mint's Sv2 or HTTP address.
    pub target: SocketAddr,
    /// Workers, each holding or cycling one connection.
    pub connections: usize,
    /// Distinct source addresses the workers spread over.
    pub sources: u8,
}

impl Attack {
    /// Runs until `stop`; `counts` moves as it goes.
    pub async fn run(self, counts: Arc<Counts>, stop: CancellationToken) {
        let mut workers = tokio::task::JoinSet::new();
        for i in 0..self.connections {
            let source = attacker_source(2 + (i % usize::from(self.sources.max(1))) as u8);
            let (counts, stop) = (counts.clone(), stop.clone());
            workers.spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = self.worker(source, &counts) => {}
                }
            });
        }
        while workers.join_next().await.is_some() {}
    }

    async fn connect(&self, source: IpAddr, counts: &Counts) -> Option<TcpStream> {
        match tokio::time::timeout(Duration::from_secs(5), connect_from(source, self.target)).await
        {
            Ok(Ok(stream)) => {
                counts.connected.fetch_add(1, Ordering::Relaxed);
                Some(stream)
            }
            _ => {
                counts.connect_failed.fetch_add(1, Ordering::Relaxed);
                // A refused connect comes back at once: do not spin.
                tokio::time::sleep(Duration::from_millis(1)).await;
                None
            }
        }
    }

    async fn worker(&self, source: IpAddr, counts: &Counts) {
        match self.mode {
            Mode::Idle => loop {
                if let Some(mut stream) = self.connect(source, counts).await {
                    wait_closed(&mut stream).await;
                    counts.closed_by_target.fetch_add(1, Ordering::Relaxed);
                }
            },
            Mode::NoiseStall => loop {
                if let Some(stream) = self.connect(source, counts).await {
                    if let Ok((mut reader, _writer)) = noise(stream).await {
                        counts.handshakes.fetch_add(1, Ordering::Relaxed);
                        let _ = reader.read_frame().await;
                    }
                    counts.closed_by_target.fetch_add(1, Ordering::Relaxed);
                }
            },
            Mode::HandshakeFlood => loop {
                if let Some(stream) = self.connect(source, counts).await {
                    if noise(stream).await.is_ok() {
                        counts.handshakes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
            Mode::BigFrame => {
                if let Some(stream) = self.connect(source, counts).await {
                    if announce_16_mib(stream, counts).await.is_ok() {
                        counts.closed_by_target.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::future::pending::<()>().await;
            }
            Mode::HttpIdle => {
                if let Some(mut stream) = self.connect(source, counts).await {
                    wait_closed(&mut stream).await;
                    counts.closed_by_target.fetch_add(1, Ordering::Relaxed);
                }
                std::future::pending::<()>().await;
            }
            Mode::HttpHammer => loop {
                if let Some(stream) = self.connect(source, counts).await {
                    hammer(stream, self.target, counts).await;
                }
            },
        }
    }
}

/// Waits until the peer closes or resets `stream`.
async fn wait_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

type Channel = transport::Channel<TcpStream>;

async fn noise(stream: TcpStream) -> Result<Channel, transport::TransportError> {
    let config = TransportConfig {
        handshake_timeout: Duration::from_secs(10),
        max_payload_len: mint_quote_proto::constants::MAX_PAYLOAD_LEN_LIMIT,
        ..TransportConfig::default()
    };
    transport::connect(stream, &dev_mint_key(), &config).await
}

/// Runs the Noise handshake by hand, sends an encrypted frame header that
/// declares a 16 MiB payload, then streams payload bytes until the mint
/// closes the connection (`Ok` once it has). Built from `noise_sv2`
/// directly: the project's writer only writes whole, valid frames.
async fn announce_16_mib(stream: TcpStream, counts: &Counts) -> std::io::Result<()> {
    use noise_sv2::{Initiator, INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE};
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let (mut read, mut write) = stream.into_split();
    let mut initiator = Initiator::new(Some(dev_mint_key().x_only()));
    let first = initiator.step_0().map_err(|e| invalid(format!("{e:?}")))?;
    write.write_all(&first).await?;
    let mut reply = [0u8; INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE];
    read.read_exact(&mut reply).await?;
    let engine = initiator
        .step_2(reply)
        .map_err(|e| invalid(format!("{e:?}")))?;
    counts.handshakes.fetch_add(1, Ordering::Relaxed);
    let (mut encryptor, _decryptor) = engine.into_split();
    // MintQuoteRequest, msg_length 0xffffff.
    let mut header = vec![0x51, 0x4d, 0x80, 0xff, 0xff, 0xff];
    encryptor
        .encrypt(&mut header)
        .map_err(|e| invalid(format!("{e:?}")))?;
    write.write_all(&header).await?;
    let chunk = vec![0u8; 64 * 1024];
    let stream_payload = async {
        for _ in 0..256 {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = stream_payload => {}
        _ = async {
            let mut buf = [0u8; 1024];
            while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
        } => {}
    }
    Ok(())
}

/// Wallet-like requests, back to back on one keep-alive connection: the
/// mint's info, its keys, and a quote's state (a database read), until
/// the connection breaks.
async fn hammer(mut stream: TcpStream, target: SocketAddr, counts: &Counts) {
    let paths = [
        "/v1/info",
        "/v1/keys",
        "/v1/mint/quote/mining_share/00000000-0000-0000-0000-000000000000",
    ];
    let mut buf = vec![0u8; 64 * 1024];
    for n in 0usize.. {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {target}\r\n\r\n",
            paths[n % paths.len()]
        );
        if stream.write_all(request.as_bytes()).await.is_err() {
            return;
        }
        // Read one response: headers, then Content-Length bytes of body.
        let mut have = 0;
        let body_end = loop {
            match stream.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
            if let Some(end) = response_end(&buf[..have]) {
                break end;
            }
            if have == buf.len() {
                return;
            }
        };
        while have < body_end {
            match stream.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        }
        counts.responses.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where the first HTTP response in `bytes` ends, once its headers are in.
fn response_end(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    Some(head_end + length)
}
