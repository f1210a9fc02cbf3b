//! The machine's rules, each driven with made-up instants: no socket, no
//! clock, no sleep.

use std::sync::Arc;
use std::time::Duration;

use mint_quote_proto::{
    ErrorCode, HeaderHash, KeysetId, Message, MintQuoteError, MintQuoteResponse, Ping, Pong,
    QuoteState, Unit,
};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;

const INTERVAL: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(15);
const DEADLINE: Duration = Duration::from_secs(10);

fn limits(max_in_flight: usize) -> Limits {
    Limits {
        deadline: DEADLINE,
        max_in_flight,
        keepalive_interval: INTERVAL,
        keepalive_timeout: TIMEOUT,
        reconnect_initial: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(100),
    }
}

fn share(n: u8) -> Share {
    let mut hash = [n; 32];
    hash[0] = 1;
    Share {
        amount: u64::from(n) + 1,
        unit: Unit::hash(),
        header_hash: HeaderHash::new(hash).unwrap(),
        description: None,
        locking_key: "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
            .parse()
            .unwrap(),
        keyset_id: "009a1f293253e41e".parse::<KeysetId>().unwrap(),
    }
}

/// Stats for `endpoints` mints named `mint0`, `mint1`, ...
fn stats_for(endpoints: usize) -> Stats {
    Stats::new((0..endpoints).map(|i| format!("mint{i}")))
}

/// A machine with `endpoints` mints, each connected (generation 1).
struct Rig {
    machine: Machine,
    stats: Arc<Stats>,
    t0: Instant,
}

impl Rig {
    fn new(endpoints: usize, max_in_flight: usize) -> Rig {
        let mut rig = Rig::dialled(endpoints, max_in_flight);
        for endpoint in 0..endpoints {
            rig.machine.connected(endpoint, 1, rig.t0);
        }
        rig.machine.take_actions();
        rig
    }

    /// A machine with `endpoints` mints, each being dialled (generation 1).
    fn dialled(endpoints: usize, max_in_flight: usize) -> Rig {
        let t0 = Instant::now();
        let stats = Arc::new(stats_for(endpoints));
        let mut machine = Machine::new(limits(max_in_flight), endpoints, stats.clone(), t0);
        machine.tick(t0);
        let connects: Vec<(usize, u64)> = machine
            .take_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Connect {
                    endpoint,
                    generation,
                } => Some((endpoint, generation)),
                _ => None,
            })
            .collect();
        assert_eq!(
            connects,
            (0..endpoints).map(|e| (e, 1)).collect::<Vec<_>>(),
            "every mint is dialled at once"
        );
        Rig { machine, stats, t0 }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn submit(
        &mut self,
        seq: u64,
        n: u8,
        at: Instant,
    ) -> oneshot::Receiver<Result<Quote, QuoteError>> {
        let (reply, answer) = oneshot::channel();
        self.machine.submit(seq, share(n), reply, at);
        answer
    }

    /// The requests written by the last step: (endpoint, generation, request id, header hash).
    fn sent(&mut self) -> Vec<(usize, u64, u32, HeaderHash)> {
        requests(&self.machine.take_actions())
    }

    /// Shares `seqs` (share `n` as seq `n`), handed in at `at`.
    fn submit_all(
        &mut self,
        seqs: std::ops::RangeInclusive<u8>,
        at: Instant,
    ) -> Vec<oneshot::Receiver<Result<Quote, QuoteError>>> {
        seqs.map(|n| self.submit(u64::from(n), n, at)).collect()
    }

    fn answer(
        &mut self,
        endpoint: usize,
        generation: u64,
        request_id: u32,
        hash: HeaderHash,
        at: Instant,
    ) {
        self.machine.received(
            endpoint,
            generation,
            Message::MintQuoteResponse(MintQuoteResponse {
                request_id,
                quote_id: format!("q{request_id}"),
                amount: 1,
                unit: Unit::hash(),
                expires_at: 0,
                state: QuoteState::Paid,
                header_hash: hash,
            }),
            at,
        );
    }

    fn refuse(
        &mut self,
        endpoint: usize,
        generation: u64,
        request_id: u32,
        code: ErrorCode,
        at: Instant,
    ) {
        self.machine.received(
            endpoint,
            generation,
            Message::MintQuoteError(MintQuoteError::new(request_id, code, "no")),
            at,
        );
    }
}

/// The requests among `actions`: (endpoint, generation, request id,
/// header hash).
fn requests(actions: &[Action]) -> Vec<(usize, u64, u32, HeaderHash)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                endpoint,
                generation,
                message: SendItem::Request(frame),
            } => match Message::from_frame(frame) {
                Ok(Message::MintQuoteRequest(r)) => {
                    Some((*endpoint, *generation, r.request_id, r.header_hash))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn settled_and_forgotten(actions: &[Action]) -> (Vec<u64>, Vec<u64>) {
    let settled = actions
        .iter()
        .filter_map(|a| match a {
            Action::Settle(s) => Some(s.seq),
            _ => None,
        })
        .collect();
    let forgotten = actions
        .iter()
        .filter_map(|a| match a {
            Action::Forget { seq } => Some(*seq),
            _ => None,
        })
        .collect();
    (settled, forgotten)
}

#[test]
fn an_answer_reaches_its_caller_and_the_share_leaves_the_outbox() {
    let mut rig = Rig::new(1, 8);
    let mut answer = rig.submit(1, 1, rig.t0);
    let sent = rig.sent();
    assert_eq!(sent.len(), 1);
    let (e, g, id, hash) = sent[0];
    assert_ne!(id, 0, "request id 0 is never used");
    rig.answer(e, g, id, hash, rig.at(5));
    let quote = answer.try_recv().unwrap().unwrap();
    assert_eq!(quote.header_hash, hash);
    let (settled, forgotten) = settled_and_forgotten(&rig.machine.take_actions());
    assert_eq!((settled, forgotten), (vec![], vec![1]));
    assert_eq!(rig.machine.outstanding(), 0);
}

#[test]
fn past_its_deadline_a_caller_hears_pending_and_the_late_answer_is_settled() {
    let mut rig = Rig::new(1, 8);
    let mut answer = rig.submit(1, 1, rig.t0);
    let (e, g, id, hash) = rig.sent()[0];
    // The connection stays alive (pongs), but no answer comes in time.
    rig.machine.tick(rig.t0 + DEADLINE);
    match answer.try_recv().unwrap() {
        Err(QuoteError::Pending(PendingReason::Timeout(d))) => assert_eq!(d, DEADLINE),
        other => panic!("expected pending, got {other:?}"),
    }
    assert_eq!(rig.machine.outstanding(), 1, "the share stays");
    rig.machine.take_actions();
    rig.answer(e, g, id, hash, rig.t0 + DEADLINE + Duration::from_secs(1));
    let actions = rig.machine.take_actions();
    let (settled, forgotten) = settled_and_forgotten(&actions);
    assert_eq!((settled, forgotten), (vec![1], vec![]));
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Settle(s) if s.outcome.is_ok())));
    assert_eq!(rig.stats.late.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn a_caller_that_gave_up_early_still_gets_its_share_settled() {
    let mut rig = Rig::new(1, 8);
    let answer = rig.submit(1, 1, rig.t0);
    let (e, g, id, hash) = rig.sent()[0];
    drop(answer); // the caller's future was cancelled
    rig.answer(e, g, id, hash, rig.at(5));
    let (settled, _) = settled_and_forgotten(&rig.machine.take_actions());
    assert_eq!(settled, vec![1]);
}

#[test]
fn a_lost_connection_gives_its_shares_back_oldest_first() {
    let mut rig = Rig::new(1, 8);
    let _a = rig.submit(1, 1, rig.t0);
    let _b = rig.submit(2, 2, rig.t0);
    let first = rig.sent();
    assert_eq!(first.len(), 2);
    rig.machine.closed(0, 1, "reset".into(), rig.at(10));
    assert!(rig.sent().is_empty(), "nothing is sent while down");
    // Reconnect once the backoff (50-100 ms here, jittered) is over.
    let wake = rig.machine.next_wakeup().unwrap();
    assert!(
        wake >= rig.at(60) && wake <= rig.at(110),
        "{:?}",
        wake - rig.t0
    );
    rig.machine.tick(rig.at(200));
    let connect = rig.machine.take_actions();
    assert!(connect.iter().any(|a| matches!(
        a,
        Action::Connect {
            endpoint: 0,
            generation: 2
        }
    )));
    rig.machine.connected(0, 2, rig.at(210));
    let again = rig.sent();
    let hashes: Vec<HeaderHash> = again.iter().map(|s| s.3).collect();
    assert_eq!(hashes, vec![share(1).header_hash, share(2).header_hash]);
    assert!(again.iter().all(|s| s.1 == 2), "on the new connection");
    // Events of the old connection are ignored.
    rig.answer(0, 1, first[0].2, first[0].3, rig.at(220));
    assert_eq!(rig.machine.outstanding(), 2);
}

#[test]
fn shutting_down_moves_a_share_off_that_connection_without_a_resend_loop() {
    let mut rig = Rig::new(1, 8);
    let _a = rig.submit(1, 1, rig.t0);
    let (e, g, id, _) = rig.sent()[0];
    rig.refuse(e, g, id, ErrorCode::ShuttingDown, rig.at(5));
    // Not written again on the closing connection, however often it ticks.
    for ms in [6, 26, 46, 500] {
        rig.machine.tick(rig.at(ms));
        assert!(
            rig.sent().is_empty(),
            "resent on a draining connection at {ms} ms"
        );
    }
    // The mint closes; the next connection carries it.
    rig.machine.closed(0, 1, "closed".into(), rig.at(600));
    rig.machine.tick(rig.at(800));
    rig.machine.take_actions();
    rig.machine.connected(0, 2, rig.at(810));
    assert_eq!(rig.sent().len(), 1);
}

#[test]
fn busy_and_internal_errors_are_sent_again_after_a_backoff_others_are_final() {
    let mut rig = Rig::new(1, 8);
    let _busy = rig.submit(1, 1, rig.t0);
    let (e, g, id, hash) = rig.sent()[0];
    rig.refuse(e, g, id, ErrorCode::MintBusy, rig.at(1));
    assert!(rig.sent().is_empty(), "not at once");
    rig.machine.tick(rig.at(1 + 10));
    assert!(rig.sent().is_empty(), "not before the backoff");
    rig.machine.tick(rig.at(1 + 60));
    let again = rig.sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].3, hash);

    let mut final_answer = rig.submit(2, 2, rig.at(100));
    let (e, g, id, _) = rig.sent()[0];
    rig.refuse(e, g, id, ErrorCode::UnknownKeyset, rig.at(101));
    match final_answer.try_recv().unwrap() {
        Err(QuoteError::Rejected { code, .. }) => assert_eq!(code, ErrorCode::UnknownKeyset),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let (_, forgotten) = settled_and_forgotten(&rig.machine.take_actions());
    assert_eq!(forgotten, vec![2]);
}

#[test]
fn at_most_max_in_flight_are_on_the_wire() {
    let mut rig = Rig::new(1, 2);
    let _answers = rig.submit_all(1..=5, rig.t0);
    let sent = rig.sent();
    assert_eq!(sent.len(), 2);
    let (e, g, id, hash) = sent[0];
    rig.answer(e, g, id, hash, rig.at(1));
    assert_eq!(rig.sent().len(), 1, "one answer makes room for one more");
}

#[test]
fn shares_go_to_the_mint_with_the_fewest_in_flight() {
    let mut rig = Rig::new(2, 8);
    let _answers = rig.submit_all(1..=4, rig.t0);
    let sent = rig.sent();
    let on = |e| sent.iter().filter(|s| s.0 == e).count();
    assert_eq!((on(0), on(1)), (2, 2));
}

#[test]
fn an_idle_connection_is_pinged_and_a_silent_one_is_declared_dead() {
    let mut rig = Rig::new(1, 8);
    // Idle: the next wake-up is the keepalive interval, not a poll.
    assert_eq!(rig.machine.next_wakeup(), Some(rig.t0 + INTERVAL));
    rig.machine.tick(rig.t0 + INTERVAL);
    let actions = rig.machine.take_actions();
    let nonce = actions
        .iter()
        .find_map(|a| match a {
            Action::Send {
                message: SendItem::Message(Message::Ping(Ping { nonce })),
                ..
            } => Some(*nonce),
            _ => None,
        })
        .expect("a ping");
    // The pong keeps it alive.
    let t = rig.t0 + INTERVAL + Duration::from_millis(5);
    rig.machine.received(0, 1, Message::Pong(Pong { nonce }), t);
    assert_eq!(rig.machine.next_wakeup(), Some(t + INTERVAL));
    // Silence for the timeout: closed, and its share is sent again later.
    let _a = rig.submit(1, 1, t);
    assert_eq!(rig.sent().len(), 1);
    rig.machine.tick(t + INTERVAL);
    rig.machine.take_actions(); // the ping
    rig.machine.tick(t + TIMEOUT);
    let actions = rig.machine.take_actions();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Close {
            endpoint: 0,
            generation: 1
        }
    )));
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Connected(false))));
    assert_eq!(rig.machine.outstanding(), 1);
    rig.machine.tick(t + TIMEOUT + Duration::from_millis(200));
    rig.machine.take_actions();
    rig.machine
        .connected(0, 2, t + TIMEOUT + Duration::from_millis(210));
    assert_eq!(rig.sent().len(), 1, "sent again on the new connection");
}

#[test]
fn the_mints_ping_is_answered() {
    let mut rig = Rig::new(1, 8);
    rig.machine
        .received(0, 1, Message::Ping(Ping { nonce: 42 }), rig.at(1));
    let actions = rig.machine.take_actions();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Send {
            message: SendItem::Message(Message::Pong(Pong { nonce: 42 })),
            ..
        }
    )));
}

#[test]
fn a_mint_that_refuses_the_pool_is_reported_to_callers_at_once() {
    let t0 = Instant::now();
    let stats = Arc::new(Stats::default());
    let mut machine = Machine::new(limits(8), 1, stats, t0);
    machine.tick(t0);
    machine.take_actions();
    machine.connect_failed(
        0,
        1,
        Failure::Fatal(PendingReason::NotAuthorised("key not allowed".into())),
        t0,
    );
    let (reply, mut answer) = oneshot::channel();
    machine.submit(1, share(1), reply, t0);
    match answer.try_recv().unwrap() {
        Err(QuoteError::Pending(PendingReason::NotAuthorised(_))) => {}
        other => panic!("expected pending (not authorised), got {other:?}"),
    }
    assert_eq!(machine.outstanding(), 1, "the share is kept");
    // Once the operator fixes it, the share goes out.
    machine.tick(t0 + Duration::from_millis(200));
    machine.take_actions();
    machine.connected(0, 2, t0 + Duration::from_millis(210));
    assert!(machine.take_actions().iter().any(|a| matches!(
        a,
        Action::Send {
            message: SendItem::Request(_),
            ..
        }
    )));
}

#[test]
fn a_restored_share_is_sent_and_its_answer_settled() {
    let mut rig = Rig::new(1, 8);
    rig.machine.restore(7, share(7), rig.t0);
    let (e, g, id, hash) = rig.sent()[0];
    rig.answer(e, g, id, hash, rig.at(1));
    let (settled, _) = settled_and_forgotten(&rig.machine.take_actions());
    assert_eq!(settled, vec![7]);
}

#[test]
fn an_answer_for_another_share_drops_the_connection_and_keeps_the_share() {
    let mut rig = Rig::new(1, 8);
    let _a = rig.submit(1, 1, rig.t0);
    let (e, g, id, _) = rig.sent()[0];
    rig.answer(e, g, id, share(9).header_hash, rig.at(1));
    let actions = rig.machine.take_actions();
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Close { generation: 1, .. })));
    assert_eq!(rig.machine.outstanding(), 1);
}

#[test]
fn stopping_tells_every_caller_its_share_stays() {
    let mut rig = Rig::new(1, 8);
    let mut a = rig.submit(1, 1, rig.t0);
    rig.machine.stop();
    assert!(matches!(
        a.try_recv().unwrap(),
        Err(QuoteError::Pending(PendingReason::Stopped))
    ));
}

// Several mints.

fn endpoint_stats(rig: &Rig, endpoint: usize) -> crate::stats::EndpointSnapshot {
    rig.machine.publish_gauges();
    rig.stats.snapshot().endpoints[endpoint].clone()
}

#[test]
fn a_dead_mints_shares_are_sent_at_once_to_the_other_oldest_first() {
    let mut rig = Rig::new(2, 8);
    let mut answers = rig.submit_all(1..=4, rig.t0);
    let first = rig.sent();
    let on_0: Vec<HeaderHash> = first.iter().filter(|s| s.0 == 0).map(|s| s.3).collect();
    assert_eq!(on_0.len(), 2, "{first:?}");
    // Mint 0 dies with two shares unanswered: they go to mint 1 now, not
    // after mint 0 comes back.
    rig.machine.closed(0, 1, "reset".into(), rig.at(10));
    let again = rig.sent();
    assert_eq!(
        again.iter().map(|s| (s.0, s.3)).collect::<Vec<_>>(),
        on_0.iter().map(|h| (1, *h)).collect::<Vec<_>>(),
        "resent on mint 1, oldest first"
    );
    // Mint 1 answers all four; every caller gets its quote.
    let on_1 = first.iter().filter(|s| s.0 == 1).chain(&again);
    for &(e, g, id, hash) in on_1.collect::<Vec<_>>() {
        rig.answer(e, g, id, hash, rig.at(20));
    }
    for answer in &mut answers {
        assert!(matches!(answer.try_recv(), Ok(Ok(_))));
    }
    assert_eq!(rig.machine.outstanding(), 0);
    assert_eq!(
        rig.stats.resent.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let (dead, alive) = (endpoint_stats(&rig, 0), endpoint_stats(&rig, 1));
    assert_eq!(
        (dead.connected, dead.sent, dead.answered, dead.in_flight),
        (false, 2, 0, 0)
    );
    assert_eq!(dead.last_error.as_deref(), Some("reset"));
    assert_eq!(
        (alive.connected, alive.sent, alive.answered, alive.in_flight),
        (true, 4, 4, 0)
    );
    assert_eq!(
        (dead.address.as_str(), alive.address.as_str()),
        ("mint0", "mint1")
    );
}

#[test]
fn a_mint_that_refuses_the_pool_for_good_does_not_hold_up_the_other() {
    let mut rig = Rig::dialled(2, 8);
    rig.machine.connected(1, 1, rig.at(1));
    // A share handed in while mint 0 is still connecting goes to mint 1.
    let mut early = rig.submit(1, 1, rig.at(2));
    // Then mint 0 turns out to be an impostor (a wrong pinned key): the
    // waiting caller is not told "pending" on its account.
    let wrong_key = PendingReason::WrongMintKey {
        pinned: mint_quote_proto::AuthorityKeypair::generate().public(),
        reason: "certificate refused".into(),
    };
    rig.machine
        .connect_failed(0, 1, Failure::Fatal(wrong_key), rig.at(3));
    assert!(
        early.try_recv().is_err(),
        "the caller was told something because of the refusing mint"
    );
    // Nor is a caller who comes later.
    let mut late = rig.submit(2, 2, rig.at(4));
    assert!(late.try_recv().is_err(), "told at once while a mint serves");
    let sent = rig.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|s| s.0 == 1), "both on mint 1: {sent:?}");
    for (e, g, id, hash) in sent {
        rig.answer(e, g, id, hash, rig.at(5));
    }
    assert!(matches!(early.try_recv(), Ok(Ok(_))));
    assert!(matches!(late.try_recv(), Ok(Ok(_))));
    let (refusing, serving) = (endpoint_stats(&rig, 0), endpoint_stats(&rig, 1));
    assert!(refusing
        .last_error
        .is_some_and(|e| e.contains("not the mint with key")));
    assert_eq!(serving.answered, 2);
}

#[test]
fn a_share_answered_shutting_down_goes_to_the_other_mint_even_when_it_is_busier() {
    let mut rig = Rig::new(2, 8);
    let mut answers = rig.submit_all(1..=3, rig.t0);
    let sent = rig.sent();
    assert_eq!(
        sent.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![0, 1, 0],
        "in turn while equally loaded"
    );
    // Mint 0 answers share 3, so it has one in flight, as mint 1 has.
    let (e, g, id, hash) = sent[2];
    rig.answer(e, g, id, hash, rig.at(1));
    // Then says it is shutting down to share 1: with nothing in flight it
    // is now the least loaded, but it is draining, so share 1 goes to mint
    // 1, and so does a new share.
    let (e, g, id, hash) = sent[0];
    rig.refuse(e, g, id, ErrorCode::ShuttingDown, rig.at(2));
    let _new = rig.submit(4, 4, rig.at(3));
    let moved = rig.sent();
    assert_eq!(
        moved.iter().map(|s| (s.0, s.3)).collect::<Vec<_>>(),
        vec![(1, hash), (1, share(4).header_hash)]
    );
    rig.answer(moved[0].0, moved[0].1, moved[0].2, hash, rig.at(4));
    assert!(matches!(answers[0].try_recv(), Ok(Ok(q)) if q.header_hash == hash));
    assert_eq!(
        rig.stats.retried.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn with_nothing_in_flight_the_mints_take_turns_and_the_least_loaded_goes_first() {
    let mut rig = Rig::new(3, 8);
    let mut order = Vec::new();
    for n in 1..=6u8 {
        let _answer = rig.submit(u64::from(n), n, rig.at(u64::from(n)));
        let (e, g, id, hash) = rig.sent()[0];
        order.push(e);
        rig.answer(e, g, id, hash, rig.at(u64::from(n)));
    }
    assert_eq!(order, vec![0, 1, 2, 0, 1, 2]);
    // One unanswered on each mint, then mint 2 answers its own: although
    // it is mint 0's turn, the next share goes to mint 2, the least
    // loaded; the one after, with all equal again, to mint 0.
    let _held = rig.submit_all(7..=9, rig.at(10));
    let held = rig.sent();
    assert_eq!(held.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    let (e, g, id, hash) = held[2];
    rig.answer(e, g, id, hash, rig.at(11));
    let _more = rig.submit_all(10..=11, rig.at(12));
    assert_eq!(
        rig.sent().iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![2, 0]
    );
}

#[test]
fn after_a_failed_write_answers_already_sent_still_settle_and_the_rest_move_on() {
    let mut rig = Rig::new(2, 8);
    let mut answers = rig.submit_all(1..=4, rig.t0);
    let first = rig.sent();
    let on_0: Vec<_> = first.iter().filter(|s| s.0 == 0).copied().collect();
    assert_eq!(on_0.len(), 2, "{first:?}");
    // Mint 0 closed after answering; the pool's write fails first.
    rig.machine
        .write_failed(0, 1, "write failed: broken pipe".into(), rig.at(10));
    let actions = rig.machine.take_actions();
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Close { .. })),
        "not dropped while answers may be on their way: {actions:?}"
    );
    // Nothing new goes to it.
    let _fifth = rig.submit(5, 5, rig.at(11));
    assert_eq!(rig.sent().iter().map(|s| s.0).collect::<Vec<_>>(), vec![1]);
    // Its answer, read after the failed write, reaches the caller: the
    // share is not sent again.
    let (e, g, id, hash) = on_0[0];
    rig.answer(e, g, id, hash, rig.at(12));
    let index = first.iter().position(|s| s.3 == hash).unwrap();
    assert!(matches!(answers[index].try_recv(), Ok(Ok(_))));
    // The grace period ends: dropped, and its last share goes to mint 1.
    assert_eq!(
        rig.machine.next_wakeup(),
        Some(rig.at(10) + WRITE_FAILED_GRACE)
    );
    rig.machine.tick(rig.at(10) + WRITE_FAILED_GRACE);
    let actions = rig.machine.take_actions();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Close {
            endpoint: 0,
            generation: 1
        }
    )));
    let resent: Vec<_> = requests(&actions).iter().map(|s| (s.0, s.3)).collect();
    assert_eq!(resent, vec![(1, on_0[1].3)]);
    assert_eq!(
        endpoint_stats(&rig, 0).last_error.as_deref(),
        Some("write failed: broken pipe")
    );
}

#[test]
fn a_failed_write_with_nothing_in_flight_drops_the_connection_at_once() {
    let mut rig = Rig::new(1, 8);
    rig.machine
        .write_failed(0, 1, "write failed: reset".into(), rig.at(1));
    assert!(rig.machine.take_actions().iter().any(|a| matches!(
        a,
        Action::Close {
            endpoint: 0,
            generation: 1
        }
    )));
}
