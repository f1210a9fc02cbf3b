//! The quote writer's own measurements: quotes per transaction and the
//! time of each. A file of its own so that the writer need not know the
//! rest of the metrics (which know the configuration).

use std::time::Duration;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Histograms of the writer's committed transactions. Cheap to clone.
#[derive(Clone)]
pub struct WriterMetrics {
    batch_quotes: Histogram,
    transaction_seconds: Histogram,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        WriterMetrics {
            // 1 .. 512 quotes
            batch_quotes: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            // 100 µs .. ~3.3 s
            transaction_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }
}

impl WriterMetrics {
    /// Adds the histograms to `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "writer_batch_quotes",
            "Quotes written in one transaction of the quote writer (one WAL sync on SQLite)",
            self.batch_quotes.clone(),
        );
        registry.register(
            "writer_transaction_seconds",
            "Time of one committed transaction of the quote writer, begin to commit (the commit's disk sync included)",
            self.transaction_seconds.clone(),
        );
    }

    /// A committed transaction of `quotes` quotes that took `took` from
    /// begin to commit.
    pub fn batch_written(&self, quotes: usize, took: Duration) {
        self.batch_quotes.observe(quotes as f64);
        self.transaction_seconds.observe(took.as_secs_f64());
    }
}
