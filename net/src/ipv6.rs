//! IPv6 subnets (`fd12:3456::/64`): parsing, containment, overlap, hosts,
//! and the unique local prefix a network gets when `enable_ipv6` names no
//! subnet.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ipv4::ParseNetError;

/// An IPv6 subnet, kept normalized (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Net {
    addr: Ipv6Addr,
    prefix: u8,
}

fn mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

impl Ipv6Net {
    /// `None` when `prefix > 128`. Host bits of `addr` are cleared.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Option<Self> {
        (prefix <= 128).then(|| Ipv6Net {
            addr: Ipv6Addr::from(u128::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv6Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask(self.prefix) == u128::from(self.addr)
    }

    pub fn overlaps(&self, other: &Ipv6Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The `n`th address of the subnet (0 is the subnet-router anycast
    /// address, which no host takes).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        let host_bits = 128 - u32::from(self.prefix);
        let fits = host_bits >= 128 || n < (1u128 << host_bits);
        fits.then(|| Ipv6Addr::from(u128::from(self.addr).wrapping_add(n)))
    }

    /// Addresses a container may take: in the subnet, not the subnet's
    /// own (anycast) address.
    pub fn is_usable_host(&self, ip: Ipv6Addr) -> bool {
        self.contains(ip) && (self.prefix >= 127 || ip != self.addr)
    }

    /// A /64 of a fresh unique local /48 (RFC 4193: `fd` and 40 random
    /// bits), what a network with `enable_ipv6` and no subnet gets: no
    /// registry, no clash with anyone's global prefix, and two hosts'
    /// networks collide with odds of one in 2^40.
    pub fn random_ula(random: [u8; 5]) -> Ipv6Net {
        let mut octets = [0u8; 16];
        octets[0] = 0xfd;
        octets[1..6].copy_from_slice(&random);
        Ipv6Net {
            addr: Ipv6Addr::from(octets),
            prefix: 64,
        }
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv6Net {
    type Err = ParseNetError;

    /// `addr/n`; host bits set are refused, as for IPv4.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ParseNetError(format!(
                "invalid subnet {s:?}: expected an IPv6 CIDR like fd12:3456:789a::/64"
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.trim().parse().map_err(|_| bad())?;
        let prefix: u8 = p.trim().parse().map_err(|_| bad())?;
        let net = Ipv6Net::new(addr, prefix).ok_or_else(bad)?;
        if net.addr != addr {
            return Err(ParseNetError(format!(
                "invalid subnet {s:?}: host bits are set (did you mean {net}?)"
            )));
        }
        Ok(net)
    }
}

impl Serialize for Ipv6Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_contains() {
        let n: Ipv6Net = "fd12:3456::/64".parse().unwrap();
        assert_eq!(n.to_string(), "fd12:3456::/64");
        assert_eq!(n.nth(1), Some("fd12:3456::1".parse().unwrap()));
        assert!(n.contains("fd12:3456::ffff:1".parse().unwrap()));
        assert!(!n.contains("fd12:3457::1".parse().unwrap()));
        assert!(!n.is_usable_host(n.network()));
        let small: Ipv6Net = "fd00::/126".parse().unwrap();
        assert_eq!(small.nth(3), Some("fd00::3".parse().unwrap()));
        assert_eq!(small.nth(4), None);
        let e = "fd12::5/64".parse::<Ipv6Net>().unwrap_err();
        assert!(e.0.contains("did you mean fd12::/64"), "{e}");
        for bad in ["fd00::", "fd00::/129", "10.0.0.0/8"] {
            assert!(bad.parse::<Ipv6Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_and_ula() {
        let a: Ipv6Net = "fd00::/8".parse().unwrap();
        let b: Ipv6Net = "fd12:3456::/64".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        let u = Ipv6Net::random_ula([0x12, 0x34, 0x56, 0x78, 0x9a]);
        assert_eq!(u.to_string(), "fd12:3456:789a::/64");
        assert!(a.overlaps(&u));
    }
}
