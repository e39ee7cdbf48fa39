//! Who may ask: the server answers only sources on the subnets of the
//! interfaces it listens on (the network's own containers, and the host
//! through its gateway address) and loopback, and ignores everyone else.
//!
//! The gateway address can be reachable from beyond the host (berth turns
//! on IP forwarding for NAT), and a server that forwards queries for
//! anyone is an open resolver, a tool for amplification attacks. dnsmasq's
//! `--local-service` draws the same line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The sources a server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clients {
    /// IPv4 subnets as (network address, mask).
    subnets: Vec<(u32, u32)>,
    /// Listening on a wildcard or an IPv6 address, or the interfaces could
    /// not be read: no restriction.
    anyone: bool,
}

impl Clients {
    /// For a server listening on `listen`, from the host's interfaces.
    pub(crate) fn for_listen(listen: &[SocketAddr]) -> Clients {
        let interfaces: Vec<(Ipv4Addr, Ipv4Addr)> = match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => addrs
                .filter_map(|a| {
                    let ip = a.address?.as_sockaddr_in()?.ip();
                    let mask = a.netmask?.as_sockaddr_in()?.ip();
                    Some((ip, mask))
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the interfaces; answering any source");
                Vec::new()
            }
        };
        let clients = Self::from_interfaces(listen, &interfaces);
        if clients.anyone {
            tracing::info!(?listen, "answering queries from any source");
        }
        clients
    }

    /// For a server listening on `listen`, given the host's IPv4 interface
    /// addresses and their netmasks.
    pub(crate) fn from_interfaces(
        listen: &[SocketAddr],
        interfaces: &[(Ipv4Addr, Ipv4Addr)],
    ) -> Clients {
        let mut clients = Clients {
            subnets: Vec::new(),
            anyone: false,
        };
        for addr in listen {
            let IpAddr::V4(ip) = addr.ip() else {
                clients.anyone = true;
                continue;
            };
            if ip.is_unspecified() {
                clients.anyone = true;
                continue;
            }
            match interfaces.iter().find(|(a, _)| *a == ip) {
                Some((a, mask)) => {
                    let mask = u32::from(*mask);
                    clients.subnets.push((u32::from(*a) & mask, mask));
                }
                None => clients.anyone = true,
            }
        }
        clients
    }

    pub(crate) fn permits(&self, source: IpAddr) -> bool {
        if self.anyone || source.is_loopback() {
            return true;
        }
        let source = match source {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return false,
            },
        };
        let source = u32::from(source);
        self.subnets.iter().any(|(net, mask)| source & mask == *net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_listen_interfaces_subnets_and_loopback_are_answered() {
        let interfaces = [
            (
                "10.89.0.1".parse().unwrap(),
                "255.255.255.0".parse().unwrap(),
            ),
            (
                "192.168.1.20".parse().unwrap(),
                "255.255.255.0".parse().unwrap(),
            ),
            ("127.0.0.1".parse().unwrap(), "255.0.0.0".parse().unwrap()),
        ];
        let c = Clients::from_interfaces(&["10.89.0.1:53".parse().unwrap()], &interfaces);
        assert!(c.permits(ip("10.89.0.7")));
        assert!(c.permits(ip("10.89.0.1")), "the host through the gateway");
        assert!(c.permits(ip("127.0.0.1")));
        assert!(c.permits(ip("::1")));
        assert!(c.permits(ip("::ffff:10.89.0.9")));
        assert!(!c.permits(ip("10.89.1.7")));
        assert!(!c.permits(ip("192.168.1.30")), "the LAN is not the network");
        assert!(!c.permits(ip("203.0.113.5")));
        assert!(!c.permits(ip("fe80::1")));
    }

    #[test]
    fn wildcards_and_unknown_addresses_restrict_nothing() {
        for listen in ["0.0.0.0:53", "[::1]:53", "10.1.2.3:53"] {
            let c = Clients::from_interfaces(&[listen.parse().unwrap()], &[]);
            assert!(c.permits(ip("203.0.113.5")), "{listen}");
        }
    }

    #[test]
    fn this_hosts_loopback_is_found() {
        let c = Clients::for_listen(&["127.0.0.1:53".parse().unwrap()]);
        assert!(c.permits(ip("127.0.0.2")));
        assert!(!c.anyone, "127.0.0.1 is on lo here");
        assert!(!c.permits(ip("203.0.113.5")));
    }
}
