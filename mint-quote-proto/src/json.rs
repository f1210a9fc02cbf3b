//! The JSON form of a quote request that pools push onto a Redis list today:
//!
//! ```json
//! {"unit":"HASH","amount":32,"header_hash":"<64 hex>","description":null,
//!  "pubkey":"<66 hex>","keyset_id":"<hex>"}
//! ```
//!
//! The same fields as [`MintQuoteRequest`], validated the same way, so both
//! paths create quotes from one kind of value.

use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;
use crate::message::MintQuoteRequest;
use crate::values::{HeaderHash, KeysetId, LockingKey, Unit, ValueError};

/// The request as it appears in JSON, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonQuoteRequest {
    /// Unit, such as `HASH`.
    pub unit: String,
    /// Amount; at least 1.
    pub amount: u64,
    /// 64 hex characters.
    pub header_hash: String,
    /// Optional description.
    pub description: Option<String>,
    /// NUT-20 locking key, 66 hex characters.
    pub pubkey: String,
    /// Keyset id, 16 or 66 hex characters.
    pub keyset_id: String,
}

/// Why a JSON request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonRequestError {
    /// Not JSON, or not of the expected shape.
    #[error("not a quote request: {0}")]
    Shape(String),
    /// A field has an unacceptable value.
    #[error("{field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// The error code that answers it.
        code: ErrorCode,
        /// What was wrong.
        reason: ValueError,
    },
    /// The amount is zero.
    #[error("amount must be at least 1")]
    ZeroAmount,
}

impl JsonRequestError {
    /// The error code this refusal corresponds to.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            JsonRequestError::Shape(_) => ErrorCode::MalformedRequest,
            JsonRequestError::Field { code, .. } => *code,
            JsonRequestError::ZeroAmount => ErrorCode::InvalidAmount,
        }
    }
}

fn field<T>(
    field: &'static str,
    code: ErrorCode,
    value: Result<T, ValueError>,
) -> Result<T, JsonRequestError> {
    value.map_err(|reason| JsonRequestError::Field {
        field,
        code,
        reason,
    })
}

impl JsonQuoteRequest {
    /// Parses and validates one JSON document into a request with
    /// `request_id` (the JSON form has none).
    pub fn parse(text: &str, request_id: u32) -> Result<MintQuoteRequest, JsonRequestError> {
        let json: JsonQuoteRequest =
            serde_json::from_str(text).map_err(|e| JsonRequestError::Shape(e.to_string()))?;
        json.into_request(request_id)
    }

    /// Validates the fields.
    pub fn into_request(self, request_id: u32) -> Result<MintQuoteRequest, JsonRequestError> {
        if self.amount == 0 {
            return Err(JsonRequestError::ZeroAmount);
        }
        Ok(MintQuoteRequest {
            request_id,
            amount: self.amount,
            unit: field("unit", ErrorCode::UnknownUnit, Unit::new(&self.unit))?,
            header_hash: field(
                "header_hash",
                ErrorCode::InvalidHeaderHash,
                self.header_hash.parse::<HeaderHash>(),
            )?,
            description: self.description,
            locking_key: field(
                "pubkey",
                ErrorCode::InvalidLockingKey,
                self.pubkey.parse::<LockingKey>(),
            )?,
            keyset_id: field(
                "keyset_id",
                ErrorCode::UnknownKeyset,
                self.keyset_id.parse::<KeysetId>(),
            )?,
        })
    }

    /// The JSON form of `request`, as a pool pushes it. The unit is written
    /// upper-case, as pools write it today.
    pub fn from_request(request: &MintQuoteRequest) -> Self {
        JsonQuoteRequest {
            unit: request.unit.as_str().to_ascii_uppercase(),
            amount: request.amount,
            header_hash: request.header_hash.to_hex(),
            description: request.description.clone(),
            pubkey: request.locking_key.to_string(),
            keyset_id: request.keyset_id.to_string(),
        }
    }

    /// Serializes to one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = r#"{"unit":"HASH","amount":32,"header_hash":"0101010101010101010101010101010101010101010101010101010101010101","description":null,"pubkey":"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798","keyset_id":"009a1f293253e41e"}"#;

    #[test]
    fn the_json_pools_push_today_parses() {
        let request = JsonQuoteRequest::parse(TODAY, 5).unwrap();
        assert_eq!(request.request_id, 5);
        assert_eq!(request.amount, 32);
        assert_eq!(request.unit, Unit::hash());
        assert_eq!(request.description, None);
        let back = JsonQuoteRequest::from_request(&request).to_json();
        assert_eq!(back, TODAY);
    }

    #[test]
    fn the_example_in_the_protocol_doc_parses_and_round_trips() {
        let doc = include_str!("../../docs/protocol.md");
        let example = doc
            .split("```json RedisQuoteRequest\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .expect("docs/protocol.md has a ```json RedisQuoteRequest block");
        let request = JsonQuoteRequest::parse(example, 1).unwrap();
        assert_eq!(
            request.keyset_id.to_string().len(),
            66,
            "a real 33-byte keyset id"
        );
        assert_eq!(
            request.header_hash.to_hex(),
            "5f1cf1b84e7d2a8cbe4a1f4d4a5f2a3b9c0d1e2f30415263748596a7b8c9dae1",
            "the hex is the wire bytes, first byte first"
        );
        assert_eq!(JsonQuoteRequest::from_request(&request).to_json(), example);
    }

    #[test]
    fn bad_json_says_what_is_wrong() {
        let err = JsonQuoteRequest::parse("{", 0).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::MalformedRequest);
        let err = JsonQuoteRequest::parse(&TODAY.replace("\"amount\":32", "\"amount\":0"), 0)
            .unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::InvalidAmount);
        let err = JsonQuoteRequest::parse(&TODAY.replace("0279be", "0479be"), 0).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::InvalidLockingKey, "{err}");
        let err = JsonQuoteRequest::parse(&TODAY.replace("\"HASH\"", "\"HA SH\""), 0).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::UnknownUnit);
        let err = JsonQuoteRequest::parse(&TODAY.replace("}", ",\"extra\":1}"), 0).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
