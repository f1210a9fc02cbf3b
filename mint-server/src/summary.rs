//! The log's periodic summary: one line per interval for the quotes
//! (counts, rate, latency percentiles) and one for refused and failed
//! connections, never a line per quote or per connection, so full speed
//! and attacks cost the log nothing (each quote's own line is at DEBUG;
//! the counts are also in the metrics).

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::interval::Interval;
use crate::metrics::MintMetrics;

/// How often the summary is written, when there is anything to say.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Writes, every `interval`, what the quote paths did and what was refused
/// or failed since the last lines, until `shutdown`.
pub async fn run(metrics: MintMetrics, interval: Duration, shutdown: CancellationToken) {
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        log_quotes(&metrics.take_interval(), interval);
        if let Some(line) = changes_since(&mut last, metrics.admission_totals()) {
            tracing::info!(
                interval_s = interval.as_secs(),
                "connections refused or closed before authenticating: {line}"
            );
        }
    }
}

/// One INFO line for the quotes of an interval, when there were any.
fn log_quotes(quotes: &Interval, interval: Duration) {
    if quotes.is_empty() {
        return;
    }
    let answered = quotes.created_sv2 + quotes.created_redis + quotes.repeated;
    tracing::info!(
        interval_s = interval.as_secs(),
        created_sv2 = quotes.created_sv2,
        created_redis = quotes.created_redis,
        repeated = quotes.repeated,
        refused = quotes.refused,
        per_second = (answered as f64 / interval.as_secs_f64()).round(),
        p50_ms = quotes.latency_ms(0.5),
        p99_ms = quotes.latency_ms(0.99),
        max_ms = quotes.latency_ms(1.0),
        "quotes"
    );
}

/// What grew since `last` (which it updates), as `name: count` pairs, or
/// `None` when nothing did.
fn changes_since(last: &mut HashMap<String, u64>, totals: Vec<(String, u64)>) -> Option<String> {
    let mut changes = Vec::new();
    for (name, total) in totals {
        let before = last.insert(name.clone(), total).unwrap_or(0);
        if total > before {
            changes.push(format!("{name}: {}", total - before));
        }
    }
    (!changes.is_empty()).then(|| changes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Listener, Unauthenticated};

    #[test]
    fn one_line_counts_what_happened_since_the_last() {
        let metrics = MintMetrics::new();
        let mut last = HashMap::new();
        assert_eq!(changes_since(&mut last, metrics.admission_totals()), None);
        for _ in 0..500 {
            metrics.connection_refused(Listener::Sv2, "rate-limited");
        }
        metrics.unauthenticated_closed(Unauthenticated::TimedOut);
        assert_eq!(
            changes_since(&mut last, metrics.admission_totals()).as_deref(),
            Some("sv2 refused (rate-limited): 500, sv2 unauthenticated timed-out: 1")
        );
        // Nothing new: nothing to say.
        assert_eq!(changes_since(&mut last, metrics.admission_totals()), None);
        metrics.connection_refused(Listener::Http, "connection-limit");
        assert_eq!(
            changes_since(&mut last, metrics.admission_totals()).as_deref(),
            Some("http refused (connection-limit): 1")
        );
    }
}
