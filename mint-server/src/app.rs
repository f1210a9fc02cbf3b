//! Starting and stopping the whole mint: CDK, the Sv2 listener, the HTTP
//! API and the Redis consumer, all under one shutdown token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cdk::Mint;
use mint_quote_proto::transport::TransportConfig;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, AdmissionLimits};
use crate::cashu_mint::{build_mint, open_database, BuildError};
use crate::config::{PublishedKeyRefusal, Settings};
use crate::data_dir::{DataDirLock, LockError};
use crate::http_server::{self, HttpLimits};
use crate::keyset::{active_keyset, watch_active_keyset};
use crate::metrics::{Listener, MintMetrics};
use crate::payment::MINING_SHARE_METHOD;
use crate::quotes::QuoteIssuer;
use crate::runtimes::BackgroundRuntime;
use crate::session::SessionContext;
use crate::supervisor::Supervisor;
use crate::{listener, redis_consumer, summary};

/// How often the active keyset is checked for a rotation.
const KEYSET_POLL: Duration = Duration::from_secs(1);

/// Why the mint did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The CDK mint could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A listening socket could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The mint has no active keyset for its unit.
    #[error("the mint has no active keyset for unit {0}")]
    NoActiveKeyset(String),
    /// The HTTP router could not be built.
    #[error("http api: {0}")]
    Http(String),
    /// A runtime for the listeners could not be started.
    #[error("cannot start the {what} runtime: {source}")]
    Runtime {
        /// Which runtime.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// Another mint holds the data directory.
    #[error(transparent)]
    DataDir(#[from] LockError),
    /// A development key on a listener other machines can reach.
    #[error(transparent)]
    PublishedKey(#[from] Box<PublishedKeyRefusal>),
    /// The mint's name as a Redis consumer cannot be had.
    #[error(transparent)]
    RedisConsumer(#[from] crate::redis_lease::NameError),
}

/// A started mint. Stop it with [`RunningMint::stop`].
pub struct RunningMint {
    /// Where the Sv2 listener listens, if enabled.
    pub sv2_addr: Option<SocketAddr>,
    /// Where the HTTP API listens, if enabled.
    pub http_addr: Option<SocketAddr>,
    /// Where the metrics endpoint listens, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The mint's metrics.
    pub metrics: MintMetrics,
    /// The CDK mint.
    pub mint: Arc<Mint>,
    /// The quote issuer (for tests and tools in the same process).
    pub issuer: QuoteIssuer,
    shutdown: CancellationToken,
    sessions: TaskTracker,
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
    /// Dropped (last) when the mint stops.
    runtimes: Vec<BackgroundRuntime>,
    supervisor: Supervisor,
    /// Held until the mint is dropped.
    _lock: DataDirLock,
}

fn background(
    what: &'static str,
    threads: usize,
    nice: u64,
) -> Result<BackgroundRuntime, StartError> {
    let nice = i32::try_from(nice).unwrap_or(19);
    BackgroundRuntime::start(what, threads, nice)
        .map_err(|source| StartError::Runtime { what, source })
}

/// Binds `addr` and returns the listener with the address it got (the
/// port is chosen by the OS when `addr` has port 0).
/// Connections the kernel may hold for a listener before it is accepted.
const LISTEN_BACKLOG: u32 = 4096;

async fn bind(
    what: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let error = |source| StartError::Bind { what, addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(error)?;
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    // The kernel's accept queue, capped by net.core.somaxconn. Under a
    // connection flood it is what a pool's SYN meets first: when it is
    // full the SYN is dropped and retried a second later.
    let listener = socket.listen(LISTEN_BACKLOG).map_err(error)?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { what, addr, source })?;
    Ok((listener, local))
}

/// Serves `router` on `listener` under `limits` until `shutdown`, on
/// `runtime`, supervised.
#[allow(clippy::too_many_arguments)]
fn spawn_http(
    supervisor: &Supervisor,
    runtime: &tokio::runtime::Handle,
    which: Listener,
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    metrics: &MintMetrics,
    shutdown: CancellationToken,
    grace: Duration,
) -> JoinHandle<()> {
    let worker = match which {
        Listener::Metrics => "the metrics endpoint",
        _ => "the HTTP API",
    };
    supervisor.spawn_on(
        runtime,
        worker,
        http_server::serve(
            listener,
            router,
            limits,
            which,
            metrics.clone(),
            shutdown,
            grace,
        ),
    )
}

/// Starts everything `settings` enables. Sockets are bound before this
/// returns, so a caller can connect at once.
pub async fn start(settings: Settings) -> Result<RunningMint, StartError> {
    // Checked again here, for settings built in code rather than loaded.
    settings.refuse_published_keys_beyond_loopback()?;
    // Before anything touches the data directory.
    let lock = DataDirLock::acquire(&settings.mint.mint.data_dir)?;
    let db = open_database(&settings).await?;
    let mint = build_mint(&settings, db.clone()).await?;
    let shutdown = CancellationToken::new();
    let supervisor = Supervisor::new(shutdown.clone());
    let metrics = MintMetrics::new();
    let issuer = QuoteIssuer::new(
        mint.clone(),
        db,
        settings.unit.clone(),
        settings.issuer_limits(),
        metrics.writer(),
        supervisor.guard("the quote writer"),
    );
    let initial = active_keyset(&mint, &settings.unit)
        .ok_or_else(|| StartError::NoActiveKeyset(settings.unit.to_string()))?;
    tracing::info!(keyset_id = %initial.keyset_id, unit = %initial.unit, "active keyset");

    let sessions = TaskTracker::new();
    let here = tokio::runtime::Handle::current();
    let published = settings.published_keys();
    metrics.set_development_keys(!published.is_empty());
    for used in &published {
        tracing::warn!("{used}; serving on loopback only");
    }
    let mut tasks = vec![supervisor.spawn_on(
        &here,
        "the log summary",
        summary::run(metrics.clone(), summary::INTERVAL, shutdown.clone()),
    )];
    let (keyset, watcher) = watch_active_keyset(
        mint.clone(),
        settings.unit.clone(),
        initial,
        KEYSET_POLL,
        shutdown.clone(),
    );
    tasks.push(supervisor.spawn_on(&here, "the keyset watcher", watcher));

    let mut runtimes = Vec::new();
    let mut sv2_addr = None;
    if settings.shared.sv2_messaging.enabled {
        let admission_runtime = background("admission", 1, settings.mint.listener.admission_nice)?;
        let (listener, addr) = bind("Sv2", settings.sv2_listen).await?;
        let s = &settings.shared.sv2_messaging;
        let ctx = Arc::new(SessionContext {
            issuer: issuer.clone(),
            keypair: settings.keypair,
            allowed_pools: settings.allowed_pools.clone(),
            transport: TransportConfig {
                handshake_timeout: settings.auth_timeout(),
                max_payload_len: s.max_payload_len,
                cert_validity: Duration::from_secs(settings.mint.listener.cert_validity_secs),
                write_timeout: s.write_timeout(),
            },
            idle_timeout: s.keepalive_timeout(),
            auth_timeout: settings.auth_timeout(),
            max_in_flight: settings.mint.listener.max_in_flight_per_connection,
            keyset: keyset.clone(),
            metrics: metrics.clone(),
            shutdown_grace: settings.shutdown_grace(),
            main: tokio::runtime::Handle::current(),
            sessions: sessions.clone(),
        });
        let admission = Admission::new(AdmissionLimits::of(
            &settings.mint.listener,
            settings.pool_networks.clone(),
        ));
        tracing::info!(%addr, authority_key = %settings.keypair.public(), "Sv2 listener ready");
        tasks.push(supervisor.spawn_on(
            &admission_runtime.handle(),
            "the Sv2 listener",
            listener::accept_loop(listener, ctx, admission, shutdown.clone(), sessions.clone()),
        ));
        runtimes.push(admission_runtime);
        sv2_addr = Some(addr);
    }

    let http_runtime = background("http", settings.mint.http.threads, settings.mint.http.nice)?;
    let mut http_addr = None;
    if let Some(addr) = settings.http_listen {
        let (listener, local) = bind("HTTP", addr).await?;
        let router =
            cdk_axum::create_mint_router(mint.clone(), vec![MINING_SHARE_METHOD.to_owned()])
                .await
                .map_err(|e| StartError::Http(e.to_string()))?
                .layer(axum::middleware::from_fn(http_server::without_websockets));
        let h = &settings.mint.http;
        let limits = HttpLimits {
            max_connections: h.max_connections,
            max_concurrent_requests: h.max_concurrent_requests,
            header_read_timeout: Duration::from_millis(h.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(h.idle_timeout_ms),
            request_timeout: Duration::from_millis(h.request_timeout_ms),
            max_body_bytes: h.max_body_bytes,
            max_connections_per_source: h.max_connections_per_source,
        };
        tasks.push(spawn_http(
            &supervisor,
            &http_runtime.handle(),
            Listener::Http,
            listener,
            router,
            limits,
            &metrics,
            shutdown.clone(),
            http_server::drain_time(settings.shutdown_grace()),
        ));
        tracing::info!(addr = %local, "Cashu HTTP API ready");
        http_addr = Some(local);
    }

    let mut metrics_addr = None;
    if let Some(addr) = settings.metrics_listen {
        let (listener, local) = bind("metrics", addr).await?;
        let served = metrics.clone();
        let router = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let text = served.render();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        text,
                    )
                }
            }),
        );
        tasks.push(spawn_http(
            &supervisor,
            &http_runtime.handle(),
            Listener::Metrics,
            listener,
            router,
            HttpLimits::metrics(settings.mint.metrics.max_connections),
            &metrics,
            shutdown.clone(),
            http_server::drain_time(settings.shutdown_grace()),
        ));
        tracing::info!(addr = %local, "metrics endpoint ready (GET /metrics)");
        metrics_addr = Some(local);
    }

    runtimes.push(http_runtime);

    if settings.shared.redis.enabled {
        let consumer = &settings.mint.redis_consumer;
        let name = crate::redis_lease::consumer_name(
            consumer.name.as_deref(),
            &settings.mint.mint.data_dir,
        )?;
        let identity = redis_consumer::ConsumerIdentity {
            keys: crate::redis_lease::ConsumerKeys::new(&settings.shared.redis, &name),
            lease: consumer.lease(),
        };
        tasks.push(supervisor.spawn_on(
            &here,
            "the Redis consumer",
            redis_consumer::run(
                settings.shared.redis.clone(),
                identity,
                issuer.clone(),
                metrics.clone(),
                keyset,
                shutdown.clone(),
            ),
        ));
    }

    Ok(RunningMint {
        sv2_addr,
        http_addr,
        metrics_addr,
        metrics,
        mint,
        issuer,
        shutdown,
        sessions,
        tasks,
        grace: settings.shutdown_grace(),
        runtimes,
        supervisor,
        _lock: lock,
    })
}

impl RunningMint {
    /// Waits until one of the mint's workers has died (see
    /// [`crate::supervisor`]) and says which and why. A mint in that state
    /// must be stopped, and the process must exit non-zero.
    pub async fn failure(&self) -> String {
        self.supervisor.failure().await
    }

    /// Stops accepting, lets requests in flight finish within the grace
    /// period, then stops everything. Returns false if the grace period ran
    /// out with sessions still busy.
    pub async fn stop(self) -> bool {
        tracing::info!("shutting down");
        // One grace period for everything, not one per part.
        let give_up = tokio::time::Instant::now() + self.grace;
        self.shutdown.cancel();
        self.sessions.close();
        let finished = tokio::time::timeout_at(give_up, self.sessions.wait())
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                grace_ms = self.grace.as_millis() as u64,
                "sessions still busy after the grace period"
            );
        }
        for task in self.tasks {
            if tokio::time::timeout_at(give_up, task).await.is_err() {
                tracing::warn!("a task did not stop within the grace period");
            }
        }
        if let Err(e) = self.mint.stop().await {
            tracing::warn!(error = %e, "cdk mint did not stop cleanly");
        }
        drop(self.runtimes);
        finished
    }
}
