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

mod attach;
mod connect;
pub mod dns;
mod error;
pub mod etc;
mod interfaces;
pub mod ipam;
pub mod ipv4;
pub mod ipv6;
pub mod links;
pub mod names;
pub mod netns;
mod networks;
pub mod nft;
pub mod ports;
mod restore;
mod running;
pub mod state;
mod sysctl;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::{Error, ErrorKind, Result};
pub use ipv4::Ipv4Net;
pub use ports::{PortRequest, Proto, PublishedPort};
pub use state::{Attachment, Endpoint, NetworkState};

use networks::check_name;
use state::Paths;
use sysctl::{enable_forwarding, write_sysctl};

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

/// Docker's mark of its default `bridge` network, which has no DNS server:
/// its containers do not find each other by name.
pub const DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
pub(crate) const IFACE_PREFIX: &str = "com.docker.network.container_iface_prefix";

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

    /// Rewrites the nftables table (when it changed) and the DNS records
    /// of `changed`.
    pub(crate) fn sync_locked(&self, changed: &[String]) -> Result<()> {
        self.sync_with(changed, false)
    }

    /// `force_nft`: apply the table even if it is the one last applied.
    pub(crate) fn sync_with(&self, changed: &[String], force_nft: bool) -> Result<()> {
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

pub(crate) fn prefix_error(what: &str, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{what}: {m}")),
        Error::Conflict(m) => Error::Conflict(format!("{what}: {m}")),
        Error::Exhausted(m) => Error::Exhausted(format!("{what}: {m}")),
        other => other,
    }
}
