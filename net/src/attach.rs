//! A container's endpoint: its attachments (addresses, MACs, interface
//! names, the default route) and published ports, planned and made.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::interfaces::veth_name;
use crate::ports::{self, PortRequest};
use crate::state::{self, Attachment, Endpoint, Lock, NetworkState};
use crate::{AttachRequest, IFACE_PREFIX, JoinRequest, Net, ipam, prefix_error};

impl Net {
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
}

/// Where an attachment goes in its container: the interface's index
/// (naming its veth and, by default, its interface) and whether it
/// carries the default route.
pub(crate) struct Slot<'a> {
    pub(crate) container_id: &'a str,
    pub(crate) container_name: &'a str,
    pub(crate) index: usize,
    pub(crate) default_route: bool,
}

/// One network's attachment for a container: its addresses (`join`'s or
/// the next free ones), MAC, interface name; refused when another
/// container has the address or MAC, or an interface in `siblings`
/// (the container's other attachments) has the name.
pub(crate) fn plan_attachment(
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
pub(crate) fn published_ports(endpoints: &[Endpoint], except: &str) -> Vec<ports::Taken> {
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
