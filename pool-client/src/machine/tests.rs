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

/// A machine with `endpoints` mints, each connected (generation 1).
struct Rig {
    machine: Machine,
    stats: Arc<Stats>,
    t0: Instant,
}

impl Rig {
    fn new(endpoints: usize, max_in_flight: usize) -> Rig {
        let t0 = Instant::now();
        let stats = Arc::new(Stats::default());
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
        assert_eq!(connects.len(), endpoints, "every mint is dialled at once");
        for (endpoint, generation) in connects {
            machine.connected(endpoint, generation, t0);
        }
        machine.take_actions();
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
        self.machine
            .take_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Send {
                    endpoint,
                    generation,
                    message: SendItem::Request(frame),
                } => match Message::from_frame(&frame) {
                    Ok(Message::MintQuoteRequest(r)) => {
                        Some((endpoint, generation, r.request_id, r.header_hash))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
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
fn shutting_down_sends_the_share_to_another_mint_at_once() {
    let mut rig = Rig::new(2, 8);
    let _a = rig.submit(1, 1, rig.t0);
    let (e, g, id, _) = rig.sent()[0];
    rig.refuse(e, g, id, ErrorCode::ShuttingDown, rig.at(5));
    let again = rig.sent();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].0, e, "the other mint");
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
    let _answers: Vec<_> = (1..=5)
        .map(|n| rig.submit(u64::from(n), n, rig.t0))
        .collect();
    let sent = rig.sent();
    assert_eq!(sent.len(), 2);
    let (e, g, id, hash) = sent[0];
    rig.answer(e, g, id, hash, rig.at(1));
    assert_eq!(rig.sent().len(), 1, "one answer makes room for one more");
}

#[test]
fn shares_go_to_the_mint_with_the_fewest_in_flight() {
    let mut rig = Rig::new(2, 8);
    let _answers: Vec<_> = (1..=4)
        .map(|n| rig.submit(u64::from(n), n, rig.t0))
        .collect();
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
