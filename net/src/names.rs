//! The names a network's DNS server answers, written to
//! `networks/<name>/dns.json` whenever a container joins or leaves: for
//! every running container on the network that is in service (not a
//! start-first replacement's standby), its container name, service name and
//! aliases, hostname and short id, to its address (so a service's
//! replicas answer round-robin).
//!
//! The format is the DNS server's (`net/src/dns/records.rs` on the `dns`
//! branch, `version: 1`): this side writes it whole from the endpoints,
//! atomically; the server only reads it. Starting and stopping the server
//! is the [`crate::DnsControl`] the caller plugs in.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{Endpoint, NetworkState};

/// The records file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameRecords {
    pub version: u32,
    /// Where the server listens: the network's gateway, port 53.
    pub listen: Vec<SocketAddr>,
    /// Where other names are forwarded: the host's resolvers.
    #[serde(default)]
    pub upstreams: Vec<SocketAddr>,
    /// By container id.
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerNames>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerNames {
    /// Lower-case, deduplicated, the container's own name first (the one
    /// reverse lookups answer).
    pub names: Vec<String>,
    pub ipv4: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// The state dirs of the container's other networks, whose names its
    /// queries to this server resolve too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_networks: Vec<PathBuf>,
    /// `links`: alias → name, for this container's queries only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
}

/// The host's resolvers from `/etc/resolv.conf` text. Loopback ones are
/// kept: the DNS server runs on the host, where they answer.
pub fn upstreams(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The records of `network` from every endpoint attached to it;
/// `networks_dir` holds every network's state dir.
pub fn records(
    network: &NetworkState,
    endpoints: &[Endpoint],
    upstreams: Vec<SocketAddr>,
    networks_dir: &Path,
) -> NameRecords {
    let mut containers = BTreeMap::new();
    for ep in endpoints.iter().filter(|e| e.running && !e.standby) {
        for a in ep.attachments.iter().filter(|a| a.network == network.name) {
            let mut names: Vec<String> = Vec::new();
            let short: String = ep.container_id.chars().take(12).collect();
            let all = std::iter::once(ep.container_name.as_str())
                .chain(a.aliases.iter().map(String::as_str))
                .chain(ep.hostname.as_deref())
                .chain(std::iter::once(short.as_str()));
            for n in all {
                let n = n.to_ascii_lowercase();
                if !n.is_empty() && !names.contains(&n) {
                    names.push(n);
                }
            }
            let other_networks = ep
                .attachments
                .iter()
                .filter(|o| o.network != network.name)
                .map(|o| networks_dir.join(&o.network))
                .collect();
            containers.insert(
                ep.container_id.clone(),
                ContainerNames {
                    names,
                    ipv4: a.ip,
                    ipv6: a.ip6,
                    other_networks,
                    links: ep.links.clone(),
                },
            );
        }
    }
    NameRecords {
        version: 1,
        listen: vec![SocketAddr::new(network.gateway.into(), 53)],
        upstreams,
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_come_from_resolv_conf() {
        let u = upstreams("# x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch a\n");
        assert_eq!(
            u,
            [
                "127.0.0.53:53".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap()
            ]
        );
    }
}
