//! A container's networking, decided before the runtime creates it: the
//! namespace it joins (`network_mode`, or a new one attached to its
//! networks by [`berth_net::Net::attach`]), its `/etc/hosts` and
//! `/etc/resolv.conf`, its published ports.

use berth_net::etc::{self, DnsSettings};
use berth_net::{AttachRequest, JoinRequest, Net, PortRequest};
use berth_reconcilers::{BackendError, ContainerSpec, ErrorKind};
use berth_runtime::{ContainerConfig, Network, Runtime};

use super::networks::from_net;

/// What `create` must undo if the runtime then fails.
pub enum Undo {
    Nothing,
    Detach,
}

/// Fills `config.network`, `etc_hosts` and `resolv_conf` for `spec`.
/// With `replacing` (a start-first replacement), the container joins its
/// networks out of service: its ports reserved, not forwarded (those of
/// `replacing` are not in the way), its names not in DNS, until
/// `Net::promote`.
pub fn prepare(
    net: &Net,
    runtime: &Runtime,
    spec: &ContainerSpec,
    config: &mut ContainerConfig,
    replacing: Option<&str>,
) -> Result<Undo, BackendError> {
    let dns = DnsSettings {
        servers: spec.dns.clone(),
        search: spec.dns_search.clone(),
        options: spec.dns_opt.clone(),
    };
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mode = spec.network_mode.as_deref();
    if !spec.ports.is_empty() && mode.is_some() {
        tracing::warn!(container = %spec.name, mode, "published ports are ignored with this network_mode, as Docker ignores them");
    }
    match mode {
        Some("host") => {
            config.network = Network::Host;
            let extra = etc::resolve_extra_hosts(&spec.extra_hosts, None).map_err(from_net)?;
            let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            let mut hosts = host_hosts;
            for (name, addr) in extra {
                hosts.push_str(&format!("{addr}\t{name}\n"));
            }
            config.etc_hosts = Some(hosts);
            if !(dns.servers.is_empty() && dns.search.is_empty() && dns.options.is_empty()) {
                config.resolv_conf = Some(etc::resolv_conf(None, &dns, &host_resolv));
            }
            Ok(Undo::Nothing)
        }
        Some("none") => {
            config.network = Network::None;
            let extra = etc::resolve_extra_hosts(&spec.extra_hosts, None).map_err(from_net)?;
            config.etc_hosts = Some(etc::hosts(None, &extra));
            Ok(Undo::Nothing)
        }
        Some(m) if m.starts_with("service:") || m.starts_with("container:") => {
            share(net, runtime, spec, m, config)?;
            Ok(Undo::Nothing)
        }
        Some(other) => {
            // `bridge` and `default` name Docker's default network, which
            // berth does not have; any other word is a network name
            // Compose would not accept here.
            Err(BackendError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "container {}: network_mode {other:?} is not supported: use none, host, \
                     service:NAME, container:NAME, or networks:",
                    spec.name
                ),
            ))
        }
        None if spec.networks.is_empty() => {
            config.network = Network::None;
            Ok(Undo::Nothing)
        }
        None => {
            if let Some(n) = spec.networks.iter().find(|n| !n.link_local_ips.is_empty()) {
                return Err(BackendError::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "container {}: link_local_ips on network {} is not supported: berth \
                         gives each interface its network's address only",
                        spec.name, n.name
                    ),
                ));
            }
            let macs = macs(spec)?;
            let request = AttachRequest {
                container_id: config.id.clone(),
                container_name: spec.name.clone(),
                hostname: spec.hostname.clone(),
                networks: spec
                    .networks
                    .iter()
                    .zip(macs)
                    .map(|(n, mac_address)| JoinRequest {
                        network: n.name.clone(),
                        aliases: n.aliases.clone(),
                        ipv4_address: n.ipv4_address.clone(),
                        ipv6_address: n.ipv6_address.clone(),
                        priority: n.priority,
                        gw_priority: n.gw_priority,
                        mac_address,
                        interface_name: n.interface_name.clone(),
                    })
                    .collect(),
                links: spec.links.clone(),
                ports: spec
                    .ports
                    .iter()
                    .map(|p| PortRequest {
                        host_ip: p.host_ip.clone(),
                        host_port: p.host_port.clone(),
                        container_port: p.container_port,
                        protocol: p.protocol.clone(),
                    })
                    .collect(),
                standby: replacing.is_some(),
                replacing: replacing.map(str::to_owned),
            };
            let ep = net.attach(&request).map_err(|e| match e.kind() {
                berth_net::ErrorKind::NotFound => BackendError::not_found(format!(
                    "container {}: {e}: create it (docker network create) if it is declared external",
                    spec.name
                )),
                _ => from_net(e),
            })?;
            let primary = ep.attachments.first();
            let gateway = primary
                .and_then(|a| net.network(&a.network).ok())
                .map(|n| n.gateway);
            let filled = (|| {
                let extra =
                    etc::resolve_extra_hosts(&spec.extra_hosts, gateway).map_err(from_net)?;
                let hostname = config.effective_hostname();
                config.etc_hosts = Some(etc::hosts_dual(
                    primary.map(|a| (a.ip, hostname.as_str())),
                    primary.and_then(|a| a.ip6),
                    &extra,
                ));
                config.resolv_conf = Some(etc::resolv_conf(gateway, &dns, &host_resolv));
                config.network = Network::Join(ep.netns.clone());
                Ok::<(), BackendError>(())
            })();
            if let Err(e) = filled {
                let _ = net.detach(&config.id);
                return Err(e);
            }
            Ok(Undo::Detach)
        }
    }
}

/// Each network's `mac_address`: its own, or the service's for the
/// interface that becomes eth0 (the highest `priority`, first on a tie),
/// as Compose gives it. Both on that network, differing, is refused.
fn macs(spec: &ContainerSpec) -> Result<Vec<Option<String>>, BackendError> {
    let mut macs: Vec<Option<String>> = spec
        .networks
        .iter()
        .map(|n| n.mac_address.clone())
        .collect();
    let Some(service_mac) = &spec.mac_address else {
        return Ok(macs);
    };
    let first = spec
        .networks
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (n.priority.unwrap_or(0), std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    if let Some(i) = first {
        match &macs[i] {
            Some(own) if !own.eq_ignore_ascii_case(service_mac) => {
                return Err(BackendError::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "container {}: mac_address {service_mac} and networks.{}.mac_address {own} \
                         differ: set one of them",
                        spec.name, spec.networks[i].name
                    ),
                ));
            }
            _ => macs[i] = Some(service_mac.clone()),
        }
    }
    Ok(macs)
}

/// `network_mode: service:NAME` (that service's first container in the
/// project) or `container:NAME` (any container by name or id): its
/// namespace, its `/etc/hosts` and `/etc/resolv.conf`.
fn share(
    net: &Net,
    runtime: &Runtime,
    spec: &ContainerSpec,
    mode: &str,
    config: &mut ContainerConfig,
) -> Result<(), BackendError> {
    let target = if let Some(service) = mode.strip_prefix("service:") {
        runtime
            .list(true)
            .into_iter()
            .filter(|i| {
                i.config.labels.get(berth_reconcilers::labels::PROJECT) == Some(&spec.project)
                    && i.config
                        .labels
                        .get(berth_reconcilers::labels::SERVICE)
                        .map(String::as_str)
                        == Some(service)
            })
            .min_by_key(|i| {
                i.config
                    .labels
                    .get(berth_reconcilers::labels::NUMBER)
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            })
            .ok_or_else(|| {
                BackendError::failed_precondition(format!(
                    "container {}: network_mode {mode}: service {service} has no container yet",
                    spec.name
                ))
            })?
    } else {
        let name = mode.trim_start_matches("container:");
        runtime.inspect(name).map_err(|_| {
            BackendError::not_found(format!(
                "container {}: network_mode {mode}: no such container {name}",
                spec.name
            ))
        })?
    };
    let netns = match net.endpoint(&target.config.id).map_err(from_net)? {
        Some(ep) => ep.netns,
        None => match &target.config.network {
            Network::Join(path) => path.clone(),
            Network::Host => {
                config.network = Network::Host;
                return Ok(());
            }
            Network::None if target.observed.container_alive && target.state.pid > 0 => {
                // Its own namespace lives as long as its pid 1.
                std::path::PathBuf::from(format!("/proc/{}/ns/net", target.state.pid))
            }
            Network::None => {
                return Err(BackendError::failed_precondition(format!(
                    "container {}: network_mode {mode}: {} is not running, and its network \
                     namespace lives only while it runs",
                    spec.name, target.config.name
                )));
            }
        },
    };
    config.network = Network::Join(netns);
    config.etc_hosts = target.config.etc_hosts.clone();
    config.resolv_conf = target.config.resolv_conf.clone();
    Ok(())
}
