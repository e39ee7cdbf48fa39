//! A container's `/etc/hosts` and `/etc/resolv.conf`, as Docker writes
//! them for a container on user-defined networks: `hosts` names the
//! container itself and `extra_hosts`; other containers are found through
//! the network's DNS server, which `resolv.conf` points at.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};

/// `extra_hosts` entries, with `host-gateway` resolved.
pub fn resolve_extra_hosts(
    extra: &[(String, String)],
    host_gateway: Option<Ipv4Addr>,
) -> Result<Vec<(String, String)>> {
    extra
        .iter()
        .map(|(name, addr)| {
            let addr = if addr == "host-gateway" {
                host_gateway
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "extra_hosts {name}:host-gateway needs the container on a bridge network"
                        ))
                    })?
                    .to_string()
            } else {
                let a = addr.trim_start_matches('[').trim_end_matches(']');
                a.parse::<std::net::IpAddr>()
                    .map_err(|_| Error::Invalid(format!("invalid extra_hosts address {addr:?} for {name}")))?;
                a.to_owned()
            };
            Ok((name.clone(), addr))
        })
        .collect()
}

/// `/etc/hosts`: localhost, `extra_hosts`, then the container's own
/// address with its hostname.
pub fn hosts(own: Option<(Ipv4Addr, &str)>, extra: &[(String, String)]) -> String {
    hosts_dual(own, None, extra)
}

/// [`hosts`] for a container that also has an IPv6 address: its line
/// follows the IPv4 one, as Docker writes them.
pub fn hosts_dual(
    own: Option<(Ipv4Addr, &str)>,
    own6: Option<std::net::Ipv6Addr>,
    extra: &[(String, String)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, addr) in extra {
        s.push_str(&format!("{addr}\t{name}\n"));
    }
    if let Some((ip, names)) = own {
        s.push_str(&format!("{ip}\t{names}\n"));
        if let Some(ip6) = own6 {
            s.push_str(&format!("{ip6}\t{names}\n"));
        }
    }
    s
}

/// What a service sets for DNS.
#[derive(Debug, Clone, Default)]
pub struct DnsSettings {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// `/etc/resolv.conf`: the network's DNS (`network_dns`) unless `dns` is
/// set; search domains and options from the service, else the host's (as
/// Docker copies them). `ndots:0` is Docker's default with its embedded
/// DNS, kept unless the service sets its own options.
pub fn resolv_conf(
    network_dns: Option<Ipv4Addr>,
    settings: &DnsSettings,
    host_resolv: &str,
) -> String {
    let mut host_search = Vec::new();
    let mut host_options = Vec::new();
    let mut host_servers = Vec::new();
    for line in host_resolv.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") | Some("domain") => host_search = words.map(str::to_owned).collect(),
            Some("options") => host_options.extend(words.map(str::to_owned)),
            Some("nameserver") => host_servers.extend(words.next().map(str::to_owned)),
            _ => {}
        }
    }
    let mut s = String::new();
    let servers: Vec<String> = if !settings.servers.is_empty() {
        settings.servers.clone()
    } else if let Some(dns) = network_dns {
        vec![dns.to_string()]
    } else {
        // No network of ours (a namespace with only lo): the host's
        // servers, minus loopback ones nobody could reach from here.
        host_servers
            .into_iter()
            .filter(|s| !s.starts_with("127.") && s != "::1")
            .collect()
    };
    for ns in servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    let search = if settings.search.is_empty() {
        host_search
    } else {
        settings.search.clone()
    };
    if !search.is_empty() && search != ["."] {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    let mut options = if settings.options.is_empty() {
        host_options
    } else {
        settings.options.clone()
    };
    if settings.options.is_empty() && network_dns.is_some() && settings.servers.is_empty() {
        options.retain(|o| !o.starts_with("ndots:"));
        options.push("ndots:0".to_owned());
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_localhost_extras_and_self() {
        let extra = resolve_extra_hosts(
            &[
                ("db".into(), "10.0.0.9".into()),
                ("gw".into(), "host-gateway".into()),
            ],
            Some(Ipv4Addr::new(172, 18, 0, 1)),
        )
        .unwrap();
        let h = hosts(Some((Ipv4Addr::new(172, 18, 0, 2), "web")), &extra);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"), "{h}");
        assert!(
            h.contains("10.0.0.9\tdb\n172.18.0.1\tgw\n172.18.0.2\tweb\n"),
            "{h}"
        );
    }

    #[test]
    fn extra_hosts_are_checked() {
        assert!(resolve_extra_hosts(&[("x".into(), "nope".into())], None).is_err());
        assert!(resolve_extra_hosts(&[("x".into(), "host-gateway".into())], None).is_err());
        let v6 = resolve_extra_hosts(&[("x".into(), "[::1]".into())], None).unwrap();
        assert_eq!(v6[0].1, "::1");
    }

    #[test]
    fn resolv_conf_points_at_the_network_dns() {
        let host = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0 ndots:2\n";
        let r = resolv_conf(
            Some(Ipv4Addr::new(172, 18, 0, 1)),
            &DnsSettings::default(),
            host,
        );
        assert_eq!(
            r,
            "nameserver 172.18.0.1\nsearch corp.example\noptions edns0 ndots:0\n"
        );
        let custom = DnsSettings {
            servers: vec!["9.9.9.9".into()],
            search: vec!["a.example".into()],
            options: vec!["timeout:1".into()],
        };
        let r = resolv_conf(Some(Ipv4Addr::new(172, 18, 0, 1)), &custom, host);
        assert_eq!(
            r,
            "nameserver 9.9.9.9\nsearch a.example\noptions timeout:1\n"
        );
        let none = resolv_conf(
            None,
            &DnsSettings::default(),
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\n",
        );
        assert_eq!(none, "nameserver 10.0.0.2\n");
    }
}
