//! Who a connection comes from, for the per-source limits.

use std::fmt;
use std::net::IpAddr;

/// The source a per-source limit counts: an IPv4 address, or the /64
/// network of an IPv6 address (one host usually holds a whole /64, so
/// counting single IPv6 addresses would not limit anyone). An IPv4 address
/// mapped into IPv6 counts as that IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// One IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Source::V6(prefix)
                }
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::V4(o) => write!(f, "{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
            Source::V6(p) => {
                for pair in p.chunks(2) {
                    write!(f, "{:x}:", u16::from_be_bytes([pair[0], pair[1]]))?;
                }
                f.write_str(":/64")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_of_one_64_are_one_source() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::from(a), Source::from(b));
        assert_ne!(Source::from(a), Source::from(c));
        assert_eq!(Source::from(a).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn a_mapped_ipv4_address_is_that_address() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        let plain: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(Source::from(mapped), Source::from(plain));
        assert_eq!(Source::from(plain).to_string(), "10.1.2.3");
    }
}
