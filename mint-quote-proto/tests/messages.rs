//! Every message round-trips; random valid messages round-trip; random bytes
//! never panic the decoder; the hex examples in docs/protocol.md decode to
//! the sample messages and back.

mod common;

use mint_quote_proto::constants::{mint_quote, EXTENSION_TYPE_COMMON, EXTENSION_TYPE_MINT_QUOTE};
use mint_quote_proto::*;
use proptest::prelude::*;

#[test]
fn every_message_round_trips() {
    let samples = common::samples();
    let names: Vec<&str> = samples.iter().map(|m| m.name()).collect();
    let declared: Vec<&str> = Message::ALL.iter().map(|i| i.name).collect();
    assert_eq!(names, declared, "every message has one sample, in order");
    for message in samples {
        let frame = message.to_frame().unwrap();
        assert_eq!(frame.extension_type(), message.extension_type());
        assert_eq!(frame.msg_type(), message.msg_type());
        assert!(
            !frame.channel_msg(),
            "{} has the channel bit set",
            message.name()
        );
        let decoded = Message::from_frame(&frame).unwrap();
        assert_eq!(decoded, message);
        let again = Frame::from_bytes(frame.as_bytes().to_vec()).unwrap();
        assert_eq!(Message::from_frame(&again).unwrap(), message);
    }
}

/// Hex examples from docs/protocol.md: every "```hex NAME" block.
fn doc_examples() -> Vec<(String, Vec<u8>)> {
    let doc = include_str!("../../docs/protocol.md");
    let mut examples = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```hex ") else {
            continue;
        };
        let mut bytes = Vec::new();
        for body in lines.by_ref() {
            if body.starts_with("```") {
                break;
            }
            let body = body.split('#').next().unwrap_or("");
            for pair in body.split_whitespace() {
                bytes.push(
                    u8::from_str_radix(pair, 16).unwrap_or_else(|e| {
                        panic!("bad hex {pair:?} in the example for {name}: {e}")
                    }),
                );
            }
        }
        examples.push((name.trim().to_owned(), bytes));
    }
    examples
}

#[test]
fn the_hex_examples_in_the_protocol_doc_are_exact() {
    let examples = doc_examples();
    let mut missing = Vec::new();
    for sample in common::samples() {
        let encoded = sample.to_frame().unwrap();
        match examples.iter().find(|(name, _)| name == sample.name()) {
            None => missing.push(format!(
                "```hex {}\n{}\n```",
                sample.name(),
                common::spaced_hex(encoded.as_bytes())
            )),
            Some((name, bytes)) => {
                let frame = Frame::from_bytes(bytes.clone())
                    .unwrap_or_else(|e| panic!("example {name}: {e}"));
                let decoded = Message::from_frame(&frame)
                    .unwrap_or_else(|e| panic!("example {name} does not decode: {e}"));
                assert_eq!(decoded, sample, "example {name} decodes to another value");
                assert_eq!(
                    frame.as_bytes(),
                    encoded.as_bytes(),
                    "example {name} is not what the encoder writes:\n{}",
                    common::spaced_hex(encoded.as_bytes())
                );
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/protocol.md lacks examples:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_quote_request_with_a_bad_field_names_the_field_and_the_request() {
    let good = common::samples()
        .into_iter()
        .find(|m| matches!(m, Message::MintQuoteRequest(_)))
        .unwrap();
    let frame = good.to_frame().unwrap();
    let payload = frame.payload().to_vec();
    // Layout: request_id(4) amount(8) unit(1+4) header_hash(32) description(1)
    // locking_key(1+33) keyset_id(1+33).
    let locking_key_at = 4 + 8 + 5 + 32 + 1 + 1;

    let cases: Vec<(Vec<u8>, ErrorCode, &str)> = vec![
        (
            {
                let mut p = payload.clone();
                p[4..12].fill(0);
                p
            },
            ErrorCode::InvalidAmount,
            "amount",
        ),
        (
            {
                let mut p = payload.clone();
                p[17..49].fill(0);
                p
            },
            ErrorCode::InvalidHeaderHash,
            "header_hash",
        ),
        (
            {
                let mut p = payload.clone();
                p[locking_key_at] = 0x07;
                p
            },
            ErrorCode::InvalidLockingKey,
            "locking_key",
        ),
        (
            {
                let mut p = payload.clone();
                p[13] = b' ';
                p
            },
            ErrorCode::UnknownUnit,
            "unit",
        ),
        (
            {
                let mut p = payload.clone();
                let n = p.len();
                // The keyset id's version byte.
                p[n - 33] = 0x05;
                p
            },
            ErrorCode::UnknownKeyset,
            "keyset_id",
        ),
    ];
    for (bad, code, field) in cases {
        let frame = Frame::new(
            EXTENSION_TYPE_MINT_QUOTE,
            false,
            mint_quote::MINT_QUOTE_REQUEST,
            &bad,
        )
        .unwrap();
        let err = Message::from_frame(&frame).unwrap_err();
        assert_eq!(err.request_id(), Some(7), "{err}");
        assert_eq!(err.error_code(), code, "{err}");
        assert!(err.to_string().contains(field), "{err} should name {field}");
    }

    // Request id 0 is reserved for answers to unreadable requests.
    let mut zero = payload.clone();
    zero[..4].copy_from_slice(&0u32.to_le_bytes());
    let frame = Frame::new(
        EXTENSION_TYPE_MINT_QUOTE,
        false,
        mint_quote::MINT_QUOTE_REQUEST,
        &zero,
    )
    .unwrap();
    let err = Message::from_frame(&frame).unwrap_err();
    assert_eq!(err.request_id(), Some(0), "{err}");
    assert_eq!(err.error_code(), ErrorCode::MalformedRequest, "{err}");
    assert!(
        err.to_string().contains("request_id 0 is reserved"),
        "{err}"
    );

    // Cut short: still names the request it could read.
    let frame = Frame::new(
        EXTENSION_TYPE_MINT_QUOTE,
        false,
        mint_quote::MINT_QUOTE_REQUEST,
        &payload[..20],
    )
    .unwrap();
    let err = Message::from_frame(&frame).unwrap_err();
    assert_eq!(err.request_id(), Some(7));
    assert_eq!(err.error_code(), ErrorCode::MalformedRequest);

    // Trailing garbage is refused, not ignored.
    let mut long = payload.clone();
    long.push(0);
    let frame = Frame::new(
        EXTENSION_TYPE_MINT_QUOTE,
        false,
        mint_quote::MINT_QUOTE_REQUEST,
        &long,
    )
    .unwrap();
    let err = Message::from_frame(&frame).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
}

#[test]
fn unknown_extensions_types_and_the_channel_bit_are_told_apart() {
    let frame = Frame::new(0x0002, false, 0x00, &[]).unwrap();
    assert_eq!(
        Message::from_frame(&frame),
        Err(DecodeError::UnknownExtension(2))
    );
    let frame = Frame::new(EXTENSION_TYPE_MINT_QUOTE, false, 0x99, &[]).unwrap();
    assert_eq!(
        Message::from_frame(&frame),
        Err(DecodeError::UnknownMessageType {
            extension_type: EXTENSION_TYPE_MINT_QUOTE,
            msg_type: 0x99
        })
    );
    let good = common::samples()[1].to_frame().unwrap();
    let frame = Frame::new(EXTENSION_TYPE_COMMON, true, good.msg_type(), good.payload()).unwrap();
    assert!(matches!(
        Message::from_frame(&frame),
        Err(DecodeError::ChannelBitSet { .. })
    ));
}

#[test]
fn too_long_fields_are_refused_when_encoding() {
    let mut setup = match common::samples().remove(0) {
        Message::SetupConnection(s) => s,
        _ => unreachable!(),
    };
    setup.vendor = "v".repeat(256);
    let err = Message::SetupConnection(setup).to_frame().unwrap_err();
    assert!(err.to_string().contains("vendor"), "{err}");
    // Error messages are shortened instead, on a character boundary.
    let long = MintQuoteError::new(1, ErrorCode::InternalError, "é".repeat(200));
    assert!(long.error_message.len() <= 255);
    assert!(Message::MintQuoteError(long).to_frame().is_ok());
}

fn arb_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("fits 255 bytes", |s| s.len() <= 255)
}

fn arb_unit() -> impl Strategy<Value = Unit> {
    "[a-z0-9_-]{1,32}".prop_map(|s| Unit::new(&s).unwrap())
}

fn arb_header_hash() -> impl Strategy<Value = HeaderHash> {
    any::<[u8; 32]>()
        .prop_filter("non-zero", |b| b != &[0; 32])
        .prop_map(|b| HeaderHash::new(b).unwrap())
}

fn arb_locking_key() -> impl Strategy<Value = LockingKey> {
    any::<[u8; 32]>().prop_filter_map("valid secret", |b| {
        let secp = secp256k1::Secp256k1::signing_only();
        secp256k1::SecretKey::from_slice(&b)
            .ok()
            .map(|sk| LockingKey::from(secp256k1::PublicKey::from_secret_key(&secp, &sk)))
    })
}

fn arb_keyset_id() -> impl Strategy<Value = KeysetId> {
    prop_oneof![
        any::<[u8; 7]>().prop_map(|b| {
            let mut v = vec![0u8];
            v.extend_from_slice(&b);
            KeysetId::from_slice(&v).unwrap()
        }),
        any::<[u8; 32]>().prop_map(|b| {
            let mut v = vec![1u8];
            v.extend_from_slice(&b);
            KeysetId::from_slice(&v).unwrap()
        }),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            1..=u32::MAX,
            1..=u64::MAX,
            arb_unit(),
            arb_header_hash(),
            proptest::option::of(arb_text(80)),
            arb_locking_key(),
            arb_keyset_id()
        )
            .prop_map(
                |(request_id, amount, unit, header_hash, description, locking_key, keyset_id)| {
                    Message::MintQuoteRequest(MintQuoteRequest {
                        request_id,
                        amount,
                        unit,
                        header_hash,
                        description,
                        locking_key,
                        keyset_id,
                    })
                }
            ),
        (
            any::<u32>(),
            arb_text(80),
            any::<u64>(),
            arb_unit(),
            any::<u64>(),
            0u8..3,
            arb_header_hash()
        )
            .prop_map(
                |(request_id, quote_id, amount, unit, expires_at, state, header_hash)| {
                    Message::MintQuoteResponse(MintQuoteResponse {
                        request_id,
                        quote_id,
                        amount,
                        unit,
                        expires_at,
                        state: QuoteState::try_from(state).unwrap(),
                        header_hash,
                    })
                }
            ),
        (any::<u32>(), any::<u32>(), arb_text(300)).prop_map(|(id, code, msg)| {
            Message::MintQuoteError(MintQuoteError::new(id, ErrorCode::from(code), msg))
        }),
        (arb_unit(), arb_keyset_id(), any::<u64>()).prop_map(|(unit, keyset_id, input_fee_ppk)| {
            Message::ActiveKeyset(ActiveKeyset {
                unit,
                keyset_id,
                input_fee_ppk,
            })
        }),
        (any::<u16>(), proptest::collection::vec(any::<u16>(), 0..20)).prop_map(
            |(request_id, requested_extensions)| Message::RequestExtensions(RequestExtensions {
                request_id,
                requested_extensions
            })
        ),
        (
            any::<u16>(),
            proptest::collection::vec(any::<u16>(), 0..20),
            proptest::collection::vec(any::<u16>(), 0..20)
        )
            .prop_map(
                |(request_id, unsupported_extensions, required_extensions)| {
                    Message::RequestExtensionsError(RequestExtensionsError {
                        request_id,
                        unsupported_extensions,
                        required_extensions,
                    })
                }
            ),
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            arb_text(40),
            any::<u16>(),
            arb_text(40),
            arb_text(40),
            arb_text(40),
            arb_text(40)
        )
            .prop_map(
                |(
                    protocol,
                    min_version,
                    max_version,
                    flags,
                    endpoint_host,
                    endpoint_port,
                    vendor,
                    hardware_version,
                    firmware,
                    device_id,
                )| {
                    Message::SetupConnection(SetupConnection {
                        protocol,
                        min_version,
                        max_version,
                        flags,
                        endpoint_host,
                        endpoint_port,
                        vendor,
                        hardware_version,
                        firmware,
                        device_id,
                    })
                }
            ),
        (any::<u32>(), arb_text(60)).prop_map(|(flags, error_code)| Message::SetupConnectionError(
            SetupConnectionError { flags, error_code }
        )),
        any::<[u8; 32]>().prop_map(|n| Message::PoolAuthChallenge(PoolAuthChallenge {
            nonce: pool_auth::Challenge(n)
        })),
        any::<[u8; 64]>().prop_map(|signature| Message::PoolAuthProof(PoolAuthProof {
            pool_key: AuthorityKeypair::generate().public(),
            signature,
        })),
        any::<u64>().prop_map(|nonce| Message::Ping(Ping { nonce })),
        any::<u64>().prop_map(|nonce| Message::Pong(Pong { nonce })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_valid_messages_round_trip(message in arb_message()) {
        let frame = message.to_frame().unwrap();
        prop_assert_eq!(Message::from_frame(&frame).unwrap(), message);
    }

    #[test]
    fn random_payloads_never_panic_the_decoder(
        kind in 0..Message::ALL.len(),
        payload in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let (ext, ty) = (Message::ALL[kind].extension_type, Message::ALL[kind].msg_type);
        let frame = Frame::new(ext, false, ty, &payload).unwrap();
        // Either outcome is fine; what matters is that it returns.
        if let Ok(message) = Message::from_frame(&frame) {
            // Whatever decodes must encode back to the same bytes.
            let again = message.to_frame().unwrap();
            prop_assert_eq!(again.as_bytes(), frame.as_bytes());
        }
    }

    #[test]
    fn random_bytes_never_panic_frame_parsing(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(frame) = Frame::from_bytes(bytes) {
            let _ = Message::from_frame(&frame);
        }
    }

    #[test]
    fn corrupted_valid_requests_never_panic(message in arb_message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let frame = message.to_frame().unwrap();
        let mut payload = frame.payload().to_vec();
        if !payload.is_empty() {
            let i = at.index(payload.len());
            payload[i] = byte;
        }
        let frame = Frame::new(frame.extension_type(), false, frame.msg_type(), &payload).unwrap();
        let _ = Message::from_frame(&frame);
    }
}
