//! Address management: which subnet a new network gets, and which address
//! a container gets on it. Pure functions over what is already taken; the
//! caller holds the lock and persists the result (`state`).
//!
//! Subnets come from Docker's default pools, in Docker's order:
//! `172.17.0.0/16` … `172.31.0.0/16`, then `192.168.0.0/16` cut into
//! `/20`s. A candidate is skipped when it overlaps another berth network or
//! a route of the host (a LAN or VPN on `172.20.0.0/16` must not be
//! shadowed by a bridge).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::ipv4::Ipv4Net;
use crate::ipv6::Ipv6Net;

/// Docker's default address pools, in the order it tries them.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let big = (17u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let small = (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    big.chain(small)
}

/// What a network asked for in `ipam.config` (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamRequest {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

/// A network's addressing, decided once at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Ipv4Net>,
}

/// Decides a new network's addressing. `networks` are other berth
/// networks' subnets (a requested subnet must not overlap them either);
/// `routes` are the host's routes (only checked for pool subnets, as
/// Docker does: a subnet the user names is taken at their word).
pub fn plan(request: &IpamRequest, networks: &[Ipv4Net], routes: &[Ipv4Net]) -> Result<Addressing> {
    let subnet = match &request.subnet {
        Some(s) => {
            let subnet: Ipv4Net = s.parse().map_err(|e: crate::ipv4::ParseNetError| Error::Invalid(e.0))?;
            if let Some(other) = networks.iter().find(|n| n.overlaps(&subnet)) {
                return Err(Error::Conflict(format!(
                    "subnet {subnet} overlaps {other}, the subnet of another berth network: \
                     choose another ipam subnet"
                )));
            }
            subnet
        }
        None => default_pools()
            .find(|c| {
                !networks.iter().any(|n| n.overlaps(c))
                    && !routes.iter().any(|r| r.prefix() > 0 && r.overlaps(c))
            })
            .ok_or_else(|| {
                Error::Exhausted(
                    "all of Docker's default address pools (172.17-31.0.0/16, 192.168.0.0/16 in /20s) \
                     are used by other networks or host routes: set ipam.config subnet"
                        .to_owned(),
                )
            })?,
    };
    if subnet.prefix() > 30 {
        return Err(Error::Invalid(format!(
            "subnet {subnet} is too small: a bridge network needs at least a /30"
        )));
    }
    let ip_range = match &request.ip_range {
        Some(r) => {
            let range: Ipv4Net = r
                .parse()
                .map_err(|e: crate::ipv4::ParseNetError| Error::Invalid(e.0))?;
            if !subnet.covers(&range) {
                return Err(Error::Invalid(format!(
                    "ip_range {range} is not inside subnet {subnet}"
                )));
            }
            Some(range)
        }
        None => None,
    };
    let gateway = match &request.gateway {
        Some(g) => {
            let gw: Ipv4Addr = g.parse().map_err(|_| {
                Error::Invalid(format!("invalid gateway {g:?}: expected an IPv4 address"))
            })?;
            if !subnet.is_usable_host(gw) {
                return Err(Error::Invalid(format!(
                    "gateway {gw} is not a usable address of subnet {subnet}"
                )));
            }
            gw
        }
        // The first address of the range when there is one, as Docker
        // does; else the subnet's first host.
        None => ip_range
            .and_then(|r| r.nth(1).filter(|a| subnet.is_usable_host(*a)))
            .or_else(|| subnet.nth(1))
            .ok_or_else(|| Error::Invalid(format!("subnet {subnet} has no host address")))?,
    };
    Ok(Addressing {
        subnet,
        gateway,
        ip_range,
    })
}

/// An address for a container on a network with `addressing`, given the
/// addresses `used` by other containers. A `requested` address
/// (`ipv4_address`) must be in the subnet (not necessarily the range, as
/// with Docker) and free.
pub fn allocate(
    addressing: &Addressing,
    used: &BTreeSet<Ipv4Addr>,
    requested: Option<&str>,
) -> Result<Ipv4Addr> {
    let Addressing {
        subnet,
        gateway,
        ip_range,
    } = *addressing;
    if let Some(r) = requested {
        let ip: Ipv4Addr = r
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid ipv4_address {r:?}")))?;
        if !subnet.is_usable_host(ip) {
            return Err(Error::Invalid(format!(
                "ipv4_address {ip} is not a usable address of the network's subnet {subnet}"
            )));
        }
        if ip == gateway {
            return Err(Error::Conflict(format!(
                "ipv4_address {ip} is the network's gateway"
            )));
        }
        if used.contains(&ip) {
            return Err(Error::Conflict(format!(
                "ipv4_address {ip} is already in use by another container"
            )));
        }
        return Ok(ip);
    }
    let pool = ip_range.unwrap_or(subnet);
    (1..pool.size())
        .filter_map(|n| u32::try_from(n).ok().and_then(|n| pool.nth(n)))
        .find(|ip| subnet.is_usable_host(*ip) && *ip != gateway && !used.contains(ip))
        .ok_or_else(|| Error::Exhausted(format!("no free address left in {pool}")))
}

/// Docker's MAC address for a container address: `02:42` and the four
/// address bytes, so a MAC is stable and unique per address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A new network's IPv6 subnet and gateway: the `ipam.config` entry with
/// an IPv6 subnet when there is one (gateway: its own, else the subnet's
/// first address), else a /64 of a random unique local prefix (RFC 4193,
/// `fdXX:XXXX:XXXX::/64`; Docker takes its /64s from one per-host ULA
/// /48 instead, which only changes which random bits are shared). Must
/// not overlap `networks` (other berth networks' IPv6 subnets).
pub fn plan6(
    request: Option<&IpamRequest>,
    networks: &[Ipv6Net],
    random: &dyn Fn() -> Result<[u8; 5]>,
) -> Result<(Ipv6Net, Ipv6Addr)> {
    let subnet = match request.and_then(|r| r.subnet.as_deref()) {
        Some(s) => {
            let subnet: Ipv6Net = s
                .parse()
                .map_err(|e: crate::ipv4::ParseNetError| Error::Invalid(e.0))?;
            if let Some(other) = networks.iter().find(|n| n.overlaps(&subnet)) {
                return Err(Error::Conflict(format!(
                    "subnet {subnet} overlaps {other}, the IPv6 subnet of another berth network: \
                     choose another ipam subnet"
                )));
            }
            if subnet.prefix() > 126 {
                return Err(Error::Invalid(format!(
                    "subnet {subnet} is too small: a bridge network needs at least a /126"
                )));
            }
            subnet
        }
        None => {
            let mut tries = 0;
            loop {
                let candidate = Ipv6Net::random_ula(random()?);
                if !networks.iter().any(|n| n.overlaps(&candidate)) {
                    break candidate;
                }
                tries += 1;
                if tries > 16 {
                    return Err(Error::Exhausted(
                        "no free unique local IPv6 /64: set an IPv6 ipam.config subnet".to_owned(),
                    ));
                }
            }
        }
    };
    let gateway = match request.and_then(|r| r.gateway.as_deref()) {
        Some(g) => {
            let gw: Ipv6Addr = g.parse().map_err(|_| {
                Error::Invalid(format!("invalid gateway {g:?}: expected an IPv6 address"))
            })?;
            if !subnet.is_usable_host(gw) {
                return Err(Error::Invalid(format!(
                    "gateway {gw} is not a usable address of subnet {subnet}"
                )));
            }
            gw
        }
        None => subnet
            .nth(1)
            .ok_or_else(|| Error::Invalid(format!("subnet {subnet} has no host address")))?,
    };
    Ok((subnet, gateway))
}

/// A container's IPv6 address on a network: `requested` (`ipv6_address`)
/// when in the subnet and free, else the lowest free one from the
/// subnet's second address up.
pub fn allocate6(
    subnet: Ipv6Net,
    gateway: Ipv6Addr,
    used: &BTreeSet<Ipv6Addr>,
    requested: Option<&str>,
) -> Result<Ipv6Addr> {
    if let Some(r) = requested {
        let ip: Ipv6Addr = r
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid ipv6_address {r:?}")))?;
        if !subnet.is_usable_host(ip) {
            return Err(Error::Invalid(format!(
                "ipv6_address {ip} is not a usable address of the network's subnet {subnet}"
            )));
        }
        if ip == gateway {
            return Err(Error::Conflict(format!(
                "ipv6_address {ip} is the network's gateway"
            )));
        }
        if used.contains(&ip) {
            return Err(Error::Conflict(format!(
                "ipv6_address {ip} is already in use by another container"
            )));
        }
        return Ok(ip);
    }
    // Bounded: a /64 never fills up, and a /120 has 256 addresses.
    (2u128..65_536)
        .map_while(|n| subnet.nth(n))
        .find(|ip| *ip != gateway && !used.contains(ip))
        .ok_or_else(|| Error::Exhausted(format!("no free IPv6 address left in {subnet}")))
}

/// A `mac_address` as written (`02:42:AC:11:00:02`, or with `-`), in
/// the lower-case colon form. Multicast addresses (low bit of the first
/// octet set) are refused: no interface can have one.
pub fn parse_mac(s: &str) -> Result<String> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    let octets: Option<Vec<u8>> = (parts.len() == 6)
        .then(|| {
            parts
                .iter()
                .map(|p| {
                    (p.len() == 2)
                        .then(|| u8::from_str_radix(p, 16).ok())
                        .flatten()
                })
                .collect()
        })
        .flatten();
    let Some(octets) = octets else {
        return Err(Error::Invalid(format!(
            "invalid mac_address {s:?}: expected six hex octets, like 02:42:ac:11:00:02"
        )));
    };
    if octets[0] & 1 == 1 {
        return Err(Error::Invalid(format!(
            "invalid mac_address {s:?}: a multicast address (the first octet is odd) cannot be an interface's"
        )));
    }
    Ok(octets
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn pools_follow_dockers_order() {
        let pools: Vec<String> = default_pools().map(|p| p.to_string()).collect();
        assert_eq!(pools[0], "172.17.0.0/16");
        assert_eq!(pools[14], "172.31.0.0/16");
        assert_eq!(pools[15], "192.168.0.0/20");
        assert_eq!(pools[16], "192.168.16.0/20");
        assert_eq!(pools.len(), 31);
    }

    #[test]
    fn pool_skips_other_networks_and_host_routes_but_not_the_default_route() {
        let a = plan(
            &IpamRequest::default(),
            &[net("172.17.0.0/16")],
            &[net("0.0.0.0/0"), net("172.18.5.0/24")],
        )
        .unwrap();
        assert_eq!(a.subnet, net("172.19.0.0/16"));
        assert_eq!(a.gateway, Ipv4Addr::new(172, 19, 0, 1));
        assert_eq!(a.ip_range, None);
    }

    #[test]
    fn exhausted_pools_say_what_to_do() {
        let e = plan(
            &IpamRequest::default(),
            &[net("172.16.0.0/12"), net("192.168.0.0/16")],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("set ipam.config subnet"), "{e}");
    }

    #[test]
    fn requested_subnet_gateway_and_range() {
        let req = IpamRequest {
            subnet: Some("10.5.0.0/24".into()),
            gateway: Some("10.5.0.254".into()),
            ip_range: Some("10.5.0.128/25".into()),
        };
        let a = plan(&req, &[], &[net("10.0.0.0/8")]).unwrap();
        assert_eq!(a.subnet, net("10.5.0.0/24"));
        assert_eq!(a.gateway, Ipv4Addr::new(10, 5, 0, 254));
        assert_eq!(a.ip_range, Some(net("10.5.0.128/25")));
        // The first dynamic address comes from the range.
        let ip = allocate(&a, &BTreeSet::new(), None).unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 5, 0, 129));
    }

    #[test]
    fn requested_subnet_must_not_overlap_another_network() {
        let req = IpamRequest {
            subnet: Some("172.18.0.0/24".into()),
            ..Default::default()
        };
        let e = plan(&req, &[net("172.18.0.0/16")], &[]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        let bad_gw = IpamRequest {
            subnet: Some("10.1.0.0/24".into()),
            gateway: Some("10.2.0.1".into()),
            ..Default::default()
        };
        assert_eq!(
            plan(&bad_gw, &[], &[]).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
        let bad_range = IpamRequest {
            subnet: Some("10.1.0.0/24".into()),
            ip_range: Some("10.1.1.0/25".into()),
            ..Default::default()
        };
        assert_eq!(
            plan(&bad_range, &[], &[]).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn allocation_skips_gateway_and_used_addresses() {
        let a = plan(
            &IpamRequest {
                subnet: Some("10.9.0.0/29".into()),
                ..Default::default()
            },
            &[],
            &[],
        )
        .unwrap();
        let mut used = BTreeSet::new();
        let first = allocate(&a, &used, None).unwrap();
        assert_eq!(first, Ipv4Addr::new(10, 9, 0, 2));
        used.insert(first);
        used.insert(Ipv4Addr::new(10, 9, 0, 3));
        assert_eq!(
            allocate(&a, &used, None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 4)
        );
        for ip in 4..=6 {
            used.insert(Ipv4Addr::new(10, 9, 0, ip));
        }
        // .7 is the broadcast address.
        assert_eq!(
            allocate(&a, &used, None).unwrap_err().kind(),
            crate::ErrorKind::Exhausted
        );
    }

    #[test]
    fn requested_addresses_are_checked() {
        let a = plan(
            &IpamRequest {
                subnet: Some("10.9.0.0/24".into()),
                ..Default::default()
            },
            &[],
            &[],
        )
        .unwrap();
        let used = BTreeSet::from([Ipv4Addr::new(10, 9, 0, 7)]);
        assert_eq!(
            allocate(&a, &used, Some("10.9.0.50")).unwrap(),
            Ipv4Addr::new(10, 9, 0, 50)
        );
        assert_eq!(
            allocate(&a, &used, Some("10.9.0.7")).unwrap_err().kind(),
            crate::ErrorKind::Conflict
        );
        assert_eq!(
            allocate(&a, &used, Some("10.9.0.1")).unwrap_err().kind(),
            crate::ErrorKind::Conflict
        );
        assert_eq!(
            allocate(&a, &used, Some("10.8.0.5")).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
        assert_eq!(
            allocate(&a, &used, Some("10.9.0.255")).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn macs_follow_the_address() {
        assert_eq!(
            mac_for(Ipv4Addr::new(172, 18, 0, 2)),
            [2, 0x42, 172, 18, 0, 2]
        );
    }

    #[test]
    fn mac_addresses_are_normalized_and_checked() {
        assert_eq!(parse_mac("02:42:AC:11:00:02").unwrap(), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("92-d0-c6-0a-29-33").unwrap(), "92:d0:c6:0a:29:33");
        for bad in [
            "01:00:5e:00:00:01",
            "02:42:ac:11:00",
            "zz:42:ac:11:00:02",
            "2:42:ac:11:0:2",
        ] {
            let e = parse_mac(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn ipv6_subnets_and_addresses() {
        let no_random = || -> Result<[u8; 5]> { panic!("not asked") };
        let req = IpamRequest {
            subnet: Some("fd12:3456::/64".into()),
            ..Default::default()
        };
        let (subnet, gw) = plan6(Some(&req), &[], &no_random).unwrap();
        assert_eq!(
            (subnet.to_string(), gw.to_string()),
            ("fd12:3456::/64".into(), "fd12:3456::1".into())
        );
        let e = plan6(Some(&req), &["fd12::/16".parse().unwrap()], &no_random).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        // No subnet: a random ULA /64, drawn again on a clash.
        let draws = std::cell::Cell::new(0u8);
        let random = || -> Result<[u8; 5]> {
            draws.set(draws.get() + 1);
            Ok([draws.get(), 0, 0, 0, 0])
        };
        let (subnet, gw) = plan6(None, &["fd01::/16".parse().unwrap()], &random).unwrap();
        assert_eq!(subnet.to_string(), "fd02::/64");
        assert_eq!(gw.to_string(), "fd02::1");
        // Addresses: the lowest free from ::2, or the one asked for.
        let used = BTreeSet::from(["fd02::2".parse().unwrap()]);
        assert_eq!(
            allocate6(subnet, gw, &used, None).unwrap().to_string(),
            "fd02::3"
        );
        assert_eq!(
            allocate6(subnet, gw, &used, Some("fd02::99"))
                .unwrap()
                .to_string(),
            "fd02::99"
        );
        for (bad, kind) in [
            ("fd02::2", crate::ErrorKind::Conflict),
            ("fd02::1", crate::ErrorKind::Conflict),
            ("fd03::5", crate::ErrorKind::InvalidInput),
            ("nope", crate::ErrorKind::InvalidInput),
        ] {
            assert_eq!(
                allocate6(subnet, gw, &used, Some(bad)).unwrap_err().kind(),
                kind,
                "{bad}"
            );
        }
    }
}
