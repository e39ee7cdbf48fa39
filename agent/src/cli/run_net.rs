//! The networking of `berth run`/`create`: `--network`, `-p`/`-P`,
//! `--ip`, `--network-alias`, `--dns*`, `--add-host`, turned into the
//! namespace the container joins and its `/etc/hosts` and
//! `/etc/resolv.conf`, as Docker's `run` does.
//!
//! Docker's default network for `run` is `bridge`; berth's default is
//! `none` (a namespace with only `lo`), unless ports are published: then
//! the container joins berth's default `bridge` network, created on first
//! use (`berth0`, the first free subnet of Docker's pools, 172.17.0.0/16
//! when it is free), so `run -p 8080:80 IMAGE` works as Docker users
//! expect. `--network bridge` asks for it explicitly. Like Docker's, that
//! network has no DNS server: containers on it do not find each other by
//! name; user-defined networks (`berth network create`) do. See
//! docs/networking.md.

use std::path::Path;

use anyhow::{Context, bail};
use berth_image::ExposedPort;
use berth_net::etc::{self, DnsSettings};
use berth_net::{AttachRequest, JoinRequest, Net, PortRequest};
use berth_runtime::{ContainerConfig, Network, Runtime};

use super::GlobalOpts;
use super::run::RunArgs;

pub use crate::engine::build_network::DEFAULT_NETWORK;

/// The network mode `--network` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    None,
    Host,
    Container(String),
    /// A bridge network by name (`bridge` is the default one).
    Bridge(String),
}

impl Mode {
    /// `--network` (absent: `none`, or `bridge` when ports are published).
    pub fn parse(network: Option<&str>, publishes: bool) -> anyhow::Result<Mode> {
        Ok(match network {
            None if publishes => Mode::Bridge(DEFAULT_NETWORK.to_owned()),
            None | Some("none") => Mode::None,
            Some("host") => Mode::Host,
            Some("default") => Mode::Bridge(DEFAULT_NETWORK.to_owned()),
            Some(c) if c.starts_with("container:") => {
                let name = &c["container:".len()..];
                if name.is_empty() {
                    bail!("--network container: needs a container name or id");
                }
                Mode::Container(name.to_owned())
            }
            Some("") => bail!("--network needs a value"),
            Some(n) => Mode::Bridge(n.to_owned()),
        })
    }
}

/// `-p` values (every Docker form: `8080:80`, `127.0.0.1:8080:80/udp`,
/// `8000-8010:80`, `80` for an ephemeral host port, `[::1]:80:80`) through
/// the Compose short-syntax parser, which shares Docker's grammar.
pub fn parse_publish(values: &[String]) -> anyhow::Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    for v in values {
        let ports = berth_spec::compose::model::parse_port_spec(v).map_err(|e| {
            let why = e.message.trim_start_matches(&format!("invalid port \"{v}\": ")).to_owned();
            anyhow::anyhow!(
                "invalid --publish {v:?}: {why} (use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], like 8080:80 or 127.0.0.1:53:53/udp)"
            )
        })?;
        for p in ports {
            out.push(PortRequest {
                host_ip: p.host_ip,
                host_port: p.published,
                container_port: p.target,
                protocol: p.protocol,
            });
        }
    }
    Ok(out)
}

/// `-P`: every port the image exposes, on an ephemeral host port.
pub fn publish_all(exposed: &[ExposedPort]) -> Vec<PortRequest> {
    exposed
        .iter()
        .map(|e| PortRequest {
            host_ip: None,
            host_port: None,
            container_port: u32::from(e.port),
            protocol: e.protocol.clone(),
        })
        .collect()
}

/// `--add-host NAME:ADDR` or `NAME=ADDR` (`ADDR` may be `host-gateway`
/// or a bracketed IPv6 address).
pub fn parse_add_host(values: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| {
            let (name, addr) = v
                .split_once('=')
                .or_else(|| v.split_once(':'))
                .filter(|(n, a)| !n.is_empty() && !a.is_empty())
                .with_context(|| format!("invalid --add-host {v:?}: expected NAME:ADDRESS"))?;
            Ok((name.to_owned(), addr.to_owned()))
        })
        .collect()
}

/// What was made for the container, undone by [`Prepared::release`] if
/// the runtime then fails to create it.
pub struct Prepared {
    /// The network crate, when the container has an endpoint.
    pub net: Option<Net>,
}

impl Prepared {
    /// Takes the endpoint away (the container was not created).
    pub fn release(&self, id: &str) {
        if let Some(net) = &self.net
            && let Err(e) = net.detach(id)
        {
            tracing::warn!(container = id, error = %e, "removing the networking of a container that was not created");
        }
    }
}

/// The network crate with the DNS servers this binary runs.
pub fn open_net(global: &GlobalOpts, rt: &Runtime) -> Net {
    crate::engine::open_net(&global.root, rt.shim_exe())
}

/// Fills `config.network`, `etc_hosts` and `resolv_conf`; makes the
/// endpoint (namespace, interface, address, ports) for a bridge network,
/// marked running when the container starts right away.
pub fn prepare(
    args: &RunArgs,
    global: &GlobalOpts,
    rt: &Runtime,
    config: &mut ContainerConfig,
    exposed: &[ExposedPort],
    starts: bool,
) -> anyhow::Result<Prepared> {
    let mut ports = parse_publish(&args.publish)?;
    if args.publish_all {
        ports.extend(publish_all(exposed));
    }
    let mode = Mode::parse(
        args.network.as_deref(),
        !args.publish.is_empty() || args.publish_all,
    )?;
    let dns = DnsSettings {
        servers: args.dns.clone(),
        search: args.dns_search.clone(),
        options: args.dns_option.clone(),
    };
    let extra = parse_add_host(&args.add_host)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let user_network = matches!(&mode, Mode::Bridge(n) if n != DEFAULT_NETWORK);
    if !user_network && (!args.network_alias.is_empty() || args.ip.is_some() || args.ip6.is_some())
    {
        bail!(
            "--network-alias, --ip and --ip6 are supported only for containers on user-defined networks (berth network create)"
        );
    }
    if args.mac_address.is_some() && !matches!(&mode, Mode::Bridge(_)) {
        bail!("--mac-address needs a bridge network (--network bridge or a user-defined one)");
    }
    let nothing = Prepared { net: None };
    match mode {
        Mode::None | Mode::Host if !ports.is_empty() => {
            // Docker discards them with a warning on host; on none it has
            // nothing to publish to either.
            eprintln!(
                "WARNING: published ports are discarded when using the {} network mode",
                if mode == Mode::Host { "host" } else { "none" }
            );
            prepare_simple(&mode, config, &extra, &dns, &host_resolv)?;
            Ok(nothing)
        }
        Mode::None | Mode::Host => {
            prepare_simple(&mode, config, &extra, &dns, &host_resolv)?;
            Ok(nothing)
        }
        Mode::Container(name) => {
            if !ports.is_empty() {
                bail!("conflicting options: port publishing and the container network mode");
            }
            if args.hostname.is_some() {
                bail!("conflicting options: --hostname and the container network mode");
            }
            share(rt, &global.root, &name, config)?;
            Ok(nothing)
        }
        Mode::Bridge(name) => {
            let net = open_net(global, rt);
            let network = if name == DEFAULT_NETWORK {
                crate::engine::build_network::default_network(&net)
                    .context("cannot create the default bridge network")?
            } else {
                net.network(&name).map_err(|e| match e.kind() {
                    berth_net::ErrorKind::NotFound => anyhow::anyhow!(
                        "network {name} not found: create it with `berth network create {name}`"
                    ),
                    _ => e.into(),
                })?
            };
            let request = AttachRequest {
                container_id: config.id.clone(),
                container_name: config.name.clone(),
                hostname: config.hostname.clone(),
                networks: vec![JoinRequest {
                    network: network.name.clone(),
                    aliases: args.network_alias.clone(),
                    ipv4_address: args.ip.clone(),
                    ipv6_address: args.ip6.clone(),
                    mac_address: args.mac_address.clone(),
                    ..JoinRequest::default()
                }],
                ports,
                ..AttachRequest::default()
            };
            let ep = net.attach(&request)?;
            let prepared = Prepared {
                net: Some(net.clone()),
            };
            let filled = (|| -> anyhow::Result<()> {
                let ip = ep.attachments.first().map(|a| a.ip);
                let extra = etc::resolve_extra_hosts(&extra, Some(network.gateway))?;
                let hostname = config.effective_hostname();
                config.etc_hosts = Some(etc::hosts(ip.map(|ip| (ip, hostname.as_str())), &extra));
                // The default bridge has no DNS server (as Docker's has
                // none): the host's resolvers.
                let network_dns = (!network.is_default_bridge()).then_some(network.gateway);
                config.resolv_conf = Some(etc::resolv_conf(network_dns, &dns, &host_resolv));
                config.network = Network::Join(ep.netns.clone());
                if starts {
                    net.set_running(&config.id, true)?;
                }
                Ok(())
            })();
            if let Err(e) = filled {
                prepared.release(&config.id);
                return Err(e);
            }
            Ok(prepared)
        }
    }
}

fn prepare_simple(
    mode: &Mode,
    config: &mut ContainerConfig,
    extra: &[(String, String)],
    dns: &DnsSettings,
    host_resolv: &str,
) -> anyhow::Result<()> {
    let extra = etc::resolve_extra_hosts(extra, None)?;
    let custom_dns = !(dns.servers.is_empty() && dns.search.is_empty() && dns.options.is_empty());
    if *mode == Mode::Host {
        config.network = Network::Host;
        if !extra.is_empty() {
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for (name, addr) in &extra {
                hosts.push_str(&format!("{addr}\t{name}\n"));
            }
            config.etc_hosts = Some(hosts);
        }
    } else {
        config.network = Network::None;
        if !extra.is_empty() {
            config.etc_hosts = Some(etc::hosts(None, &extra));
        }
    }
    if custom_dns {
        config.resolv_conf = Some(etc::resolv_conf(None, dns, host_resolv));
    }
    Ok(())
}

/// `--network container:NAME`: that container's namespace, `/etc/hosts`
/// and `/etc/resolv.conf`.
fn share(
    rt: &Runtime,
    root: &Path,
    name: &str,
    config: &mut ContainerConfig,
) -> anyhow::Result<()> {
    let target = rt
        .inspect(name)
        .with_context(|| format!("--network container:{name}: no such container"))?;
    let netns = match Net::open(root).endpoint(&target.config.id)? {
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
            Network::None => bail!(
                "--network container:{name}: {} is not running, and its network namespace lives only while it runs",
                target.config.name
            ),
        },
    };
    config.network = Network::Join(netns);
    config.etc_hosts = target.config.etc_hosts.clone();
    config.resolv_conf = target.config.resolv_conf.clone();
    Ok(())
}

/// Before a created or stopped container starts: its namespace and
/// interfaces made whole (after a reboot), its published ports and names
/// taken back. Nothing for a container without an endpoint.
pub fn before_start(global: &GlobalOpts, rt: &Runtime, id: &str) -> anyhow::Result<()> {
    let net = open_net(global, rt);
    if net.endpoint(id)?.is_none() {
        return Ok(());
    }
    net.ensure(id)?;
    net.set_running(id, true)?;
    Ok(())
}

/// After a start that failed: the ports go back.
pub fn start_failed(global: &GlobalOpts, rt: &Runtime, id: &str) {
    let net = open_net(global, rt);
    if let Ok(Some(_)) = net.endpoint(id) {
        let _ = net.set_running(id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Vec<PortRequest> {
        parse_publish(&[v.to_owned()]).unwrap()
    }

    fn req(ip: Option<&str>, host: Option<&str>, port: u32, proto: &str) -> PortRequest {
        PortRequest {
            host_ip: ip.map(str::to_owned),
            host_port: host.map(str::to_owned),
            container_port: port,
            protocol: proto.to_owned(),
        }
    }

    #[test]
    fn publish_takes_every_docker_form() {
        assert_eq!(one("8080:80"), [req(None, Some("8080"), 80, "tcp")]);
        assert_eq!(
            one("127.0.0.1:8080:80/udp"),
            [req(Some("127.0.0.1"), Some("8080"), 80, "udp")]
        );
        assert_eq!(one("80"), [req(None, None, 80, "tcp")]);
        assert_eq!(
            one("127.0.0.1::80"),
            [req(Some("127.0.0.1"), None, 80, "tcp")]
        );
        assert_eq!(
            one("8000-8001:80-81"),
            [
                req(None, Some("8000"), 80, "tcp"),
                req(None, Some("8001"), 81, "tcp")
            ]
        );
        // A host range for one container port: any free port of it.
        assert_eq!(
            one("8000-8010:80"),
            [req(None, Some("8000-8010"), 80, "tcp")]
        );
        for bad in [
            "",
            "x:80",
            "8080:",
            "1.2.3:80:80",
            "80/icmp",
            "8000-8002:80-81",
        ] {
            assert!(
                parse_publish(&[bad.to_owned()]).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn publish_all_uses_the_exposed_ports_on_ephemeral_host_ports() {
        let exposed = [
            ExposedPort {
                port: 80,
                protocol: "tcp".into(),
            },
            ExposedPort {
                port: 53,
                protocol: "udp".into(),
            },
        ];
        assert_eq!(
            publish_all(&exposed),
            [req(None, None, 80, "tcp"), req(None, None, 53, "udp")]
        );
    }

    #[test]
    fn network_modes() {
        assert_eq!(Mode::parse(None, false).unwrap(), Mode::None);
        assert_eq!(
            Mode::parse(None, true).unwrap(),
            Mode::Bridge("bridge".into())
        );
        assert_eq!(Mode::parse(Some("host"), true).unwrap(), Mode::Host);
        assert_eq!(
            Mode::parse(Some("mynet"), false).unwrap(),
            Mode::Bridge("mynet".into())
        );
        assert_eq!(
            Mode::parse(Some("container:db"), false).unwrap(),
            Mode::Container("db".into())
        );
        assert!(Mode::parse(Some("container:"), false).is_err());
    }

    #[test]
    fn add_host_takes_colon_and_equals() {
        assert_eq!(
            parse_add_host(&[
                "db:10.0.0.2".into(),
                "gw=host-gateway".into(),
                "v6:[::1]".into()
            ])
            .unwrap(),
            [
                ("db".to_owned(), "10.0.0.2".to_owned()),
                ("gw".to_owned(), "host-gateway".to_owned()),
                ("v6".to_owned(), "[::1]".to_owned())
            ]
        );
        assert!(parse_add_host(&["nohost".into()]).is_err());
    }
}
