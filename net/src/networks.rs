//! Bridge networks: planning one from a request (addressing, IPv6,
//! driver options), creating its bridge, removing it.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::interfaces::bridge_up;
use crate::ipv4::Ipv4Net;
use crate::state::{self, Endpoint, Lock, NetworkState};
use crate::sysctl::bridge_sysctls;
use crate::{DEFAULT_BRIDGE, IFACE_PREFIX, Net, NetworkRequest, ipam, ipv6, links, prefix_error};

const BRIDGE_NAME: &str = "com.docker.network.bridge.name";

const MTU: &str = "com.docker.network.driver.mtu";

const MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";

const HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";

const ICC: &str = "com.docker.network.bridge.enable_icc";

impl Net {
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
}

/// Docker's rule for network names, which also keeps a name from being a
/// path.
pub(crate) fn check_name(name: &str) -> Result<()> {
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
