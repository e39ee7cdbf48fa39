//! The records as the server looks them up: name → addresses, address →
//! name, and the round-robin position of each name.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use super::records::DnsRecords;

/// What a query name is to this network.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// One of its names (the key into [`Zone::rotated`]).
    Name(String),
    /// The search domain itself: exists, holds no address.
    Domain,
    /// Under the search domain but unknown: does not exist.
    Unknown,
    /// Not this network's to answer: forward it.
    Foreign,
}

/// The lookup tables built from one version of the records file.
#[derive(Debug, Default)]
pub(crate) struct Zone {
    names: HashMap<String, Vec<Ipv4Addr>>,
    /// The IPv6 addresses of the names that have any.
    names6: HashMap<String, Vec<Ipv6Addr>>,
    reverse: HashMap<Ipv4Addr, String>,
    reverse6: HashMap<Ipv6Addr, String>,
    domain: Option<String>,
    upstreams: Vec<SocketAddr>,
    /// Per client address, the other networks whose names it resolves.
    other_networks: HashMap<Ipv4Addr, Vec<PathBuf>>,
    /// Per client address, its `links`: alias → name.
    links: HashMap<Ipv4Addr, HashMap<String, String>>,
    /// Per name, how far the next answer's order is rotated.
    turn: HashMap<String, usize>,
}

impl Zone {
    pub(crate) fn new(records: &DnsRecords) -> Zone {
        let mut names: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        let mut reverse: HashMap<Ipv4Addr, String> = HashMap::new();
        let mut names6: HashMap<String, Vec<Ipv6Addr>> = HashMap::new();
        let mut reverse6: HashMap<Ipv6Addr, String> = HashMap::new();
        let mut other_networks: HashMap<Ipv4Addr, Vec<PathBuf>> = HashMap::new();
        let mut links: HashMap<Ipv4Addr, HashMap<String, String>> = HashMap::new();
        for container in records.containers().values() {
            if !container.links.is_empty() {
                links
                    .entry(container.ipv4)
                    .or_default()
                    .extend(container.links.iter().map(|(a, n)| (a.clone(), n.clone())));
            }
            if !container.other_networks.is_empty() {
                other_networks
                    .entry(container.ipv4)
                    .or_default()
                    .extend(container.other_networks.iter().cloned());
            }
            for name in &container.names {
                names.entry(name.clone()).or_default().push(container.ipv4);
                if let Some(v6) = container.ipv6 {
                    names6.entry(name.clone()).or_default().push(v6);
                }
            }
            if let Some(own) = container.names.first() {
                let target = match records.domain() {
                    Some(domain) => format!("{own}.{domain}"),
                    None => own.clone(),
                };
                if let Some(v6) = container.ipv6 {
                    reverse6.entry(v6).or_insert(target.clone());
                }
                reverse.entry(container.ipv4).or_insert(target);
            }
        }
        for addrs in names.values_mut() {
            addrs.sort();
            addrs.dedup();
        }
        for addrs in names6.values_mut() {
            addrs.sort();
            addrs.dedup();
        }
        // Forwarding to ourselves would loop until every query times out.
        let upstreams = records
            .upstreams()
            .iter()
            .filter(|u| !records.listen().contains(u))
            .copied()
            .collect();
        Zone {
            names,
            names6,
            reverse,
            reverse6,
            domain: records.domain().map(str::to_owned),
            upstreams,
            other_networks,
            links,
            turn: HashMap::new(),
        }
    }

    pub(crate) fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The state dirs of the other networks whose names `client` (a
    /// container's address on this network) resolves.
    pub(crate) fn other_networks(&self, client: Ipv4Addr) -> &[PathBuf] {
        self.other_networks.get(&client).map_or(&[], Vec::as_slice)
    }

    /// The name a `links` alias of `client` stands for: `name` is the
    /// alias, bare or under the search domain.
    pub(crate) fn link(&self, client: Ipv4Addr, name: &str) -> Option<&str> {
        let links = self.links.get(&client)?;
        let bare = match &self.domain {
            Some(d) => name
                .strip_suffix(d.as_str())
                .and_then(|r| r.strip_suffix('.'))
                .unwrap_or(name),
            None => name,
        };
        links.get(bare).map(String::as_str)
    }

    /// Every other network named by any container here.
    pub(crate) fn all_other_networks(&self) -> impl Iterator<Item = &PathBuf> {
        self.other_networks.values().flatten()
    }

    /// Classifies a query name, given lower-case without the trailing dot.
    pub(crate) fn classify(&self, name: &str) -> Match {
        if self.names.contains_key(name) {
            return Match::Name(name.to_owned());
        }
        let Some(domain) = &self.domain else {
            return Match::Foreign;
        };
        if name == domain {
            return Match::Domain;
        }
        match name
            .strip_suffix(domain.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
        {
            Some(short) if self.names.contains_key(short) => Match::Name(short.to_owned()),
            Some(_) => Match::Unknown,
            None => Match::Foreign,
        }
    }

    /// Every address of `name` (a [`Match::Name`] key), rotated one step
    /// further than the previous answer for that name, so clients that take
    /// the first address spread over the replicas.
    pub(crate) fn rotated(&mut self, name: &str) -> Vec<Ipv4Addr> {
        let Some(addrs) = self.names.get(name) else {
            return Vec::new();
        };
        let turn = self.turn.entry(name.to_owned()).or_insert(0);
        let start = *turn % addrs.len().max(1);
        *turn = turn.wrapping_add(1);
        let mut out = Vec::with_capacity(addrs.len());
        out.extend_from_slice(&addrs[start..]);
        out.extend_from_slice(&addrs[..start]);
        out
    }

    /// The IPv6 addresses of `name`, rotated like [`Zone::rotated`] (on
    /// a turn of their own).
    pub(crate) fn rotated6(&mut self, name: &str) -> Vec<Ipv6Addr> {
        let Some(addrs) = self.names6.get(name) else {
            return Vec::new();
        };
        let turn = self.turn.entry(format!("{name} aaaa")).or_insert(0);
        let start = *turn % addrs.len().max(1);
        *turn = turn.wrapping_add(1);
        let mut out = Vec::with_capacity(addrs.len());
        out.extend_from_slice(&addrs[start..]);
        out.extend_from_slice(&addrs[..start]);
        out
    }

    /// The name a container's address maps back to, for a PTR query name
    /// (`4.3.2.1.in-addr.arpa`, or the 32 nibbles of `ip6.arpa`, lower
    /// case, no trailing dot).
    pub(crate) fn reverse(&self, name: &str) -> Option<&str> {
        if let Some(ip) = parse_reverse_v6(name) {
            return self.reverse6.get(&ip).map(String::as_str);
        }
        let ip = parse_reverse_v4(name)?;
        self.reverse.get(&ip).map(String::as_str)
    }
}

/// `b.a.9.8. ... .ip6.arpa` (32 nibbles, least significant first) → the
/// address; anything else → None.
fn parse_reverse_v6(name: &str) -> Option<Ipv6Addr> {
    let labels = name.strip_suffix(".ip6.arpa")?;
    let mut value: u128 = 0;
    let mut count = 0;
    for (i, label) in labels.split('.').enumerate() {
        let [c] = label.as_bytes() else {
            return None;
        };
        let nibble = (*c as char).to_digit(16)?;
        value |= u128::from(nibble) << (4 * i);
        count += 1;
    }
    (count == 32).then(|| Ipv6Addr::from(value))
}

/// `d.c.b.a.in-addr.arpa` → `a.b.c.d`; anything else (a partial name, a
/// label that is not a decimal byte) → None.
fn parse_reverse_v4(name: &str) -> Option<Ipv4Addr> {
    let labels = name.strip_suffix(".in-addr.arpa")?;
    let mut octets = [0u8; 4];
    let mut parts = labels.split('.');
    for slot in octets.iter_mut().rev() {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn zone(domain: Option<&str>) -> Zone {
        let mut r = DnsRecords::new(
            vec!["10.89.0.1:53".parse().unwrap()],
            vec![
                "10.89.0.1:53".parse().unwrap(),
                "192.0.2.53:53".parse().unwrap(),
            ],
        );
        r.set_domain(domain).unwrap();
        r.set_container("a", ["shop-web-1", "web"], ip("10.89.0.2"))
            .unwrap();
        r.set_container("b", ["shop-web-2", "web"], ip("10.89.0.3"))
            .unwrap();
        r.set_container("c", ["shop-web-3", "web"], ip("10.89.0.4"))
            .unwrap();
        r.set_container("d", ["shop-db-1", "db"], ip("10.89.0.5"))
            .unwrap();
        Zone::new(&r)
    }

    #[test]
    fn names_match_exactly_or_under_the_domain() {
        let z = zone(Some("berth.internal"));
        assert_eq!(z.classify("web"), Match::Name("web".into()));
        assert_eq!(z.classify("web.berth.internal"), Match::Name("web".into()));
        assert_eq!(z.classify("berth.internal"), Match::Domain);
        assert_eq!(z.classify("cache.berth.internal"), Match::Unknown);
        assert_eq!(z.classify("xberth.internal"), Match::Foreign);
        assert_eq!(z.classify("example.com"), Match::Foreign);
        assert_eq!(z.classify("web.example.com"), Match::Foreign);
        let z = zone(None);
        assert_eq!(z.classify("web.berth.internal"), Match::Foreign);
        assert_eq!(z.classify("cache"), Match::Foreign);
    }

    #[test]
    fn every_replica_is_answered_and_the_order_rotates_per_name() {
        let mut z = zone(None);
        let first = z.rotated("web");
        assert_eq!(first, [ip("10.89.0.2"), ip("10.89.0.3"), ip("10.89.0.4")]);
        assert_eq!(z.rotated("db"), [ip("10.89.0.5")]);
        assert_eq!(
            z.rotated("web"),
            [ip("10.89.0.3"), ip("10.89.0.4"), ip("10.89.0.2")]
        );
        assert_eq!(
            z.rotated("web"),
            [ip("10.89.0.4"), ip("10.89.0.2"), ip("10.89.0.3")]
        );
        assert_eq!(z.rotated("web"), first);
        assert!(z.rotated("nope").is_empty());
    }

    #[test]
    fn reverse_lookups_answer_the_containers_own_name() {
        assert_eq!(
            zone(None).reverse("3.0.89.10.in-addr.arpa"),
            Some("shop-web-2")
        );
        let z = zone(Some("berth.internal"));
        assert_eq!(
            z.reverse("5.0.89.10.in-addr.arpa"),
            Some("shop-db-1.berth.internal")
        );
        assert_eq!(z.reverse("9.0.89.10.in-addr.arpa"), None);
        for bad in [
            "0.89.10.in-addr.arpa",
            "1.3.0.89.10.in-addr.arpa",
            "300.0.89.10.in-addr.arpa",
            "x.0.89.10.in-addr.arpa",
            "3.0.89.10.ip6.arpa",
        ] {
            assert_eq!(parse_reverse_v4(bad), None, "{bad}");
        }
    }

    #[test]
    fn other_networks_are_per_client_address() {
        let mut r = DnsRecords::new(vec![], vec![]);
        r.set_container("a", ["a"], ip("10.89.0.2")).unwrap();
        r.set_container("b", ["b"], ip("10.89.0.3")).unwrap();
        r.set_other_networks("a", vec![PathBuf::from("/n/back"), PathBuf::from("/n/x")]);
        let z = Zone::new(&r);
        assert_eq!(
            z.other_networks(ip("10.89.0.2")),
            [PathBuf::from("/n/back"), PathBuf::from("/n/x")]
        );
        assert!(z.other_networks(ip("10.89.0.3")).is_empty());
        assert!(z.other_networks(ip("127.0.0.1")).is_empty());
        assert_eq!(z.all_other_networks().count(), 2);
    }

    #[test]
    fn the_servers_own_address_is_never_an_upstream() {
        let z = zone(None);
        assert_eq!(
            z.upstreams(),
            ["192.0.2.53:53".parse::<SocketAddr>().unwrap()]
        );
    }
}
