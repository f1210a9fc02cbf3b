//! The outbox's file: one redb table from sequence number to record. redb
//! is an embedded, crash-safe (copy-on-write B-trees, checksummed commits)
//! key-value store in pure Rust; a commit with immediate durability is on
//! disk when it returns. It also locks its file, so two pools cannot share
//! one outbox.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::record::Record;

const SHARES: TableDefinition<u64, &[u8]> = TableDefinition::new("shares");

/// Why the outbox's file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox: {0}")]
pub struct StoreError(pub(crate) String);

fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// The outbox's database.
pub(crate) struct Store {
    db: Database,
}

/// One change to the table.
pub(crate) enum Change {
    Put(u64, Vec<u8>),
    Delete(u64),
}

impl Store {
    /// Opens (creating) the file at `path`, or an in-memory store.
    pub(crate) fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let db = match path {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| store_error(format!("{}: {e}", dir.display())))?;
                }
                Database::create(path)
                    .map_err(|e| store_error(format!("{}: {e}", path.display())))?
            }
            None => Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(store_error)?,
        };
        let store = Store { db };
        // Create the table, so that reads of a fresh file find it.
        store.apply(&[])?;
        Ok(store)
    }

    /// Every record, oldest first. A record that does not decode is
    /// reported and skipped (it cannot be sent anyway).
    pub(crate) fn load(&self) -> Result<Vec<(u64, Record)>, StoreError> {
        let read = self.db.begin_read().map_err(store_error)?;
        let table = read.open_table(SHARES).map_err(store_error)?;
        let mut records = Vec::new();
        for row in table.iter().map_err(store_error)? {
            let (seq, bytes) = row.map_err(store_error)?;
            match Record::decode(bytes.value()) {
                Ok(record) => records.push((seq.value(), record)),
                Err(e) => {
                    tracing::error!(seq = seq.value(), error = %e, "skipping a damaged outbox record")
                }
            }
        }
        Ok(records)
    }

    /// Applies `changes` in one transaction, on disk when this returns.
    pub(crate) fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut write = self.db.begin_write().map_err(store_error)?;
        write
            .set_durability(Durability::Immediate)
            .map_err(store_error)?;
        {
            let mut table = write.open_table(SHARES).map_err(store_error)?;
            for change in changes {
                match change {
                    Change::Put(seq, bytes) => {
                        table.insert(*seq, bytes.as_slice()).map_err(store_error)?;
                    }
                    Change::Delete(seq) => {
                        table.remove(*seq).map_err(store_error)?;
                    }
                }
            }
        }
        write.commit().map_err(store_error)
    }
}
