//! What the harness does with the child processes it starts (a mint, a
//! simulated pool): wait for an exit, or kill.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits up to `timeout` for `child` to exit on its own; its status (the
/// child is then gone), or `None` if it is still running or already gone.
pub(crate) fn wait_exit(child: &mut Option<Child>, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let running = child.as_mut()?;
        if let Ok(Some(status)) = running.try_wait() {
            *child = None;
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL, and reaps it: no chance to finish anything.
pub(crate) fn kill(child: &mut Option<Child>) {
    if let Some(mut running) = child.take() {
        let _ = running.kill();
        let _ = running.wait();
    }
}
