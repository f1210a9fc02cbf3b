//! A mint's database seen from outside, on either backend: what the tests
//! read to audit it, and how they break it. The SQL is the same for the
//! SQLite file and PostgreSQL (write `CAST(x AS TEXT)` for what is not
//! text).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::postgres;

/// The database of one mint.
#[derive(Debug, Clone)]
pub enum MintDb {
    /// `mint.sqlite` in the data directory.
    Sqlite(PathBuf),
    /// A database on the tests' PostgreSQL server.
    Postgres(String),
}

impl MintDb {
    /// The database the harness gives the mint on `data_dir`.
    pub fn of_dir(data_dir: &Path) -> MintDb {
        match postgres::database_for(data_dir) {
            Some(url) => MintDb::Postgres(url),
            None => MintDb::Sqlite(data_dir.join("mint.sqlite")),
        }
    }

    /// Every stored quote: (its share, the `request` column; its id).
    pub fn quote_rows(&self) -> Vec<(String, String)> {
        self.text_rows("SELECT request, id FROM mint_quote")
            .into_iter()
            .map(|row| match row.as_slice() {
                [Some(share), Some(id)] => (share.clone(), id.clone()),
                other => panic!("a quote row without share or id: {other:?}"),
            })
            .collect()
    }

    /// The rows `sql` selects, every column read as text.
    pub fn text_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            MintDb::Sqlite(path) => {
                let db = open_sqlite(path);
                let mut statement = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let columns = statement.column_count();
                let rows = statement
                    .query_map([], |row| {
                        (0..columns)
                            .map(|i| row.get::<_, Option<String>>(i))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.collect::<Result<_, _>>()
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            MintDb::Postgres(url) => {
                let (url, sql) = (url.clone(), sql.to_owned());
                postgres::block_on(async move {
                    let client = postgres::connect(&url).await?;
                    let rows = client
                        .query(&sql, &[])
                        .await
                        .map_err(|e| postgres::describe(&e))?;
                    rows.iter()
                        .map(|row| {
                            (0..row.len())
                                .map(|i| row.try_get::<_, Option<String>>(i))
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(|e| e.to_string())
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
                .unwrap_or_else(|e| panic!("{e}"))
            }
        }
    }

    /// The single number `sql` selects (a `COUNT(*)`).
    pub fn count(&self, sql: &str) -> u64 {
        let cast = format!("SELECT CAST(({sql}) AS TEXT)");
        match self.text_rows(&cast).as_slice() {
            [row] => match row.as_slice() {
                [Some(n)] => n.parse().unwrap_or_else(|e| panic!("{sql}: {n}: {e}")),
                other => panic!("{sql}: {other:?}"),
            },
            other => panic!("{sql}: {other:?}"),
        }
    }

    /// Runs statements (to break the database in a fault test).
    pub fn execute(&self, sql: &str) {
        let result = match self {
            MintDb::Sqlite(path) => open_sqlite(path)
                .execute_batch(sql)
                .map_err(|e| e.to_string()),
            MintDb::Postgres(url) => postgres::execute(url, sql),
        };
        if let Err(e) = result {
            panic!("{sql}: {e}");
        }
    }

    /// Holds the quote table locked against the mint (reads included)
    /// until the guard is dropped.
    pub fn lock(&self) -> DbLock {
        match self {
            MintDb::Sqlite(path) => {
                let db = open_sqlite(path);
                if let Err(e) = db.execute_batch("BEGIN EXCLUSIVE") {
                    panic!("locking {}: {e}", path.display());
                }
                DbLock::Sqlite(db)
            }
            MintDb::Postgres(url) => {
                let (locked_tx, locked) = mpsc::channel();
                let (release, release_rx) = mpsc::channel::<()>();
                let url = url.clone();
                let holder = postgres::spawn(async move {
                    let result = async {
                        let client = postgres::connect(&url).await?;
                        client
                            .batch_execute("BEGIN; LOCK TABLE mint_quote IN ACCESS EXCLUSIVE MODE")
                            .await
                            .map_err(|e| postgres::describe(&e))?;
                        Ok::<_, String>(client)
                    }
                    .await;
                    match result {
                        Ok(client) => {
                            let _ = locked_tx.send(Ok(()));
                            // Held until the guard drops (or the test ends).
                            let _ = tokio::task::spawn_blocking(move || release_rx.recv()).await;
                            let _ = client.batch_execute("ROLLBACK").await;
                        }
                        Err(e) => {
                            let _ = locked_tx.send(Err(e));
                        }
                    }
                });
                match locked.recv() {
                    Ok(Ok(())) => DbLock::Postgres {
                        release: Some(release),
                        holder: Some(holder),
                    },
                    Ok(Err(e)) => panic!("locking the quote table: {e}"),
                    Err(e) => panic!("locking the quote table: {e}"),
                }
            }
        }
    }
}

/// A lock on the mint's quote table, released when dropped.
pub enum DbLock {
    /// An open `BEGIN EXCLUSIVE` transaction.
    Sqlite(rusqlite::Connection),
    /// A thread holding a PostgreSQL transaction with the table locked.
    Postgres {
        /// Dropping it ends the transaction.
        release: Option<mpsc::Sender<()>>,
        /// The thread, joined on drop.
        holder: Option<std::thread::JoinHandle<()>>,
    },
}

impl Drop for DbLock {
    fn drop(&mut self) {
        if let DbLock::Postgres { release, holder } = self {
            drop(release.take());
            if let Some(holder) = holder.take() {
                let _ = holder.join();
            }
        }
    }
}

fn open_sqlite(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
