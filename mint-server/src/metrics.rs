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

use crate::interval::{Interval, IntervalRecorder};
use crate::writer_metrics::WriterMetrics;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

/// Which listener a connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// The Sv2 listener (pools).
    Sv2,
    /// The Cashu HTTP API (wallets).
    Http,
    /// The metrics endpoint (scrapers).
    Metrics,
}

impl Listener {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Sv2 => "sv2",
            Listener::Http => "http",
            Listener::Metrics => "metrics",
        }
    }
}

/// How an Sv2 connection that never authenticated ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unauthenticated {
    /// It did not authenticate within the deadline.
    TimedOut,
    /// A newcomer displaced it when the unauthenticated budget was full.
    Evicted,
    /// The Noise handshake failed.
    HandshakeFailed,
    /// Setup failed: a protocol violation or a refused `SetupConnection`.
    SetupFailed,
    /// Its pool proof was refused (bad signature, key not allowed, or no
    /// room for the pool).
    AuthRefused,
    /// The peer closed it.
    Closed,
    /// The mint was shutting down.
    Shutdown,
}

impl Unauthenticated {
    /// Every ending, for summaries.
    pub const ALL: [Unauthenticated; 7] = [
        Unauthenticated::TimedOut,
        Unauthenticated::Evicted,
        Unauthenticated::HandshakeFailed,
        Unauthenticated::SetupFailed,
        Unauthenticated::AuthRefused,
        Unauthenticated::Closed,
        Unauthenticated::Shutdown,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Unauthenticated::TimedOut => "timed-out",
            Unauthenticated::Evicted => "evicted",
            Unauthenticated::HandshakeFailed => "handshake-failed",
            Unauthenticated::SetupFailed => "setup-failed",
            Unauthenticated::AuthRefused => "auth-refused",
            Unauthenticated::Closed => "closed",
            Unauthenticated::Shutdown => "shutdown",
        }
    }
}

/// The mint's metrics. Cheap to clone.
#[derive(Clone)]
pub struct MintMetrics {
    registry: Arc<Registry>,
    quotes_created: Family<PathLabels, Counter>,
    quotes_repeated: Family<PathLabels, Counter>,
    quote_errors: Family<ErrorLabels, Counter>,
    request_seconds: Family<PathLabels, Histogram>,
    connections_open: Family<StageLabels, Gauge>,
    connections_refused: Family<RefusedLabels, Counter>,
    unauthenticated_closed: Family<ReasonLabels, Counter>,
    http_connections_open: Family<ListenerLabels, Gauge>,
    accept_errors: Family<ListenerLabels, Counter>,
    development_keys: Gauge,
    sessions_ended: Family<ReasonLabels, Counter>,
    redis_dead_letters: Counter,
    redis_requeued: Counter,
    writer: WriterMetrics,
    interval: Arc<IntervalRecorder>,
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
        let connections_open = Family::<StageLabels, Gauge>::default();
        let connections_refused = Family::<RefusedLabels, Counter>::default();
        let unauthenticated_closed = Family::<ReasonLabels, Counter>::default();
        let http_connections_open = Family::<ListenerLabels, Gauge>::default();
        let accept_errors = Family::<ListenerLabels, Counter>::default();
        let development_keys = Gauge::default();
        let sessions_ended = Family::<ReasonLabels, Counter>::default();
        let redis_dead_letters = Counter::default();
        let redis_requeued = Counter::default();
        let writer = WriterMetrics::default();
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
            "Sv2 connections open now, by stage (unauthenticated, authenticated)",
            connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept or at authentication by a limit, by listener and reason",
            connections_refused.clone(),
        );
        registry.register(
            "unauthenticated_closed",
            "Sv2 connections that ended before authenticating, by reason",
            unauthenticated_closed.clone(),
        );
        registry.register(
            "http_connections_open",
            "HTTP connections open now, by listener (http, metrics)",
            http_connections_open.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accepts (usually out of file descriptors), by listener",
            accept_errors.clone(),
        );
        registry.register(
            "development_keys",
            "1 when the mint runs with a key published in its repository (loopback only), else 0",
            development_keys.clone(),
        );
        registry.register(
            "sessions_ended",
            "Authenticated Sv2 connections that ended, by reason (closed, lost, idle, write-timeout, violation)",
            sessions_ended.clone(),
        );
        registry.register(
            "redis_dead_letters",
            "Redis entries moved to the dead-letter list",
            redis_dead_letters.clone(),
        );
        registry.register(
            "redis_requeued",
            "Redis entries put back on the list from a processing list: this mint's own at start, or a consumer's whose lease expired",
            redis_requeued.clone(),
        );
        writer.register(&mut registry);
        MintMetrics {
            registry: Arc::new(registry),
            quotes_created,
            quotes_repeated,
            quote_errors,
            request_seconds,
            connections_open,
            connections_refused,
            unauthenticated_closed,
            http_connections_open,
            accept_errors,
            development_keys,
            sessions_ended,
            redis_dead_letters,
            redis_requeued,
            writer,
            interval: Arc::default(),
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
        self.interval
            .answered(matches!(path, Path::Redis), repeated, took);
    }

    /// A request was refused with `code`.
    pub fn quote_refused(&self, path: Path, code: mint_quote_proto::ErrorCode) {
        self.quote_errors
            .get_or_create(&ErrorLabels {
                path: path.as_str().to_owned(),
                code: code.as_str().to_owned(),
            })
            .inc();
        self.interval.refused();
    }

    /// What the quote paths did since the last call (for the log's
    /// periodic summary); the next interval starts now.
    pub fn take_interval(&self) -> Interval {
        self.interval.take()
    }

    /// An Sv2 connection entered `stage` (`unauthenticated` or
    /// `authenticated`); the guard counts it out when dropped.
    pub fn connection_stage(&self, stage: &'static str) -> GaugeGuard {
        let gauge = self
            .connections_open
            .get_or_create(&StageLabels { stage })
            .clone();
        gauge.inc();
        GaugeGuard(gauge)
    }

    /// An HTTP connection opened on `listener`; the guard counts it
    /// closed when dropped.
    pub fn http_connection_opened(&self, listener: Listener) -> GaugeGuard {
        let gauge = self
            .http_connections_open
            .get_or_create(&ListenerLabels {
                listener: listener.as_str(),
            })
            .clone();
        gauge.inc();
        GaugeGuard(gauge)
    }

    /// A connection was refused by a limit.
    pub fn connection_refused(&self, listener: Listener, reason: &'static str) {
        self.connections_refused
            .get_or_create(&RefusedLabels {
                listener: listener.as_str(),
                reason,
            })
            .inc();
    }

    /// An Sv2 connection ended before authenticating.
    pub fn unauthenticated_closed(&self, how: Unauthenticated) {
        self.unauthenticated_closed
            .get_or_create(&ReasonLabels {
                reason: how.as_str(),
            })
            .inc();
    }

    /// An accept on `listener` failed.
    pub fn accept_failed(&self, listener: Listener) {
        self.accept_errors
            .get_or_create(&ListenerLabels {
                listener: listener.as_str(),
            })
            .inc();
    }

    /// An authenticated Sv2 connection ended for `reason`.
    pub fn session_ended(&self, reason: &'static str) {
        self.sessions_ended
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Records whether the mint runs with published development keys.
    pub fn set_development_keys(&self, in_use: bool) {
        self.development_keys.set(i64::from(in_use));
    }

    /// Totals of refusals and unauthenticated endings since start, keyed
    /// by a readable name, for the periodic summary in the log.
    pub fn admission_totals(&self) -> Vec<(String, u64)> {
        let mut totals = Vec::new();
        for listener in [Listener::Sv2, Listener::Http, Listener::Metrics] {
            for reason in crate::admission::Refusal::ALL.map(|r| r.as_str()) {
                let labels = RefusedLabels {
                    listener: listener.as_str(),
                    reason,
                };
                if let Some(counter) = self.connections_refused.get(&labels) {
                    totals.push((
                        format!("{} refused ({reason})", listener.as_str()),
                        counter.get(),
                    ));
                }
            }
            if let Some(counter) = self.accept_errors.get(&ListenerLabels {
                listener: listener.as_str(),
            }) {
                totals.push((
                    format!("{} accept errors", listener.as_str()),
                    counter.get(),
                ));
            }
        }
        for how in Unauthenticated::ALL {
            let labels = ReasonLabels {
                reason: how.as_str(),
            };
            if let Some(counter) = self.unauthenticated_closed.get(&labels) {
                totals.push((
                    format!("sv2 unauthenticated {}", how.as_str()),
                    counter.get(),
                ));
            }
        }
        totals
    }

    /// The quote writer's histograms, for the writer to record into.
    pub fn writer(&self) -> WriterMetrics {
        self.writer.clone()
    }

    /// A Redis entry was dead-lettered.
    pub fn dead_lettered(&self) {
        self.redis_dead_letters.inc();
    }

    /// `entries` Redis entries put back on the list.
    pub fn redis_requeued(&self, entries: u64) {
        self.redis_requeued.inc_by(entries);
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Decrements a gauge when dropped.
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
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
        let guard = metrics.connection_stage("authenticated");
        let text = metrics.render();
        assert!(
            text.contains("mint_quote_quotes_created_total{path=\"sv2\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mint_quote_quote_errors_total{path=\"redis\",code=\"unknown-unit\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mint_quote_connections_open{stage=\"authenticated\"} 1"),
            "{text}"
        );
        drop(guard);
        assert!(metrics
            .render()
            .contains("mint_quote_connections_open{stage=\"authenticated\"} 0"));
    }
}
