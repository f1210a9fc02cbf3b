//! Codec cost per message through the Noise channel, measured the way the
//! criterion bench `mint-quote-proto/benches/codec.rs` does, so the table
//! has it too.

use std::time::Instant;

use mint_quote_proto::transport::{self, TransportConfig};
use mint_quote_proto::{AuthorityKeypair, Message};

/// Nanoseconds per message to encode, encrypt, decrypt and decode each of
/// `messages`, `rounds` times.
pub async fn noise_round_trip_ns(message: &Message, rounds: u32) -> anyhow::Result<f64> {
    let mint = AuthorityKeypair::generate();
    let (a, b) = tokio::io::duplex(1 << 20);
    let config = TransportConfig::default();
    let server = tokio::spawn(async move { transport::accept(b, &mint, &config).await });
    let (_client_reader, mut writer) = transport::connect(a, &mint.public(), &config).await?;
    let (mut reader, _server_writer) = server.await??;
    const BATCH: u32 = 256;
    let started = Instant::now();
    for _ in 0..rounds / BATCH {
        for _ in 0..BATCH {
            writer.write_frame(&message.to_frame()?).await?;
        }
        writer.flush().await?;
        for _ in 0..BATCH {
            let frame = reader
                .read_frame()
                .await?
                .ok_or_else(|| anyhow::anyhow!("pipe closed"))?;
            std::hint::black_box(Message::from_frame(&frame)?);
        }
    }
    Ok(started.elapsed().as_nanos() as f64 / f64::from(rounds / BATCH * BATCH))
}
