//! Crash-only workers: a mint whose quote writer, listener or Redis
//! consumer has died must not stay up half-alive (answering
//! `internal-error` forever, or listening to nobody). Every long-lived
//! worker runs under the supervisor; if one panics, or ends while the mint
//! is not stopping, the supervisor records why, and the mint's owner (the
//! binary) stops the process with a non-zero status so that its service
//! manager restarts it.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Watches the mint's workers. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    failed: watch::Sender<Option<String>>,
    stopping: CancellationToken,
}

impl Supervisor {
    /// A supervisor for workers that are expected to run until `stopping`.
    pub fn new(stopping: CancellationToken) -> Self {
        Supervisor {
            failed: watch::channel(None).0,
            stopping,
        }
    }

    /// Records that `worker` died for `reason` (the first failure wins).
    pub fn fail(&self, worker: &str, reason: &str) {
        let message = format!("{worker} {reason}");
        tracing::error!(
            worker,
            reason,
            "a worker of the mint died; the mint must stop"
        );
        self.failed.send_if_modified(|failed| {
            if failed.is_some() {
                return false;
            }
            *failed = Some(message);
            true
        });
    }

    /// Runs `task` on `runtime`, reporting a panic, or an end before the
    /// mint is stopping, as the failure of `worker`.
    pub fn spawn_on<F>(&self, runtime: &Handle, worker: &'static str, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let supervisor = self.clone();
        runtime.spawn(async move {
            match AssertUnwindSafe(task).catch_unwind().await {
                Err(panic) => {
                    supervisor.fail(worker, &format!("panicked: {}", panic_message(&panic)))
                }
                Ok(()) if !supervisor.stopping.is_cancelled() => {
                    supervisor.fail(worker, "stopped while the mint was running")
                }
                Ok(()) => {}
            }
        })
    }

    /// A guard for a worker on a thread of its own: dropped while the
    /// thread unwinds from a panic, or while the mint is not stopping
    /// (unless [`WorkerGuard::finished`] says the end was expected), it
    /// reports the worker's failure.
    pub fn guard(&self, worker: &'static str) -> WorkerGuard {
        WorkerGuard {
            supervisor: self.clone(),
            worker,
            finished: false,
        }
    }

    /// Waits until a worker has died, and says which and why.
    pub async fn failure(&self) -> String {
        let mut failed = self.failed.subscribe();
        loop {
            if let Some(reason) = failed.borrow_and_update().clone() {
                return reason;
            }
            if failed.changed().await.is_err() {
                // The sender lives in `self`: never reached.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The failure, if a worker has died.
    pub fn failed(&self) -> Option<String> {
        self.failed.borrow().clone()
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// See [`Supervisor::guard`].
pub struct WorkerGuard {
    supervisor: Supervisor,
    worker: &'static str,
    finished: bool,
}

impl WorkerGuard {
    /// The worker ended on purpose (its work is over).
    pub fn finished(mut self) {
        self.finished = true;
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.supervisor.fail(self.worker, "panicked");
        } else if !self.finished && !self.supervisor.stopping.is_cancelled() {
            self.supervisor
                .fail(self.worker, "stopped while the mint was running");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported() {
        let supervisor = Supervisor::new(CancellationToken::new());
        supervisor.spawn_on(&Handle::current(), "listener", async {
            panic!("boom");
        });
        let failure = supervisor.failure().await;
        assert_eq!(failure, "listener panicked: boom");
    }

    #[tokio::test]
    async fn a_task_that_ends_early_is_reported_but_not_at_shutdown() {
        let stopping = CancellationToken::new();
        let supervisor = Supervisor::new(stopping.clone());
        stopping.cancel();
        supervisor
            .spawn_on(&Handle::current(), "redis consumer", async {})
            .await
            .unwrap();
        assert_eq!(supervisor.failed(), None);
        let running = Supervisor::new(CancellationToken::new());
        running
            .spawn_on(&Handle::current(), "redis consumer", async {})
            .await
            .unwrap();
        assert_eq!(
            running.failed().as_deref(),
            Some("redis consumer stopped while the mint was running")
        );
    }

    #[test]
    fn a_thread_that_panics_is_reported_and_one_that_finishes_is_not() {
        let supervisor = Supervisor::new(CancellationToken::new());
        let guard = supervisor.guard("quote writer");
        let _ = std::thread::spawn(move || {
            let _guard = guard;
            panic!("disk gone");
        })
        .join();
        assert_eq!(
            supervisor.failed().as_deref(),
            Some("quote writer panicked")
        );
        let quiet = Supervisor::new(CancellationToken::new());
        quiet.guard("quote writer").finished();
        assert_eq!(quiet.failed(), None);
    }
}
