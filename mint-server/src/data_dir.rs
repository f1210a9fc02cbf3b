//! One mint per data directory.
//!
//! Two mints on one directory would both write its database and, started
//! together on an empty one, could each create a keyset. The mint takes an
//! exclusive lock on `<data_dir>/lock` before anything else touches the
//! directory (before the database is opened and CDK's start-up recovery
//! runs), and holds it until it exits; the kernel releases it if the
//! process dies. The file also records the holder's PID, so that the one
//! refused can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error("{dir} is in use by another mint (PID {holder}, lock file {lock}); stop it first, or give this mint its own mint.data_dir")]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The PID the holder wrote, or `unknown`.
        holder: String,
    },
    /// The directory or the lock file could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The exclusive lock on a data directory; released when dropped (and by
/// the kernel when the process ends, however it ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed and takes its lock, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    lock: path,
                    holder: holder.unwrap_or_else(|| "unknown".into()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        // Ours now: record who holds it.
        let record = (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_all()
        })();
        record.map_err(io(&path))?;
        Ok(DataDirLock { _file: file })
    }
}

/// The PID the holder wrote. A holder that has just taken the lock may
/// not have written it yet (two mints started at once): wait for it a
/// little, rather than name nobody.
fn read_holder(file: &mut File) -> Option<String> {
    for _ in 0..HOLDER_READS {
        let mut holder = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_string(&mut holder).is_ok() {
            let holder = holder.trim();
            if !holder.is_empty() {
                return Some(holder.to_owned());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// Reads of the lock file before the holder is called unknown (20 ms
/// apart: a second in all).
const HOLDER_READS: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())) && err.contains("in use"),
            "{err}"
        );
        drop(first);
        // Released: the next start gets it.
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_missing_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let _lock = DataDirLock::acquire(&nested).unwrap();
        assert!(nested.join("lock").exists());
    }
}
