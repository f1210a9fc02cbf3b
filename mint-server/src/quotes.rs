//! Turning one share into one paid mint quote: the code both the Sv2 and
//! the Redis paths call.
//!
//! A quote is created already PAID in the same database transaction that
//! stores it, so no one ever sees it UNPAID, and it is answered only after
//! that transaction has committed. The share's header hash is the quote's
//! `request`, its `request_lookup_id` and its payment id, all three unique
//! in CDK's schema: a second quote for one share cannot exist. A repeated
//! request with the same content gets the first quote back; with other
//! content, an error. The writing itself is done by [`crate::quote_writer`],
//! which groups concurrent requests into one transaction.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cdk::amount::Amount;
use cdk::cdk_payment::PaymentIdentifier;
use cdk::mint::MintQuote;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PublicKey};
use cdk::Mint;
use mint_quote_proto::{
    ErrorCode, HeaderHash, LockingKey, MintQuoteRequest, MintQuoteResponse, QuoteState, Unit,
};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cashu_mint::{cdk_unit, mining_share_method, Database};
use crate::locking_keys::LockingKeys;
use crate::quote_writer::QuoteWriter;
use crate::supervisor::WorkerGuard;
use crate::writer_metrics::WriterMetrics;

/// A quote made (or found) for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedQuote {
    /// The answer to send, under the request's id.
    pub response: MintQuoteResponse,
    /// True when this request repeated an earlier one and got its quote.
    pub repeated: bool,
}

/// Why no quote was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The unit is not the one this mint issues.
    #[error("unit {requested} is not issued by this mint; use {issued}")]
    UnknownUnit {
        /// Asked for.
        requested: Unit,
        /// Issued.
        issued: Unit,
    },
    /// The amount is above the limit.
    #[error("amount {amount} is above this mint's limit of {max} per quote")]
    AmountTooLarge {
        /// Asked for.
        amount: u64,
        /// The limit.
        max: u64,
    },
    /// The keyset id is not one of this mint's keysets for the unit.
    #[error("keyset {0} is not a keyset of this mint for this unit")]
    UnknownKeyset(String),
    /// The locking key's 33 bytes are not a point on the curve (the
    /// decoder checks only their form).
    #[error("locking key {0} is not a valid secp256k1 point")]
    InvalidLockingKey(LockingKey),
    /// A quote for the share exists with other content.
    #[error("share {header_hash} already has quote {quote_id} with a different {differs}")]
    DuplicateMismatch {
        /// The share.
        header_hash: HeaderHash,
        /// The existing quote.
        quote_id: String,
        /// Which fields differ.
        differs: String,
    },
    /// Too many quotes are waiting to be written.
    #[error("the mint has {0} quotes waiting to be written; retry shortly")]
    Busy(usize),
    /// The database or CDK failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl QuoteError {
    /// The error code the pool is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            QuoteError::UnknownUnit { .. } => ErrorCode::UnknownUnit,
            QuoteError::AmountTooLarge { .. } => ErrorCode::InvalidAmount,
            QuoteError::UnknownKeyset(_) => ErrorCode::UnknownKeyset,
            QuoteError::InvalidLockingKey(_) => ErrorCode::InvalidLockingKey,
            QuoteError::DuplicateMismatch { .. } => ErrorCode::DuplicateShareMismatch,
            QuoteError::Busy(_) => ErrorCode::MintBusy,
            QuoteError::Internal(_) => ErrorCode::InternalError,
        }
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> QuoteError {
    QuoteError::Internal(e.to_string())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Limits of a [`QuoteIssuer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerLimits {
    /// Largest amount of one quote.
    pub max_amount: u64,
    /// Seconds a quote stays valid.
    pub ttl_secs: u64,
    /// Quotes waiting to be written, at most, before requests are refused
    /// as busy.
    pub max_pending: usize,
    /// Quotes written in one transaction, at most.
    pub max_batch: usize,
    /// Transactions written at once: 1 on SQLite (one writer at a time is
    /// all it takes), more on PostgreSQL, where a transaction spends most
    /// of its time waiting for round trips to the server.
    pub writers: usize,
}

/// Creates paid quotes for shares. Cheap to clone; all clones share one
/// writer.
#[derive(Clone)]
pub struct QuoteIssuer {
    mint: Arc<Mint>,
    unit: Unit,
    cdk_unit: CurrencyUnit,
    max_amount: u64,
    ttl_secs: u64,
    writer: QuoteWriter,
    /// Bounds the quotes waiting for the writer across all connections and
    /// the Redis path; beyond it requests are refused as busy.
    pending: Arc<Semaphore>,
    max_pending: usize,
    /// Locking keys already parsed.
    keys: Arc<LockingKeys>,
}

impl QuoteIssuer {
    /// An issuer of `unit` quotes under `limits`. Starts the writer on a
    /// thread of its own, which reports to `guard` if it dies.
    pub fn new(
        mint: Arc<Mint>,
        db: Database,
        unit: Unit,
        limits: IssuerLimits,
        metrics: WriterMetrics,
        guard: WorkerGuard,
    ) -> Self {
        let cdk_unit = cdk_unit(&unit);
        QuoteIssuer {
            writer: QuoteWriter::start(
                mint.clone(),
                db,
                limits.max_pending,
                limits.max_batch,
                limits.writers,
                metrics,
                guard,
            ),
            mint,
            unit,
            cdk_unit,
            max_amount: limits.max_amount,
            ttl_secs: limits.ttl_secs,
            pending: Arc::new(Semaphore::new(limits.max_pending)),
            max_pending: limits.max_pending,
            keys: Arc::default(),
        }
    }

    /// The CDK mint.
    pub fn mint(&self) -> &Arc<Mint> {
        &self.mint
    }

    /// Checks what the decoder cannot: the locking key is a point on the
    /// curve (parsed into CDK's type, which the quote needs, once per
    /// key), this mint's unit, amount limit and keysets. Returns the
    /// parsed key.
    fn check(&self, request: &MintQuoteRequest) -> Result<PublicKey, QuoteError> {
        let pubkey = self
            .keys
            .parse(&request.locking_key)
            .ok_or(QuoteError::InvalidLockingKey(request.locking_key))?;
        if request.unit != self.unit {
            return Err(QuoteError::UnknownUnit {
                requested: request.unit.clone(),
                issued: self.unit.clone(),
            });
        }
        if request.amount > self.max_amount {
            return Err(QuoteError::AmountTooLarge {
                amount: request.amount,
                max: self.max_amount,
            });
        }
        let known =
            self.mint.keysets().keysets.iter().any(|k| {
                k.unit == self.cdk_unit && k.id.to_bytes() == request.keyset_id.as_bytes()
            });
        if !known {
            return Err(QuoteError::UnknownKeyset(request.keyset_id.to_string()));
        }
        Ok(pubkey)
    }

    /// Creates the paid quote for `request`'s share, or returns the quote
    /// made for it before if the content is the same. Returns once the
    /// quote is committed to the database.
    pub async fn create(&self, request: &MintQuoteRequest) -> Result<IssuedQuote, QuoteError> {
        let pubkey = self.check(request)?;
        let _pending = self
            .pending
            .try_acquire()
            .map_err(|_| QuoteError::Busy(self.max_pending))?;
        let share = request.header_hash.to_hex();
        let now = unix_now();
        let quote = MintQuote::new(
            None,
            share.clone(),
            self.cdk_unit.clone(),
            Some(Amount::new(request.amount, self.cdk_unit.clone())),
            now.saturating_add(self.ttl_secs),
            PaymentIdentifier::CustomId(share),
            Some(pubkey),
            Amount::new(0, self.cdk_unit.clone()),
            Amount::new(0, self.cdk_unit.clone()),
            mining_share_method(),
            now,
            now,
            Vec::new(),
            Vec::new(),
            Some(extra_json(request)),
        );
        let written = self.writer.write(quote).await?;
        let differs = differences(&written.quote, request, &pubkey, &self.cdk_unit);
        if !differs.is_empty() {
            return Err(QuoteError::DuplicateMismatch {
                header_hash: request.header_hash,
                quote_id: written.quote.id.to_string(),
                differs: differs.join(", "),
            });
        }
        let quote = &written.quote;
        Ok(IssuedQuote {
            response: MintQuoteResponse {
                request_id: request.request_id,
                quote_id: quote.id.to_string(),
                amount: quote.amount.as_ref().map(|a| a.value()).unwrap_or(0),
                unit: self.unit.clone(),
                expires_at: quote.expiry,
                state: match quote.state() {
                    MintQuoteState::Unpaid => QuoteState::Unpaid,
                    MintQuoteState::Paid => QuoteState::Paid,
                    MintQuoteState::Issued => QuoteState::Issued,
                },
                header_hash: request.header_hash,
            },
            repeated: written.existed,
        })
    }
}

/// What CDK's quote has no column for, kept so a repeat can be compared.
fn extra_json(request: &MintQuoteRequest) -> serde_json::Value {
    json!({
        "keyset_id": request.keyset_id.to_string(),
        "description": request.description,
    })
}

/// Names the fields in which `request` differs from the stored quote.
fn differences(
    existing: &MintQuote,
    request: &MintQuoteRequest,
    pubkey: &PublicKey,
    unit: &CurrencyUnit,
) -> Vec<&'static str> {
    let mut differs = Vec::new();
    if existing.amount.as_ref().map(|a| a.value()) != Some(request.amount) {
        differs.push("amount");
    }
    if &existing.unit != unit {
        differs.push("unit");
    }
    if existing.pubkey.as_ref() != Some(pubkey) {
        differs.push("locking key");
    }
    if existing.payment_method != mining_share_method() {
        differs.push("payment method");
    }
    let extra = extra_json(request);
    let stored = existing.extra_json.as_ref();
    for field in ["keyset_id", "description"] {
        if stored.and_then(|s| s.get(field)) != extra.get(field) {
            differs.push(if field == "keyset_id" {
                "keyset id"
            } else {
                "description"
            });
        }
    }
    differs
}
