//! One share in the outbox, as stored: the share, and once the mint has
//! answered while no caller waited, that answer. Both are kept in the
//! protocol's own encoding (a `MintQuoteRequest` frame, then a
//! `MintQuoteResponse` or `MintQuoteError` frame), so the outbox adds no
//! format of its own.

use mint_quote_proto::{Frame, Message, MintQuoteError, MintQuoteResponse};

use crate::settled::{Outcome, Refusal};
use crate::share::{Quote, Share};

/// A stored share and its answer, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) share: Share,
    pub(crate) outcome: Option<Outcome>,
}

/// Bytes that are not a record (a damaged or foreign file).
#[derive(Debug, thiserror::Error)]
#[error("a damaged outbox record: {0}")]
pub(crate) struct BadRecord(String);

impl Record {
    /// `len(request) U32 LE | request frame | answer frame (optional)`.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, BadRecord> {
        let bad = |e: mint_quote_proto::EncodeError| BadRecord(e.to_string());
        let request = Message::MintQuoteRequest(self.share.to_request(0))
            .to_frame()
            .map_err(bad)?;
        let request = request.as_bytes();
        let mut bytes = Vec::with_capacity(4 + request.len() + 128);
        bytes.extend_from_slice(&(request.len() as u32).to_le_bytes());
        bytes.extend_from_slice(request);
        let answer = match &self.outcome {
            None => None,
            Some(Ok(quote)) => Some(Message::MintQuoteResponse(MintQuoteResponse {
                request_id: 0,
                quote_id: quote.quote_id.clone(),
                amount: quote.amount,
                unit: quote.unit.clone(),
                expires_at: quote.expires_at,
                state: quote.state,
                header_hash: quote.header_hash,
            })),
            Some(Err(refusal)) => Some(Message::MintQuoteError(MintQuoteError::new(
                0,
                refusal.code,
                refusal.message.clone(),
            ))),
        };
        if let Some(answer) = answer {
            bytes.extend_from_slice(answer.to_frame().map_err(bad)?.as_bytes());
        }
        Ok(bytes)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Record, BadRecord> {
        let bad = |what: &str| BadRecord(what.to_owned());
        let len = bytes
            .first_chunk::<4>()
            .map(|b| u32::from_le_bytes(*b) as usize)
            .ok_or_else(|| bad("shorter than its length"))?;
        let request = bytes
            .get(4..4 + len)
            .ok_or_else(|| bad("request cut short"))?;
        let answer = &bytes[4 + len..];
        let message = |bytes: &[u8]| {
            Frame::from_bytes(bytes.to_vec())
                .map_err(|e| BadRecord(e.to_string()))
                .and_then(|f| Message::from_frame(&f).map_err(|e| BadRecord(e.to_string())))
        };
        let share = match message(request)? {
            Message::MintQuoteRequest(r) => Share::from(r),
            other => return Err(BadRecord(format!("{} where a share belongs", other.name()))),
        };
        let outcome = if answer.is_empty() {
            None
        } else {
            Some(match message(answer)? {
                Message::MintQuoteResponse(r) => Ok(Quote::from(r)),
                Message::MintQuoteError(e) => Err(Refusal {
                    code: e.error_code,
                    message: e.error_message,
                }),
                other => {
                    return Err(BadRecord(format!(
                        "{} where an answer belongs",
                        other.name()
                    )))
                }
            })
        };
        Ok(Record { share, outcome })
    }
}
