//! A Noise connection to a mint that runs the real setup sequence.

use mint_quote_proto::setup::{self, InitiatorSetup};
use mint_quote_proto::transport::{self, FrameReader, FrameWriter, TransportConfig};
use mint_quote_proto::{ActiveKeyset, AuthorityKeypair, Message};
use mint_server::app::RunningMint;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use crate::mint::{dev_mint_key, dev_pool};
use crate::TIMEOUT;

/// One connection, split into its framed halves.
pub struct Conn {
    /// Frames from the mint.
    pub reader: FrameReader<ReadHalf<TcpStream>>,
    /// Frames to the mint.
    pub writer: FrameWriter<WriteHalf<TcpStream>>,
}

impl Conn {
    /// Connects and runs the Noise handshake; setup not yet done.
    pub async fn noise(mint: &RunningMint) -> Conn {
        let addr = mint.sv2_addr.expect("the mint's Sv2 listener is enabled");
        Conn::noise_to(&addr.to_string()).await
    }

    /// [`Conn::noise`] to a mint at `address` (another process).
    pub async fn noise_to(address: &str) -> Conn {
        Conn::noise_from(crate::net::POOL_SOURCE, address).await
    }

    /// [`Conn::noise_to`] from the loopback address `source`.
    pub async fn noise_from(source: std::net::IpAddr, address: &str) -> Conn {
        Conn::try_noise_from(source, address)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_noise_from(source: std::net::IpAddr, address: &str) -> Result<Conn, String> {
        let addr: std::net::SocketAddr = address.parse().expect("an ip:port address");
        let stream = crate::net::connect_from(source, addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (reader, writer) =
            transport::connect(stream, &dev_mint_key(), &TransportConfig::default())
                .await
                .map_err(|e| format!("Noise handshake: {e}"))?;
        Ok(Conn { reader, writer })
    }

    /// Connects and completes setup as `pool`; returns the first keyset
    /// announcement.
    pub async fn ready_as(mint: &RunningMint, pool: AuthorityKeypair) -> (Conn, ActiveKeyset) {
        let addr = mint.sv2_addr.expect("the mint's Sv2 listener is enabled");
        Conn::ready_at_as(&addr.to_string(), pool).await
    }

    /// [`Conn::ready`] to a mint at `address` (another process).
    pub async fn ready_at(address: &str) -> (Conn, ActiveKeyset) {
        Conn::ready_at_as(address, dev_pool()).await
    }

    async fn ready_at_as(address: &str, pool: AuthorityKeypair) -> (Conn, ActiveKeyset) {
        Conn::try_ready_at_as(address, pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// One attempt at [`Conn::ready_at`], with no retry: what went wrong,
    /// if anything did (such as the mint closing the connection).
    pub async fn try_ready_at(address: &str) -> Result<(Conn, ActiveKeyset), String> {
        Conn::try_ready_at_as(address, dev_pool()).await
    }

    async fn try_ready_at_as(
        address: &str,
        pool: AuthorityKeypair,
    ) -> Result<(Conn, ActiveKeyset), String> {
        let mut conn = Conn::try_noise_from(crate::net::POOL_SOURCE, address).await?;
        let setup = InitiatorSetup {
            mint_key: dev_mint_key(),
            pool_keypair: pool,
            endpoint_host: "127.0.0.1".into(),
            endpoint_port: 0,
            device_id: "test-pool".into(),
        };
        setup::initiate(&mut conn.reader, &mut conn.writer, &setup, TIMEOUT)
            .await
            .map_err(|e| format!("setup: {e}"))?;
        let first = tokio::time::timeout(TIMEOUT, setup::next_message(&mut conn.reader))
            .await
            .map_err(|_| "no keyset announced".to_string())?
            .map_err(|e| format!("reading the keyset: {e}"))?;
        match first {
            Message::ActiveKeyset(k) => Ok((conn, k)),
            other => Err(format!("expected ActiveKeyset first, got {}", other.name())),
        }
    }

    /// [`Conn::ready_as`] the development pool.
    pub async fn ready(mint: &RunningMint) -> (Conn, ActiveKeyset) {
        Conn::ready_as(mint, dev_pool()).await
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &Message) {
        self.writer.send_message(message).await.expect("send");
    }

    /// Writes every request without waiting for answers, then flushes.
    pub async fn pipeline(
        &mut self,
        requests: impl IntoIterator<Item = mint_quote_proto::MintQuoteRequest>,
    ) {
        for request in requests {
            let frame = Message::MintQuoteRequest(request)
                .to_frame()
                .expect("encodable request");
            self.writer.write_frame(&frame).await.expect("write");
        }
        self.writer.flush().await.expect("flush");
    }

    /// Writes a frame whose header declares a 16 MiB payload (the largest
    /// the Sv2 length field allows); the mint must close the connection
    /// before reading it, so write errors are expected and ignored.
    pub async fn send_16mib_frame(&mut self) {
        let payload = vec![0u8; (1 << 24) - 1];
        let frame = mint_quote_proto::Frame::new(
            mint_quote_proto::constants::EXTENSION_TYPE_MINT_QUOTE,
            false,
            mint_quote_proto::constants::mint_quote::MINT_QUOTE_REQUEST,
            &payload,
        )
        .expect("16 MiB - 1 fits the length field");
        let _ = self.writer.write_frame(&frame).await;
        let _ = self.writer.flush().await;
    }

    /// The next message, within the test timeout.
    pub async fn next(&mut self) -> Message {
        tokio::time::timeout(TIMEOUT, setup::next_message(&mut self.reader))
            .await
            .expect("an answer within the timeout")
            .expect("a message")
    }

    /// Whether the mint closed the connection (within the timeout).
    pub async fn is_closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(TIMEOUT, self.reader.read_frame()).await,
            Ok(Ok(None)) | Ok(Err(_))
        )
    }
}

/// A valid `SetupConnection` for the mint-quote protocol, sent by tests
/// that run the setup sequence by hand.
pub fn setup_connection(vendor: &str) -> Message {
    Message::SetupConnection(mint_quote_proto::SetupConnection {
        protocol: mint_quote_proto::constants::MINT_QUOTE_PROTOCOL,
        min_version: mint_quote_proto::constants::PROTOCOL_VERSION,
        max_version: mint_quote_proto::constants::PROTOCOL_VERSION,
        flags: 0,
        endpoint_host: String::new(),
        endpoint_port: 0,
        vendor: vendor.into(),
        hardware_version: String::new(),
        firmware: String::new(),
        device_id: String::new(),
    })
}
