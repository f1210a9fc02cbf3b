//! The byte layout of every message, as `binary_sv2` structs.
//!
//! These structs are the wire format and nothing more: fields are the loose
//! Sv2 types (any 32 bytes, any string up to 255 bytes). `message.rs` turns
//! them into validated domain messages and back. The binary_sv2 derive wants
//! the lifetime named `'decoder` and bare imported type names.

use binary_sv2::{Deserialize, Seq064K, Serialize, Signature, Str0255, Sv2Option, B0255, U256};

/// `SetupConnection` (extension 0x0000, type 0x00), spec layout.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct SetupConnection<'decoder> {
    pub protocol: u8,
    pub min_version: u16,
    pub max_version: u16,
    pub flags: u32,
    pub endpoint_host: Str0255<'decoder>,
    pub endpoint_port: u16,
    pub vendor: Str0255<'decoder>,
    pub hardware_version: Str0255<'decoder>,
    pub firmware: Str0255<'decoder>,
    pub device_id: Str0255<'decoder>,
}

/// `SetupConnection.Success` (0x0000, 0x01).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct SetupConnectionSuccess {
    pub used_version: u16,
    pub flags: u32,
}

/// `SetupConnection.Error` (0x0000, 0x02).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct SetupConnectionError<'decoder> {
    pub flags: u32,
    pub error_code: Str0255<'decoder>,
}

/// `RequestExtensions` (0x0001, 0x00).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct RequestExtensions<'decoder> {
    pub request_id: u16,
    pub requested_extensions: Seq064K<'decoder, u16>,
}

/// `RequestExtensions.Success` (0x0001, 0x01).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct RequestExtensionsSuccess<'decoder> {
    pub request_id: u16,
    pub supported_extensions: Seq064K<'decoder, u16>,
}

/// `RequestExtensions.Error` (0x0001, 0x02).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct RequestExtensionsError<'decoder> {
    pub request_id: u16,
    pub unsupported_extensions: Seq064K<'decoder, u16>,
    pub required_extensions: Seq064K<'decoder, u16>,
}

/// `MintQuoteRequest` (0x4d51, 0x80).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct MintQuoteRequest<'decoder> {
    pub request_id: u32,
    pub amount: u64,
    pub unit: Str0255<'decoder>,
    pub header_hash: U256<'decoder>,
    pub description: Sv2Option<'decoder, Str0255<'decoder>>,
    pub locking_key: B0255<'decoder>,
    pub keyset_id: B0255<'decoder>,
}

/// `MintQuoteResponse` (0x4d51, 0x81).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct MintQuoteResponse<'decoder> {
    pub request_id: u32,
    pub quote_id: Str0255<'decoder>,
    pub amount: u64,
    pub unit: Str0255<'decoder>,
    pub expires_at: u64,
    pub state: u8,
    pub header_hash: U256<'decoder>,
}

/// `MintQuoteError` (0x4d51, 0x82).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct MintQuoteError<'decoder> {
    pub request_id: u32,
    pub error_code: u32,
    pub error_message: Str0255<'decoder>,
}

/// `ActiveKeyset` (0x4d51, 0x83).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct ActiveKeyset<'decoder> {
    pub unit: Str0255<'decoder>,
    pub keyset_id: B0255<'decoder>,
    pub input_fee_ppk: u64,
}

/// `PoolAuthChallenge` (0x4d51, 0x84).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct PoolAuthChallenge<'decoder> {
    pub nonce: U256<'decoder>,
}

/// `PoolAuthProof` (0x4d51, 0x85).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct PoolAuthProof<'decoder> {
    pub pool_key: U256<'decoder>,
    pub signature: Signature<'decoder>,
}

/// `PoolAuthSuccess` (0x4d51, 0x86).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct PoolAuthSuccess<'decoder> {
    pub pool_key: U256<'decoder>,
}

/// `PoolAuthError` (0x4d51, 0x87).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct PoolAuthError<'decoder> {
    pub error_code: u32,
    pub error_message: Str0255<'decoder>,
}
