//! Published ports, masquerade and isolation as nftables tables, `ip
//! berth` (and `ip6 berth` for networks with IPv6, `bridge berth` for
//! `enable_icc: false`), rendered from the networks and endpoints on disk
//! and replaced atomically (one `nft -f -` transaction) after every
//! change.
//!
//! Kernel rules keep working with no berth process alive, cost nothing per
//! packet beyond conntrack, and are rebuilt from the state files whenever
//! berth runs again (a reboot clears them; `Net::restore` puts them back).
//! No netlink crate for nftables is both well kept and complete enough,
//! so the `nft` binary (package nftables) applies the text.
//!
//! ```text
//! prerouting/output (nat): to a local address -> jump published
//! published:   [ip daddr HOST_IP] tcp|udp dport P dnat to CONTAINER:PORT
//! postrouting: to a bridge from 127/8 (route_localnet) -> masquerade
//!              to a bridge, DNAT'd, from that bridge's subnet (hairpin) -> masquerade
//!              from a subnet out of another interface (egress) -> masquerade
//! forward:     internal networks talk to nothing else; networks do not
//!              talk to each other except through published ports
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::state::{Endpoint, NetworkState};

pub const TABLE: &str = "berth";

fn quoted(names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", list.join(", "))
}

/// The whole script: create-if-missing, delete, define. With no network
/// left, the table is only deleted.
pub fn render(networks: &[NetworkState], endpoints: &[Endpoint]) -> String {
    let mut s = format!("table ip {TABLE}\ndelete table ip {TABLE}\n");
    s.push_str(&render_bridge(networks, endpoints));
    s.push_str(&render6(networks, endpoints));
    if networks.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table ip {TABLE} {{");
    push_published(&mut s, endpoints, Family::Ip);
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in networks {
        let br = &n.bridge;
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ip saddr 127.0.0.0/8 ct status dnat masquerade"
        );
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ip saddr {} ct status dnat masquerade",
            n.subnet
        );
        if !n.internal && n.masquerade {
            let _ = writeln!(
                s,
                "    ip saddr {} oifname != \"{br}\" masquerade",
                n.subnet
            );
        }
    }
    s.push_str("  }\n");
    push_forward(&mut s, &networks.iter().collect::<Vec<_>>(), networks);
    s
}

/// The table's forward chain: internal networks cut off from everything
/// but themselves, DNAT'd traffic let through, and no bridge of
/// `in_table` forwarding to another bridge of `all`. Closes the table.
fn push_forward(s: &mut String, in_table: &[&NetworkState], all: &[NetworkState]) {
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    for n in in_table.iter().filter(|n| n.internal) {
        let br = &n.bridge;
        let _ = writeln!(s, "    iifname \"{br}\" oifname != \"{br}\" drop");
        let _ = writeln!(s, "    oifname \"{br}\" iifname != \"{br}\" drop");
    }
    s.push_str("    ct status dnat accept\n");
    for n in in_table {
        let others: Vec<&str> = all
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| o.bridge.as_str())
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "    iifname \"{}\" oifname {} drop",
                n.bridge,
                quoted(&others)
            );
        }
    }
    s.push_str("  }\n}\n");
}

/// The same for networks with IPv6, as table `ip6 berth`: published
/// ports on `[::]` or a host IPv6 address DNAT'd to the container's IPv6
/// address, hairpin and egress masquerade, isolation. (No localhost rule:
/// Linux routes no packet from `::1` out of the loopback interface.)
fn render6(networks: &[NetworkState], endpoints: &[Endpoint]) -> String {
    let mut s = format!("table ip6 {TABLE}\ndelete table ip6 {TABLE}\n");
    let v6: Vec<&NetworkState> = networks.iter().filter(|n| n.subnet6.is_some()).collect();
    if v6.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table ip6 {TABLE} {{");
    push_published(&mut s, endpoints, Family::Ip6);
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in &v6 {
        let (br, Some(subnet)) = (&n.bridge, n.subnet6) else {
            continue;
        };
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ip6 saddr {subnet} ct status dnat masquerade"
        );
        if !n.internal && n.masquerade {
            let _ = writeln!(s, "    ip6 saddr {subnet} oifname != \"{br}\" masquerade");
        }
    }
    s.push_str("  }\n");
    push_forward(&mut s, &v6, networks);
    s
}

/// `enable_icc: false`: frames between two containers' ports of such a
/// network's bridge are dropped in the bridge family (no br_netfilter
/// needed); what goes to the bridge itself (the host, the gateway, DNS,
/// the outside) is not bridged and passes.
fn render_bridge(networks: &[NetworkState], endpoints: &[Endpoint]) -> String {
    let mut s = format!("table bridge {TABLE}\ndelete table bridge {TABLE}\n");
    let mut rules = String::new();
    for n in networks.iter().filter(|n| !n.icc) {
        let ports: Vec<&str> = endpoints
            .iter()
            .flat_map(|e| e.attachments.iter())
            .filter(|a| a.network == n.name)
            .map(|a| a.host_veth.as_str())
            .collect();
        if !ports.is_empty() {
            let set = quoted(&ports);
            let _ = writeln!(
                rules,
                "    iifname {set} oifname {set} drop comment \"{}\"",
                n.name
            );
        }
    }
    if !rules.is_empty() {
        let _ = writeln!(
            s,
            "table bridge {TABLE} {{\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{rules}  }}\n}}"
        );
    }
    s
}

/// Whether the table is in the kernel (a reboot or `nft flush ruleset`
/// takes it away).
pub fn table_exists() -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", TABLE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Applies `script` unless it is the one last applied since this boot
/// (recorded in `cache`, with the kernel's boot id so that a reboot, which
/// empties the ruleset, never matches): most container changes (a
/// container with no published ports joining or leaving) leave the table
/// as it was, and running `nft` costs a process and a ruleset transaction.
/// Returns whether `nft` ran. `force` (restore) re-applies regardless, for
/// a ruleset flushed by hand.
pub fn apply_cached(cache: &std::path::Path, script: &str, force: bool) -> Result<bool> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let record = format!("{}\n{script}", boot.trim());
    if !force && std::fs::read_to_string(cache).is_ok_and(|c| c == record) {
        return Ok(false);
    }
    // Stale first: if `nft` fails half-way or we die, the next change
    // applies again.
    let _ = std::fs::remove_file(cache);
    apply(script)?;
    // Written under the networks lock (every caller holds it).
    std::fs::write(cache, record).map_err(|e| Error::io("write", cache, e))?;
    Ok(true)
}

/// Applies a script in one transaction.
pub fn apply(script: &str) -> Result<()> {
    tracing::debug!(script, "nft -f -");
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Nft(format!(
                "cannot run nft ({e}): berth publishes ports and masquerades with nftables; install the nftables package"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::Nft(format!("cannot write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(format!("nft did not finish: {e}")))?;
    if !out.status.success() {
        return Err(Error::Nft(format!(
            "nft refused berth's table: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The family of a NAT table: `ip` or `ip6`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Ip,
    Ip6,
}

/// A NAT table's hooks into its `published` chain, and that chain: one
/// DNAT rule per published port of the family, to the container's address
/// of that family.
fn push_published(s: &mut String, endpoints: &[Endpoint], family: Family) {
    s.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    s.push_str(
        "  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    s.push_str("  chain published {\n");
    // A stopped container's ports are free for others, as Docker frees
    // them at stop; a standby one (a start-first replacement not promoted
    // yet, or the container it replaced) is not forwarded to.
    for ep in endpoints.iter().filter(|e| e.running && !e.standby) {
        let (target, keyword) = match family {
            Family::Ip => (ep.port_target.map(|t| t.to_string()), "ip"),
            Family::Ip6 => (ep.port_target6.map(|t| format!("[{t}]")), "ip6"),
        };
        let Some(target) = target else {
            continue;
        };
        for p in ep
            .ports
            .iter()
            .filter(|p| p.host_ip.is_ipv6() == (family == Family::Ip6))
        {
            let daddr = if p.host_ip.is_unspecified() {
                String::new()
            } else {
                format!("{keyword} daddr {} ", p.host_ip)
            };
            let _ = writeln!(
                s,
                "    {daddr}{} dport {} dnat to {target}:{} comment \"{}\"",
                p.protocol.as_str(),
                p.host_port,
                p.container_port,
                ep.container_name
            );
        }
    }
    s.push_str("  }\n");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::ports::{Proto, PublishedPort};
    use crate::state::Attachment;

    fn network(name: &str, bridge: &str, subnet: &str, internal: bool) -> NetworkState {
        NetworkState {
            name: name.into(),
            id: "0".repeat(64),
            labels: BTreeMap::new(),
            driver: "bridge".into(),
            driver_opts: BTreeMap::new(),
            bridge: bridge.into(),
            subnet: subnet.parse().unwrap(),
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            ip_range: None,
            internal,
            mtu: None,
            masquerade: true,
            host_binding: None,
            icc: true,
            subnet6: None,
            gateway6: None,
            created: String::new(),
        }
    }

    #[test]
    fn renders_ports_masquerade_and_isolation() {
        let nets = [
            network("a", "br-a", "172.18.0.0/16", false),
            network("b", "br-b", "172.19.0.0/16", true),
        ];
        let ep = Endpoint {
            container_id: "c".repeat(64),
            container_name: "p-web-1".into(),
            hostname: None,
            netns: "/x".into(),
            attachments: Vec::new(),
            ports: vec![
                PublishedPort {
                    host_ip: Ipv4Addr::UNSPECIFIED.into(),
                    host_port: 8080,
                    container_port: 80,
                    protocol: Proto::Tcp,
                },
                PublishedPort {
                    host_ip: Ipv4Addr::LOCALHOST.into(),
                    host_port: 5353,
                    container_port: 53,
                    protocol: Proto::Udp,
                },
            ],
            port_requests: Vec::new(),
            port_target: Some(Ipv4Addr::new(172, 18, 0, 2)),
            port_target6: None,
            running: true,
            links: BTreeMap::new(),
            standby: false,
        };
        // A standby endpoint (a start-first replacement not promoted yet)
        // is not forwarded to.
        let standby = Endpoint {
            container_id: "d".repeat(64),
            container_name: "p-web-2".into(),
            port_target: Some(Ipv4Addr::new(172, 18, 0, 3)),
            standby: true,
            ..ep.clone()
        };
        let s = render(&nets, &[ep.clone(), standby]);
        assert!(!s.contains("172.18.0.3"), "{s}");
        for line in [
            "tcp dport 8080 dnat to 172.18.0.2:80 comment \"p-web-1\"",
            "ip daddr 127.0.0.1 udp dport 5353 dnat to 172.18.0.2:53",
            "ip saddr 172.18.0.0/16 oifname != \"br-a\" masquerade",
            "iifname \"br-b\" oifname != \"br-b\" drop",
            "iifname \"br-a\" oifname { \"br-b\" } drop",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
        // Internal networks are not masqueraded out.
        assert!(
            !s.contains("ip saddr 172.19.0.0/16 oifname != \"br-b\" masquerade"),
            "{s}"
        );
        assert_eq!(
            render(&[], &[]),
            "table ip berth\ndelete table ip berth\ntable bridge berth\ndelete table bridge berth\n\
             table ip6 berth\ndelete table ip6 berth\n"
        );
        assert!(!s.contains("table ip6 berth {"), "{s}");
        assert!(!s.contains("table bridge berth {"), "{s}");
        // A stopped container publishes nothing.
        let stopped = Endpoint {
            running: false,
            ..ep
        };
        let s = render(&nets, &[stopped]);
        assert!(!s.contains("dport"), "{s}");
    }

    #[test]
    fn icc_off_drops_frames_between_the_networks_containers() {
        let mut quiet = network("q", "br-q", "172.20.0.0/16", false);
        quiet.icc = false;
        let nets = [quiet, network("a", "br-a", "172.18.0.0/16", false)];
        let attach = |network: &str, veth: &str| Attachment {
            network: network.into(),
            ifname: "eth0".into(),
            host_veth: veth.into(),
            ip: Ipv4Addr::new(172, 20, 0, 2),
            ip6: None,
            mac: String::new(),
            aliases: Vec::new(),
            default_route: true,
        };
        let ep = |id: &str, attachments| Endpoint {
            container_id: id.into(),
            container_name: id.into(),
            hostname: None,
            netns: "/x".into(),
            attachments,
            ports: Vec::new(),
            port_requests: Vec::new(),
            port_target: None,
            port_target6: None,
            running: true,
            links: BTreeMap::new(),
            standby: false,
        };
        let s = render(
            &nets,
            &[
                ep("c1", vec![attach("q", "vethc1"), attach("a", "vethc1b")]),
                ep("c2", vec![attach("q", "vethc2")]),
            ],
        );
        assert!(
            s.contains(
                "iifname { \"vethc1\", \"vethc2\" } oifname { \"vethc1\", \"vethc2\" } drop comment \"q\""
            ),
            "{s}"
        );
        assert!(!s.contains("vethc1b\" }"), "{s}");
    }

    #[test]
    fn ipv6_networks_get_their_own_table() {
        let mut a = network("a", "br-a", "172.18.0.0/16", false);
        a.subnet6 = Some("fd12:3456::/64".parse().unwrap());
        a.gateway6 = Some("fd12:3456::1".parse().unwrap());
        let nets = [a, network("b", "br-b", "172.19.0.0/16", false)];
        let ep = Endpoint {
            container_id: "c".repeat(64),
            container_name: "p-web-1".into(),
            hostname: None,
            netns: "/x".into(),
            attachments: Vec::new(),
            ports: vec![
                PublishedPort {
                    host_ip: Ipv4Addr::UNSPECIFIED.into(),
                    host_port: 8080,
                    container_port: 80,
                    protocol: Proto::Tcp,
                },
                PublishedPort {
                    host_ip: std::net::Ipv6Addr::UNSPECIFIED.into(),
                    host_port: 8080,
                    container_port: 80,
                    protocol: Proto::Tcp,
                },
                PublishedPort {
                    host_ip: "fd99::7".parse().unwrap(),
                    host_port: 53,
                    container_port: 53,
                    protocol: Proto::Udp,
                },
            ],
            port_requests: Vec::new(),
            port_target: Some(Ipv4Addr::new(172, 18, 0, 2)),
            port_target6: Some("fd12:3456::2".parse().unwrap()),
            running: true,
            links: BTreeMap::new(),
            standby: false,
        };
        let s = render(&nets, &[ep]);
        for line in [
            "table ip6 berth {",
            "    tcp dport 8080 dnat to [fd12:3456::2]:80 comment \"p-web-1\"",
            "    ip6 daddr fd99::7 udp dport 53 dnat to [fd12:3456::2]:53",
            "    ip6 saddr fd12:3456::/64 oifname != \"br-a\" masquerade",
            "    iifname \"br-a\" oifname { \"br-b\" } drop",
            "    tcp dport 8080 dnat to 172.18.0.2:80",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
        // IPv6 ports never land in the IPv4 table.
        assert!(!s.contains("dport 53 dnat to 172.18.0.2"), "{s}");
    }
}
