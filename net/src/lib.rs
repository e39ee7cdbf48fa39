//! berth-net: bridge networks, container interfaces, addresses, published
//! ports and the names a network's DNS answers.
//!
//! berth has no daemon, so everything here is kernel state plus files:
//! a Linux bridge per network (`br-<id12>`), a network namespace per
//! container bound under the state root (joined by the runtime with
//! `Network::Join`), a veth per container per network, nftables tables
//! (`ip`, `ip6`, `bridge` families, named `berth`) for published ports,
//! masquerade and isolation. Networks may have IPv6 (`ipv6`). All of it keeps working
//! with no berth process, and [`Net::ensure`] / [`Net::restore`] rebuild
//! what a reboot took away from the files (`state`).
//!
//! [`dns`]: the per-network DNS server for service discovery (a `berth
//! dns` process per network), started and stopped through [`DnsControl`].
//!
//! **Invariant:** no Compose types. Callers hand in names, addresses and
//! port requests.

pub mod dns;
mod error;
pub mod etc;
pub mod ipam;
pub mod ipv4;
pub mod ipv6;
pub mod links;
pub mod names;
pub mod netns;
pub mod nft;
pub mod ports;
mod restore;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use error::{Error, ErrorKind, Result};
pub use ipv4::Ipv4Net;
pub use ports::{PortRequest, Proto, PublishedPort};
pub use state::{Attachment, Endpoint, NetworkState};

use state::{Lock, Paths};

/// A network to create.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub internal: bool,
    pub enable_ipv6: bool,
    pub ipam: Vec<ipam::IpamRequest>,
}

/// One network a container joins.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    /// On a network with `enable_ipv6`; refused on others.
    pub ipv6_address: Option<String>,
    /// Interface order: higher first.
    pub priority: Option<i64>,
    /// The default route goes through the network with the highest
    /// (internal ones never carry it); ties go to the first interface.
    pub gw_priority: Option<i64>,
    /// `02:42:…`; else derived from the address, as Docker does.
    pub mac_address: Option<String>,
    /// The interface's name inside (`interface_name`); else the
    /// network's `com.docker.network.container_iface_prefix` (default
    /// `eth`) and the interface's index.
    pub interface_name: Option<String>,
}

/// A container's networking, asked for before the runtime creates it.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    pub hostname: Option<String>,
    pub networks: Vec<JoinRequest>,
    pub ports: Vec<PortRequest>,
    /// `links`: (alias, name): the alias resolves, for this container
    /// only, to the addresses of the name on its networks.
    pub links: Vec<(String, String)>,
    /// Out of service until [`Net::promote`]: its ports are reserved but
    /// not forwarded, its names not in DNS (a start-first replacement).
    pub standby: bool,
    /// The container a standby one replaces: the host ports it publishes
    /// are not in the way (it hands them over at the promotion).
    pub replacing: Option<String>,
}

const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const MTU: &str = "com.docker.network.driver.mtu";
const MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
const HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";
/// Docker's mark of its default `bridge` network, which has no DNS server:
/// its containers do not find each other by name.
pub const DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
const ICC: &str = "com.docker.network.bridge.enable_icc";
const IFACE_PREFIX: &str = "com.docker.network.container_iface_prefix";

/// Starts and stops a network's DNS server (a `berth dns` process per
/// network, see `net/src/dns/`), whose records this crate writes. The
/// agent plugs the real one in with [`Net::with_dns`]; without one,
/// records are written and nothing serves them.
pub trait DnsControl: Send + Sync {
    /// Starts the server of the network whose state dir is `dir` unless
    /// it runs.
    fn ensure_running(&self, dir: &Path) -> std::result::Result<(), String>;
    /// Stops it (before the dir goes).
    fn stop(&self, dir: &Path) -> std::result::Result<(), String>;
}

/// Networking under one state root.
#[derive(Clone)]
pub struct Net {
    paths: Paths,
    dns: Option<std::sync::Arc<dyn DnsControl>>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("root", &self.paths.root)
            .finish()
    }
}

impl Net {
    pub fn open(root: &Path) -> Net {
        Net {
            paths: Paths {
                root: root.to_owned(),
            },
            dns: None,
        }
    }

    /// Runs a DNS server per network through `dns`.
    pub fn with_dns(mut self, dns: std::sync::Arc<dyn DnsControl>) -> Net {
        self.dns = Some(dns);
        self
    }

    /// Where a container's network namespace is bound.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.paths.netns(container_id)
    }

    pub fn networks(&self) -> Result<Vec<NetworkState>> {
        state::networks(&self.paths)
    }

    pub fn network(&self, name: &str) -> Result<NetworkState> {
        check_name(name)?;
        state::read_json(&self.paths.network_file(name))?
            .ok_or_else(|| Error::NoSuchNetwork(name.to_owned()))
    }

    pub fn endpoint(&self, container_id: &str) -> Result<Option<Endpoint>> {
        state::read_json(&self.paths.endpoint_file(container_id))
    }

    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        state::endpoints(&self.paths)
    }

    /// Creates a bridge network: addressing, bridge, rules.
    pub fn create_network(&self, req: &NetworkRequest) -> Result<NetworkState> {
        check_name(&req.name)?;
        let _lock = Lock::acquire(&self.paths)?;
        if self.paths.network_file(&req.name).exists() {
            return Err(Error::NetworkExists(req.name.clone()));
        }
        let network = self.plan_network(req)?;
        let n = network.clone();
        let created = links::in_host(move |h| async move { bridge_up(&h, &n).await })
            .and_then(|_| bridge_sysctls(&network))
            .and_then(|()| state::write_json(&self.paths.network_file(&network.name), &network))
            .and_then(|()| self.sync_locked(std::slice::from_ref(&network.name)));
        if let Err(e) = created {
            let bridge = network.bridge.clone();
            let _ = links::in_host(move |h| async move { links::delete(&h, &bridge).await });
            let _ = std::fs::remove_dir_all(self.paths.network_dir(&network.name));
            let _ = self.sync_locked(&[]);
            return Err(e);
        }
        tracing::info!(network = %network.name, bridge = %network.bridge, subnet = %network.subnet, "network created");
        Ok(network)
    }

    fn plan_network(&self, req: &NetworkRequest) -> Result<NetworkState> {
        match req.driver.as_deref() {
            None | Some("bridge") => {}
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "network {}: driver {other} is not supported: berth makes bridge networks",
                    req.name
                )));
            }
        }
        let (v6, v4): (Vec<&ipam::IpamRequest>, Vec<&ipam::IpamRequest>) = req
            .ipam
            .iter()
            .partition(|r| r.subnet.as_deref().is_some_and(|s| s.contains(':')));
        if !v6.is_empty() && !req.enable_ipv6 {
            return Err(Error::Invalid(format!(
                "network {}: an IPv6 subnet needs enable_ipv6: true",
                req.name
            )));
        }
        if v6.len() > 1 {
            return Err(Error::Invalid(format!(
                "network {}: one IPv6 ipam config is supported, {} were given",
                req.name,
                v6.len()
            )));
        }
        if v4.len() > 1 {
            return Err(Error::Invalid(format!(
                "network {}: one IPv4 ipam config is supported, {} were given",
                req.name,
                v4.len()
            )));
        }
        let existing = self.networks()?;
        let addressing6 = if req.enable_ipv6 {
            let taken6: Vec<ipv6::Ipv6Net> = existing.iter().filter_map(|n| n.subnet6).collect();
            Some(
                ipam::plan6(v6.first().copied(), &taken6, &state::random_bytes)
                    .map_err(|e| prefix_error(&req.name, e))?,
            )
        } else {
            None
        };
        let taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
        let routes = links::in_host(move |h| async move { links::routes(&h).await })?;
        let addressing = ipam::plan(
            &v4.first().cloned().cloned().unwrap_or_default(),
            &taken,
            &routes,
        )
        .map_err(|e| prefix_error(&req.name, e))?;
        let id = state::new_id()?;
        let mut bridge = format!("br-{}", &id[..12]);
        let mut mtu = None;
        let mut masquerade = true;
        let mut host_binding = None;
        let mut icc = true;
        for (k, v) in &req.driver_opts {
            match k.as_str() {
                BRIDGE_NAME => {
                    if v.is_empty() || v.len() > 15 || v.contains(['/', ' ']) {
                        return Err(Error::Invalid(format!(
                            "network {}: invalid bridge name {v:?} (at most 15 characters, no '/' or spaces)",
                            req.name
                        )));
                    }
                    bridge = v.clone();
                }
                MTU => {
                    let m: u32 = v
                        .parse()
                        .ok()
                        .filter(|m| (68..=65535).contains(m))
                        .ok_or_else(|| {
                            Error::Invalid(format!("network {}: invalid {MTU} {v:?}", req.name))
                        })?;
                    mtu = Some(m);
                }
                MASQUERADE => {
                    masquerade = v.parse::<bool>().map_err(|_| {
                        Error::Invalid(format!("network {}: invalid {MASQUERADE} {v:?}", req.name))
                    })?;
                }
                IFACE_PREFIX => {
                    if v.is_empty()
                        || v.len() > 12
                        || !v
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(Error::Invalid(format!(
                            "network {}: invalid {IFACE_PREFIX} {v:?} (1 to 12 letters, digits, '-' or '_')",
                            req.name
                        )));
                    }
                }
                ICC => {
                    icc = v.parse::<bool>().map_err(|_| {
                        Error::Invalid(format!("network {}: invalid {ICC} {v:?}", req.name))
                    })?;
                }
                HOST_BINDING => {
                    host_binding = Some(v.parse::<Ipv4Addr>().map_err(|_| {
                        Error::Invalid(format!(
                            "network {}: invalid {HOST_BINDING} {v:?}",
                            req.name
                        ))
                    })?);
                }
                DEFAULT_BRIDGE => {}
                other => {
                    tracing::warn!(network = %req.name, option = other, "driver option not supported by berth, ignored");
                }
            }
        }
        if let Some(other) = existing.iter().find(|n| n.bridge == bridge) {
            return Err(Error::Conflict(format!(
                "network {}: bridge {bridge} is already used by network {}",
                req.name, other.name
            )));
        }
        Ok(NetworkState {
            name: req.name.clone(),
            id,
            labels: req.labels.clone(),
            driver: "bridge".to_owned(),
            driver_opts: req.driver_opts.clone(),
            bridge,
            subnet: addressing.subnet,
            gateway: addressing.gateway,
            ip_range: addressing.ip_range,
            internal: req.internal,
            mtu,
            masquerade,
            host_binding,
            icc,
            subnet6: addressing6.map(|a| a.0),
            gateway6: addressing6.map(|a| a.1),
            created: state::now_rfc3339(),
        })
    }

    /// Removes a network. Refused while a container for which `running`
    /// says true is attached; other attached containers (created or
    /// exited) lose their interface on it, as Docker's do.
    pub fn remove_network(&self, name: &str, running: &dyn Fn(&str) -> bool) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        let network = self.network(name)?;
        let endpoints = self.endpoints()?;
        let attached: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| e.attachments.iter().any(|a| a.network == name))
            .collect();
        let busy: Vec<String> = attached
            .iter()
            .filter(|e| running(&e.container_id))
            .map(|e| e.container_name.clone())
            .collect();
        if !busy.is_empty() {
            return Err(Error::Conflict(format!(
                "network {name} is in use by running container(s) {}: stop them or disconnect them first",
                busy.join(", ")
            )));
        }
        for ep in attached {
            let mut ep = ep.clone();
            let gone: Vec<String> = ep
                .attachments
                .iter()
                .filter(|a| a.network == name)
                .map(|a| a.host_veth.clone())
                .collect();
            links::in_host(move |h| async move {
                for v in &gone {
                    links::delete(&h, v).await?;
                }
                Ok(())
            })?;
            ep.attachments.retain(|a| a.network != name);
            state::write_json(&self.paths.endpoint_file(&ep.container_id), &ep)?;
        }
        let bridge = network.bridge.clone();
        links::in_host(move |h| async move { links::delete(&h, &bridge).await })?;
        let dir = self.paths.network_dir(name);
        if let Some(dns) = &self.dns {
            dns.stop(&dir).map_err(|e| {
                Error::Conflict(format!("network {name}: cannot stop its DNS server: {e}"))
            })?;
        }
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
        self.sync_locked(&[])?;
        tracing::info!(network = %name, "network removed");
        Ok(())
    }

    /// Gives a container its namespace, interfaces, addresses and ports.
    /// The runtime then joins [`Net::netns_path`]. Idempotent: an existing
    /// endpoint is re-ensured and returned.
    pub fn attach(&self, req: &AttachRequest) -> Result<Endpoint> {
        let _lock = Lock::acquire(&self.paths)?;
        if let Some(ep) = self.endpoint(&req.container_id)? {
            self.ensure_locked(&ep)?;
            return Ok(ep);
        }
        let ep = self.plan_endpoint(req)?;
        // The record first: whatever fails below, `detach` finds what to
        // clean up.
        state::write_json(&self.paths.endpoint_file(&ep.container_id), &ep)?;
        let networks: Vec<String> = ep.attachments.iter().map(|a| a.network.clone()).collect();
        let made = self
            .ensure_locked(&ep)
            .and_then(|()| self.sync_locked(&networks));
        if let Err(e) = made {
            let _ = self.detach_locked(&req.container_id);
            return Err(e);
        }
        tracing::debug!(container = %ep.container_name, "attached");
        Ok(ep)
    }

    fn plan_endpoint(&self, req: &AttachRequest) -> Result<Endpoint> {
        let mut joins = req.networks.clone();
        // Higher priority first (Compose's order for eth0, eth1... and the
        // default route); the given order otherwise.
        joins.sort_by_key(|j| std::cmp::Reverse(j.priority.unwrap_or(0)));
        let endpoints = self.endpoints()?;
        let networks = joins
            .iter()
            .map(|j| self.network(&j.network))
            .collect::<Result<Vec<_>>>()?;
        let gateway_index = joins
            .iter()
            .zip(&networks)
            .enumerate()
            .filter(|(_, (_, n))| !n.internal)
            .max_by_key(|(i, (j, _))| (j.gw_priority.unwrap_or(0), std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        let mut attachments = Vec::new();
        for (i, (j, network)) in joins.iter().zip(networks).enumerate() {
            let a = plan_attachment(
                &Slot {
                    container_id: &req.container_id,
                    container_name: &req.container_name,
                    index: i,
                    default_route: gateway_index == Some(i),
                },
                j,
                &network,
                &endpoints,
                &attachments,
            )?;
            attachments.push(a);
        }
        let target = attachments
            .iter()
            .find(|a| self.network(&a.network).is_ok_and(|n| !n.internal))
            .map(|a| (a.ip, a.network.clone(), a.ip6));
        let port_target6 = target.as_ref().and_then(|t| t.2);
        let (ports, port_requests, port_target) = match (&target, req.ports.is_empty()) {
            (_, true) => (Vec::new(), Vec::new(), None),
            (None, false) => {
                tracing::warn!(container = %req.container_name, "ports are not published: the container is on no network that is not internal");
                (Vec::new(), Vec::new(), None)
            }
            (Some((ip, net_name, ip6)), false) => {
                let binding = self.network(net_name).ok().and_then(|n| n.host_binding);
                let requests: Vec<PortRequest> = req
                    .ports
                    .iter()
                    .map(|p| PortRequest {
                        host_ip: p.host_ip.clone().or_else(|| binding.map(|b| b.to_string())),
                        ..p.clone()
                    })
                    .collect();
                // The container a standby one replaces hands its ports
                // over at the promotion: not in the way.
                let others: Vec<Endpoint> = endpoints
                    .iter()
                    .filter(|e| req.replacing.as_deref() != Some(e.container_id.as_str()))
                    .cloned()
                    .collect();
                let published = ports::resolve_for(
                    &req.container_name,
                    &requests,
                    &published_ports(&others, &req.container_id),
                    &ports::BindCheck,
                    ip6.is_some(),
                )?;
                (published, requests, Some(*ip))
            }
        };
        Ok(Endpoint {
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            hostname: req.hostname.clone(),
            netns: self.paths.netns(&req.container_id),
            attachments,
            ports,
            port_requests,
            port_target,
            port_target6: port_target.and(port_target6),
            links: req
                .links
                .iter()
                .map(|(alias, name)| (alias.to_ascii_lowercase(), name.to_ascii_lowercase()))
                .collect(),
            running: false,
            standby: req.standby,
        })
    }

    /// Puts a standby container in service and the one it replaces out of
    /// it, in one nftables transaction: from one packet to the next, the
    /// published ports lead to `container_id` and no longer to
    /// `replacing`; the DNS records of their networks are rewritten at the
    /// same time. `replacing` keeps its namespace and addresses (it still
    /// runs, answering the connections it has) until it is detached.
    /// Refused (`Conflict`) when a container in service other than
    /// `replacing` publishes one of the same host ports.
    pub fn promote(&self, container_id: &str, replacing: &str) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        let Some(mut ep) = self.endpoint(container_id)? else {
            return Ok(());
        };
        let endpoints = self.endpoints()?;
        for other in endpoints.iter().filter(|e| {
            e.running && !e.standby && e.container_id != container_id && e.container_id != replacing
        }) {
            if let Some(p) = ep
                .ports
                .iter()
                .find(|p| other.ports.iter().any(|o| o.clashes(p)))
            {
                return Err(Error::Conflict(format!(
                    "{}: host port {p} is published by {}",
                    ep.container_name, other.container_name
                )));
            }
        }
        let mut networks: Vec<String> = ep.attachments.iter().map(|a| a.network.clone()).collect();
        let before = ep.clone();
        let old_before = self.endpoint(replacing)?;
        // The new one first: a crash between the two writes leaves both
        // in service (the first DNAT rule wins), never neither.
        ep.standby = false;
        let switched = state::write_json(&self.paths.endpoint_file(container_id), &ep)
            .and_then(|()| match &old_before {
                Some(old) => {
                    networks.extend(old.attachments.iter().map(|a| a.network.clone()));
                    state::write_json(
                        &self.paths.endpoint_file(replacing),
                        &Endpoint {
                            standby: true,
                            ..old.clone()
                        },
                    )
                }
                None => Ok(()),
            })
            .and_then(|()| {
                networks.sort();
                networks.dedup();
                self.sync_locked(&networks)
            });
        if let Err(e) = switched {
            // Back as it was, so the old one keeps serving: the rules
            // and records on the host are the old ones or get them back.
            let _ = state::write_json(&self.paths.endpoint_file(container_id), &before);
            if let Some(old) = &old_before {
                let _ = state::write_json(&self.paths.endpoint_file(replacing), old);
            }
            let _ = self.sync_locked(&networks);
            return Err(e);
        }
        tracing::info!(container = %ep.container_name, replacing, "in service");
        Ok(())
    }

    /// Records whether the container runs: its names are in its networks'
    /// DNS records, and its ports published, only while it does. Called
    /// with `true` before the container starts: its ports, free for
    /// others while it was stopped, are taken again (the same ones where
    /// still free); a port it asked for by number that another container
    /// or a host process holds now fails the start, naming the holder.
    pub fn set_running(&self, container_id: &str, running: bool) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        let Some(mut ep) = self.endpoint(container_id)? else {
            return Ok(());
        };
        if ep.running == running {
            return Ok(());
        }
        // A standby container's ports are checked when it is promoted: the
        // one it replaces still holds them now.
        if running && !ep.standby && !ep.ports.is_empty() {
            let endpoints = self.endpoints()?;
            ep.ports = ports::rebind(
                &ep.container_name,
                &ep.port_requests,
                &ep.ports,
                &published_ports(&endpoints, container_id),
                &ports::BindCheck,
            )?;
        }
        ep.running = running;
        state::write_json(&self.paths.endpoint_file(container_id), &ep)?;
        let networks: Vec<String> = ep.attachments.iter().map(|a| a.network.clone()).collect();
        self.sync_locked(&networks)
    }

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
    fn ensure_locked(&self, ep: &Endpoint) -> Result<()> {
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

    /// Joins a container that has an endpoint to one more network (`docker
    /// network connect`): a new interface, its addresses, its names. The
    /// default route stays where it is unless no interface had one.
    pub fn connect(&self, container_id: &str, join: &JoinRequest) -> Result<Endpoint> {
        let _lock = Lock::acquire(&self.paths)?;
        let mut ep = self.endpoint(container_id)?.ok_or_else(|| {
            Error::Invalid(format!(
                "container {container_id} has no network namespace of its own (network none, host or container:): it cannot join a network"
            ))
        })?;
        if ep.attachments.iter().any(|a| a.network == join.network) {
            return Err(Error::Conflict(format!(
                "container {} is already connected to network {}",
                ep.container_name, join.network
            )));
        }
        let network = self.network(&join.network)?;
        let prefix = network
            .driver_opts
            .get(IFACE_PREFIX)
            .map(String::as_str)
            .unwrap_or("eth");
        // The first free slot: veth names (and default interface names)
        // follow it.
        let index = (0..)
            .find(|i| {
                !ep.attachments.iter().any(|a| {
                    a.ifname == format!("{prefix}{i}")
                        || a.host_veth == veth_name("veth", container_id, *i)
                })
            })
            .unwrap_or(ep.attachments.len());
        let attachment = plan_attachment(
            &Slot {
                container_id,
                container_name: &ep.container_name,
                index,
                default_route: !network.internal && !ep.attachments.iter().any(|a| a.default_route),
            },
            join,
            &network,
            &self.endpoints()?,
            &ep.attachments,
        )?;
        ep.attachments.push(attachment);
        state::write_json(&self.paths.endpoint_file(container_id), &ep)?;
        let made = self
            .ensure_locked(&ep)
            .and_then(|()| self.sync_locked(std::slice::from_ref(&network.name)));
        if let Err(e) = made {
            let _ = self.disconnect_locked(container_id, &network.name);
            return Err(e);
        }
        Ok(ep)
    }

    /// Takes a container off one network (`docker network disconnect`).
    pub fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        self.disconnect_locked(container_id, network)
    }

    fn disconnect_locked(&self, container_id: &str, network: &str) -> Result<()> {
        let mut ep = self.endpoint(container_id)?.ok_or_else(|| {
            Error::Invalid(format!(
                "container {container_id} is not connected to network {network}"
            ))
        })?;
        let Some(pos) = ep.attachments.iter().position(|a| a.network == network) else {
            return Err(Error::Invalid(format!(
                "container {} is not connected to network {network}",
                ep.container_name
            )));
        };
        let gone = ep.attachments.remove(pos);
        let veth = gone.host_veth.clone();
        links::in_host(move |h| async move { links::delete(&h, &veth).await })?;
        if ep.port_target == Some(gone.ip) {
            // Published ports led through this network.
            ep.port_target = None;
            ep.port_target6 = None;
        }
        state::write_json(&self.paths.endpoint_file(container_id), &ep)?;
        self.sync_locked(&[network.to_owned()])
    }

    /// Takes a container's networking away: veths, namespace, ports,
    /// names. Idempotent.
    pub fn detach(&self, container_id: &str) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        self.detach_locked(container_id)
    }

    fn detach_locked(&self, container_id: &str) -> Result<()> {
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

    /// Rewrites the nftables table (when it changed) and the DNS records
    /// of `changed`.
    fn sync_locked(&self, changed: &[String]) -> Result<()> {
        self.sync_with(changed, false)
    }

    /// `force_nft`: apply the table even if it is the one last applied.
    fn sync_with(&self, changed: &[String], force_nft: bool) -> Result<()> {
        let networks = self.networks()?;
        let endpoints = self.endpoints()?;
        if networks.iter().any(|n| !n.internal) {
            enable_forwarding()?;
        }
        if networks.iter().any(|n| !n.internal && n.subnet6.is_some()) {
            write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
        }
        nft::apply_cached(
            &self.paths.nft_cache(),
            &nft::render(&networks, &endpoints),
            force_nft,
        )?;
        let upstreams =
            names::upstreams(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        for n in networks.iter().filter(|n| changed.contains(&n.name)) {
            state::write_json(
                &self.paths.dns_file(&n.name),
                &names::records(n, &endpoints, upstreams.clone(), &self.paths.networks()),
            )?;
            if let Some(dns) = self.dns.as_ref().filter(|_| !n.is_default_bridge()) {
                // A server that cannot start leaves names unresolved, not
                // the network unusable: said loudly, not fatal.
                if let Err(e) = dns.ensure_running(&self.paths.network_dir(&n.name)) {
                    tracing::warn!(network = %n.name, error = %e, "the network's DNS server is not running");
                }
            }
        }
        Ok(())
    }
}

/// Where an attachment goes in its container: the interface's index
/// (naming its veth and, by default, its interface) and whether it
/// carries the default route.
struct Slot<'a> {
    container_id: &'a str,
    container_name: &'a str,
    index: usize,
    default_route: bool,
}

/// One network's attachment for a container: its addresses (`join`'s or
/// the next free ones), MAC, interface name; refused when another
/// container has the address or MAC, or an interface in `siblings`
/// (the container's other attachments) has the name.
fn plan_attachment(
    slot: &Slot<'_>,
    j: &JoinRequest,
    network: &NetworkState,
    endpoints: &[Endpoint],
    siblings: &[Attachment],
) -> Result<Attachment> {
    let used: BTreeSet<Ipv4Addr> = endpoints
        .iter()
        .flat_map(|e| e.attachments.iter())
        .filter(|a| a.network == network.name)
        .map(|a| a.ip)
        .collect();
    let addressing = ipam::Addressing {
        subnet: network.subnet,
        gateway: network.gateway,
        ip_range: network.ip_range,
    };
    let ip = ipam::allocate(&addressing, &used, j.ipv4_address.as_deref()).map_err(|e| {
        prefix_error(
            &format!("{} on network {}", slot.container_name, network.name),
            e,
        )
    })?;
    let ip6 = match (network.subnet6, network.gateway6) {
        (Some(subnet6), Some(gateway6)) => {
            let used6: BTreeSet<std::net::Ipv6Addr> = endpoints
                .iter()
                .flat_map(|e| e.attachments.iter())
                .filter(|a| a.network == network.name)
                .filter_map(|a| a.ip6)
                .collect();
            Some(
                ipam::allocate6(subnet6, gateway6, &used6, j.ipv6_address.as_deref()).map_err(
                    |e| {
                        prefix_error(
                            &format!("{} on network {}", slot.container_name, network.name),
                            e,
                        )
                    },
                )?,
            )
        }
        _ => match &j.ipv6_address {
            Some(a) => {
                return Err(Error::Invalid(format!(
                    "{} on network {}: ipv6_address {a} needs the network to have \
                     enable_ipv6: true",
                    slot.container_name, network.name
                )));
            }
            None => None,
        },
    };
    let mac = match &j.mac_address {
        Some(m) => {
            let mac = ipam::parse_mac(m).map_err(|e| {
                prefix_error(
                    &format!("{} on network {}", slot.container_name, network.name),
                    e,
                )
            })?;
            if let Some(other) = endpoints.iter().find(|e| {
                e.attachments
                    .iter()
                    .any(|a| a.network == network.name && a.mac == mac)
            }) {
                return Err(Error::Conflict(format!(
                    "{} on network {}: mac_address {mac} is already used by container {}",
                    slot.container_name, network.name, other.container_name
                )));
            }
            mac
        }
        None => ipam::mac_for(ip)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    };
    let ifname = match &j.interface_name {
        Some(name) => {
            let valid = !name.is_empty()
                && name.len() <= 15
                && name != "lo"
                && !name.contains(['/', ':'])
                && !name.chars().any(char::is_whitespace);
            if !valid {
                return Err(Error::Invalid(format!(
                    "{} on network {}: invalid interface_name {name:?} (1 to 15 \
                     characters, no '/', ':' or spaces, not lo)",
                    slot.container_name, network.name
                )));
            }
            name.clone()
        }
        None => {
            let prefix = network
                .driver_opts
                .get(IFACE_PREFIX)
                .map(String::as_str)
                .unwrap_or("eth");
            format!("{prefix}{}", slot.index)
        }
    };
    if siblings.iter().any(|a| a.ifname == ifname) {
        return Err(Error::Invalid(format!(
            "{}: two networks would both be interface {ifname}",
            slot.container_name
        )));
    }
    Ok(Attachment {
        network: network.name.clone(),
        ifname,
        host_veth: veth_name("veth", slot.container_id, slot.index),
        ip,
        ip6,
        mac,
        aliases: j.aliases.clone(),
        default_route: slot.default_route,
    })
}

/// The ports other running containers in service publish, with their
/// owners (a standby container's are forwarded nowhere).
fn published_ports(endpoints: &[Endpoint], except: &str) -> Vec<ports::Taken> {
    endpoints
        .iter()
        .filter(|e| e.running && !e.standby && e.container_id != except)
        .flat_map(|e| {
            e.ports.iter().map(|p| ports::Taken {
                port: *p,
                owner: e.container_name.clone(),
            })
        })
        .collect()
}

/// A network's bridge, made if missing, with its gateway addresses, up.
async fn bridge_up(h: &rtnetlink::Handle, n: &NetworkState) -> Result<u32> {
    let idx = links::ensure_bridge(h, &n.bridge, n.gateway, n.subnet, n.mtu).await?;
    if let (Some(subnet6), Some(gateway6)) = (n.subnet6, n.gateway6) {
        links::ensure_address6(h, idx, &n.bridge, gateway6, subnet6.prefix()).await?;
    }
    Ok(idx)
}

/// Docker's rule for network names, which also keeps a name from being a
/// path.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

fn prefix_error(what: &str, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{what}: {m}")),
        Error::Conflict(m) => Error::Conflict(format!("{what}: {m}")),
        Error::Exhausted(m) => Error::Exhausted(format!("{what}: {m}")),
        other => other,
    }
}

/// Interface names derived from the container id (15 characters at most).
fn veth_name(prefix: &str, container_id: &str, index: usize) -> String {
    let id: String = container_id.chars().take(15 - prefix.len() - 2).collect();
    format!("{prefix}{id}{:02x}", index.min(255))
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, part) in out.iter_mut().zip(s.split(':')) {
        *o = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    out
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == value => Ok(()),
        _ => std::fs::write(path, value).map_err(|e| Error::io("write", path, e)),
    }
}

/// Forwarding on, as Docker turns it on: containers reach the outside and
/// each other's published ports through the host.
fn enable_forwarding() -> Result<()> {
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
}

/// `route_localnet` lets DNAT'd packets from 127.0.0.1 leave through the
/// bridge, so ports published on localhost answer from the host.
fn bridge_sysctls(n: &NetworkState) -> Result<()> {
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge),
        "1",
    )
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
