//! One share in the outbox, as stored: the share, and once the mint has
//! answered while no caller waited, that answer. Both are kept in the
//! protocol's own encoding (a `MintQuoteRequest` frame, then a
//! `MintQuoteResponse` or `MintQuoteError` frame), so the outbox adds no
//! format of its own.

use mint_quote_proto::frame::HEADER_SIZE;
use mint_quote_proto::{Frame, Message, MintQuoteError, MintQuoteResponse};

use crate::settled::{Outcome, Refusal};
use crate::share::{Quote, Share};

/// A stored share and its answer, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) share: Share,
    pub(crate) outcome: Option<Outcome>,
}

/// The request id a stored request carries. It means nothing (the link
/// gives each send an id of its own), but the protocol reserves 0, so a
/// stored request must not use it to stay decodable.
const STORED_REQUEST_ID: u32 = 1;

/// Bytes that are not a record (a damaged or foreign file).
#[derive(Debug, thiserror::Error)]
#[error("a damaged outbox record: {0}")]
pub(crate) struct BadRecord(String);

impl Record {
    /// `len(request) U32 LE | request frame | answer frame (optional)`.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, BadRecord> {
        let bad = |e: mint_quote_proto::EncodeError| BadRecord(e.to_string());
        let request = Message::MintQuoteRequest(self.share.to_request(STORED_REQUEST_ID))
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
        let mut request = bytes
            .get(4..4 + len)
            .ok_or_else(|| bad("request cut short"))?
            .to_vec();
        // Records written before request id 0 was reserved carry 0; the id
        // is meaningless here, so it is replaced before decoding.
        if let Some(id) = request.get_mut(HEADER_SIZE..HEADER_SIZE + 4) {
            id.copy_from_slice(&STORED_REQUEST_ID.to_le_bytes());
        }
        let answer = &bytes[4 + len..];
        let message = |bytes: &[u8]| {
            Frame::from_bytes(bytes.to_vec())
                .map_err(|e| BadRecord(e.to_string()))
                .and_then(|f| Message::from_frame(&f).map_err(|e| BadRecord(e.to_string())))
        };
        let share = match message(&request)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mint_quote_proto::{HeaderHash, LockingKey, Unit};

    fn share() -> Share {
        Share {
            amount: 32,
            unit: Unit::hash(),
            header_hash: HeaderHash::new([7; 32]).unwrap(),
            description: None,
            locking_key: "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
                .parse::<LockingKey>()
                .unwrap(),
            keyset_id: "01fc2625c625c47a0186643df93648fd3d9639c9796a5ad84bc803073b53f1bfe1"
                .parse()
                .unwrap(),
        }
    }

    #[test]
    fn a_record_reads_back() {
        let record = Record {
            share: share(),
            outcome: None,
        };
        let bytes = record.encode().unwrap();
        assert_eq!(Record::decode(&bytes).unwrap(), record);
    }

    /// Found by the fault tests: once request id 0 was reserved, records
    /// written with it no longer decoded and their shares were skipped.
    #[test]
    fn a_record_written_with_request_id_0_still_reads() {
        let record = Record {
            share: share(),
            outcome: None,
        };
        let mut bytes = record.encode().unwrap();
        // The request's id, after the 4-byte length and the frame header.
        bytes[4 + HEADER_SIZE..4 + HEADER_SIZE + 4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Record::decode(&bytes).unwrap(), record);
    }
}
