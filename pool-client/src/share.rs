//! What the pool sends for a share and what it gets back.

use mint_quote_proto::{
    HeaderHash, KeysetId, LockingKey, MintQuoteRequest, MintQuoteResponse, QuoteState, Unit,
};

/// One accepted share, as the pool asks the mint to pay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Amount of the quote.
    pub amount: u64,
    /// Unit, `hash`.
    pub unit: Unit,
    /// Hash of the share's block header: the share's identity.
    pub header_hash: HeaderHash,
    /// Optional description stored with the quote.
    pub description: Option<String>,
    /// The miner's NUT-20 key.
    pub locking_key: LockingKey,
    /// The keyset the pool expects.
    pub keyset_id: KeysetId,
}

impl Share {
    /// The wire request for this share under `request_id`.
    pub fn to_request(&self, request_id: u32) -> MintQuoteRequest {
        MintQuoteRequest {
            request_id,
            amount: self.amount,
            unit: self.unit.clone(),
            header_hash: self.header_hash,
            description: self.description.clone(),
            locking_key: self.locking_key,
            keyset_id: self.keyset_id.clone(),
        }
    }
}

impl From<MintQuoteRequest> for Share {
    fn from(request: MintQuoteRequest) -> Self {
        Share {
            amount: request.amount,
            unit: request.unit,
            header_hash: request.header_hash,
            description: request.description,
            locking_key: request.locking_key,
            keyset_id: request.keyset_id,
        }
    }
}

/// A quote the mint made for a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The mint's quote id; the miner mints against it.
    pub quote_id: String,
    /// Amount.
    pub amount: u64,
    /// Unit.
    pub unit: Unit,
    /// Unix time after which it expires.
    pub expires_at: u64,
    /// State when answered (PAID for a new quote).
    pub state: QuoteState,
    /// The share.
    pub header_hash: HeaderHash,
}

impl From<MintQuoteResponse> for Quote {
    fn from(r: MintQuoteResponse) -> Self {
        Quote {
            quote_id: r.quote_id,
            amount: r.amount,
            unit: r.unit,
            expires_at: r.expires_at,
            state: r.state,
            header_hash: r.header_hash,
        }
    }
}
