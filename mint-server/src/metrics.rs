//! Prometheus metrics of the mint, served as text on the address of
//! `[metrics]` in `mint.toml`.
//!
//! Each running mint has its own registry (no process-wide globals), so
//! several mints in one process, as in tests, keep separate counts.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Which path a quote request came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The Sv2 listener.
    Sv2,
    /// The Redis list.
    Redis,
}

impl Path {
    fn as_str(self) -> &'static str {
        match self {
            Path::Sv2 => "sv2",
            Path::Redis => "redis",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    path: String,
    code: String,
}

/// The mint's metrics. Cheap to clone.
#[derive(Clone)]
pub struct MintMetrics {
    registry: Arc<Registry>,
    quotes_created: Family<PathLabels, Counter>,
    quotes_repeated: Family<PathLabels, Counter>,
    quote_errors: Family<ErrorLabels, Counter>,
    request_seconds: Family<PathLabels, Histogram>,
    connections_open: Gauge,
    connections_refused: Counter,
    handshake_failures: Counter,
    redis_dead_letters: Counter,
}

impl Default for MintMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl MintMetrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mint_quote");
        let quotes_created = Family::<PathLabels, Counter>::default();
        let quotes_repeated = Family::<PathLabels, Counter>::default();
        let quote_errors = Family::<ErrorLabels, Counter>::default();
        // 100 µs .. ~3.3 s
        let request_seconds = Family::<PathLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
        let handshake_failures = Counter::default();
        let redis_dead_letters = Counter::default();
        registry.register(
            "quotes_created",
            "Quotes created, by path",
            quotes_created.clone(),
        );
        registry.register(
            "quotes_repeated",
            "Requests that repeated a share and got its existing quote, by path",
            quotes_repeated.clone(),
        );
        registry.register(
            "quote_errors",
            "Requests refused, by path and error code",
            quote_errors.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer one quote request, by path",
            request_seconds.clone(),
        );
        registry.register(
            "connections_open",
            "Sv2 connections open now",
            connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Sv2 connections closed at once because the connection limit was reached",
            connections_refused.clone(),
        );
        registry.register(
            "handshake_failures",
            "Sv2 connections that failed the Noise handshake or the connection setup",
            handshake_failures.clone(),
        );
        registry.register(
            "redis_dead_letters",
            "Redis entries moved to the dead-letter list",
            redis_dead_letters.clone(),
        );
        MintMetrics {
            registry: Arc::new(registry),
            quotes_created,
            quotes_repeated,
            quote_errors,
            request_seconds,
            connections_open,
            connections_refused,
            handshake_failures,
            redis_dead_letters,
        }
    }

    fn path(path: Path) -> PathLabels {
        PathLabels {
            path: path.as_str().to_owned(),
        }
    }

    /// A quote was answered (new or repeated) after `took`.
    pub fn quote_answered(&self, path: Path, repeated: bool, took: Duration) {
        let labels = Self::path(path);
        if repeated {
            self.quotes_repeated.get_or_create(&labels).inc();
        } else {
            self.quotes_created.get_or_create(&labels).inc();
        }
        self.request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A request was refused with `code`.
    pub fn quote_refused(&self, path: Path, code: mint_quote_proto::ErrorCode) {
        self.quote_errors
            .get_or_create(&ErrorLabels {
                path: path.as_str().to_owned(),
                code: code.as_str().to_owned(),
            })
            .inc();
    }

    /// A connection opened; the guard counts it closed when dropped.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.connections_open.inc();
        ConnectionGuard(self.connections_open.clone())
    }

    /// A connection was refused at the connection limit.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// A connection failed its handshake or setup.
    pub fn handshake_failed(&self) {
        self.handshake_failures.inc();
    }

    /// A Redis entry was dead-lettered.
    pub fn dead_lettered(&self) {
        self.redis_dead_letters.inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Decrements the open-connections gauge when dropped.
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_text_format() {
        let metrics = MintMetrics::new();
        metrics.quote_answered(Path::Sv2, false, Duration::from_millis(2));
        metrics.quote_refused(Path::Redis, mint_quote_proto::ErrorCode::UnknownUnit);
        let guard = metrics.connection_opened();
        let text = metrics.render();
        assert!(
            text.contains("mint_quote_quotes_created_total{path=\"sv2\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mint_quote_quote_errors_total{path=\"redis\",code=\"unknown-unit\"} 1"),
            "{text}"
        );
        assert!(text.contains("mint_quote_connections_open 1"), "{text}");
        drop(guard);
        assert!(metrics.render().contains("mint_quote_connections_open 0"));
    }
}
