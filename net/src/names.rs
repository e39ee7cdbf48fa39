//! The names a network's DNS server answers, written to
//! `networks/<name>/dns.json` whenever a container joins or leaves: for
//! every container on the network, its service name and aliases, its
//! container name and its hostname, each to every address carrying it
//! (so a service's replicas answer round-robin).
//!
//! The server (`net/src/dns/`, a `berth dns` process per network) only
//! reads this file; this side only writes it (atomically).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::state::{Endpoint, NetworkState};

/// The records file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameRecords {
    /// Where the server listens: the network's gateway, port 53.
    pub listen: Vec<String>,
    /// Lower-case names to addresses, sorted.
    pub names: BTreeMap<String, Vec<Ipv4Addr>>,
}

/// The records of `network` from every endpoint attached to it.
pub fn records(network: &NetworkState, endpoints: &[Endpoint]) -> NameRecords {
    let mut names: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    for ep in endpoints {
        for a in ep.attachments.iter().filter(|a| a.network == network.name) {
            let mut own: Vec<&str> = a.aliases.iter().map(String::as_str).collect();
            own.push(&ep.container_name);
            if let Some(h) = &ep.hostname {
                own.push(h);
            }
            own.push(&ep.container_id[..ep.container_id.len().min(12)]);
            for n in own {
                let list = names.entry(n.to_ascii_lowercase()).or_default();
                if !list.contains(&a.ip) {
                    list.push(a.ip);
                }
            }
        }
    }
    for list in names.values_mut() {
        list.sort();
    }
    NameRecords {
        listen: vec![format!("{}:53", network.gateway)],
        names,
    }
}
