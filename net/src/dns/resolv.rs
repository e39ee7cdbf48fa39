//! The host's resolvers, as a new network's upstreams.
//!
//! Loopback resolvers (systemd-resolved's `127.0.0.53`, a local dnsmasq or
//! unbound on `127.0.0.1`, `::1`) are kept. That is the point of running
//! the DNS server on the host: a container cannot reach the host's
//! loopback, which is why Docker rewrites the resolv.conf of containers on
//! its default bridge to leave such resolvers out (and falls back to public
//! ones). A berth container's resolv.conf names only its network's gateway;
//! the server there lives in the host's network namespace and forwards from
//! it, so every resolver the host itself uses works, loopback included, and
//! containers resolve external names exactly as the host does.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::Path;

use super::error::{Error, Result};

/// Where Docker sends queries when the host names no resolver at all.
pub const FALLBACK_UPSTREAMS: [&str; 2] = ["8.8.8.8:53", "8.8.4.4:53"];

/// The resolvers `resolv_conf` (normally `/etc/resolv.conf`) names, in
/// order, on port 53. When it names none (or does not exist) these are
/// Docker's fallbacks, [`FALLBACK_UPSTREAMS`], as `dockerd` does.
pub fn host_upstreams(resolv_conf: &Path) -> Result<Vec<SocketAddr>> {
    let text = match std::fs::read_to_string(resolv_conf) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("read", resolv_conf, e)),
    };
    let found = parse_nameservers(&text);
    if !found.is_empty() {
        return Ok(found);
    }
    tracing::warn!(
        path = %resolv_conf.display(),
        fallback = ?FALLBACK_UPSTREAMS,
        "the host names no DNS resolver; containers' external names go to Docker's fallback resolvers"
    );
    Ok(FALLBACK_UPSTREAMS
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect())
}

/// The `nameserver` lines of a resolv.conf, deduplicated, in order.
/// IPv6 link-local addresses keep their scope (`fe80::1%eth0` becomes the
/// interface's index); lines that do not parse are skipped, as libc does.
pub fn parse_nameservers(text: &str) -> Vec<SocketAddr> {
    let mut found: Vec<SocketAddr> = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next().and_then(parse_address) else {
            continue;
        };
        if !found.contains(&addr) {
            found.push(addr);
        }
    }
    found
}

fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, scope) = match text.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (text, None),
    };
    match (ip.parse::<IpAddr>().ok()?, scope) {
        (IpAddr::V4(v4), None) => Some(SocketAddr::from((v4, 53))),
        (IpAddr::V6(v6), scope) => {
            let scope_id = match scope {
                None => 0,
                Some(s) => match s.parse::<u32>() {
                    Ok(index) => index,
                    Err(_) => nix::net::if_::if_nametoindex(s).ok()?,
                },
            };
            Some(SocketAddr::V6(SocketAddrV6::new(v6, 53, 0, scope_id)))
        }
        (IpAddr::V4(_), Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_in_order_with_loopback_kept() {
        let text = "# generated\nsearch example.com\nnameserver 127.0.0.53 # resolved\n\
                    nameserver\t10.0.0.1\nnameserver 10.0.0.1\noptions ndots:2\n\
                    ; nameserver 10.9.9.9\nnameserver ::1\nnameserver fe80::1%7\n\
                    nameserver fe80::2%lo\nnameserver not-an-ip\nnameserver fe80::3%no-such-if0\n";
        let got: Vec<String> = parse_nameservers(text)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "127.0.0.53:53",
                "10.0.0.1:53",
                "[::1]:53",
                "[fe80::1%7]:53",
                "[fe80::2%1]:53"
            ]
        );
    }

    #[test]
    fn a_host_without_resolvers_gets_dockers_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let missing = host_upstreams(&dir.path().join("resolv.conf")).unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, "search example.com\n").unwrap();
        let empty = host_upstreams(&path).unwrap();
        let want: Vec<SocketAddr> =
            vec!["8.8.8.8:53".parse().unwrap(), "8.8.4.4:53".parse().unwrap()];
        assert_eq!(missing, want);
        assert_eq!(empty, want);
        std::fs::write(&path, "nameserver 192.0.2.1\n").unwrap();
        assert_eq!(
            host_upstreams(&path).unwrap(),
            ["192.0.2.1:53".parse::<SocketAddr>().unwrap()]
        );
    }
}
