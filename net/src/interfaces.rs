//! A container's namespace and interfaces: made (or made whole again
//! after a reboot) and taken away.

use crate::error::{Error, Result};
use crate::state::{Endpoint, Lock, NetworkState};
use crate::sysctl::bridge_sysctls;
use crate::{Net, links, netns};

impl Net {
    /// Makes a container's networking whole again (after a reboot took the
    /// namespace, bridges and rules): called before a container starts.
    pub fn ensure(&self, container_id: &str) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        let Some(ep) = self.endpoint(container_id)? else {
            return Ok(());
        };
        let fresh = !netns::is_bound(&ep.netns);
        self.ensure_locked(&ep)?;
        if fresh {
            // A namespace gone with the same boot id is a simulated or
            // partial loss: the ruleset may be gone too, whatever the
            // cache says.
            let networks: Vec<String> = ep.attachments.iter().map(|a| a.network.clone()).collect();
            self.sync_with(&networks, true)?;
        }
        Ok(())
    }

    /// Two netlink sessions whatever the number of networks (one in the
    /// host for bridges and veths, one inside for addresses and routes):
    /// each session is a thread, a runtime and a socket.
    pub(crate) fn ensure_locked(&self, ep: &Endpoint) -> Result<()> {
        let fresh = !netns::is_bound(&ep.netns);
        netns::create(&ep.netns)?;
        let netns_path = ep.netns.clone();
        let networks: Vec<NetworkState> = ep
            .attachments
            .iter()
            .map(|a| self.network(&a.network))
            .collect::<Result<_>>()?;
        let wanted: Vec<(usize, String, String, [u8; 6], NetworkState)> = ep
            .attachments
            .iter()
            .zip(&networks)
            .enumerate()
            .map(|(i, (a, n))| {
                (
                    i,
                    a.host_veth.clone(),
                    a.ifname.clone(),
                    parse_mac(&a.mac),
                    n.clone(),
                )
            })
            .collect();
        let ns = netns_path.clone();
        let made: Vec<usize> = links::in_host(move |h| async move {
            let mut made = Vec::new();
            for (i, host, peer, mac, n) in &wanted {
                let bridge = bridge_up(&h, n).await?;
                // A veth still there is put back on its bridge (one made
                // again after a reboot or a deletion has no ports).
                if !fresh && links::ensure_port(&h, host, bridge).await? {
                    continue;
                }
                links::veth_into(&h, host, peer, *mac, &n.bridge, &ns, n.mtu).await?;
                made.push(*i);
            }
            Ok(made)
        })?;
        for n in &networks {
            bridge_sysctls(n)?;
        }
        if made.is_empty() && !fresh {
            // Everything was there (a start after a stop): the inside
            // needs nothing, and a session there costs a thread.
            return Ok(());
        }
        let inside: Vec<links::InsideConfig> = ep
            .attachments
            .iter()
            .zip(&networks)
            .enumerate()
            .filter(|(i, _)| made.contains(i))
            .map(|(i, (a, network))| links::InsideConfig {
                from: veth_name("bp", &ep.container_id, i),
                ifname: a.ifname.clone(),
                mac: parse_mac(&a.mac),
                ip: a.ip,
                prefix: network.subnet.prefix(),
                mtu: network.mtu,
                default_via: a.default_route.then_some(network.gateway),
                ip6: a.ip6.zip(network.subnet6.map(|s| s.prefix())),
                default_via6: network
                    .gateway6
                    .filter(|_| a.default_route && a.ip6.is_some()),
            })
            .collect();
        links::in_netns(&netns_path, move |h| async move {
            links::loopback_up(&h).await?;
            for c in &inside {
                links::configure_inside(&h, c).await?;
            }
            Ok(())
        })
    }

    /// Takes a container's networking away: veths, namespace, ports,
    /// names. Idempotent.
    pub fn detach(&self, container_id: &str) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        self.detach_locked(container_id)
    }

    pub(crate) fn detach_locked(&self, container_id: &str) -> Result<()> {
        let ep = self.endpoint(container_id)?;
        let mut networks = Vec::new();
        let netns_path = self.paths.netns(container_id);
        if let Some(ep) = &ep {
            // With no process left in the namespace, unbinding it below
            // ends it, and the kernel takes its veth pairs away in the
            // background: deleting them here would cost an RCU grace
            // period each (~25 ms on a loaded 2-core machine) on the way
            // out of every `run --rm`. A namespace someone still uses
            // (a `container:` sharer) loses its interfaces now, as
            // Docker's do when the owner goes.
            if netns::in_use(&netns_path) || !netns::is_bound(&netns_path) {
                let veths: Vec<String> =
                    ep.attachments.iter().map(|a| a.host_veth.clone()).collect();
                links::in_host(move |h| async move {
                    for v in &veths {
                        links::delete(&h, v).await?;
                    }
                    Ok(())
                })?;
            }
            networks = ep.attachments.iter().map(|a| a.network.clone()).collect();
        }
        netns::remove(&netns_path)?;
        let file = self.paths.endpoint_file(container_id);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &file, e)),
        }
        if ep.is_some() {
            self.sync_locked(&networks)?;
        }
        Ok(())
    }
}

/// A network's bridge, made if missing, with its gateway addresses, up.
pub(crate) async fn bridge_up(h: &rtnetlink::Handle, n: &NetworkState) -> Result<u32> {
    let idx = links::ensure_bridge(h, &n.bridge, n.gateway, n.subnet, n.mtu).await?;
    if let (Some(subnet6), Some(gateway6)) = (n.subnet6, n.gateway6) {
        links::ensure_address6(h, idx, &n.bridge, gateway6, subnet6.prefix()).await?;
    }
    Ok(idx)
}

/// Interface names derived from the container id (15 characters at most).
pub(crate) fn veth_name(prefix: &str, container_id: &str, index: usize) -> String {
    let id: String = container_id.chars().take(15 - prefix.len() - 2).collect();
    format!("{prefix}{id}{:02x}", index.min(255))
}

pub(crate) fn parse_mac(s: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, part) in out.iter_mut().zip(s.split(':')) {
        *o = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_in_ifnamsiz() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(veth_name("veth", &id, 0), "veth01234567800");
        assert!(veth_name("veth", &id, 3).len() <= 15);
        assert_eq!(veth_name("bp", &id, 1).len(), 15);
        assert_eq!(veth_name("veth", &id, 1).len(), 15);
        assert_eq!(parse_mac("02:42:ac:12:00:02"), [2, 0x42, 0xac, 0x12, 0, 2]);
    }
}
