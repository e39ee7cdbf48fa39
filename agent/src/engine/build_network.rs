//! Bridge networks for the builder's RUN steps ([`berth_build::RunNetworks`]
//! over [`berth_net::Net`]), and berth's default `bridge` network, which
//! `berth run -p` and builds share.
//!
//! A RUN step on the `default` network joins the default bridge (`berth0`,
//! made on first use), as BuildKit on dockerd puts it on docker0: egress
//! through the host's NAT, the host's resolvers. `berth build --network
//! NAME` (compose `build.network: NAME`) joins a network made with `berth
//! network create`, whose DNS server then answers the step.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_build::{NetworkFailure, RunAttachment, RunNetworks};
use berth_net::etc::{self, DnsSettings};
use berth_net::{AttachRequest, JoinRequest, Net, NetworkRequest, NetworkState};

/// The default network's name and bridge interface.
pub const DEFAULT_NETWORK: &str = "bridge";
const DEFAULT_BRIDGE_IFNAME: &str = "berth0";

/// Berth's default network, created the first time a container asks.
pub fn default_network(net: &Net) -> Result<NetworkState, berth_net::Error> {
    if let Ok(n) = net.network(DEFAULT_NETWORK) {
        return Ok(n);
    }
    let request = NetworkRequest {
        name: DEFAULT_NETWORK.to_owned(),
        driver_opts: BTreeMap::from([
            (berth_net::DEFAULT_BRIDGE.to_owned(), "true".to_owned()),
            (
                "com.docker.network.bridge.name".to_owned(),
                DEFAULT_BRIDGE_IFNAME.to_owned(),
            ),
        ]),
        ..Default::default()
    };
    match net.create_network(&request) {
        Ok(n) => Ok(n),
        // Another process made it meanwhile.
        Err(e) if e.kind() == berth_net::ErrorKind::AlreadyExists => net.network(DEFAULT_NETWORK),
        Err(e) => Err(e),
    }
}

/// RUN containers on berth's bridge networks.
#[derive(Debug)]
pub struct BuildNetworks {
    net: Net,
    /// Bridges and the nftables table are checked (after a reboot, a
    /// flush) before the first attach only.
    restored: AtomicBool,
}

impl BuildNetworks {
    /// Over the networks of the state root `root`, their DNS servers run
    /// as `exe dns`.
    pub fn open(root: &Path, exe: &Path) -> Arc<dyn RunNetworks> {
        Arc::new(BuildNetworks {
            net: super::open_net(root, exe),
            restored: AtomicBool::new(false),
        })
    }

    fn network(&self, name: Option<&str>) -> Result<NetworkState, NetworkFailure> {
        let Some(name) = name else {
            return Ok(default_network(&self.net)?);
        };
        self.net.network(name).map_err(|e| match e.kind() {
            berth_net::ErrorKind::NotFound => format!(
                "network {name} not found: create it with `berth network create {name}`, or build with --network default"
            )
            .into(),
            _ => e.into(),
        })
    }
}

impl RunNetworks for BuildNetworks {
    fn attach(
        &self,
        container_id: &str,
        container_name: &str,
        network: Option<&str>,
    ) -> Result<RunAttachment, NetworkFailure> {
        if !self.restored.swap(true, Ordering::Relaxed)
            && let Err(e) = self.net.restore_if_missing()
        {
            tracing::warn!(error = %e, "cannot restore networks; the build's RUN steps may have no way out");
        }
        let network = self.network(network)?;
        let endpoint = self.net.attach(&AttachRequest {
            container_id: container_id.to_owned(),
            container_name: container_name.to_owned(),
            hostname: Some("buildkitsandbox".to_owned()),
            networks: vec![JoinRequest {
                network: network.name.clone(),
                ..JoinRequest::default()
            }],
            ..AttachRequest::default()
        })?;
        // A user network's DNS server answers for its containers; the
        // default bridge has none (as Docker's), the builder then gives
        // the host's resolvers.
        let resolv_conf = (!network.is_default_bridge()).then(|| {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            etc::resolv_conf(Some(network.gateway), &DnsSettings::default(), &host)
        });
        tracing::debug!(container.id = container_id, network = %network.name, "build container attached");
        Ok(RunAttachment {
            netns: endpoint.netns,
            gateway: network.gateway.into(),
            resolv_conf,
        })
    }

    fn detach(&self, container_id: &str) -> Result<(), NetworkFailure> {
        Ok(self.net.detach(container_id)?)
    }

    fn is_attached(&self, container_id: &str) -> Result<bool, NetworkFailure> {
        Ok(self.net.endpoint(container_id)?.is_some())
    }
}
