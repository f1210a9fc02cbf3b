//! Who gets a connection to the Sv2 listener.
//!
//! Two budgets, kept apart so that strangers can never take a pool's
//! place:
//!
//! - **Unauthenticated** connections (from accept until a pool key is
//!   proved) have a small budget of their own, a smaller one per source,
//!   and a rate of new connections per source. When the whole budget is
//!   taken, a newcomer displaces the oldest connection of the source that
//!   holds the most, so a flood from a few addresses displaces itself and
//!   a pool's fresh connection still gets its turn.
//! - **Authenticated** connections count against `max_connections` (and a
//!   per-pool-key share of it) only once the pool has proved its key.
//!
//! Every unauthenticated connection also has one deadline from accept to
//! authentication (enforced by the session). Refusals cost an accept and
//! a close, nothing more: no handshake, no allocation beyond the socket.
//!
//! **Pool sources.** A source from which a pool authenticated within the
//! last day, or one in the configured `pool_networks`, is *trusted*: its
//! unauthenticated connections are never displaced by strangers', and may
//! displace them when the budget is full. However many addresses a
//! stranger floods from, a pool from a known address gets its turn.

mod rate;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use mint_quote_proto::AuthorityPublicKey;
use tokio_util::sync::CancellationToken;

use crate::config::ListenerSection;
use rate::RateLimiter;
pub use source::Source;

/// Why a connection was refused or closed by admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The source opened connections faster than its rate.
    RateLimited,
    /// The source already holds its share of unauthenticated connections.
    SourceLimit,
    /// Every unauthenticated slot is taken by connections that may not be
    /// displaced.
    UnauthenticatedLimit,
    /// Every authenticated slot is taken.
    ConnectionLimit,
    /// The pool key already holds its share of authenticated slots.
    PoolLimit,
}

impl Refusal {
    /// Every refusal, for metrics and summaries.
    pub const ALL: [Refusal; 5] = [
        Refusal::RateLimited,
        Refusal::SourceLimit,
        Refusal::UnauthenticatedLimit,
        Refusal::ConnectionLimit,
        Refusal::PoolLimit,
    ];

    /// A short stable name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate-limited",
            Refusal::SourceLimit => "source-limit",
            Refusal::UnauthenticatedLimit => "unauthenticated-limit",
            Refusal::ConnectionLimit => "connection-limit",
            Refusal::PoolLimit => "pool-limit",
        }
    }
}

/// The limits admission enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Authenticated connections at once.
    pub max_connections: usize,
    /// Authenticated connections of one pool key at once.
    pub max_connections_per_pool: usize,
    /// Unauthenticated connections at once.
    pub max_unauthenticated: usize,
    /// Unauthenticated connections of one source at once.
    pub max_unauthenticated_per_source: usize,
    /// New connections per source per second.
    pub rate_per_source: u64,
    /// New connections one source may open at once above the rate.
    pub burst_per_source: u64,
    /// Networks the pools connect from (trusted from the start).
    pub pool_networks: Vec<IpNet>,
}

impl AdmissionLimits {
    /// The limits `[listener]` sets, with `pool_networks` parsed.
    pub fn of(l: &ListenerSection, pool_networks: Vec<IpNet>) -> Self {
        AdmissionLimits {
            max_connections: l.max_connections,
            max_connections_per_pool: l.max_connections_per_pool,
            max_unauthenticated: l.max_unauthenticated,
            max_unauthenticated_per_source: l.max_unauthenticated_per_source,
            rate_per_source: l.connection_rate_per_source,
            burst_per_source: l.connection_burst_per_source,
            pool_networks,
        }
    }
}

/// How long a source stays trusted after a pool authenticated from it.
const TRUST_FOR: Duration = Duration::from_secs(24 * 3600);
/// Learned pool sources kept at most (the oldest is forgotten first).
const MAX_TRUSTED: usize = 4096;

#[derive(Debug)]
struct Waiting {
    source: Source,
    trusted: bool,
    evict: CancellationToken,
}

#[derive(Debug)]
struct State {
    next_id: u64,
    /// Unauthenticated connections by admission order (oldest first).
    waiting: BTreeMap<u64, Waiting>,
    per_source: HashMap<Source, usize>,
    authenticated: usize,
    per_pool: HashMap<AuthorityPublicKey, usize>,
    rate: RateLimiter,
    /// Sources a pool authenticated from, and when it last did.
    trusted: HashMap<Source, Instant>,
}

/// The admission state of one listener. Shared by the accept loop and the
/// sessions; every operation is a short critical section.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    state: Mutex<State>,
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: AdmissionLimits) -> Arc<Self> {
        let rate = RateLimiter::new(limits.rate_per_source, limits.burst_per_source);
        Arc::new(Admission {
            limits,
            state: Mutex::new(State {
                next_id: 0,
                waiting: BTreeMap::new(),
                per_source: HashMap::new(),
                authenticated: 0,
                per_pool: HashMap::new(),
                rate,
                trusted: HashMap::new(),
            }),
        })
    }

    fn is_trusted(&self, state: &State, ip: IpAddr, source: Source, now: Instant) -> bool {
        self.limits.pool_networks.iter().any(|n| n.contains(&ip))
            || state
                .trusted
                .get(&source)
                .is_some_and(|at| now.saturating_duration_since(*at) < TRUST_FOR)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counts half
        // updated (each update is one statement), so carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection from `ip`, or says why not. When the
    /// unauthenticated budget is full, the oldest connection of the source
    /// holding the most is displaced (its [`Unauthenticated::evicted`]
    /// fires) to make room.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Unauthenticated, Refusal> {
        let source = Source::from(ip);
        let now = Instant::now();
        let mut state = self.state();
        if !state.rate.allow(source, now) {
            return Err(Refusal::RateLimited);
        }
        let held = state.per_source.get(&source).copied().unwrap_or(0);
        if held >= self.limits.max_unauthenticated_per_source {
            return Err(Refusal::SourceLimit);
        }
        let trusted = self.is_trusted(&state, ip, source, now);
        if state.waiting.len() >= self.limits.max_unauthenticated {
            displace_one(&mut state, trusted)?;
        }
        let id = state.next_id;
        state.next_id += 1;
        let evict = CancellationToken::new();
        state.waiting.insert(
            id,
            Waiting {
                source,
                trusted,
                evict: evict.clone(),
            },
        );
        *state.per_source.entry(source).or_default() += 1;
        Ok(Unauthenticated {
            admission: self.clone(),
            id,
            source,
            evict,
        })
    }

    /// Unauthenticated and authenticated connections held now.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state();
        (state.waiting.len(), state.authenticated)
    }

    fn release_waiting(&self, id: u64) {
        let mut state = self.state();
        if let Some(waiting) = state.waiting.remove(&id) {
            release_source(&mut state, waiting.source);
        }
    }

    fn release_authenticated(&self, pool: &AuthorityPublicKey) {
        let mut state = self.state();
        state.authenticated = state.authenticated.saturating_sub(1);
        if let Some(count) = state.per_pool.get_mut(pool) {
            *count -= 1;
            if *count == 0 {
                state.per_pool.remove(pool);
            }
        }
    }
}

fn release_source(state: &mut State, source: Source) {
    if let Some(count) = state.per_source.get_mut(&source) {
        *count -= 1;
        if *count == 0 {
            state.per_source.remove(&source);
        }
    }
}

/// Frees one unauthenticated slot for a newcomer: the oldest connection of
/// the untrusted source holding the most (the oldest such source first,
/// among equals). Only a trusted newcomer may displace a trusted connection,
/// and only when no untrusted one is left.
fn displace_one(state: &mut State, newcomer_trusted: bool) -> Result<(), Refusal> {
    let victim = oldest_of_busiest(state, false).or_else(|| {
        newcomer_trusted
            .then(|| oldest_of_busiest(state, true))
            .flatten()
    });
    let victim = victim.ok_or(Refusal::UnauthenticatedLimit)?;
    if let Some(waiting) = state.waiting.remove(&victim) {
        waiting.evict.cancel();
        release_source(state, waiting.source);
    }
    Ok(())
}

/// The oldest waiting connection, among those `trusted` or not, of the
/// source that holds the most of them.
fn oldest_of_busiest(state: &State, trusted: bool) -> Option<u64> {
    let mut counts: HashMap<Source, usize> = HashMap::new();
    for w in state.waiting.values().filter(|w| w.trusted == trusted) {
        *counts.entry(w.source).or_default() += 1;
    }
    let most = counts.values().copied().max()?;
    state
        .waiting
        .iter()
        .find(|(_, w)| w.trusted == trusted && counts.get(&w.source) == Some(&most))
        .map(|(id, _)| *id)
}

/// An admitted connection that has not authenticated yet. Dropping it
/// frees its slot.
#[derive(Debug)]
pub struct Unauthenticated {
    admission: Arc<Admission>,
    id: u64,
    source: Source,
    evict: CancellationToken,
}

impl Unauthenticated {
    /// Fires when a newcomer displaced this connection; the session then
    /// closes it.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evict
    }

    /// The connection's source.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Moves the connection to the authenticated budget once it has proved
    /// `pool`, or refuses it when that budget (or the pool's share of it)
    /// is full. Either way its unauthenticated slot is freed.
    pub fn authenticate(self, pool: AuthorityPublicKey) -> Result<Authenticated, Refusal> {
        let admission = self.admission.clone();
        let source = self.source;
        let limits = &admission.limits;
        drop(self);
        let mut state = admission.state();
        // A pool proved an allowed key from here: trust the source.
        remember_pool_source(&mut state, source, Instant::now());
        if state.authenticated >= limits.max_connections {
            return Err(Refusal::ConnectionLimit);
        }
        let held = state.per_pool.get(&pool).copied().unwrap_or(0);
        if held >= limits.max_connections_per_pool {
            return Err(Refusal::PoolLimit);
        }
        state.authenticated += 1;
        *state.per_pool.entry(pool).or_default() += 1;
        drop(state);
        Ok(Authenticated { admission, pool })
    }
}

fn remember_pool_source(state: &mut State, source: Source, now: Instant) {
    if !state.trusted.contains_key(&source) && state.trusted.len() >= MAX_TRUSTED {
        let oldest = state
            .trusted
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(s, _)| *s);
        if let Some(oldest) = oldest {
            state.trusted.remove(&oldest);
        }
    }
    state.trusted.insert(source, now);
}

impl Unauthenticated {
    #[cfg(test)]
    fn is_trusted(&self) -> bool {
        let state = self.admission.state();
        state.waiting.get(&self.id).is_some_and(|w| w.trusted)
    }
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        self.admission.release_waiting(self.id);
    }
}

/// An authenticated pool connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Authenticated {
    admission: Arc<Admission>,
    pool: AuthorityPublicKey,
}

impl Drop for Authenticated {
    fn drop(&mut self) {
        self.admission.release_authenticated(&self.pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mint_quote_proto::AuthorityKeypair;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_connections: 2,
            max_connections_per_pool: 1,
            max_unauthenticated: 4,
            max_unauthenticated_per_source: 3,
            rate_per_source: 1000,
            burst_per_source: 1000,
            pool_networks: Vec::new(),
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn one_source_cannot_hold_more_than_its_share() {
        let admission = Admission::new(limits());
        let held: Vec<_> = (0..3).map(|_| admission.admit(ip(1)).unwrap()).collect();
        assert_eq!(admission.admit(ip(1)).unwrap_err(), Refusal::SourceLimit);
        // Another source still gets in.
        let other = admission.admit(ip(2)).unwrap();
        assert_eq!(admission.counts(), (4, 0));
        drop(held);
        drop(other);
        assert_eq!(admission.counts(), (0, 0));
    }

    #[test]
    fn a_full_budget_displaces_the_oldest_of_the_busiest_source() {
        let admission = Admission::new(limits());
        let a1 = admission.admit(ip(1)).unwrap();
        let pool = admission.admit(ip(9)).unwrap();
        let a2 = admission.admit(ip(1)).unwrap();
        let a3 = admission.admit(ip(1)).unwrap();
        // Full: a newcomer from a third source displaces a1, not the pool.
        let newcomer = admission.admit(ip(3)).unwrap();
        assert!(a1.evicted().is_cancelled());
        assert!(!pool.evicted().is_cancelled());
        assert!(!a2.evicted().is_cancelled() && !a3.evicted().is_cancelled());
        assert_eq!(admission.counts(), (4, 0));
        // The displaced connection's own drop frees nothing twice.
        drop(a1);
        assert_eq!(admission.counts(), (4, 0));
        drop((pool, a2, a3, newcomer));
        assert_eq!(admission.counts(), (0, 0));
    }

    #[test]
    fn authenticated_slots_are_a_budget_of_their_own() {
        let admission = Admission::new(limits());
        let pool_a = AuthorityKeypair::generate().public();
        let pool_b = AuthorityKeypair::generate().public();
        let a = admission
            .admit(ip(1))
            .unwrap()
            .authenticate(pool_a)
            .unwrap();
        // Its unauthenticated slot is free again.
        assert_eq!(admission.counts(), (0, 1));
        // One connection per pool key.
        let again = admission.admit(ip(1)).unwrap();
        assert_eq!(again.authenticate(pool_a).unwrap_err(), Refusal::PoolLimit);
        let b = admission
            .admit(ip(2))
            .unwrap()
            .authenticate(pool_b)
            .unwrap();
        let c = admission.admit(ip(3)).unwrap();
        assert_eq!(
            c.authenticate(AuthorityKeypair::generate().public())
                .unwrap_err(),
            Refusal::ConnectionLimit
        );
        assert_eq!(admission.counts(), (0, 2));
        drop((a, b));
        assert_eq!(admission.counts(), (0, 0));
    }

    #[test]
    fn a_source_a_pool_authenticated_from_is_never_displaced_by_strangers() {
        let admission = Admission::new(limits());
        let pool_key = AuthorityKeypair::generate().public();
        // The pool authenticates once from 10.0.0.9.
        let first = admission.admit(ip(9)).unwrap();
        assert!(!first.is_trusted());
        drop(first.authenticate(pool_key).unwrap());
        // Later, its fresh connection is trusted...
        let pool = admission.admit(ip(9)).unwrap();
        assert!(pool.is_trusted());
        // ... and strangers from ever more addresses displace only each
        // other, oldest first.
        let mut strangers = Vec::new();
        for n in 10..40 {
            strangers.push(admission.admit(ip(n)).unwrap());
        }
        assert!(!pool.evicted().is_cancelled());
        assert!(strangers[..strangers.len() - 3]
            .iter()
            .all(|s| s.evicted().is_cancelled()));
        assert_eq!(admission.counts(), (4, 0));
    }

    #[test]
    fn a_configured_pool_network_is_trusted_from_the_start() {
        let admission = Admission::new(AdmissionLimits {
            pool_networks: vec!["10.0.0.0/29".parse().unwrap()],
            ..limits()
        });
        assert!(admission.admit(ip(7)).unwrap().is_trusted());
        assert!(!admission.admit(ip(8)).unwrap().is_trusted());
    }

    #[test]
    fn a_full_budget_of_trusted_connections_refuses_strangers() {
        let admission = Admission::new(AdmissionLimits {
            pool_networks: vec!["10.0.0.0/24".parse().unwrap()],
            max_unauthenticated_per_source: 10,
            ..limits()
        });
        let pools: Vec<_> = (0..4).map(|_| admission.admit(ip(1)).unwrap()).collect();
        let stranger = IpAddr::from([192, 168, 0, 1]);
        assert_eq!(
            admission.admit(stranger).unwrap_err(),
            Refusal::UnauthenticatedLimit
        );
        assert!(pools.iter().all(|p| !p.evicted().is_cancelled()));
    }

    #[test]
    fn a_fast_source_is_rate_limited() {
        let admission = Admission::new(AdmissionLimits {
            burst_per_source: 2,
            rate_per_source: 1,
            ..limits()
        });
        let _a = admission.admit(ip(1)).unwrap();
        let _b = admission.admit(ip(1)).unwrap();
        assert_eq!(admission.admit(ip(1)).unwrap_err(), Refusal::RateLimited);
    }
}
