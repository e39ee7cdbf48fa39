//! The network, `/etc/hosts`, `/etc/resolv.conf` and privileges of RUN
//! containers, as BuildKit gives them.
//!
//! [`RunNetworks`] is the seam to bridge networks: this crate does not
//! depend on `berth-net` (ARCHITECTURE.md), the binary wires an
//! implementation in with [`crate::Builder::with_run_networks`]. Without
//! one, the default network of RUN means none.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use berth_spec::dockerfile::{NetworkMode, Run, SecurityMode};

use crate::request::{BuildNetwork, BuildRequest, ExtraHost, HostAddress};

/// Why a [`RunNetworks`] call failed, as its implementation words it.
pub type NetworkFailure = Box<dyn std::error::Error + Send + Sync>;

/// Attaches RUN containers to bridge networks. For each RUN step on a
/// bridge the builder calls `attach` before creating the container (with
/// the id it will have) and `detach` once the container is removed,
/// however the step ended (success, failure, cancel, a panic of the
/// stage's thread). Called from several stage threads at once.
pub trait RunNetworks: Send + Sync + std::fmt::Debug {
    /// Makes a network namespace for `container_id` with an interface on
    /// `network` (`None`: the builder's default network, a bridge with
    /// egress) and returns it.
    fn attach(
        &self,
        container_id: &str,
        container_name: &str,
        network: Option<&str>,
    ) -> Result<RunAttachment, NetworkFailure>;

    /// Removes what `attach` made. Nothing to do is no error.
    fn detach(&self, container_id: &str) -> Result<(), NetworkFailure>;

    /// Whether `container_id` has what `attach` made (the leftover sweep
    /// counts only those it releases: a RUN container's shim releases its
    /// endpoint itself when it removes a container whose builder died).
    fn is_attached(&self, container_id: &str) -> Result<bool, NetworkFailure>;
}

/// A RUN container's place on a bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAttachment {
    /// The namespace the container joins.
    pub netns: PathBuf,
    /// The network's gateway: what `host-gateway` in extra hosts means.
    pub gateway: IpAddr,
    /// The container's `/etc/resolv.conf` when the network has its own
    /// DNS server; `None`: the host's, as for every other RUN.
    pub resolv_conf: Option<String>,
}

/// The network one RUN step gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepNetwork {
    None,
    Host,
    /// A bridge through [`RunNetworks`] (`None`: its default network).
    Bridge(Option<String>),
}

impl StepNetwork {
    /// The step's `--network`, else the build's. `default` is a bridge
    /// only when there are [`RunNetworks`] to attach to.
    pub fn of(run: Option<NetworkMode>, build: &BuildNetwork, wired: bool) -> StepNetwork {
        match run {
            Some(NetworkMode::None) => StepNetwork::None,
            Some(NetworkMode::Host) => StepNetwork::Host,
            Some(NetworkMode::Default) | None => match build {
                BuildNetwork::Default if wired => StepNetwork::Bridge(None),
                BuildNetwork::Default | BuildNetwork::None => StepNetwork::None,
                BuildNetwork::Host => StepNetwork::Host,
                BuildNetwork::Named(n) => StepNetwork::Bridge(Some(n.clone())),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            StepNetwork::None => "none".to_owned(),
            StepNetwork::Host => "host".to_owned(),
            StepNetwork::Bridge(None) => "default".to_owned(),
            StepNetwork::Bridge(Some(n)) => n.clone(),
        }
    }
}

/// BuildKit's rule: `RUN --security=insecure` needs the
/// `security.insecure` entitlement, `RUN --network=host` the
/// `network.host` one (granted by asking for the host network for the
/// whole build). The message says how to grant it.
pub(crate) fn check_entitlements(run: &Run, request: &BuildRequest) -> Result<(), String> {
    let granted = request.entitlements;
    if run.security == Some(SecurityMode::Insecure) && !granted.security_insecure {
        return Err(
            "--security=insecure needs the security.insecure entitlement: pass `--allow security.insecure` to berth build (compose: build.privileged: true or build.entitlements: [security.insecure])"
                .to_owned(),
        );
    }
    if run.network == Some(NetworkMode::Host)
        && !granted.network_host
        && request.network != BuildNetwork::Host
    {
        return Err(
            "--network=host needs the network.host entitlement: pass `--allow network.host` (or `--network host`) to berth build (compose: build.entitlements: [network.host] or build.network: host)"
                .to_owned(),
        );
    }
    Ok(())
}

/// BuildKit's `/etc/hosts` of a RUN container: localhost with the
/// sandbox's host name, then the extra hosts. `gateway` is the bridge's,
/// for `host-gateway` (none on the host's network or none).
pub(crate) fn hosts_file(
    extra: &[ExtraHost],
    gateway: Option<IpAddr>,
    network: &StepNetwork,
) -> Result<String, String> {
    let mut s = String::from(
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    for host in extra {
        let ip = match (&host.address, gateway) {
            (HostAddress::Ip(ip), _) => *ip,
            (HostAddress::HostGateway, Some(gw)) => gw,
            (HostAddress::HostGateway, None) => {
                return Err(format!(
                    "extra host {}:host-gateway needs the RUN step on a bridge network, and it runs on the {} network; use --network default (or a named network), or give the address",
                    host.name,
                    network.describe()
                ));
            }
        };
        s.push_str(&format!("{ip}\t{}\n", host.name));
    }
    Ok(s)
}

/// Docker's resolvers when the host's are all loopback ones.
const FALLBACK_NAMESERVERS: [&str; 4] = [
    "8.8.8.8",
    "8.8.4.4",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
];

/// The `/etc/resolv.conf` of a RUN container off the host's network, as
/// BuildKit writes it: the host's file (systemd-resolved's upstream list,
/// `systemd_upstream`, when the host's only server is its 127.0.0.53
/// stub), without loopback nameservers, which the container could not
/// reach; Docker's public resolvers when none is left.
pub(crate) fn resolv_conf(host: &str, systemd_upstream: Option<&str>) -> String {
    let servers = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("nameserver"))
                    .then(|| w.next().map(str::to_owned))
                    .flatten()
            })
            .collect()
    };
    let is_loopback = |s: &str| {
        s.split('%')
            .next()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback())
    };
    let only_stub = {
        let s = servers(host);
        !s.is_empty() && s.iter().all(|s| s == "127.0.0.53")
    };
    let source = match systemd_upstream {
        Some(upstream) if only_stub => upstream,
        _ => host,
    };
    let mut out = String::new();
    let mut kept = 0;
    for line in source.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            if words.next().is_some_and(is_loopback) {
                continue;
            }
            kept += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if kept == 0 {
        for ns in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    }
    out
}

/// Detaches a RUN container from its network when dropped: declared
/// before the container's own guard, so the container is gone first.
pub(crate) struct AttachedGuard {
    pub networks: Arc<dyn RunNetworks>,
    pub container_id: String,
}

impl Drop for AttachedGuard {
    fn drop(&mut self) {
        if let Err(e) = self.networks.detach(&self.container_id) {
            tracing::warn!(container.id = %self.container_id, error = %e,
                "cannot detach a build container from its network");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, addr: &str) -> ExtraHost {
        ExtraHost::new(name, addr).unwrap()
    }

    #[test]
    fn step_network_takes_the_step_then_the_build() {
        let of = StepNetwork::of;
        assert_eq!(
            of(None, &BuildNetwork::Default, true),
            StepNetwork::Bridge(None)
        );
        // No networks wired: default means none.
        assert_eq!(of(None, &BuildNetwork::Default, false), StepNetwork::None);
        assert_eq!(
            of(Some(NetworkMode::Default), &BuildNetwork::Host, true),
            StepNetwork::Host
        );
        assert_eq!(
            of(Some(NetworkMode::None), &BuildNetwork::Default, true),
            StepNetwork::None
        );
        assert_eq!(
            of(None, &BuildNetwork::Named("n1".into()), false),
            StepNetwork::Bridge(Some("n1".into()))
        );
    }

    #[test]
    fn hosts_file_is_buildkits_with_the_extra_hosts() {
        let extra = [
            host("db", "10.0.0.9"),
            host("v6", "[2001:db8::5]"),
            host("gw", "host-gateway"),
        ];
        let gw: IpAddr = "172.17.0.1".parse().unwrap();
        assert_eq!(
            hosts_file(&extra, Some(gw), &StepNetwork::Bridge(None)).unwrap(),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.0.0.9\tdb\n2001:db8::5\tv6\n172.17.0.1\tgw\n"
        );
        let e = hosts_file(&extra, None, &StepNetwork::None).unwrap_err();
        assert!(
            e.contains("gw:host-gateway") && e.contains("none network"),
            "{e}"
        );
    }

    #[test]
    fn extra_hosts_are_checked() {
        assert_eq!(
            host("a", "::1").address,
            HostAddress::Ip("::1".parse().unwrap())
        );
        assert_eq!(host("a", "host-gateway").address, HostAddress::HostGateway);
        for (name, addr) in [
            ("a", "nope"),
            ("", "1.2.3.4"),
            ("a b", "1.2.3.4"),
            ("a", "[1.2.3.4"),
        ] {
            assert!(ExtraHost::new(name, addr).is_err(), "{name:?} {addr:?}");
        }
    }

    #[test]
    fn resolv_conf_drops_loopback_servers_as_buildkit_does() {
        let host = "# generated\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver ::1\nsearch corp.example\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, None),
            "# generated\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
        // systemd-resolved's stub: its upstream list instead.
        let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n";
        assert_eq!(
            resolv_conf(stub, Some("nameserver 192.0.2.53\n")),
            "nameserver 192.0.2.53\n"
        );
        // Nothing reachable left: Docker's public resolvers.
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\nsearch lan\n", None),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n\
             nameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"
        );
    }

    fn run(text: &str) -> Run {
        let df = berth_spec::dockerfile::Dockerfile::parse(
            &format!("FROM scratch\n{text}\n"),
            std::path::Path::new("Dockerfile"),
        )
        .unwrap();
        match &df.stages[0].commands[0].instruction {
            berth_spec::dockerfile::Instruction::Run(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn insecure_and_host_steps_need_their_entitlements() {
        let mut request = BuildRequest::default();
        let insecure = run("RUN --security=insecure true");
        let host_net = run("RUN --network=host true");
        let e = check_entitlements(&insecure, &request).unwrap_err();
        assert!(e.contains("--allow security.insecure"), "{e}");
        let e = check_entitlements(&host_net, &request).unwrap_err();
        assert!(e.contains("--allow network.host"), "{e}");
        assert!(check_entitlements(&run("RUN --security=sandbox true"), &request).is_ok());
        request.entitlements.security_insecure = true;
        assert!(check_entitlements(&insecure, &request).is_ok());
        // The host network asked for the whole build grants it.
        request.network = BuildNetwork::Host;
        assert!(check_entitlements(&host_net, &request).is_ok());
        request.network = BuildNetwork::Default;
        request.entitlements.network_host = true;
        assert!(check_entitlements(&host_net, &request).is_ok());
    }
}
