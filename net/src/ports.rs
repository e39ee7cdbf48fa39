//! Published ports: the compose requests (`8080:80`, `127.0.0.1::53/udp`,
//! `8000-8010:80`, ephemeral) resolved to concrete host ports.
//!
//! Ports are published by kernel DNAT (`nft`), so nothing listens on the
//! host port: whether a port is free is decided here, against the other
//! containers' published ports and by binding the port once (a process
//! listening on it makes the bind fail, and that is reported by name).
//! Nothing holds the port afterwards: a process that binds it later gets
//! its socket, but the DNAT rule takes the traffic (as with Docker's
//! `userland-proxy: false`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(Error::Invalid(format!(
                "cannot publish {other} ports: berth publishes tcp and udp"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One `ports:` entry as the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRequest {
    #[serde(default)]
    pub host_ip: Option<String>,
    /// A port, a range (`8000-8010`), or `None`/`0` for any free port.
    #[serde(default)]
    pub host_port: Option<String>,
    pub container_port: u32,
    #[serde(default)]
    pub protocol: String,
}

impl PortRequest {
    /// Whether the request names one host port (no range, not ephemeral):
    /// such a port cannot move elsewhere when it is taken.
    fn is_fixed(&self) -> bool {
        self.host_port
            .as_deref()
            .map(str::trim)
            .is_some_and(|s| !s.is_empty() && s != "0" && !s.contains('-'))
    }
}

/// A published port, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPort {
    /// `0.0.0.0` for every IPv4 address of the host, `::` for every IPv6
    /// one.
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Proto,
}

impl PublishedPort {
    /// Whether the two would catch the same packets.
    pub fn clashes(&self, other: &PublishedPort) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && self.host_ip.is_ipv4() == other.host_ip.is_ipv4()
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
    }
}

impl fmt::Display for PublishedPort {
    /// Docker's `ps` form: `0.0.0.0:8080->80/tcp`, `[::]:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            bracketed(self.host_ip),
            self.host_port,
            self.container_port,
            self.protocol.as_str()
        )
    }
}

/// An address as it goes before `:port`: IPv6 in brackets.
pub fn bracketed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// A port another container publishes, with its owner for messages.
#[derive(Debug, Clone)]
pub struct Taken {
    pub port: PublishedPort,
    pub owner: String,
}

/// How a candidate host port is checked against the host itself.
pub trait HostPorts {
    /// `Err(reason)` when something on the host holds `ip:port/proto`.
    fn check(&self, ip: IpAddr, port: u16, proto: Proto) -> std::result::Result<(), String>;
    /// Where ephemeral ports come from (`ip_local_port_range`).
    fn ephemeral_range(&self) -> (u16, u16);
}

/// The real host: bind once, read `/proc/sys/net/ipv4/ip_local_port_range`.
pub struct BindCheck;

impl HostPorts for BindCheck {
    fn check(&self, ip: IpAddr, port: u16, proto: Proto) -> std::result::Result<(), String> {
        let r = match (ip, proto) {
            (IpAddr::V4(_), Proto::Tcp) => TcpListener::bind((ip, port)).map(drop),
            (IpAddr::V4(_), Proto::Udp) => UdpSocket::bind((ip, port)).map(drop),
            (IpAddr::V6(v6), _) => bind_v6_only(v6, port, proto),
        };
        r.map_err(|e| match e.raw_os_error() {
            Some(libc::EADDRINUSE) => "another process on the host is using it".to_owned(),
            Some(libc::EADDRNOTAVAIL) => format!("{ip} is not an address of this host"),
            _ => e.to_string(),
        })
    }

    fn ephemeral_range(&self) -> (u16, u16) {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
                Some((it.next()??, it.next()??))
            })
            .unwrap_or((32768, 60999))
    }
}

/// Binds `[ip]:port` for IPv6 alone (`IPV6_V6ONLY`), so an IPv4 listener
/// on the same port does not count against it.
fn bind_v6_only(ip: Ipv6Addr, port: u16, proto: Proto) -> std::io::Result<()> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn6, bind, setsockopt, socket, sockopt,
    };
    let kind = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet6, kind, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    let addr = SockaddrIn6::from(std::net::SocketAddrV6::new(ip, port, 0, 0));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    Ok(())
}

/// The host address of a request; IPv6 ones only where the container has
/// an IPv6 address to lead them to (`v6`).
fn parse_host_ip(raw: Option<&str>, v6: bool) -> Result<Option<IpAddr>> {
    let s = match raw.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(s) => s,
    };
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V4(_)) => Ok(Some(ip)),
        Ok(IpAddr::V6(ip)) if ip.is_loopback() => Err(Error::Invalid(format!(
            "cannot publish on [{ip}]: Linux does not forward IPv6 loopback traffic to another \
             interface, and berth publishes by NAT with no userland proxy; publish on [::] or \
             127.0.0.1"
        ))),
        Ok(ip @ IpAddr::V6(_)) if v6 => Ok(Some(ip)),
        Ok(IpAddr::V6(ip)) => Err(Error::Invalid(format!(
            "cannot publish on [{ip}]: the container's network has no IPv6 (set enable_ipv6: \
             true on it)"
        ))),
        Err(_) => Err(Error::Invalid(format!("invalid host_ip {s:?}"))),
    }
}

fn parse_range(raw: &str) -> Result<(u16, u16)> {
    let bad = || Error::Invalid(format!("invalid published port {raw:?}"));
    let (a, b) = raw.split_once('-').unwrap_or((raw, raw));
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Resolves `requests` for container `who`, avoiding `taken` and whatever
/// `host` reports busy, for a container with IPv4 only. Every port asked by
/// number must be free: the error names what holds it.
pub fn resolve(
    who: &str,
    requests: &[PortRequest],
    taken: &[Taken],
    host: &dyn HostPorts,
) -> Result<Vec<PublishedPort>> {
    resolve_for(who, requests, taken, host, false)
}

/// [`resolve`] for a container that also has an IPv6 address (`v6`): a
/// port with no host address is published on `0.0.0.0` and `[::]`, the
/// same host port on both (as Docker does), and IPv6 host addresses are
/// allowed.
pub fn resolve_for(
    who: &str,
    requests: &[PortRequest],
    taken: &[Taken],
    host: &dyn HostPorts,
    v6: bool,
) -> Result<Vec<PublishedPort>> {
    let mut taken: Vec<Taken> = taken.to_vec();
    let mut out = Vec::new();
    for r in requests {
        let protocol = Proto::parse(&r.protocol)?;
        let container_port = u16::try_from(r.container_port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Error::Invalid(format!("invalid container port {}", r.container_port))
            })?;
        let asked = parse_host_ip(r.host_ip.as_deref(), v6)?;
        let host_ip = asked.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // No address given on an IPv6 network: `[::]` too.
        let twin = (asked.is_none() && v6).then_some(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        let candidate = |port: u16| PublishedPort {
            host_ip,
            host_port: port,
            container_port,
            protocol,
        };
        let busy_one = |p: &PublishedPort| -> Option<String> {
            if let Some(t) = taken.iter().find(|t| t.port.clashes(p)) {
                return Some(format!("container {} publishes it", t.owner));
            }
            host.check(p.host_ip, p.host_port, p.protocol).err()
        };
        let busy = |p: &PublishedPort| -> Option<String> {
            busy_one(p)
                .or_else(|| twin.and_then(|ip| busy_one(&PublishedPort { host_ip: ip, ..*p })))
        };
        let host_ip = bracketed(host_ip);
        let spec = r
            .host_port
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "0");
        let port = match spec {
            Some(s) => {
                let (lo, hi) = parse_range(s)?;
                if lo == 0 {
                    return Err(Error::Invalid(format!("invalid published port {s:?}")));
                }
                if lo == hi {
                    let p = candidate(lo);
                    if let Some(why) = busy(&p) {
                        return Err(Error::Conflict(format!(
                            "cannot publish port {host_ip}:{lo}/{} for {who}: {why}",
                            protocol.as_str()
                        )));
                    }
                    p
                } else {
                    (lo..=hi).map(candidate).find(|p| busy(p).is_none()).ok_or_else(|| {
                        Error::Conflict(format!(
                            "cannot publish a port of {host_ip}:{lo}-{hi}/{} for {who}: every port of the range is in use",
                            protocol.as_str()
                        ))
                    })?
                }
            }
            None => {
                let (lo, hi) = host.ephemeral_range();
                (lo..=hi)
                    .map(candidate)
                    .find(|p| busy(p).is_none())
                    .ok_or_else(|| {
                        Error::Exhausted(format!("no free ephemeral host port for {who}"))
                    })?
            }
        };
        let twin = twin.map(|ip| PublishedPort {
            host_ip: ip,
            ..port
        });
        for p in std::iter::once(port).chain(twin) {
            taken.push(Taken {
                port: p,
                owner: who.to_owned(),
            });
            out.push(p);
        }
    }
    Ok(out)
}

/// The ports of a container about to start again, whose ports were
/// released when it stopped (as Docker releases them): each one it had is
/// kept when still free; one taken meanwhile is an error when the request
/// named that port, and is chosen again from its range (or the ephemeral
/// ports) otherwise. Each previous port goes back to the request that
/// made it (same container port and protocol, a host address that fits);
/// without one (endpoints recorded before requests were kept), it counts
/// as fixed.
pub fn rebind(
    who: &str,
    requests: &[PortRequest],
    previous: &[PublishedPort],
    taken: &[Taken],
    host: &dyn HostPorts,
) -> Result<Vec<PublishedPort>> {
    let mut taken: Vec<Taken> = taken.to_vec();
    let mut out = Vec::with_capacity(previous.len());
    for prev in previous {
        let request = requests.iter().find(|r| {
            u16::try_from(r.container_port).ok() == Some(prev.container_port)
                && Proto::parse(&r.protocol).ok() == Some(prev.protocol)
                && match parse_host_ip(r.host_ip.as_deref(), true) {
                    Ok(Some(ip)) => ip == prev.host_ip,
                    Ok(None) => prev.host_ip.is_unspecified(),
                    Err(_) => false,
                }
        });
        let why = taken
            .iter()
            .find(|t| t.port.clashes(prev))
            .map(|t| format!("container {} publishes it", t.owner))
            .or_else(|| {
                host.check(prev.host_ip, prev.host_port, prev.protocol)
                    .err()
            });
        let port = match (why, request) {
            (None, _) => *prev,
            (Some(why), None) => return Err(conflict(who, prev, &why)),
            (Some(why), Some(r)) if r.is_fixed() => return Err(conflict(who, prev, &why)),
            (Some(_), Some(r)) => {
                let v6 = prev.host_ip.is_ipv6();
                let again = resolve_for(who, std::slice::from_ref(r), &taken, host, v6)?;
                again
                    .into_iter()
                    .find(|p| p.host_ip.is_ipv6() == v6)
                    .ok_or_else(|| Error::Exhausted(format!("no free host port for {who}")))?
            }
        };
        taken.push(Taken {
            port,
            owner: who.to_owned(),
        });
        out.push(port);
    }
    Ok(out)
}

fn conflict(who: &str, p: &PublishedPort, why: &str) -> Error {
    Error::Conflict(format!(
        "cannot publish port {}:{}/{} for {who}: {why}",
        bracketed(p.host_ip),
        p.host_port,
        p.protocol.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    struct FakeHost {
        busy: BTreeSet<u16>,
    }

    impl HostPorts for FakeHost {
        fn check(&self, _: IpAddr, port: u16, _: Proto) -> std::result::Result<(), String> {
            if self.busy.contains(&port) {
                Err("another process on the host is using it".into())
            } else {
                Ok(())
            }
        }
        fn ephemeral_range(&self) -> (u16, u16) {
            (40000, 40003)
        }
    }

    fn req(ip: Option<&str>, host: Option<&str>, c: u32, proto: &str) -> PortRequest {
        PortRequest {
            host_ip: ip.map(Into::into),
            host_port: host.map(Into::into),
            container_port: c,
            protocol: proto.into(),
        }
    }

    fn host(busy: &[u16]) -> FakeHost {
        FakeHost {
            busy: busy.iter().copied().collect(),
        }
    }

    #[test]
    fn fixed_ports_ranges_and_ephemeral() {
        let got = resolve(
            "web",
            &[
                req(None, Some("8080"), 80, "tcp"),
                req(Some("127.0.0.1"), Some("5353"), 53, "udp"),
                req(None, Some("9000-9005"), 90, "tcp"),
                req(None, None, 22, "tcp"),
                req(None, Some("0"), 23, "tcp"),
            ],
            &[],
            &host(&[9000, 40000]),
        )
        .unwrap();
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "0.0.0.0:8080->80/tcp",
                "127.0.0.1:5353->53/udp",
                "0.0.0.0:9001->90/tcp",
                "0.0.0.0:40001->22/tcp",
                "0.0.0.0:40002->23/tcp",
            ]
        );
    }

    #[test]
    fn a_taken_port_names_its_holder() {
        let other = Taken {
            port: PublishedPort {
                host_ip: IpAddr::from([127, 0, 0, 1]),
                host_port: 8080,
                container_port: 80,
                protocol: Proto::Tcp,
            },
            owner: "p-db-1".into(),
        };
        let e = resolve(
            "p-web-1",
            &[req(None, Some("8080"), 80, "tcp")],
            std::slice::from_ref(&other),
            &host(&[]),
        )
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "cannot publish port 0.0.0.0:8080/tcp for p-web-1: container p-db-1 publishes it"
        );
        // Another address or protocol does not clash.
        resolve(
            "w",
            &[req(Some("127.0.0.2"), Some("8080"), 80, "tcp")],
            std::slice::from_ref(&other),
            &host(&[]),
        )
        .unwrap();
        resolve(
            "w",
            &[req(None, Some("8080"), 80, "udp")],
            &[other],
            &host(&[]),
        )
        .unwrap();
        let e = resolve("w", &[req(None, Some("22"), 22, "tcp")], &[], &host(&[22])).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("another process on the host is using it"),
            "{e}"
        );
    }

    #[test]
    fn the_same_request_twice_clashes_with_itself() {
        let e = resolve(
            "w",
            &[
                req(None, Some("80"), 80, "tcp"),
                req(None, Some("80"), 81, "tcp"),
            ],
            &[],
            &host(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("container w publishes it"), "{e}");
    }

    #[test]
    fn unsupported_requests_are_refused() {
        for r in [
            req(Some("::1"), Some("80"), 80, "tcp"),
            req(Some("[::]"), Some("80"), 80, "tcp"),
            req(None, Some("80"), 80, "sctp"),
            req(None, Some("x"), 80, "tcp"),
            req(None, Some("90-80"), 80, "tcp"),
            req(None, Some("80"), 0, "tcp"),
        ] {
            let e = resolve("w", std::slice::from_ref(&r), &[], &host(&[])).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{r:?}: {e}");
        }
    }

    #[test]
    fn the_real_bind_check_sees_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = BindCheck
            .check(Ipv4Addr::LOCALHOST.into(), port, Proto::Tcp)
            .unwrap_err();
        assert_eq!(e, "another process on the host is using it");
        drop(l);
        BindCheck
            .check(Ipv4Addr::LOCALHOST.into(), port, Proto::Tcp)
            .unwrap();
    }

    #[test]
    fn a_restarted_container_keeps_free_ports_and_moves_only_ephemeral_ones() {
        let requests = [
            req(None, Some("8080"), 80, "tcp"),
            req(None, None, 22, "tcp"),
            req(None, Some("9000-9002"), 90, "tcp"),
        ];
        let before = resolve("w", &requests, &[], &host(&[])).unwrap();
        // Nothing changed: the same ports.
        assert_eq!(
            rebind("w", &requests, &before, &[], &host(&[])).unwrap(),
            before
        );
        // The ephemeral and the range port were taken meanwhile: moved.
        let after = rebind("w", &requests, &before, &[], &host(&[40000, 9000])).unwrap();
        let shown: Vec<String> = after.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "0.0.0.0:8080->80/tcp",
                "0.0.0.0:40001->22/tcp",
                "0.0.0.0:9001->90/tcp"
            ]
        );
        // The fixed one was taken by another container: an error naming it.
        let other = Taken {
            port: before[0],
            owner: "q-web-1".into(),
        };
        let e = rebind("w", &requests, &before, &[other], &host(&[])).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "cannot publish port 0.0.0.0:8080/tcp for w: container q-web-1 publishes it"
        );
        // Without the requests, every port is fixed.
        let requests: &[PortRequest] = &[];
        let e = rebind("w", requests, &before, &[], &host(&[40000])).unwrap_err();
        assert!(e.to_string().contains("0.0.0.0:40000/tcp"), "{e}");
    }

    #[test]
    fn ipv6_networks_publish_on_both_families() {
        let got = resolve_for(
            "w",
            &[
                req(None, Some("8080"), 80, "tcp"),
                req(Some("[::]"), Some("8081"), 81, "tcp"),
                req(Some("fd00::1"), None, 82, "udp"),
                req(Some("127.0.0.1"), Some("8083"), 83, "tcp"),
            ],
            &[],
            &host(&[]),
            true,
        )
        .unwrap();
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "0.0.0.0:8080->80/tcp",
                "[::]:8080->80/tcp",
                "[::]:8081->81/tcp",
                "[fd00::1]:40000->82/udp",
                "127.0.0.1:8083->83/tcp",
            ]
        );
        // The families do not clash with each other.
        let v4_only = Taken {
            port: got[0],
            owner: "other".into(),
        };
        resolve_for(
            "x",
            &[req(Some("::"), Some("8080"), 80, "tcp")],
            std::slice::from_ref(&v4_only),
            &host(&[]),
            true,
        )
        .unwrap();
        let e = resolve_for(
            "x",
            &[req(None, Some("8080"), 80, "tcp")],
            &[v4_only],
            &host(&[]),
            true,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("container other publishes it"),
            "{e}"
        );
        // IPv6 loopback cannot be NATed: refused, saying what to do.
        let e = resolve_for(
            "w",
            &[req(Some("::1"), Some("80"), 80, "tcp")],
            &[],
            &host(&[]),
            true,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("publish on [::] or 127.0.0.1"),
            "{e}"
        );
        // A restart keeps both, and a conflict message brackets IPv6.
        let requests = [req(None, Some("8080"), 80, "tcp")];
        let both = resolve_for("w", &requests, &[], &host(&[]), true).unwrap();
        assert_eq!(
            rebind("w", &requests, &both, &[], &host(&[])).unwrap(),
            both
        );
        let holder = Taken {
            port: both[1],
            owner: "v6".into(),
        };
        let e = rebind("w", &requests, &both, &[holder], &host(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot publish port [::]:8080/tcp for w: container v6 publishes it"
        );
    }
}
