//! The tests' PostgreSQL: a real server (`scripts/test-postgres start`)
//! named by `MINT_TEST_POSTGRES`, on which every mint a test starts gets a
//! database of its own, created for it and dropped when the test process
//! exits.
//!
//! With the variable set, every mint the harness builds (in this process
//! or as a child process) stores its state there instead of in SQLite, so
//! the whole suite runs on PostgreSQL; tests that need PostgreSQL itself
//! (several mints on one database) ask [`server`] and say why they skip
//! when it is unset, unless `MINT_TEST_REQUIRE_POSTGRES` is set (CI), where
//! a missing server fails them.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};

/// The variable holding the server's connection string.
pub const SERVER_VAR: &str = "MINT_TEST_POSTGRES";
/// Set (to anything) where a missing server must fail the tests.
pub const REQUIRE_VAR: &str = "MINT_TEST_REQUIRE_POSTGRES";

/// The test server's connection string (without a database name), if
/// one is configured.
pub fn server() -> Option<String> {
    std::env::var(SERVER_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The server, or `None` after printing why a PostgreSQL-only test does
/// not run here; panics (fails the test) where the server is required.
pub fn server_or_skip(test: &str) -> Option<String> {
    let server = server();
    if server.is_none() {
        assert!(
            std::env::var_os(REQUIRE_VAR).is_none(),
            "{test}: {REQUIRE_VAR} is set but {SERVER_VAR} is not (scripts/test-postgres start)"
        );
        eprintln!("{test}: skipped, no PostgreSQL server ({SERVER_VAR} unset; scripts/test-postgres start)");
    }
    server
}

/// The connection string of database `name` on `server`.
pub fn database_url(server: &str, name: &str) -> String {
    format!("{server} dbname={name}")
}

/// Creates a fresh, empty database on `server` and returns its
/// connection string; it is dropped when this process exits.
pub fn create_database(server: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "mint_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let sql = format!("CREATE DATABASE {name}");
    if let Err(e) = execute(server, &sql) {
        panic!("creating test database {name}: {e}");
    }
    created()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((server.to_owned(), name.clone()));
    drop_at_exit();
    database_url(server, &name)
}

/// The database of the mint on `data_dir`: the same one for every start
/// on that directory (a restart finds its quotes), created at the first.
/// `None` when the tests run on SQLite.
pub fn database_for(data_dir: &Path) -> Option<String> {
    let server = server()?;
    static BY_DIR: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let mut by_dir = BY_DIR
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Some(
        by_dir
            .entry(data_dir.to_path_buf())
            .or_insert_with(|| create_database(&server))
            .clone(),
    )
}

/// Runs one statement (or several, `;`-separated) on `url`.
pub fn execute(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    block_on(async move {
        let client = connect(&url).await?;
        client.batch_execute(&sql).await.map_err(|e| describe(&e))
    })
}

/// What PostgreSQL said, not just "db error".
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Connects to `url`, driving the connection on the current runtime.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to the test PostgreSQL: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs `work` to completion on a thread and runtime of its own, so that
/// sync and async tests alike can call it.
pub fn block_on<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    match spawn(work).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Starts `work` on a thread and runtime of its own.
pub fn spawn<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(work),
            Err(e) => panic!("a runtime for PostgreSQL: {e}"),
        }
    })
}

fn created() -> &'static Mutex<Vec<(String, String)>> {
    static CREATED: OnceLock<Mutex<Vec<(String, String)>>> = OnceLock::new();
    CREATED.get_or_init(Default::default)
}

/// Registers, once, the exit hook that drops this process's databases
/// (a test binary exits through `exit`, which runs it).
fn drop_at_exit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` with no arguments.
        unsafe {
            libc::atexit(drop_created);
        }
    });
}

extern "C" fn drop_created() {
    let databases = std::mem::take(&mut *created().lock().unwrap_or_else(|p| p.into_inner()));
    for (server, name) in databases {
        // FORCE: a mint the test left running may still hold connections.
        if let Err(e) = execute(
            &server,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ) {
            eprintln!("dropping test database {name}: {e}");
        }
    }
}
