//! The sections of `config/mint.toml` as written, with their defaults and
//! the documented range of every number.

use std::path::PathBuf;
use std::time::Duration;

use mint_quote_config::Range;
use serde::Deserialize;

/// The mint's own configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MintConfig {
    /// `[mint]`: identity, storage and quote policy.
    pub mint: MintSection,
    /// `[http]`: the public Cashu HTTP API.
    #[serde(default)]
    pub http: HttpSection,
    /// `[listener]`: admission and limits of the Sv2 listener.
    #[serde(default)]
    pub listener: ListenerSection,
    /// `[metrics]`: the Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// `[pools]`: who may create quotes.
    #[serde(default)]
    pub pools: PoolsSection,
    /// `[postgres]`: the server, when `mint.database = "postgres"`.
    #[serde(default)]
    pub postgres: PostgresSection,
    /// `[redis_consumer]`: this mint as one of the consumers of the Redis
    /// list.
    #[serde(default)]
    pub redis_consumer: RedisConsumerSection,
}

impl MintConfig {
    /// Every numeric key of the file, with its documented range.
    pub fn ranges() -> Vec<Range> {
        [
            &MintSection::RANGES[..],
            &HttpSection::RANGES,
            &MetricsSection::RANGES,
            &ListenerSection::RANGES,
            &PostgresSection::RANGES,
            &RedisConsumerSection::RANGES,
        ]
        .concat()
    }
}

/// Which database holds the mint's state.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    /// A SQLite file, `mint.sqlite`, in `data_dir`.
    #[default]
    Sqlite,
    /// In-memory SQLite: everything is lost at exit. For tests and benchmarks.
    Memory,
    /// A PostgreSQL server, `[postgres]`: the database several mints can
    /// share.
    Postgres,
}

/// `[mint]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MintSection {
    /// The mint's Sv2 authority secret key (base58check). Its public key must
    /// be the `mint_authority_pubkey` of the shared file.
    pub authority_secret_key: String,
    /// Directory for the database and the seed, created on first start.
    /// Relative paths are relative to the working directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Database kind.
    #[serde(default)]
    pub database: DatabaseKind,
    /// Unit quotes are issued in.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Largest amount of one quote.
    #[serde(default = "default_max_quote_amount")]
    pub max_quote_amount: u64,
    /// How long a quote stays valid, in seconds.
    #[serde(default = "default_quote_ttl_secs")]
    pub quote_ttl_secs: u64,
    /// Quotes waiting to be written, at most; beyond it requests are
    /// answered `mint-busy`.
    #[serde(default = "default_max_pending_quotes")]
    pub max_pending_quotes: usize,
    /// Quotes written in one database transaction, at most. Concurrent
    /// requests are grouped; a lone request is written at once.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Fee per thousand inputs of the unit's keyset (NUT-02).
    #[serde(default)]
    pub input_fee_ppk: u64,
    /// Name shown in the mint's NUT-06 info.
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/mint")
}
fn default_unit() -> String {
    "hash".into()
}
fn default_max_quote_amount() -> u64 {
    1 << 40
}
fn default_quote_ttl_secs() -> u64 {
    30 * 24 * 3600
}
fn default_max_pending_quotes() -> usize {
    4096
}
fn default_max_batch() -> usize {
    256
}
fn default_name() -> String {
    "mining-share mint".into()
}

impl MintSection {
    /// The documented range of every numeric key of `[mint]`.
    pub const RANGES: [Range; 5] = [
        Range::new("mint.max_quote_amount", 1, 1 << 62),
        // A quote must outlive the wallet's first attempt, and its expiry
        // (now + ttl) must stay a sensible Unix time.
        Range::new("mint.quote_ttl_secs", 60, 10 * 365 * 24 * 3600),
        Range::new("mint.max_pending_quotes", 1, 1_000_000),
        // The writer allocates its batch up front.
        Range::new("mint.max_batch", 1, 4096),
        Range::new("mint.input_fee_ppk", 0, 100_000),
    ];

    pub(super) fn ranges(&self) -> [(Range, u64); 5] {
        let [amount, ttl, pending, batch, fee] = Self::RANGES;
        [
            (amount, self.max_quote_amount),
            (ttl, self.quote_ttl_secs),
            (pending, self.max_pending_quotes as u64),
            (batch, self.max_batch as u64),
            (fee, self.input_fee_ppk),
        ]
    }
}

/// `[http]`: the Cashu HTTP API, which faces wallets, so strangers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Whether to serve the Cashu HTTP API.
    pub enabled: bool,
    /// Address of the Cashu HTTP API.
    pub listen: String,
    /// Connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Connections of one source (an IPv4 address, an IPv6 /64) at once.
    pub max_connections_per_source: usize,
    /// Requests worked on at once; more are answered 503 at once.
    pub max_concurrent_requests: usize,
    /// Time a client has to send a request's headers, from the moment
    /// the connection is ready for one (this also closes idle keep-alive
    /// connections), in ms.
    pub header_read_timeout_ms: u64,
    /// A connection on which nothing moves (no byte read or written) for
    /// this long is closed, in ms.
    pub idle_timeout_ms: u64,
    /// Time one request may take, body included, in ms.
    pub request_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Threads that serve the API (and the metrics endpoint).
    pub threads: usize,
    /// How much lower than the quote path those threads run (added to
    /// the process's niceness; 0: the same priority).
    pub nice: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            listen: "127.0.0.1:3338".into(),
            max_connections: 512,
            max_connections_per_source: 64,
            max_concurrent_requests: 64,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            request_timeout_ms: 30_000,
            max_body_bytes: 1 << 20,
            threads: 1,
            nice: 10,
        }
    }
}

impl HttpSection {
    /// The documented range of every numeric key of `[http]`.
    pub const RANGES: [Range; 9] = [
        Range::new("http.max_connections", 1, 100_000),
        Range::new("http.max_connections_per_source", 1, 100_000),
        Range::new("http.max_concurrent_requests", 1, 10_000),
        Range::new("http.header_read_timeout_ms", 100, 600_000),
        Range::new("http.idle_timeout_ms", 100, 3_600_000),
        Range::new("http.request_timeout_ms", 100, 600_000),
        Range::new("http.max_body_bytes", 1024, 64 << 20),
        Range::new("http.threads", 1, 64),
        Range::new("http.nice", 0, 19),
    ];

    pub(super) fn ranges(&self) -> [(Range, u64); 9] {
        let [conns, per_source, requests, header, idle, request, body, threads, nice] =
            Self::RANGES;
        [
            (conns, self.max_connections as u64),
            (per_source, self.max_connections_per_source as u64),
            (requests, self.max_concurrent_requests as u64),
            (header, self.header_read_timeout_ms),
            (idle, self.idle_timeout_ms),
            (request, self.request_timeout_ms),
            (body, self.max_body_bytes as u64),
            (threads, self.threads as u64),
            (nice, self.nice),
        ]
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Whether to serve Prometheus metrics.
    pub enabled: bool,
    /// Address of the metrics endpoint (`GET /metrics`).
    pub listen: String,
    /// Connections open at once (scrapers); more are closed at once.
    pub max_connections: usize,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            listen: "127.0.0.1:9091".into(),
            max_connections: 16,
        }
    }
}

impl MetricsSection {
    /// The documented range of every numeric key of `[metrics]`.
    pub const RANGES: [Range; 1] = [Range::new("metrics.max_connections", 1, 1_000)];

    pub(super) fn ranges(&self) -> [(Range, u64); 1] {
        let [conns] = Self::RANGES;
        [(conns, self.max_connections as u64)]
    }
}

/// `[listener]`: who gets a connection to the Sv2 listener, and for how
/// long before proving a pool key. See "Limits and timeouts" in
/// `docs/protocol.md`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerSection {
    /// Authenticated pool connections at once, across all pools. A
    /// connection counts here only once it has proved an allowed key.
    pub max_connections: usize,
    /// Authenticated connections of one pool key at once.
    pub max_connections_per_pool: usize,
    /// Connections that have not yet authenticated, at once. Kept apart
    /// from `max_connections`, so strangers never take a pool's place.
    pub max_unauthenticated: usize,
    /// Unauthenticated connections from one source (an IPv4 address, an
    /// IPv6 /64) at once.
    pub max_unauthenticated_per_source: usize,
    /// Time from accept to a successful pool authentication, in ms; a
    /// connection that has not authenticated by then is closed.
    pub auth_timeout_ms: u64,
    /// New connections accepted from one source per second, on average.
    pub connection_rate_per_source: u64,
    /// New connections one source may open at once above that rate.
    pub connection_burst_per_source: u64,
    /// Quote requests of one connection worked on at once. When reached, the
    /// mint stops reading that connection until one finishes.
    pub max_in_flight_per_connection: usize,
    /// On SIGINT/SIGTERM, time allowed for requests in flight to finish, ms.
    pub shutdown_grace_ms: u64,
    /// Validity of the Noise certificate the mint issues, in seconds.
    pub cert_validity_secs: u64,
    /// How much lower than the quote path the accept loop and connections
    /// that have not authenticated run (added to the process's niceness;
    /// 0: the same priority).
    pub admission_nice: u64,
    /// Networks the pools connect from (CIDR, such as `10.0.0.0/24`):
    /// their connections are never displaced by strangers'. A source a
    /// pool authenticated from is trusted the same way for a day.
    pub pool_networks: Vec<String>,
}

impl Default for ListenerSection {
    fn default() -> Self {
        ListenerSection {
            max_connections: 64,
            max_connections_per_pool: 8,
            max_unauthenticated: 32,
            max_unauthenticated_per_source: 4,
            auth_timeout_ms: 3_000,
            connection_rate_per_source: 10,
            connection_burst_per_source: 20,
            max_in_flight_per_connection: 256,
            shutdown_grace_ms: 10_000,
            cert_validity_secs: 3600,
            admission_nice: 10,
            pool_networks: Vec::new(),
        }
    }
}

impl ListenerSection {
    /// The documented range of every numeric key of `[listener]`.
    pub const RANGES: [Range; 11] = [
        Range::new("listener.max_connections", 1, 10_000),
        Range::new("listener.max_connections_per_pool", 1, 10_000),
        Range::new("listener.max_unauthenticated", 1, 10_000),
        Range::new("listener.max_unauthenticated_per_source", 1, 10_000),
        Range::new("listener.auth_timeout_ms", 100, 60_000),
        Range::new("listener.connection_rate_per_source", 1, 100_000),
        Range::new("listener.connection_burst_per_source", 1, 100_000),
        Range::new("listener.max_in_flight_per_connection", 1, 65_536),
        Range::new("listener.shutdown_grace_ms", 0, 600_000),
        Range::new("listener.cert_validity_secs", 60, 365 * 24 * 3600),
        Range::new("listener.admission_nice", 0, 19),
    ];

    pub(super) fn ranges(&self) -> [(Range, u64); 11] {
        let [conns, per_pool, unauth, per_source, auth, rate, burst, in_flight, grace, cert, nice] =
            Self::RANGES;
        [
            (conns, self.max_connections as u64),
            (per_pool, self.max_connections_per_pool as u64),
            (unauth, self.max_unauthenticated as u64),
            (per_source, self.max_unauthenticated_per_source as u64),
            (auth, self.auth_timeout_ms),
            (rate, self.connection_rate_per_source),
            (burst, self.connection_burst_per_source),
            (in_flight, self.max_in_flight_per_connection as u64),
            (grace, self.shutdown_grace_ms),
            (cert, self.cert_validity_secs),
            (nice, self.admission_nice),
        ]
    }

    /// The accept-to-authentication deadline.
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms)
    }
}

/// `[pools]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PoolsSection {
    /// Public keys (Sv2 base58check) of the pools allowed to create quotes.
    pub allowed: Vec<String>,
}

/// `[postgres]`: the PostgreSQL server of `mint.database = "postgres"`.
/// Several mints may share one database (docs/operations.md, "Several
/// mints").
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSection {
    /// Connection string, as libpq takes it: a URL
    /// (`postgresql://user:password@host:5432/dbname`) or `key=value` pairs
    /// (`host=/var/run/postgresql dbname=mint user=mint`). It may hold a
    /// password: it is never logged.
    pub url: String,
    /// Connections to the server this mint holds, at most; at least
    /// `writers + 2`.
    pub max_connections: usize,
    /// Quote transactions written at once. A transaction spends most of its
    /// time waiting for round trips to the server, so several in parallel
    /// write more quotes per second than one; each holds a connection.
    pub writers: usize,
    /// Time to open one connection, in seconds.
    pub connect_timeout_secs: u64,
    /// How often the mint reads the database's keysets, so that a rotation
    /// by another mint on the same database is served and announced here,
    /// in ms.
    pub keyset_refresh_ms: u64,
}

impl std::fmt::Debug for PostgresSection {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSection")
            .field("url", &"[redacted]")
            .field("max_connections", &self.max_connections)
            .field("writers", &self.writers)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("keyset_refresh_ms", &self.keyset_refresh_ms)
            .finish()
    }
}

impl Default for PostgresSection {
    fn default() -> Self {
        PostgresSection {
            url: String::new(),
            max_connections: 16,
            writers: 8,
            connect_timeout_secs: 10,
            keyset_refresh_ms: 2_000,
        }
    }
}

impl PostgresSection {
    /// The documented range of every numeric key of `[postgres]`.
    pub const RANGES: [Range; 4] = [
        Range::new("postgres.max_connections", 3, 1_000),
        Range::new("postgres.writers", 1, 64),
        Range::new("postgres.connect_timeout_secs", 1, 300),
        Range::new("postgres.keyset_refresh_ms", 100, 3_600_000),
    ];

    pub(super) fn ranges(&self) -> [(Range, u64); 4] {
        let [conns, writers, connect, refresh] = Self::RANGES;
        [
            (conns, self.max_connections as u64),
            (writers, self.writers as u64),
            (connect, self.connect_timeout_secs),
            (refresh, self.keyset_refresh_ms),
        ]
    }

    /// How often the keysets are read from the database.
    pub fn keyset_refresh(&self) -> Duration {
        Duration::from_millis(self.keyset_refresh_ms)
    }
}

/// `[redis_consumer]`: this mint as a consumer of the Redis list, which
/// several mints (on one database) may share.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConsumerSection {
    /// The mint's name on the list (its processing list and lease keys);
    /// unset, the mint makes one at its first start and keeps it in
    /// `data_dir/redis-consumer`. Unique among the mints of one list.
    pub name: Option<String>,
    /// How long the mint's lease lasts unrenewed, in ms (renewed every
    /// third of it). Once it has expired, another mint on the list puts
    /// back what this one held in processing.
    pub lease_ms: u64,
}

impl Default for RedisConsumerSection {
    fn default() -> Self {
        RedisConsumerSection {
            name: None,
            lease_ms: 30_000,
        }
    }
}

impl RedisConsumerSection {
    /// The documented range of every numeric key of `[redis_consumer]`.
    pub const RANGES: [Range; 1] = [Range::new("redis_consumer.lease_ms", 1_000, 3_600_000)];

    pub(super) fn ranges(&self) -> [(Range, u64); 1] {
        let [lease] = Self::RANGES;
        [(lease, self.lease_ms)]
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}
