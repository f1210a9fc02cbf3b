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

mod rate;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl From<&ListenerSection> for AdmissionLimits {
    fn from(l: &ListenerSection) -> Self {
        AdmissionLimits {
            max_connections: l.max_connections,
            max_connections_per_pool: l.max_connections_per_pool,
            max_unauthenticated: l.max_unauthenticated,
            max_unauthenticated_per_source: l.max_unauthenticated_per_source,
            rate_per_source: l.connection_rate_per_source,
            burst_per_source: l.connection_burst_per_source,
        }
    }
}

#[derive(Debug)]
struct Waiting {
    source: Source,
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
        Arc::new(Admission {
            limits,
            state: Mutex::new(State {
                next_id: 0,
                waiting: BTreeMap::new(),
                per_source: HashMap::new(),
                authenticated: 0,
                per_pool: HashMap::new(),
                rate: RateLimiter::new(limits.rate_per_source, limits.burst_per_source),
            }),
        })
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
        let mut state = self.state();
        if !state.rate.allow(source, Instant::now()) {
            return Err(Refusal::RateLimited);
        }
        let held = state.per_source.get(&source).copied().unwrap_or(0);
        if held >= self.limits.max_unauthenticated_per_source {
            return Err(Refusal::SourceLimit);
        }
        if state.waiting.len() >= self.limits.max_unauthenticated {
            displace_one(&mut state)?;
        }
        let id = state.next_id;
        state.next_id += 1;
        let evict = CancellationToken::new();
        state.waiting.insert(
            id,
            Waiting {
                source,
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

/// Frees one unauthenticated slot: the oldest connection of the source
/// with the most of them.
fn displace_one(state: &mut State) -> Result<(), Refusal> {
    let busiest = state
        .per_source
        .iter()
        .max_by_key(|(_, count)| **count)
        .map(|(source, _)| *source)
        .ok_or(Refusal::UnauthenticatedLimit)?;
    let victim = state
        .waiting
        .iter()
        .find(|(_, w)| w.source == busiest)
        .map(|(id, _)| *id)
        .ok_or(Refusal::UnauthenticatedLimit)?;
    if let Some(waiting) = state.waiting.remove(&victim) {
        waiting.evict.cancel();
        release_source(state, waiting.source);
    }
    Ok(())
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
        let limits = admission.limits;
        drop(self);
        let mut state = admission.state();
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
