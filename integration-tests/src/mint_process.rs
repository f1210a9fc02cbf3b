//! The real `mint-server` binary as a child process, on a data directory
//! and ports of the test's choosing, so a test can SIGKILL or SIGTERM it
//! and start it again on the same database.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A loopback port that is free now, chosen below Linux's ephemeral range
/// (32768..) so that the source ports of the tests' own client sockets can
/// never take it between this call and the mint's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Spread processes apart, then walk upwards within the process.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 600) as u16 * 20;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let port = if port >= 32_000 { port - 12_000 } else { port };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The `mint-server` binary next to the test executable
/// (`target/<profile>/mint-server`), or `$MINT_SERVER_BIN`.
pub fn mint_server_bin() -> PathBuf {
    if let Ok(path) = std::env::var("MINT_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the executable's path");
    // A test runs from target/<profile>/deps/, a binary (mint-bench) from
    // target/<profile>/: look beside it, then one level up.
    let dir = exe.parent().expect("the executable's directory");
    let candidates = [dir.join("mint-server"), dir.join("../mint-server")];
    match candidates.iter().find(|c| c.exists()) {
        Some(bin) => bin.clone(),
        None => panic!(
            "{} is missing: build it first (cargo build -p mint-server, or cargo test --workspace)",
            candidates[1].display()
        ),
    }
}

/// Where and how a mint process runs.
#[derive(Debug, Clone)]
pub struct MintProcessConfig {
    /// Data directory (database and seed) and config files.
    pub dir: PathBuf,
    /// Sv2 port.
    pub sv2_port: u16,
    /// HTTP API port.
    pub http_port: u16,
    /// Metrics port.
    pub metrics_port: u16,
    /// Lines appended to `mint.toml` sections, as `(section, line)`: the
    /// line goes right after the section's header, so it overrides the
    /// example's value of the same key (TOML refuses a key twice, so the
    /// example's line is removed).
    pub mint_overrides: Vec<(&'static str, String)>,
    /// The same for `pool.toml`.
    pub shared_overrides: Vec<(&'static str, String)>,
    /// Soft and hard open-file limit of the process, if not inherited.
    pub open_files: Option<u64>,
    /// Environment variables for the process (such as `FAILPOINTS`).
    pub env: Vec<(String, String)>,
    /// Redis url, if the Redis path is to run.
    pub redis_url: Option<String>,
    /// The PostgreSQL database, when the tests run on PostgreSQL (by
    /// default the one the harness gives `dir`); several mints given the
    /// same one share it.
    pub postgres_url: Option<String>,
}

impl MintProcessConfig {
    /// Fresh ports in `dir`, no Redis, the example's limits.
    pub fn new(dir: &Path) -> Self {
        MintProcessConfig {
            dir: dir.to_path_buf(),
            sv2_port: free_port(),
            http_port: free_port(),
            metrics_port: free_port(),
            mint_overrides: Vec::new(),
            shared_overrides: Vec::new(),
            open_files: None,
            env: Vec::new(),
            redis_url: None,
            postgres_url: crate::postgres::database_for(dir),
        }
    }

    fn replace(text: &str, from: &str, to: &str) -> String {
        assert!(
            text.contains(from),
            "example config no longer contains {from:?}"
        );
        text.replacen(from, to, 1)
    }

    /// Writes `mint.toml` and `pool.toml` from the example files.
    fn write(&self) -> (PathBuf, PathBuf) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mint = fs::read_to_string(root.join("mint.toml")).expect("config/mint.toml");
        let shared =
            fs::read_to_string(root.join("shared/pool.toml")).expect("config/shared/pool.toml");
        let mint = Self::replace(
            &mint,
            "data_dir = \"data/mint\"",
            &format!("data_dir = {:?}", self.dir.display().to_string()),
        );
        let mint = Self::replace(
            &mint,
            "listen = \"127.0.0.1:3338\"",
            &format!("listen = \"127.0.0.1:{}\"", self.http_port),
        );
        let mut mint = Self::replace(
            &mint,
            "listen = \"127.0.0.1:9091\"",
            &format!("listen = \"127.0.0.1:{}\"", self.metrics_port),
        );
        if let Some(url) = &self.postgres_url {
            mint = Self::replace(&mint, "database = \"sqlite\"", "database = \"postgres\"");
            mint = override_key(&mint, "postgres", &format!("url = {url:?}"));
        }
        for (section, line) in &self.mint_overrides {
            mint = override_key(&mint, section, line);
        }
        let mut shared = Self::replace(
            &shared,
            "mint_address = \"127.0.0.1:34260\"",
            &format!("mint_address = \"127.0.0.1:{}\"", self.sv2_port),
        );
        for (section, line) in &self.shared_overrides {
            shared = override_key(&shared, section, line);
        }
        if let Some(url) = &self.redis_url {
            shared = Self::replace(&shared, "enabled = false", "enabled = true");
            shared = Self::replace(
                &shared,
                "url = \"redis://127.0.0.1:6379\"",
                &format!("url = {url:?}"),
            );
        }
        let mint_path = self.dir.join("mint.toml");
        let shared_path = self.dir.join("pool.toml");
        fs::write(&mint_path, mint).expect("write mint.toml");
        fs::write(&shared_path, shared).expect("write pool.toml");
        (mint_path, shared_path)
    }
}

/// Starts the child with `limit` as both its soft and hard open-file
/// limit (so raising the soft limit at start gains nothing).
fn limit_open_files(command: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and
    // only calls setrlimit, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs the child on CPU `cpu` only (Linux; elsewhere it runs anywhere).
/// A benchmark uses it to keep a load generator off the CPU of the mint
/// it measures, as if it ran on another machine.
pub fn pin_to_cpu(command: &mut Command, cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls sched_setaffinity on a set it built on its stack.
        unsafe {
            command.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (command, cpu);
}

/// The number of file descriptors `pid` has open now.
pub fn open_files_of(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// `text` with `line` (`key = value`) set in `[section]`: any line of the
/// same key in that section is dropped, and `line` goes right after the
/// section's header.
fn override_key(text: &str, section: &str, line: &str) -> String {
    let key = line.split('=').next().unwrap_or_default().trim();
    let header = format!("[{section}]");
    let mut out = Vec::new();
    let mut in_section = false;
    let mut found = false;
    for l in text.lines() {
        let trimmed = l.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed == header;
        }
        let same_key = trimmed.split('=').next().map(str::trim) == Some(key);
        if in_section && same_key && !trimmed.starts_with('#') {
            continue;
        }
        out.push(l.to_owned());
        if trimmed == header {
            found = true;
            out.push(line.to_owned());
        }
    }
    assert!(found, "the example mint.toml has no [{section}]");
    out.join("\n") + "\n"
}

/// A running `mint-server` process.
pub struct MintProcess {
    config: MintProcessConfig,
    child: Option<Child>,
    log: PathBuf,
}

impl MintProcess {
    /// Starts the binary and waits until its Sv2 port accepts connections.
    pub fn start(config: MintProcessConfig) -> MintProcess {
        let process = Self::spawn(config);
        process.wait_listening();
        process
    }

    /// Starts the binary and returns at once (it may still fail to start:
    /// see [`Self::wait_exit`] and [`Self::is_listening`]).
    pub fn spawn(config: MintProcessConfig) -> MintProcess {
        let (mint_path, shared_path) = config.write();
        let log = config.dir.join("mint.log");
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the mint log");
        let mut command = Command::new(mint_server_bin());
        command
            .arg("--config")
            .arg(&mint_path)
            .arg("--shared")
            .arg(&shared_path)
            // The binary's own log filter, as an operator gets it.
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(limit) = config.open_files {
            limit_open_files(&mut command, limit);
        }
        command.envs(config.env.iter().map(|(k, v)| (k, v)));
        let child = command.spawn().expect("spawn mint-server");
        MintProcess {
            config,
            child: Some(child),
            log,
        }
    }

    /// Whether its Sv2 port accepts connections now.
    pub fn is_listening(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.config.sv2_port)).is_ok()
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.is_listening() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "mint-server did not listen within 30 s; log:\n{}",
            self.log_tail(40)
        );
    }

    /// `host:port` of its Sv2 listener.
    pub fn sv2_address(&self) -> String {
        format!("127.0.0.1:{}", self.config.sv2_port)
    }

    /// Address of its Cashu HTTP API.
    pub fn http_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.config.http_port))
    }

    /// Address of its metrics endpoint.
    pub fn metrics_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.config.metrics_port))
    }

    /// Its metrics now, in the Prometheus text format.
    pub async fn scrape(&self) -> String {
        crate::http::request(self.metrics_address(), "GET", "/metrics", "")
            .await
            .1
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory of the process in KiB (Linux `/proc`), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `timeout` for `text` to appear in the log (lines are
    /// written after the event they report, so a test must not expect them
    /// at once).
    pub fn wait_for_log(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(text) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &MintProcessConfig {
        &self.config
    }

    /// The mint's database.
    pub fn database(&self) -> crate::MintDb {
        match &self.config.postgres_url {
            Some(url) => crate::MintDb::Postgres(url.clone()),
            None => crate::MintDb::Sqlite(self.config.dir.join("mint.sqlite")),
        }
    }

    /// Waits up to `timeout` for the process to exit on its own; its
    /// status, or `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        crate::child::wait_exit(&mut self.child, timeout)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        crate::child::kill(&mut self.child);
    }

    /// SIGTERM, then waits (up to `wait`) for the exit status.
    pub fn terminate(&mut self, wait: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Starts the same configuration again (same ports, same database).
    pub fn restart(&mut self) {
        self.kill();
        let again = MintProcess::start(self.config.clone());
        self.child = again.child_take();
    }

    fn child_take(mut self) -> Option<Child> {
        self.child.take()
    }

    /// The last `lines` lines of its log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for MintProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
