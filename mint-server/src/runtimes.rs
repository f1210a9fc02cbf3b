//! Where the mint's work runs, and at what priority.
//!
//! The quote path (authenticated sessions, quote creation, Redis) runs on
//! the runtime the mint was started on, at the process's priority. Work
//! that strangers can cause runs on runtimes of its own, whose threads the
//! kernel schedules at a lower priority (a higher niceness):
//!
//! - **admission**: the Sv2 accept loop, and every connection until it has
//!   authenticated (Noise handshakes, setup, refusals);
//! - **http**: the Cashu HTTP API and the metrics endpoint.
//!
//! On a busy machine these get the CPU the quote path leaves over, so
//! wallets hammering the API or strangers opening handshakes slow their
//! own work, not the pools'. A connection moves to the quote path's
//! runtime once its pool has authenticated.

use tokio::runtime::{Handle, Runtime};

/// A runtime of its own, on `threads` threads at a lower priority. Its
/// tasks are dropped (without blocking) when it is.
pub struct BackgroundRuntime {
    runtime: Option<Runtime>,
}

impl BackgroundRuntime {
    /// Starts a runtime named `name` whose threads run `nice` steps below
    /// the process's priority (0: the same priority).
    pub fn start(name: &'static str, threads: usize, nice: i32) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .on_thread_start(move || lower_this_thread(name, nice))
            .build()?;
        Ok(BackgroundRuntime {
            runtime: Some(runtime),
        })
    }

    /// A handle to spawn on it.
    pub fn handle(&self) -> Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            // `runtime` is only taken in `drop`.
            None => unreachable!("a background runtime is only emptied when dropped"),
        }
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        // Dropping a runtime from async code would block and panic; the
        // mint stops its tasks before it gets here.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Raises the calling thread's niceness by `nice` (at most to 19).
#[cfg(target_os = "linux")]
fn lower_this_thread(name: &str, nice: i32) {
    if nice <= 0 {
        return;
    }
    // SAFETY: gettid, getpriority and setpriority only read their
    // arguments; on Linux PRIO_PROCESS with a thread id names that thread.
    let result = unsafe {
        let tid = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (current + nice).min(19))
    };
    if result != 0 {
        tracing::warn!(
            runtime = name,
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a background thread"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread(_name: &str, _nice: i32) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn niceness() -> i32 {
        // SAFETY: as above.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn background_threads_run_at_a_lower_priority() {
        let here = niceness();
        let background = BackgroundRuntime::start("test-bg", 1, 5).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        background.handle().spawn(async move {
            let _ = tx.send(niceness());
        });
        let there = rx.recv().unwrap();
        assert_eq!(there, (here + 5).min(19));
        // The calling thread is untouched.
        assert_eq!(niceness(), here);
    }
}
