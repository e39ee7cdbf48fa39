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
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

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
    /// `0.0.0.0` for every address of the host.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Proto,
}

impl PublishedPort {
    /// Whether the two would catch the same packets.
    pub fn clashes(&self, other: &PublishedPort) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
    }
}

impl fmt::Display for PublishedPort {
    /// Docker's `ps` form: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip,
            self.host_port,
            self.container_port,
            self.protocol.as_str()
        )
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
    fn check(&self, ip: Ipv4Addr, port: u16, proto: Proto) -> std::result::Result<(), String>;
    /// Where ephemeral ports come from (`ip_local_port_range`).
    fn ephemeral_range(&self) -> (u16, u16);
}

/// The real host: bind once, read `/proc/sys/net/ipv4/ip_local_port_range`.
pub struct BindCheck;

impl HostPorts for BindCheck {
    fn check(&self, ip: Ipv4Addr, port: u16, proto: Proto) -> std::result::Result<(), String> {
        let r = match proto {
            Proto::Tcp => TcpListener::bind((ip, port)).map(drop),
            Proto::Udp => UdpSocket::bind((ip, port)).map(drop),
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

fn parse_host_ip(raw: Option<&str>) -> Result<Ipv4Addr> {
    match raw.map(str::trim) {
        None | Some("") => Ok(Ipv4Addr::UNSPECIFIED),
        Some(s) => match s.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => Ok(ip),
            Ok(std::net::IpAddr::V6(_)) => Err(Error::Invalid(format!(
                "cannot publish on {s}: berth publishes IPv4 ports only"
            ))),
            Err(_) => Err(Error::Invalid(format!("invalid host_ip {s:?}"))),
        },
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
/// `host` reports busy. Every port asked by number must be free: the
/// error names what holds it.
pub fn resolve(
    who: &str,
    requests: &[PortRequest],
    taken: &[Taken],
    host: &dyn HostPorts,
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
        let host_ip = parse_host_ip(r.host_ip.as_deref())?;
        let candidate = |port: u16| PublishedPort {
            host_ip,
            host_port: port,
            container_port,
            protocol,
        };
        let busy = |p: &PublishedPort| -> Option<String> {
            if let Some(t) = taken.iter().find(|t| t.port.clashes(p)) {
                return Some(format!("container {} publishes it", t.owner));
            }
            host.check(p.host_ip, p.host_port, p.protocol).err()
        };
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
        taken.push(Taken {
            port,
            owner: who.to_owned(),
        });
        out.push(port);
    }
    Ok(out)
}

/// The ports of a container about to start again, whose ports were
/// released when it stopped (as Docker releases them): each one it had is
/// kept when still free; one taken meanwhile is an error when the request
/// named that port, and is chosen again from its range (or the ephemeral
/// ports) otherwise. `requests` pair with `previous` one to one (as
/// [`resolve`] made them); without requests (endpoints recorded before
/// they were kept), every previous port counts as fixed.
pub fn rebind(
    who: &str,
    requests: &[PortRequest],
    previous: &[PublishedPort],
    taken: &[Taken],
    host: &dyn HostPorts,
) -> Result<Vec<PublishedPort>> {
    let paired = requests.len() == previous.len();
    let mut taken: Vec<Taken> = taken.to_vec();
    let mut out = Vec::with_capacity(previous.len());
    for (i, prev) in previous.iter().enumerate() {
        let why = taken
            .iter()
            .find(|t| t.port.clashes(prev))
            .map(|t| format!("container {} publishes it", t.owner))
            .or_else(|| {
                host.check(prev.host_ip, prev.host_port, prev.protocol)
                    .err()
            });
        let port = match (why, paired.then(|| &requests[i])) {
            (None, _) => *prev,
            (Some(why), None) => return Err(conflict(who, prev, &why)),
            (Some(why), Some(r)) if r.is_fixed() => return Err(conflict(who, prev, &why)),
            (Some(_), Some(r)) => {
                let again = resolve(who, std::slice::from_ref(r), &taken, host)?;
                again
                    .first()
                    .copied()
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
        p.host_ip,
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
        fn check(&self, _: Ipv4Addr, port: u16, _: Proto) -> std::result::Result<(), String> {
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
                host_ip: Ipv4Addr::new(127, 0, 0, 1),
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
            .check(Ipv4Addr::LOCALHOST, port, Proto::Tcp)
            .unwrap_err();
        assert_eq!(e, "another process on the host is using it");
        drop(l);
        BindCheck
            .check(Ipv4Addr::LOCALHOST, port, Proto::Tcp)
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
        let e = rebind("w", &[], &before, &[], &host(&[40000])).unwrap_err();
        assert!(e.to_string().contains("0.0.0.0:40000/tcp"), "{e}");
    }
}
