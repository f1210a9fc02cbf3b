//! Shared by the mint-server tests: settings on a fresh data directory and
//! requests with fresh shares.

#![allow(dead_code)] // each test file uses a part

use std::sync::atomic::{AtomicU64, Ordering};

use mint_quote_proto::{HeaderHash, KeysetId, LockingKey, MintQuoteRequest, Unit};
use mint_server::config::Settings;

/// The example settings on `dir` and free ports, changed by `edit`.
pub fn settings(dir: &std::path::Path, edit: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = Settings::example(dir);
    edit(&mut settings);
    settings
}

static NEXT_SHARE: AtomicU64 = AtomicU64::new(1);

/// A header hash no other call in this process returns.
pub fn fresh_share() -> HeaderHash {
    let n = NEXT_SHARE.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes[8..16].copy_from_slice(&std::process::id().to_le_bytes().repeat(2));
    bytes[31] = 0x5a;
    HeaderHash::new(bytes).expect("non-zero")
}

/// A valid locking key (a fresh secret's public key) and its secret.
pub fn locking_key() -> (secp256k1::SecretKey, LockingKey) {
    let secp = secp256k1::Secp256k1::new();
    let (secret, public) = secp.generate_keypair(&mut secp256k1::rand::thread_rng());
    (secret, LockingKey::from(public))
}

/// A request for a fresh share under `keyset`.
pub fn request(request_id: u32, amount: u64, keyset: &KeysetId) -> MintQuoteRequest {
    MintQuoteRequest {
        request_id,
        amount,
        unit: Unit::hash(),
        header_hash: fresh_share(),
        description: None,
        locking_key: locking_key().1,
        keyset_id: keyset.clone(),
    }
}

use std::net::SocketAddr;
use std::time::Duration;

use mint_quote_proto::setup::{self, InitiatorSetup};
use mint_quote_proto::transport::{self, FrameReader, FrameWriter, TransportConfig};
use mint_quote_proto::{ActiveKeyset, AuthorityKeypair, AuthoritySecretKey, Message};
use mint_server::app::{self, RunningMint};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// The development pool key of config/pool-secret.toml, allowed by the
/// example mint.toml.
pub fn dev_pool() -> AuthorityKeypair {
    let secret: AuthoritySecretKey = "autqWLmd3q4fBqhZBitdv6b2Yp8bBzc9e1pjjCQHXjQDCxXeJ"
        .parse()
        .unwrap();
    AuthorityKeypair::from_secret(secret)
}

/// A mint started in this process on a fresh data directory.
pub async fn start_mint(dir: &std::path::Path, edit: impl FnOnce(&mut Settings)) -> RunningMint {
    app::start(settings(dir, edit)).await.expect("mint starts")
}

/// A raw Noise connection to the mint, setup not yet done.
pub struct Conn {
    pub reader: FrameReader<ReadHalf<TcpStream>>,
    pub writer: FrameWriter<WriteHalf<TcpStream>>,
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

impl Conn {
    pub async fn noise(mint: &RunningMint) -> Conn {
        let stream = TcpStream::connect(mint.sv2_addr.unwrap()).await.unwrap();
        let key = settings_key();
        let (reader, writer) = transport::connect(stream, &key, &TransportConfig::default())
            .await
            .unwrap();
        Conn { reader, writer }
    }

    /// Connects and completes setup as `pool`; returns the first keyset.
    pub async fn ready_as(mint: &RunningMint, pool: AuthorityKeypair) -> (Conn, ActiveKeyset) {
        let mut conn = Conn::noise(mint).await;
        let setup = InitiatorSetup {
            mint_key: settings_key(),
            pool_keypair: pool,
            endpoint_host: "127.0.0.1".into(),
            endpoint_port: mint.sv2_addr.unwrap().port(),
            device_id: "test-pool".into(),
        };
        setup::initiate(&mut conn.reader, &mut conn.writer, &setup, TIMEOUT)
            .await
            .unwrap();
        let keyset = match conn.next().await {
            Message::ActiveKeyset(k) => k,
            other => panic!("expected ActiveKeyset first, got {}", other.name()),
        };
        (conn, keyset)
    }

    pub async fn ready(mint: &RunningMint) -> (Conn, ActiveKeyset) {
        Conn::ready_as(mint, dev_pool()).await
    }

    pub async fn send(&mut self, message: &Message) {
        self.writer.send_message(message).await.unwrap();
    }

    /// The next message, within the test timeout.
    pub async fn next(&mut self) -> Message {
        tokio::time::timeout(TIMEOUT, setup::next_message(&mut self.reader))
            .await
            .expect("an answer within the timeout")
            .unwrap()
    }

    /// Whether the mint closed the connection (within the timeout).
    pub async fn is_closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(TIMEOUT, self.reader.read_frame()).await,
            Ok(Ok(None)) | Ok(Err(_))
        )
    }
}

/// The mint's public key from the example shared file.
pub fn settings_key() -> mint_quote_proto::AuthorityPublicKey {
    "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2"
        .parse()
        .unwrap()
}

/// The Sv2 address of a running mint.
pub fn sv2(mint: &RunningMint) -> SocketAddr {
    mint.sv2_addr.unwrap()
}
