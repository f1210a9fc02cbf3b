//! What a pool learned about its shares, written as it learns it, and the
//! check of it against the mint's database that ends every fault test.
//!
//! The pool simulator appends one line per event to a journal file, with
//! one `write` each (so a `kill -9` leaves whole lines): what a call
//! returned, and what came later through `next_settled`. After the fault,
//! the test reads the journal and the mint's quote rows and requires:
//!
//! - every share handed to the client has exactly one quote, or a
//!   definite refusal, known to the pool;
//! - no share has two quotes (in the pool's knowledge or in the database);
//! - every quote the pool knows is in the database, for its share;
//! - the database holds no quote the pool never heard of.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// One thing the pool learned about a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A call returned this quote, or it came through `next_settled`.
    Quote(String),
    /// The mint refused the share for good, with this code.
    Refused(String),
    /// A call returned "pending": the client holds the share.
    Pending,
    /// The client did not take the share (outbox full, stopped...).
    NotTaken(String),
}

impl Event {
    fn tag_and_value(&self) -> (&'static str, &str) {
        match self {
            Event::Quote(id) => ("Q", id),
            Event::Refused(code) => ("R", code),
            Event::Pending => ("P", "-"),
            Event::NotTaken(reason) => ("N", reason),
        }
    }
}

/// An append-only journal file.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }

    /// Appends `share`'s event as one line, in one write.
    pub fn record(&self, share: &str, event: &Event) -> std::io::Result<()> {
        let (tag, value) = event.tag_and_value();
        let value = value.replace(char::is_whitespace, "_");
        let line = format!("{tag} {share} {value}\n");
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())
    }
}

/// Everything a journal says, by share (header hash, hex).
#[derive(Debug, Default)]
pub struct Ledger {
    /// Events per share, in the order they were written.
    pub shares: BTreeMap<String, Vec<Event>>,
}

impl Ledger {
    /// Reads the journal at `path` (an absent file is an empty ledger). A
    /// torn last line cannot happen (one write per line); any line that
    /// does not parse is a test failure.
    pub fn read(path: &Path) -> Ledger {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut ledger = Ledger::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ' ');
            let (tag, share, value) = match (parts.next(), parts.next(), parts.next()) {
                (Some(t), Some(s), Some(v)) => (t, s.to_owned(), v.to_owned()),
                _ => panic!("journal line {line:?} is not `tag share value`"),
            };
            let event = match tag {
                "Q" => Event::Quote(value),
                "R" => Event::Refused(value),
                "P" => Event::Pending,
                "N" => Event::NotTaken(value),
                _ => panic!("journal line {line:?} has an unknown tag"),
            };
            ledger.shares.entry(share).or_default().push(event);
        }
        ledger
    }

    /// Shares the client took: every share with an event other than
    /// "not taken".
    pub fn handed(&self) -> usize {
        self.shares
            .values()
            .filter(|events| events.iter().any(|e| !matches!(e, Event::NotTaken(_))))
            .count()
    }

    /// Shares with a quote or a refusal known to the pool.
    pub fn settled(&self) -> usize {
        self.shares
            .values()
            .filter(|events| is_settled(events))
            .count()
    }

    /// Shares without a quote or a refusal known to the pool.
    pub fn unsettled(&self) -> Vec<String> {
        self.shares
            .iter()
            .filter(|(_, events)| !is_settled(events))
            .map(|(share, _)| share.clone())
            .collect()
    }

    /// Compares the ledger with the mint's quote rows, `(share, quote id)`.
    pub fn audit(&self, rows: &[(String, String)]) -> Audit {
        let mut audit = Audit::default();
        let mut in_db: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (share, id) in rows {
            in_db.entry(share).or_default().push(id);
        }
        let mut known_ids = BTreeSet::new();
        for (share, events) in &self.shares {
            let quotes: BTreeSet<&str> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Quote(id) => Some(id.as_str()),
                    _ => None,
                })
                .collect();
            let refused = events.iter().any(|e| matches!(e, Event::Refused(_)));
            let taken = events.iter().any(|e| !matches!(e, Event::NotTaken(_)));
            match (quotes.len(), refused) {
                (0, false) if taken => audit.unresolved.push(share.clone()),
                (0, false) => audit.not_taken += 1,
                (1, false) => audit.quoted += 1,
                (0, true) => audit.refused += 1,
                _ => audit.doubled_in_pool.push(share.clone()),
            }
            for id in quotes {
                known_ids.insert(id.to_owned());
                let stored = in_db
                    .get(share.as_str())
                    .is_some_and(|ids| ids.contains(&id));
                if !stored {
                    audit.missing_in_db.push(format!("{share} {id}"));
                }
            }
        }
        for (share, ids) in &in_db {
            if ids.len() > 1 {
                audit.doubled_in_db.push((*share).to_owned());
            }
            for id in ids {
                if !known_ids.contains(*id) {
                    audit.unknown_to_pool.push(format!("{share} {id}"));
                }
            }
        }
        audit
    }
}

/// The outcome of [`Ledger::audit`].
#[derive(Debug, Default)]
pub struct Audit {
    /// Shares with exactly one quote known to the pool.
    pub quoted: usize,
    /// Shares refused for good.
    pub refused: usize,
    /// Shares the client never took.
    pub not_taken: usize,
    /// Shares handed to the client with neither a quote nor a refusal.
    pub unresolved: Vec<String>,
    /// Shares the pool was told two different quotes for.
    pub doubled_in_pool: Vec<String>,
    /// Shares with more than one quote row.
    pub doubled_in_db: Vec<String>,
    /// Quotes the pool knows that the database lacks.
    pub missing_in_db: Vec<String>,
    /// Quote rows the pool never heard of.
    pub unknown_to_pool: Vec<String>,
}

impl Audit {
    /// Whether every rule holds.
    pub fn is_clean(&self) -> bool {
        self.unresolved.is_empty()
            && self.doubled_in_pool.is_empty()
            && self.doubled_in_db.is_empty()
            && self.missing_in_db.is_empty()
            && self.unknown_to_pool.is_empty()
    }

    /// Panics with the counts, a few examples of each broken rule and
    /// `context`, unless every rule holds.
    pub fn assert_clean(&self, context: &str) {
        if self.is_clean() {
            return;
        }
        let few = |v: &Vec<String>| v.iter().take(3).cloned().collect::<Vec<_>>();
        panic!(
            "share audit failed: {} quoted, {} refused, {} not taken; \
             {} unresolved {:?}, {} doubled in the pool {:?}, {} doubled in the database {:?}, \
             {} missing from the database {:?}, {} unknown to the pool {:?}\n{context}",
            self.quoted,
            self.refused,
            self.not_taken,
            self.unresolved.len(),
            few(&self.unresolved),
            self.doubled_in_pool.len(),
            few(&self.doubled_in_pool),
            self.doubled_in_db.len(),
            few(&self.doubled_in_db),
            self.missing_in_db.len(),
            few(&self.missing_in_db),
            self.unknown_to_pool.len(),
            few(&self.unknown_to_pool),
        );
    }
}

/// Whether `events` hold a quote or a refusal.
fn is_settled(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Quote(_) | Event::Refused(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(lines: &[(&str, Event)]) -> Ledger {
        let mut ledger = Ledger::default();
        for (share, event) in lines {
            ledger
                .shares
                .entry((*share).to_owned())
                .or_default()
                .push(event.clone());
        }
        ledger
    }

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(s, i)| ((*s).to_owned(), (*i).to_owned()))
            .collect()
    }

    #[test]
    fn each_broken_rule_is_caught() {
        let q = |id: &str| Event::Quote(id.to_owned());
        let audit = ledger(&[
            ("a", Event::Pending),
            ("a", q("1")),
            ("a", q("1")),         // the same quote twice: fine
            ("b", Event::Pending), // never settled
            ("c", q("2")),
            ("c", q("3")), // two quotes for one share
            ("d", q("4")), // not in the database
            ("e", Event::Refused("invalid-amount".into())),
            ("f", Event::NotTaken("full".into())),
        ])
        .audit(&rows(&[
            ("a", "1"),
            ("c", "2"),
            ("c", "3"),
            ("g", "5"), // unknown to the pool
        ]));
        assert_eq!(audit.quoted, 2, "{audit:?}");
        assert_eq!(audit.refused, 1);
        assert_eq!(audit.not_taken, 1);
        assert_eq!(audit.unresolved, vec!["b"]);
        assert_eq!(audit.doubled_in_pool, vec!["c"]);
        assert_eq!(audit.doubled_in_db, vec!["c"]);
        assert_eq!(audit.missing_in_db, vec!["d 4"]);
        assert_eq!(audit.unknown_to_pool, vec!["g 5"]);
        assert!(!audit.is_clean());
    }

    #[test]
    fn a_journal_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let journal = Journal::open(&path).unwrap();
        journal.record("a", &Event::Pending).unwrap();
        journal.record("a", &Event::Quote("q1".into())).unwrap();
        journal
            .record("b", &Event::NotTaken("outbox full now".into()))
            .unwrap();
        let ledger = Ledger::read(&path);
        assert_eq!(
            ledger.shares["a"],
            vec![Event::Pending, Event::Quote("q1".into())]
        );
        assert_eq!(
            ledger.shares["b"],
            vec![Event::NotTaken("outbox_full_now".into())]
        );
        assert_eq!((ledger.handed(), ledger.settled()), (1, 1));
        assert!(ledger.audit(&rows(&[("a", "q1")])).is_clean());
    }
}
