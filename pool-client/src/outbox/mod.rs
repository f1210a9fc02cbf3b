//! The pool's durable outbox: every share handed to the client is stored
//! before it is sent, and removed once its answer has reached the pool
//! (its caller, or [`crate::MintQuoteClient::acknowledge`] for answers that
//! came after the caller stopped waiting). A pool restarted while the mint
//! was unreachable sends again what it had not been answered, and learns
//! the answers that were waiting for it.
//!
//! Writes go to one thread that commits whatever is waiting in one
//! transaction: under load many shares share one disk flush, and a lone
//! share waits for one flush (a fraction of a millisecond to a few on an
//! SSD). The outbox holds at most `max_shares` records; when full, new
//! shares are refused (or wait, by the client's `when_busy`) until answers
//! are taken.

mod record;
mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

pub(crate) use record::Record;
pub use store::StoreError;
use store::{Change, Store};

use crate::settled::Outcome;
use crate::share::Share;

/// Where the outbox lives and how much it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// The outbox file; `None` keeps it in memory (lost when the process
    /// ends: for tests and tools, not for a pool).
    pub path: Option<PathBuf>,
    /// Shares held at most: waiting for an answer, or answered and waiting
    /// for the pool to take the answer.
    pub max_shares: usize,
}

impl OutboxConfig {
    /// An outbox in memory holding `max_shares`.
    pub fn in_memory(max_shares: usize) -> Self {
        OutboxConfig {
            path: None,
            max_shares,
        }
    }
}

/// Why a share could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    /// The outbox holds `max_shares` already.
    #[error("the outbox holds {0} shares already (outbox.max_shares); take settled answers, or raise the limit")]
    Full(usize),
    /// The file could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbox's writer has stopped.
    #[error("the outbox's writer has stopped")]
    Stopped,
}

enum Op {
    Put {
        seq: u64,
        bytes: Vec<u8>,
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    Delete(u64),
}

/// Changes committed in one transaction, at most.
const MAX_GROUP: usize = 4096;

/// Handle to the outbox. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Outbox {
    ops: mpsc::Sender<Op>,
    held: Arc<AtomicUsize>,
    capacity: usize,
    room: Arc<Notify>,
    next_seq: Arc<AtomicU64>,
}

impl Outbox {
    /// Opens the outbox and returns what it holds, oldest first.
    pub(crate) fn open(config: &OutboxConfig) -> Result<(Outbox, Vec<(u64, Record)>), StoreError> {
        let store = Store::open(config.path.as_deref())?;
        let records = store.load()?;
        let next = records.last().map_or(1, |(seq, _)| seq + 1);
        let (ops, queue) = mpsc::channel(MAX_GROUP * 2);
        std::thread::Builder::new()
            .name("pool-outbox".into())
            .spawn(move || write_loop(store, queue))
            .map_err(|e| StoreError(format!("cannot start the outbox's writer: {e}")))?;
        let outbox = Outbox {
            ops,
            held: Arc::new(AtomicUsize::new(records.len())),
            capacity: config.max_shares.max(1),
            room: Arc::new(Notify::new()),
            next_seq: Arc::new(AtomicU64::new(next)),
        };
        Ok((outbox, records))
    }

    /// Records held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Takes one place, waiting for room until `wait_until` if given.
    async fn reserve(&self, wait_until: Option<Instant>) -> Result<(), OutboxError> {
        loop {
            let room = self.room.notified();
            let held = self.held.load(Ordering::Relaxed);
            if held < self.capacity {
                if self
                    .held
                    .compare_exchange(held, held + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            match wait_until {
                Some(until) if Instant::now() < until => {
                    if tokio::time::timeout_at(until, room).await.is_err() {
                        return Err(OutboxError::Full(self.capacity));
                    }
                }
                _ => return Err(OutboxError::Full(self.capacity)),
            }
        }
    }

    fn release(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
        self.room.notify_waiters();
    }

    /// Stores `share`, on disk when this returns; its sequence number.
    pub(crate) async fn store(
        &self,
        share: &Share,
        wait_until: Option<Instant>,
    ) -> Result<u64, OutboxError> {
        self.reserve(wait_until).await?;
        let stored = async {
            let bytes = Record {
                share: share.clone(),
                outcome: None,
            }
            .encode()
            .map_err(|e| StoreError(e.to_string()))?;
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let (done, committed) = oneshot::channel();
            self.ops
                .send(Op::Put {
                    seq,
                    bytes,
                    done: Some(done),
                })
                .await
                .map_err(|_| OutboxError::Stopped)?;
            committed
                .await
                .map_err(|_| OutboxError::Stopped)?
                .map_err(OutboxError::Store)?;
            Ok(seq)
        }
        .await;
        if stored.is_err() {
            self.release();
        }
        stored
    }

    /// Records the answer of share `seq`, which no caller took: it stays
    /// until the pool acknowledges it. Not waited on: if it is lost in a
    /// crash, the share is sent again at the next start and the mint gives
    /// the same answer.
    pub(crate) async fn settle(&self, seq: u64, share: &Share, outcome: &Outcome) {
        let record = Record {
            share: share.clone(),
            outcome: Some(outcome.clone()),
        };
        match record.encode() {
            Ok(bytes) => {
                let _ = self
                    .ops
                    .send(Op::Put {
                        seq,
                        bytes,
                        done: None,
                    })
                    .await;
            }
            Err(e) => tracing::error!(seq, error = %e, "cannot record an answer in the outbox"),
        }
    }

    /// Removes share `seq`: its answer has reached the pool. Not waited
    /// on: if it is lost in a crash, the share is sent again at the next
    /// start and its answer delivered again (the pool must take each
    /// answer idempotently, by header hash).
    pub(crate) async fn forget(&self, seq: u64) {
        let _ = self.ops.send(Op::Delete(seq)).await;
        self.release();
    }
}

/// The writer thread: takes what is waiting, commits it in one
/// transaction, then answers every store that waited for it.
fn write_loop(store: Store, mut queue: mpsc::Receiver<Op>) {
    let mut ops = Vec::with_capacity(MAX_GROUP);
    while queue.blocking_recv().map(|op| ops.push(op)).is_some() {
        while ops.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut changes = Vec::with_capacity(ops.len());
        let mut waiting = Vec::new();
        for op in ops.drain(..) {
            match op {
                Op::Put { seq, bytes, done } => {
                    changes.push(Change::Put(seq, bytes));
                    waiting.extend(done);
                }
                Op::Delete(seq) => changes.push(Change::Delete(seq)),
            }
        }
        let result = store.apply(&changes);
        if let Err(e) = &result {
            tracing::error!(error = %e, changes = changes.len(), "the outbox could not write");
        }
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settled::Refusal;

    fn share(n: u8) -> Share {
        let keyset: mint_quote_proto::KeysetId = "009a1f293253e41e".parse().unwrap();
        let mut hash = [n; 32];
        hash[0] = 1;
        Share {
            amount: 1 + u64::from(n),
            unit: mint_quote_proto::Unit::hash(),
            header_hash: mint_quote_proto::HeaderHash::new(hash).unwrap(),
            description: None,
            locking_key: "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
                .parse()
                .unwrap(),
            keyset_id: keyset,
        }
    }

    #[tokio::test]
    async fn what_is_stored_survives_a_reopen_and_what_is_forgotten_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = OutboxConfig {
            path: Some(dir.path().join("outbox.redb")),
            max_shares: 10,
        };
        {
            let (outbox, records) = Outbox::open(&config).unwrap();
            assert!(records.is_empty());
            let a = outbox.store(&share(1), None).await.unwrap();
            let b = outbox.store(&share(2), None).await.unwrap();
            let c = outbox.store(&share(3), None).await.unwrap();
            let refusal = Refusal {
                code: mint_quote_proto::ErrorCode::UnknownUnit,
                message: "no".into(),
            };
            outbox.settle(b, &share(2), &Err(refusal)).await;
            outbox.forget(a).await;
            let _ = c;
            // Let the writer commit the last, unwaited changes.
            outbox.store(&share(4), None).await.unwrap();
        }
        // The writer thread ends with the handle; the file is free again.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (outbox, records) = Outbox::open(&config).unwrap();
        let seqs: Vec<u64> = records.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        assert!(matches!(&records[0].1.outcome, Some(Err(r)) if r.message == "no"));
        assert_eq!(
            records[1].1,
            Record {
                share: share(3),
                outcome: None
            }
        );
        assert_eq!(outbox.held(), 3);
        // Numbering goes on after the last record.
        assert_eq!(outbox.store(&share(5), None).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_full_outbox_refuses_or_waits_for_room() {
        let (outbox, _) = Outbox::open(&OutboxConfig::in_memory(2)).unwrap();
        let a = outbox.store(&share(1), None).await.unwrap();
        outbox.store(&share(2), None).await.unwrap();
        assert!(matches!(
            outbox.store(&share(3), None).await,
            Err(OutboxError::Full(2))
        ));
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let until = Instant::now() + std::time::Duration::from_secs(5);
                outbox.store(&share(3), Some(until)).await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        outbox.forget(a).await;
        assert!(waiting.await.unwrap().is_ok());
    }
}
