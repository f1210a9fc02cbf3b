//! Minimal HTTP/1.1 requests over a plain TCP socket, enough to scrape the
//! metrics endpoint and poke the Cashu API without an HTTP client crate.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request and returns the status line and the body.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the HTTP endpoint");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the response");
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `name` (with its labels, as written in the text
/// format) in a Prometheus scrape, or 0 if absent.
pub fn sample(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Scrapes `addr` until the sample `name` satisfies `ok` (metrics move
/// just after the event they count), and returns its value; fails the
/// test with the last scrape after [`crate::TIMEOUT`].
pub async fn wait_for_sample(addr: SocketAddr, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + crate::TIMEOUT;
    loop {
        let (_, scrape) = request(addr, "GET", "/metrics", "").await;
        let value = sample(&scrape, name);
        if ok(value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} = {value} never became acceptable; last scrape:\n{scrape}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
