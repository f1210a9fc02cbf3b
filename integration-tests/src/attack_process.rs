//! The `mint-attack` binary as a child process: an attacker in a process
//! of its own beside the mint, as on a real network.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::attack::Mode;

/// A running attacker. Killed when dropped.
pub struct AttackProcess {
    child: Child,
    last: Arc<Mutex<HashMap<String, u64>>>,
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Idle => "idle",
        Mode::NoiseStall => "noise-stall",
        Mode::HandshakeFlood => "handshake-flood",
        Mode::BigFrame => "big-frame",
        Mode::HttpIdle => "http-idle",
        Mode::HttpHammer => "http-hammer",
    }
}

impl AttackProcess {
    /// Starts `bin` (the `mint-attack` binary, or a program that takes the
    /// same arguments after `extra`) with `connections` workers over
    /// `sources` loopback addresses.
    pub fn start(
        bin: &Path,
        extra: &[&str],
        mode: Mode,
        target: SocketAddr,
        connections: usize,
        sources: u8,
    ) -> AttackProcess {
        Self::start_on(bin, extra, mode, target, connections, sources, None)
    }

    /// [`Self::start`], on CPU `cpu` only when it is given.
    pub fn start_on(
        bin: &Path,
        extra: &[&str],
        mode: Mode,
        target: SocketAddr,
        connections: usize,
        sources: u8,
        cpu: Option<usize>,
    ) -> AttackProcess {
        let mut command = Command::new(bin);
        if let Some(cpu) = cpu {
            crate::mint_process::pin_to_cpu(&mut command, cpu);
        }
        let mut child = command
            .args(extra)
            .args(["--mode", mode_name(mode), "--target"])
            .arg(target.to_string())
            .args(["--connections", &connections.to_string()])
            .args(["--sources", &sources.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let last = Arc::new(Mutex::new(HashMap::new()));
        if let Some(stdout) = child.stdout.take() {
            let last = last.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let counts: HashMap<String, u64> = line
                        .split_whitespace()
                        .filter_map(|pair| {
                            let (k, v) = pair.split_once('=')?;
                            Some((k.to_owned(), v.parse().ok()?))
                        })
                        .collect();
                    if let Ok(mut last) = last.lock() {
                        *last = counts;
                    }
                }
            });
        }
        AttackProcess { child, last }
    }

    /// The count `name` of the last line the attacker printed (it prints
    /// once a second), 0 before the first.
    pub fn count(&self, name: &str) -> u64 {
        self.last
            .lock()
            .map(|l| l.get(name).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Connections that ended from the mint's side: closed (or reset)
    /// after being accepted, or reset at once (a refused connect).
    pub fn ended(&self) -> u64 {
        self.count("closed_by_target") + self.count("connect_failed")
    }

    /// Waits up to `timeout` for [`Self::ended`] to reach `at_least`.
    pub async fn wait_for_ended(&self, at_least: u64, timeout: std::time::Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.ended();
            if value >= at_least || tokio::time::Instant::now() >= deadline {
                return value;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `timeout` for the count `name` to reach `at_least`.
    pub async fn wait_for_count(
        &self,
        name: &str,
        at_least: u64,
        timeout: std::time::Duration,
    ) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.count(name);
            if value >= at_least || tokio::time::Instant::now() >= deadline {
                return value;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for AttackProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
