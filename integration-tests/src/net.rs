//! Connections from a chosen loopback source address.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so a test
//! can play several hosts: the pool from [`POOL_SOURCE`], attackers from
//! other addresses. The mint's per-source limits then see them apart, as
//! they would see a pool and a stranger on two machines.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

/// The address the pool client and the tests' own pools connect from.
pub const POOL_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// An attacker's address: 127.0.0.`n`, `n` from 2.
pub fn attacker_source(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n.max(2)))
}

/// Connects to `addr` from `source` (port chosen by the kernel).
pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}
