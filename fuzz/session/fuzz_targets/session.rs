//! The mint's session after authentication: a real mint (in-memory
//! database) in this process, a real TCP connection, Noise and the real
//! setup as the development pool, then any sequence of frames. Records,
//! each a tag byte: 0, a frame of the fuzzer's (extension u16, type,
//! channel bit, u16 length, payload); 1, a well-formed quote request with
//! the fuzzer's id, amount and one of 256 shares (so most are repeats);
//! 2, a flush. Then a `Ping` marks the end of the input: the mint must
//! answer it (the connection is then kept for the next input, which makes
//! the target hundreds of times faster than a handshake per input) or
//! close the connection (the next input opens a new one). The mint must
//! not panic (a panic in any thread aborts the run) and must do one or the
//! other within its deadlines.
#![no_main]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mint_quote_fuzz::Input;
use mint_quote_proto::setup::{self, InitiatorSetup};
use mint_quote_proto::transport::{self, Channel, TransportConfig};
use mint_quote_proto::{
    AuthorityKeypair, AuthoritySecretKey, Frame, HeaderHash, KeysetId, LockingKey, Message,
    MintQuoteRequest, Ping, Unit,
};
use mint_server::app::{self, RunningMint};
use mint_server::config::{DatabaseKind, Settings};
use tokio::net::TcpStream;

struct Mint {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    settings: Settings,
    _running: RunningMint,
}

fn mint() -> &'static Mint {
    static MINT: OnceLock<Mint> = OnceLock::new();
    MINT.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let mut settings = Settings::parse(
            include_str!("../../../config/mint.toml"),
            include_str!("../../../config/shared/pool.toml"),
        )
        .expect("the example configuration");
        settings.mint.mint.data_dir =
            std::env::temp_dir().join(format!("mint-quote-fuzz-{}", std::process::id()));
        settings.mint.mint.database = DatabaseKind::Memory;
        settings.sv2_listen.set_port(0);
        settings.http_listen = None;
        settings.metrics_listen = None;
        // One connection per run, all from 127.0.0.1.
        settings.mint.listener.connection_rate_per_source = 1_000_000;
        settings.mint.listener.connection_burst_per_source = 1_000_000;
        let running = runtime
            .block_on(app::start(settings.clone()))
            .expect("the mint starts");
        let addr = running.sv2_addr.expect("the Sv2 listener");
        Mint {
            runtime,
            addr,
            settings,
            _running: running,
        }
    })
}

fn pool() -> AuthorityKeypair {
    let secret: AuthoritySecretKey = "autqWLmd3q4fBqhZBitdv6b2Yp8bBzc9e1pjjCQHXjQDCxXeJ"
        .parse()
        .expect("the development pool key of config/pool-secret.toml");
    AuthorityKeypair::from_secret(secret)
}

fuzz_target!(|data: &[u8]| {
    let mint = mint();
    mint.runtime.block_on(run(mint, Input(data)));
});

fn request(input: &mut Input<'_>, keyset: &KeysetId) -> Message {
    let id = input.bytes(4);
    let request_id = u32::from_le_bytes([
        id.first().copied().unwrap_or(1),
        id.get(1).copied().unwrap_or(0),
        id.get(2).copied().unwrap_or(0),
        id.get(3).copied().unwrap_or(0),
    ]);
    let amount = u64::from(input.u16().unwrap_or(1));
    let mut hash = [0x5au8; 32];
    hash[0] = input.byte().unwrap_or(0);
    let locking_key: LockingKey =
        "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
            .parse()
            .expect("a valid key");
    Message::MintQuoteRequest(MintQuoteRequest {
        request_id,
        amount,
        unit: Unit::hash(),
        header_hash: HeaderHash::new(hash).expect("not all zeroes"),
        description: None,
        locking_key,
        keyset_id: keyset.clone(),
    })
}

/// An authenticated connection kept between inputs, and its keyset.
type Open = (Channel<TcpStream>, KeysetId);

/// The connection the last input left open, if the mint kept it.
fn kept() -> &'static Mutex<Option<Open>> {
    static KEPT: OnceLock<Mutex<Option<Open>>> = OnceLock::new();
    KEPT.get_or_init(|| Mutex::new(None))
}

async fn open(mint: &Mint) -> Open {
    let stream = TcpStream::connect(mint.addr).await.expect("connect");
    let (mut reader, mut writer) = transport::connect(
        stream,
        &mint.settings.keypair.public(),
        &TransportConfig::default(),
    )
    .await
    .expect("the Noise handshake with the real mint");
    let setup = InitiatorSetup {
        mint_key: mint.settings.keypair.public(),
        pool_keypair: pool(),
        endpoint_host: "127.0.0.1".into(),
        endpoint_port: 0,
        device_id: "fuzz".into(),
    };
    setup::initiate(&mut reader, &mut writer, &setup, Duration::from_secs(10))
        .await
        .expect("setup with the real mint");
    match setup::next_message(&mut reader).await {
        Ok(Message::ActiveKeyset(k)) => ((reader, writer), k.keyset_id),
        other => panic!("expected ActiveKeyset first, got {other:?}"),
    }
}

async fn run(mint: &Mint, mut input: Input<'_>) {
    let left = kept().lock().unwrap_or_else(|e| e.into_inner()).take();
    let ((mut reader, mut writer), keyset) = match left {
        Some(open) => open,
        None => open(mint).await,
    };
    static NONCE: AtomicU64 = AtomicU64::new(1);
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
    let send = async {
        while let Some(tag) = input.byte() {
            let frame = match tag % 3 {
                0 => {
                    let extension = input.u16().unwrap_or(0);
                    let msg_type = input.byte().unwrap_or(0);
                    let channel = input.byte().unwrap_or(0) & 1 == 1;
                    let len = input.u16().unwrap_or(0);
                    match Frame::new(extension, channel, msg_type, input.bytes(usize::from(len))) {
                        Ok(frame) => frame,
                        Err(_) => break,
                    }
                }
                1 => match request(&mut input, &keyset).to_frame() {
                    Ok(frame) => frame,
                    Err(_) => break,
                },
                _ => {
                    if writer.flush().await.is_err() {
                        return false;
                    }
                    continue;
                }
            };
            if writer.write_frame(&frame).await.is_err() {
                return false;
            }
        }
        writer
            .send_message(&Message::Ping(Ping { nonce }))
            .await
            .is_ok()
    };
    // Answers are read while the input is sent, until the Pong (the
    // connection stays) or the close.
    let receive = async {
        loop {
            match reader.read_frame().await {
                Ok(Some(frame)) => {
                    if let Ok(Message::Pong(p)) = Message::from_frame(&frame) {
                        if p.nonce == nonce {
                            return true;
                        }
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(send, receive)
    })
    .await;
    match outcome {
        Ok((true, true)) => {
            *kept().lock().unwrap_or_else(|e| e.into_inner()) = Some(((reader, writer), keyset));
        }
        Ok(_) => {}
        Err(_) => panic!("the mint neither answered the Ping nor closed the connection"),
    }
}
