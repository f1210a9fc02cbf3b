//! Codec cost per message: Sv2 encode + decode of a `MintQuoteRequest` and a
//! `MintQuoteResponse`, and the same through the Noise channel (encode,
//! encrypt, decrypt, decode) over an in-memory pipe.
//!
//! `cargo bench -p mint-quote-proto --bench codec`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mint_quote_proto::transport::{self, TransportConfig};
use mint_quote_proto::*;

fn request() -> Message {
    let secp = secp256k1::Secp256k1::new();
    let (_, key) = secp.generate_keypair(&mut secp256k1::rand::thread_rng());
    Message::MintQuoteRequest(MintQuoteRequest {
        request_id: 7,
        amount: 4096,
        unit: Unit::hash(),
        header_hash: HeaderHash::new([0x11; 32]).unwrap(),
        description: None,
        locking_key: LockingKey::from(key),
        keyset_id: format!("01{}", "ab".repeat(32)).parse().unwrap(),
    })
}

fn response() -> Message {
    Message::MintQuoteResponse(MintQuoteResponse {
        request_id: 7,
        quote_id: "01a20bfe-7e77-763c-9465-f8c46abd387f".into(),
        amount: 4096,
        unit: Unit::hash(),
        expires_at: 1_800_000_000,
        state: QuoteState::Paid,
        header_hash: HeaderHash::new([0x11; 32]).unwrap(),
    })
}

fn plain(c: &mut Criterion) {
    let mut group = c.benchmark_group("sv2 encode+decode");
    group.throughput(Throughput::Elements(1));
    for (name, message) in [("request", request()), ("response", response())] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let frame = std::hint::black_box(&message).to_frame().unwrap();
                Message::from_frame(&frame).unwrap()
            })
        });
    }
    group.finish();
}

/// Messages per iteration of the Noise benchmark, to amortise the pipe.
const BATCH: u64 = 256;

fn noise(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mint = AuthorityKeypair::generate();
    let (mut reader, mut writer) = runtime.block_on(async {
        let (a, b) = tokio::io::duplex(1 << 20);
        let config = TransportConfig::default();
        let server =
            tokio::spawn(async move { transport::accept(b, &mint, &config).await.unwrap() });
        let (_client_reader, client_writer) = transport::connect(a, &mint.public(), &config)
            .await
            .unwrap();
        let (server_reader, _server_writer) = server.await.unwrap();
        std::mem::forget((_client_reader, _server_writer));
        (server_reader, client_writer)
    });
    let mut group = c.benchmark_group("noise encode+encrypt+decrypt+decode");
    group.throughput(Throughput::Elements(BATCH));
    group.measurement_time(Duration::from_secs(5));
    for (name, message) in [("request", request()), ("response", response())] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    for _ in 0..BATCH {
                        writer
                            .write_frame(&message.to_frame().unwrap())
                            .await
                            .unwrap();
                    }
                    writer.flush().await.unwrap();
                    for _ in 0..BATCH {
                        let frame = reader.read_frame().await.unwrap().unwrap();
                        std::hint::black_box(Message::from_frame(&frame).unwrap());
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, plain, noise);
criterion_main!(benches);
