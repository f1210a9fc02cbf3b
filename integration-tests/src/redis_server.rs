//! A real `redis-server` on a free loopback port, stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::mint_process::free_port;

/// A running `redis-server`: with no persistence, or with an append-only
/// file fsynced on every write (what docs/operations.md asks of an
/// operator who wants an acknowledged push to survive a Redis crash).
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

/// Persistence off: nothing survives a restart.
const EPHEMERAL: &[&str] = &["--save", "", "--appendonly", "no"];
/// Every write in the append-only file, fsynced before the reply.
const DURABLE: &[&str] = &[
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

impl RedisServer {
    /// Starts `redis-server` from the `PATH` and waits until it answers.
    pub fn start() -> RedisServer {
        let port = free_port();
        Self::start_on(port)
    }

    /// Starts it on `port` (to restart a stopped server on the same url).
    pub fn start_on(port: u16) -> RedisServer {
        Self::spawn(port, EPHEMERAL, None)
    }

    /// Starts it on `port` with its append-only file in `dir`, fsynced on
    /// every write; started again on the same `dir` it has every write it
    /// acknowledged.
    pub fn start_durable(port: u16, dir: &std::path::Path) -> RedisServer {
        Self::spawn(port, DURABLE, Some(dir))
    }

    fn spawn(port: u16, persistence: &[&str], dir: Option<&std::path::Path>) -> RedisServer {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence);
        if let Some(dir) = dir {
            command.arg("--dir").arg(dir);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        let server = RedisServer {
            child: Some(child),
            port,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut con) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server did not answer on port {} within 10 s",
            self.port
        );
    }

    /// Its url.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A blocking connection, for test assertions.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis")
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `RPUSH`es `request` as the JSON pools send today onto the default
/// request list, as a pool would.
/// The processing list of the mint on `data_dir` (named in its
/// `redis-consumer` file, which it writes at its first start with Redis).
pub fn processing_list(data_dir: &std::path::Path) -> String {
    let path = data_dir.join("redis-consumer");
    match std::fs::read_to_string(&path) {
        Ok(name) => format!("mint:quotes:create:processing:{}", name.trim()),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Pushes `request` as the pool does (JSON, at the tail of the list).
pub fn push_request(con: &mut redis::Connection, request: &mint_quote_proto::MintQuoteRequest) {
    let json = mint_quote_proto::json::JsonQuoteRequest::from_request(request).to_json();
    let pushed: redis::RedisResult<usize> = redis::Commands::rpush(con, "mint:quotes:create", json);
    pushed.expect("RPUSH to the test redis");
}
