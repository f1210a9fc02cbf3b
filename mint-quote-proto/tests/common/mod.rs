//! Sample messages shared by the tests: one of each kind, with fixed
//! values, so that the hex examples in docs/protocol.md can be checked
//! against them.

use mint_quote_proto::constants::{
    EXTENSION_TYPE_MINT_QUOTE, MINT_QUOTE_PROTOCOL, PROTOCOL_VERSION,
};
use mint_quote_proto::pool_auth::Challenge;
use mint_quote_proto::*;

/// The secp256k1 generator point, compressed: a valid locking key.
pub const LOCKING_KEY_HEX: &str =
    "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

/// The x-only generator: a valid pool key.
pub const POOL_KEY_HEX: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

fn header_hash() -> HeaderHash {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    HeaderHash::new(bytes).unwrap()
}

fn pool_key() -> AuthorityPublicKey {
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&POOL_KEY_HEX[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    AuthorityPublicKey::from_slice(&bytes).unwrap()
}

/// One sample of every message, in message-type order.
pub fn samples() -> Vec<Message> {
    vec![
        Message::SetupConnection(SetupConnection {
            protocol: MINT_QUOTE_PROTOCOL,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: 0,
            endpoint_host: "mint".into(),
            endpoint_port: 34260,
            vendor: "hp".into(),
            hardware_version: "".into(),
            firmware: "0.1".into(),
            device_id: "pool".into(),
        }),
        Message::SetupConnectionSuccess(SetupConnectionSuccess {
            used_version: PROTOCOL_VERSION,
            flags: 0,
        }),
        Message::SetupConnectionError(SetupConnectionError {
            flags: 0,
            error_code: "unsupported-protocol".into(),
        }),
        Message::RequestExtensions(RequestExtensions {
            request_id: 1,
            requested_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
        }),
        Message::RequestExtensionsSuccess(RequestExtensionsSuccess {
            request_id: 1,
            supported_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
        }),
        Message::RequestExtensionsError(RequestExtensionsError {
            request_id: 1,
            unsupported_extensions: vec![0x4000],
            required_extensions: vec![EXTENSION_TYPE_MINT_QUOTE],
        }),
        Message::MintQuoteRequest(MintQuoteRequest {
            request_id: 7,
            amount: 32,
            unit: Unit::hash(),
            header_hash: header_hash(),
            description: None,
            locking_key: LOCKING_KEY_HEX.parse().unwrap(),
            keyset_id: "01fc2625c625c47a0186643df93648fd3d9639c9796a5ad84bc803073b53f1bfe1"
                .parse()
                .unwrap(),
        }),
        Message::MintQuoteResponse(MintQuoteResponse {
            request_id: 7,
            quote_id: "q1".into(),
            amount: 32,
            unit: Unit::hash(),
            expires_at: 1_800_000_000,
            state: QuoteState::Paid,
            header_hash: header_hash(),
        }),
        Message::MintQuoteError(MintQuoteError::new(
            7,
            ErrorCode::UnknownUnit,
            "no unit sat",
        )),
        Message::ActiveKeyset(ActiveKeyset {
            unit: Unit::hash(),
            keyset_id: "01fc2625c625c47a0186643df93648fd3d9639c9796a5ad84bc803073b53f1bfe1"
                .parse()
                .unwrap(),
            input_fee_ppk: 0,
        }),
        Message::PoolAuthChallenge(PoolAuthChallenge {
            nonce: Challenge([0xaa; 32]),
        }),
        Message::PoolAuthProof(PoolAuthProof {
            pool_key: pool_key(),
            signature: [0x55; 64],
        }),
        Message::PoolAuthSuccess(PoolAuthSuccess {
            pool_key: pool_key(),
        }),
        Message::PoolAuthError(PoolAuthError::new(
            ErrorCode::NotAuthorised,
            "key not allowed",
        )),
        Message::Ping(Ping {
            nonce: 0x0102030405060708,
        }),
        Message::Pong(Pong {
            nonce: 0x0102030405060708,
        }),
    ]
}

#[allow(dead_code)] // used by messages.rs, not by transport.rs
/// Lower-case hex with a space between bytes, as docs/protocol.md writes it.
pub fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
