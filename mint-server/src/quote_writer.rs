//! The one writer of mining-share quotes.
//!
//! All quote-creating writes go through one task. That serialises them,
//! which file-backed cdk-sqlite needs (it holds a write transaction across
//! awaits; overlapping writers end in "database is locked"), and lets the
//! task group what is waiting into one transaction: under load a batch of
//! quotes costs one commit instead of one each, and with nothing waiting a
//! request is written at once, with no added delay. Every quote of a batch
//! is answered only after the batch has committed, so an answered quote is
//! durable.
//!
//! The task runs on a thread and runtime of its own: cdk-sqlite executes
//! SQL synchronously on whatever thread polls it, so on the shared runtime
//! every statement would stall one of its (few) workers, and the sessions'
//! Noise and Sv2 work would stall the writer in turn.
//!
//! On PostgreSQL, `writers` tasks on that runtime take turns at the queue,
//! each with a transaction of its own: a transaction there mostly waits
//! for round trips to the server, so several overlap. Each takes at most
//! its share of a full batch (`max_batch / writers`), so that a burst is
//! spread over them instead of filling one. The database's unique index
//! on the share keeps one quote per share whichever writer, or mint,
//! stores it (see [`stored_by_another`]).

use std::collections::HashMap;
use std::sync::Arc;

use cdk::cdk_database::{self, MintDatabase, MintTransaction};
use cdk::cdk_payment::WaitPaymentResponse;
use cdk::mint::MintQuote;
use cdk::Mint;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::cashu_mint::Database;
use crate::quotes::{internal, QuoteError};
use crate::supervisor::WorkerGuard;
use crate::writer_metrics::WriterMetrics;

/// What the writer did with one quote.
pub(crate) struct Written {
    /// The stored quote: the one given, or the one the share already had.
    pub quote: MintQuote,
    /// True when the share already had a quote (this one was not stored).
    pub existed: bool,
}

struct Job {
    quote: MintQuote,
    reply: oneshot::Sender<Result<Written, QuoteError>>,
}

/// Handle to the writer task. Cheap to clone; the task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub(crate) struct QuoteWriter {
    jobs: mpsc::Sender<Job>,
}

impl QuoteWriter {
    /// Starts the writer. `capacity` bounds the queue (callers hold a
    /// pending slot, so it never fills); `max_batch` bounds what the
    /// writers hold at once, `writers` how many transactions are open at
    /// once. Each committed batch is counted in `metrics`.
    pub(crate) fn start(
        mint: Arc<Mint>,
        db: Database,
        capacity: usize,
        max_batch: usize,
        writers: usize,
        metrics: WriterMetrics,
        guard: WorkerGuard,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(capacity.max(1));
        // The guard moves into the thread; if the thread cannot start, it
        // is dropped here, unfinished, and the failure is reported.
        let spawned = std::thread::Builder::new()
            .name("quote-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let writers = writers.max(1);
                        let batch = (max_batch / writers).max(1);
                        let queue = Arc::new(Mutex::new(queue));
                        runtime.block_on(futures::future::join_all((0..writers).map(|_| {
                            run(
                                mint.clone(),
                                db.clone(),
                                queue.clone(),
                                batch,
                                metrics.clone(),
                            )
                        })));
                        // Every handle is gone: the mint is stopping.
                        guard.finished();
                    }
                    // The guard reports the failure as it drops.
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the quote writer's runtime")
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the quote writer thread");
        }
        QuoteWriter { jobs }
    }

    /// Stores `quote` (paid) unless its share has a quote already, and
    /// returns once that is committed.
    pub(crate) async fn write(&self, quote: MintQuote) -> Result<Written, QuoteError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { quote, reply })
            .await
            .map_err(|_| internal("the quote writer has stopped"))?;
        answer
            .await
            .unwrap_or_else(|_| Err(internal("the quote writer stopped before answering")))
    }
}

/// One writer: takes what waits (one job at least, `max_batch` at most)
/// and writes it, until every handle is gone.
async fn run(
    mint: Arc<Mint>,
    db: Database,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
    metrics: WriterMetrics,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    // Waits for one job, then takes whatever else is already waiting; the
    // next writer waits at the queue meanwhile.
    while queue.lock().await.recv_many(&mut jobs, max_batch).await > 0 {
        fail::fail_point!("quote-writer");
        let quotes: Vec<MintQuote> = jobs.iter().map(|j| j.quote.clone()).collect();
        let started = std::time::Instant::now();
        match write_batch(&mint, &db, &quotes).await {
            Ok(written) => {
                metrics.batch_written(quotes.len(), started.elapsed());
                for (job, written) in jobs.drain(..).zip(written) {
                    let _ = job.reply.send(Ok(written));
                }
            }
            Err(e) if jobs.len() > 1 => {
                // One quote can spoil a batch; write them one by one so the
                // others still succeed and the culprit gets its own error.
                tracing::warn!(batch = jobs.len(), error = %e, "batch failed; writing its quotes one by one");
                for job in jobs.drain(..) {
                    let result = write_one(&mint, &db, &job.quote).await;
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                for job in jobs.drain(..) {
                    let result = after_failure(&db, &job.quote, &e).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// Writes one quote in a transaction of its own.
async fn write_one(mint: &Mint, db: &Database, quote: &MintQuote) -> Result<Written, QuoteError> {
    match write_batch(mint, db, std::slice::from_ref(quote)).await {
        Ok(mut written) => written
            .pop()
            .ok_or_else(|| internal(format!("share {}: nothing written", quote.request))),
        Err(e) => after_failure(db, quote, &e).await,
    }
}

/// The answer to a failed write: the quote another writer stored for the
/// share meanwhile, else the failure.
async fn after_failure(
    db: &Database,
    quote: &MintQuote,
    error: &str,
) -> Result<Written, QuoteError> {
    match stored_by_another(db, quote).await {
        Some(written) => Ok(written),
        None => Err(internal(format!("share {}: {error}", quote.request))),
    }
}

/// After a failed write: the share's quote, if another mint on the same
/// database stored one meanwhile. Two mints that take the same share at
/// once both find no quote; the database's unique index lets one commit
/// and fails the other, which then answers with the winner's quote, so a
/// share has one quote whichever mints it was sent to.
async fn stored_by_another(db: &Database, quote: &MintQuote) -> Option<Written> {
    let existing = db
        .get_mint_quote_by_request_lookup_id(&quote.request_lookup_id)
        .await
        .ok()??;
    tracing::debug!(share = %quote.request, quote_id = %existing.id, "share stored by another writer meanwhile");
    Some(Written {
        quote: existing,
        existed: true,
    })
}

/// Writes `quotes` in one transaction; `Ok` only once it has committed,
/// with one result per quote, in order.
async fn write_batch(
    mint: &Mint,
    db: &Database,
    quotes: &[MintQuote],
) -> Result<Vec<Written>, String> {
    let mut tx = MintDatabase::begin_transaction(&**db)
        .await
        .map_err(|e| e.to_string())?;
    match fill(mint, &mut tx, quotes).await {
        Ok(written) => {
            tx.commit().await.map_err(|e| format!("commit: {e}"))?;
            Ok(written)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The transaction type CDK's mint database hands out.
type Transaction = Box<dyn MintTransaction<cdk_database::Error> + Send + Sync>;

async fn fill(
    mint: &Mint,
    tx: &mut Transaction,
    quotes: &[MintQuote],
) -> Result<Vec<Written>, String> {
    let mut written: Vec<Written> = Vec::with_capacity(quotes.len());
    // A share twice in one batch: the second gets the first's quote.
    let mut first_of_share: HashMap<&str, usize> = HashMap::new();
    for quote in quotes {
        if let Some(&i) = first_of_share.get(quote.request.as_str()) {
            let quote = written[i].quote.clone();
            written.push(Written {
                quote,
                existed: true,
            });
            continue;
        }
        let lookup = quote.request_lookup_id.clone();
        let existing = tx
            .get_mint_quote_by_request_lookup_id(&lookup)
            .await
            .map_err(|e| format!("looking up share {}: {e}", quote.request))?;
        let result = match existing {
            Some(existing) => Written {
                quote: existing.inner(),
                existed: true,
            },
            None => {
                let amount = quote
                    .amount
                    .clone()
                    .ok_or_else(|| format!("quote for share {} has no amount", quote.request))?;
                let mut stored = tx
                    .add_mint_quote(quote.clone())
                    .await
                    .map_err(|e| format!("storing share {}: {e}", quote.request))?;
                let payment = WaitPaymentResponse {
                    payment_identifier: lookup,
                    payment_amount: amount,
                    payment_id: quote.request.clone(),
                };
                mint.pay_mint_quote(tx, &mut stored, payment)
                    .await
                    .map_err(|e| format!("paying share {}: {e}", quote.request))?;
                Written {
                    quote: stored.inner(),
                    existed: false,
                }
            }
        };
        first_of_share.insert(quote.request.as_str(), written.len());
        written.push(result);
    }
    Ok(written)
}
