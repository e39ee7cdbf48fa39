//! IPv4 subnets: parsing `a.b.c.d/n`, containment, overlap, hosts.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet, kept normalized (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// `None` when `prefix > 32`. Host bits of `addr` are cleared.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn covers(&self, other: &Ipv4Net) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.addr).wrapping_add(n)))
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Addresses a host may use: all but the network and broadcast
    /// addresses (for /31 and /32, every address).
    pub fn is_usable_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && (self.prefix >= 31 || (ip != self.addr && ip != self.broadcast()))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a subnet string is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNetError(pub String);

impl fmt::Display for ParseNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Ipv4Net {
    type Err = ParseNetError;

    /// `a.b.c.d/n`. Host bits set (`10.0.0.5/24`) are refused, as Docker
    /// refuses them, so a typo does not silently become another subnet.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ParseNetError(format!(
                "invalid subnet {s:?}: expected an IPv4 CIDR like 172.28.0.0/16"
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let prefix: u8 = p.trim().parse().map_err(|_| bad())?;
        let net = Ipv4Net::new(addr, prefix).ok_or_else(bad)?;
        if net.addr != addr {
            return Err(ParseNetError(format!(
                "invalid subnet {s:?}: host bits are set (did you mean {net}?)"
            )));
        }
        Ok(net)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let n: Ipv4Net = "172.18.0.0/16".parse().unwrap();
        assert_eq!(n.to_string(), "172.18.0.0/16");
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 18, 255, 255));
        assert_eq!(n.nth(1), Some(Ipv4Addr::new(172, 18, 0, 1)));
        assert_eq!(n.size(), 65536);
        assert!(n.contains(Ipv4Addr::new(172, 18, 3, 4)));
        assert!(!n.contains(Ipv4Addr::new(172, 19, 0, 1)));
    }

    #[test]
    fn refuses_host_bits_and_garbage() {
        let e = "10.0.0.5/24".parse::<Ipv4Net>().unwrap_err();
        assert!(e.0.contains("did you mean 10.0.0.0/24"), "{e}");
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "fd00::/64"] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_and_cover() {
        let a: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let b: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        let c: Ipv4Net = "11.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(a.covers(&b) && !b.covers(&a));
        assert!(!a.overlaps(&c));
        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert!(all.overlaps(&c));
    }

    #[test]
    fn usable_hosts() {
        let n: Ipv4Net = "192.168.0.0/30".parse().unwrap();
        assert!(!n.is_usable_host(Ipv4Addr::new(192, 168, 0, 0)));
        assert!(n.is_usable_host(Ipv4Addr::new(192, 168, 0, 1)));
        assert!(!n.is_usable_host(Ipv4Addr::new(192, 168, 0, 3)));
    }
}
