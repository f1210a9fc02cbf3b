//! The shares the client holds, indexed every way the machine looks them
//! up: by outbox number, by request id (answers), in send order (oldest
//! first), and by time (callers' deadlines, delayed resends). Nothing is
//! found by scanning.

use std::collections::{BTreeSet, HashMap};

use mint_quote_proto::{Backoff, Frame};
use tokio::time::Instant;

use super::Reply;
use crate::share::Share;

/// One share the client holds until the mint answers it.
pub(crate) struct Entry {
    pub(crate) share: Share,
    pub(crate) request_id: u32,
    /// Encoded once; resends clone it (the bytes are shared).
    pub(crate) frame: Frame,
    /// The caller waiting for it, until its deadline.
    pub(crate) caller: Option<(Reply, Instant)>,
    /// The connection it is on now: endpoint and connection generation.
    pub(crate) sent_on: Option<(usize, u64)>,
    /// Whether it was ever written to a connection.
    pub(crate) ever_sent: bool,
    /// Delays between tries after `mint-busy` or `internal-error`.
    pub(crate) retry: Option<Backoff>,
    /// When it may be sent again, while held back.
    pub(crate) delayed_until: Option<Instant>,
}

/// Every share held, and the indexes over them.
#[derive(Default)]
pub(crate) struct Shares {
    entries: HashMap<u64, Entry>,
    by_request: HashMap<u32, u64>,
    /// Waiting to be sent, oldest first.
    ready: BTreeSet<u64>,
    /// Waiting until an instant before being sent again.
    delayed: BTreeSet<(Instant, u64)>,
    /// Callers' deadlines.
    deadlines: BTreeSet<(Instant, u64)>,
    next_request_id: u32,
}

impl Shares {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A request id not in use; 0 is never used (a mint answers an
    /// unreadable request under 0).
    pub(crate) fn new_request_id(&mut self) -> u32 {
        loop {
            self.next_request_id = self.next_request_id.wrapping_add(1);
            let id = self.next_request_id;
            if id != 0 && !self.by_request.contains_key(&id) {
                return id;
            }
        }
    }

    /// Adds `entry` as share `seq`, ready to be sent.
    pub(crate) fn insert(&mut self, seq: u64, entry: Entry) {
        self.by_request.insert(entry.request_id, seq);
        if let Some((_, deadline)) = &entry.caller {
            self.deadlines.insert((*deadline, seq));
        }
        self.entries.insert(seq, entry);
        self.ready.insert(seq);
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        self.entries.get_mut(&seq)
    }

    /// The share a request id names.
    pub(crate) fn seq_of(&self, request_id: u32) -> Option<u64> {
        self.by_request.get(&request_id).copied()
    }

    /// Removes share `seq` from everything.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.by_request.remove(&entry.request_id);
        self.ready.remove(&seq);
        if let Some((_, deadline)) = &entry.caller {
            self.deadlines.remove(&(*deadline, seq));
        }
        if let Some(at) = entry.delayed_until {
            self.delayed.remove(&(at, seq));
        }
        Some(entry)
    }

    /// The oldest share ready to be sent, taken out of the ready set.
    pub(crate) fn pop_ready(&mut self) -> Option<u64> {
        self.ready.pop_first()
    }

    /// Puts `seq` back among the shares ready to be sent.
    pub(crate) fn make_ready(&mut self, seq: u64) {
        if let Some(entry) = self.entries.get_mut(&seq) {
            entry.sent_on = None;
            self.ready.insert(seq);
        }
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Holds `seq` back until `at`.
    pub(crate) fn delay(&mut self, seq: u64, at: Instant) {
        if let Some(entry) = self.entries.get_mut(&seq) {
            entry.sent_on = None;
            entry.delayed_until = Some(at);
            self.ready.remove(&seq);
            self.delayed.insert((at, seq));
        }
    }

    /// Moves every share whose delay is over to the ready set.
    pub(crate) fn release_delayed(&mut self, now: Instant) {
        while let Some(&(at, seq)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            if let Some(entry) = self.entries.get_mut(&seq) {
                entry.delayed_until = None;
            }
            self.ready.insert(seq);
        }
    }

    /// Takes the callers whose deadline has passed; their shares stay.
    pub(crate) fn expired_callers(&mut self, now: Instant) -> Vec<(u64, Reply)> {
        let mut expired = Vec::new();
        while let Some(&(at, seq)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some((reply, _)) = self.entries.get_mut(&seq).and_then(|e| e.caller.take()) {
                expired.push((seq, reply));
            }
        }
        expired
    }

    /// Takes every waiting caller (the client stops, or cannot send).
    pub(crate) fn all_callers(&mut self) -> Vec<(u64, Reply)> {
        self.deadlines.clear();
        self.entries
            .iter_mut()
            .filter_map(|(seq, e)| e.caller.take().map(|(reply, _)| (*seq, reply)))
            .collect()
    }

    /// The earliest instant something is due: a deadline or a resend.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let deadline = self.deadlines.first().map(|(at, _)| *at);
        let delayed = self.delayed.first().map(|(at, _)| *at);
        deadline.into_iter().chain(delayed).min()
    }
}
