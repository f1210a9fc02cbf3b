//! The `pool-sim` binary as a child process: a pool a test can kill -9 and
//! start again on the same outbox and journal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::journal::Ledger;

/// Where a simulated pool keeps its state, and how it runs.
#[derive(Debug, Clone)]
pub struct PoolSimConfig {
    /// The `pool-sim` binary (`env!("CARGO_BIN_EXE_pool-sim")` in a test).
    pub bin: PathBuf,
    /// Directory of the outbox, the journal and the output.
    pub dir: PathBuf,
    /// Where the pool connects.
    pub mint: String,
    /// Further arguments (`--shares`, `--deadline-ms`, ...).
    pub args: Vec<String>,
    /// Environment variables (such as `FAILPOINTS`).
    pub env: Vec<(String, String)>,
}

impl PoolSimConfig {
    /// A pool in `dir` connecting to `mint`, with the simulator's defaults.
    pub fn new(bin: &str, dir: &Path, mint: &str) -> Self {
        PoolSimConfig {
            bin: PathBuf::from(bin),
            dir: dir.to_path_buf(),
            mint: mint.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds `--name value`.
    pub fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push(format!("--{name}"));
        self.args.push(value.to_string());
        self
    }

    /// The journal file.
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal")
    }
}

/// A running simulated pool. Killed when dropped.
pub struct PoolSimProcess {
    config: PoolSimConfig,
    child: Option<Child>,
    output: PathBuf,
}

impl PoolSimProcess {
    /// Starts the simulator (appending to its journal and output).
    pub fn start(config: PoolSimConfig) -> PoolSimProcess {
        std::fs::create_dir_all(&config.dir).expect("the pool's directory");
        let output = config.dir.join("output");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&output)
            .expect("open the pool's output");
        let err = out.try_clone().expect("clone the output file");
        let child = Command::new(&config.bin)
            .arg("--mint")
            .arg(&config.mint)
            .arg("--outbox")
            .arg(config.dir.join("outbox.redb"))
            .arg("--journal")
            .arg(config.journal())
            .args(&config.args)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn pool-sim");
        PoolSimProcess {
            config,
            child: Some(child),
            output,
        }
    }

    /// What its journal says now.
    pub fn ledger(&self) -> Ledger {
        Ledger::read(&self.config.journal())
    }

    /// Waits until the journal shows at least `count` settled shares;
    /// panics after `timeout`.
    pub fn wait_settled(&self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let settled = self.ledger().settled();
            if settled >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{settled} of {count} shares settled within {timeout:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for it to exit; its status, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        crate::child::wait_exit(&mut self.child, timeout)
    }

    /// Waits for it to finish and requires a clean exit (every share it
    /// handed settled).
    pub fn expect_done(&mut self, timeout: Duration, context: &str) {
        let status = self.wait_exit(timeout);
        assert!(
            status.is_some_and(|s| s.success()),
            "pool-sim ended with {status:?}; output:\n{}\n{context}",
            self.output()
        );
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        crate::child::kill(&mut self.child);
    }

    /// Its output so far (stdout and stderr).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// The same pool again: same outbox, same journal.
    pub fn restart(&mut self) {
        self.kill();
        let again = PoolSimProcess::start(self.config.clone());
        self.child = again.take_child();
    }

    fn take_child(mut self) -> Option<Child> {
        self.child.take()
    }
}

impl Drop for PoolSimProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
