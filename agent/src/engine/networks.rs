//! [`NetworkStore`] over [`berth_net::Net`]: a Linux bridge per network,
//! addressing from Docker's pools or `ipam.config`, `internal`, and the
//! bridge driver options Docker honours (see `berth_net`). Containers join
//! in `Containers::create` (`attach`).

use berth_net::{Net, NetworkRequest, ipam::IpamRequest};
use berth_reconcilers::container::NetworkSpec;
use berth_reconcilers::observed::ObservedNetwork;
use berth_reconcilers::{BackendError, ErrorKind, NetworkStore};
use berth_runtime::Runtime;

pub struct Networks {
    net: Net,
    runtime: Runtime,
}

impl Networks {
    pub fn new(net: Net, runtime: Runtime) -> Self {
        Networks { net, runtime }
    }
}

/// The network crate's errors in the reconciler's terms.
pub fn from_net(e: berth_net::Error) -> BackendError {
    use berth_net::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::AlreadyExists => ErrorKind::AlreadyExists,
        K::InvalidInput => ErrorKind::InvalidArgument,
        // A host port, address or subnet someone else holds, or a network
        // still in use: the plan can go on once that changes.
        K::Conflict | K::Exhausted => ErrorKind::FailedPrecondition,
        K::System => ErrorKind::Internal,
    };
    BackendError::new(kind, e.to_string()).with_source(e)
}

impl NetworkStore for Networks {
    fn list(&self) -> Result<Vec<ObservedNetwork>, BackendError> {
        Ok(self
            .net
            .networks()
            .map_err(from_net)?
            .into_iter()
            .map(|n| ObservedNetwork {
                name: n.name,
                labels: n.labels,
            })
            .collect())
    }

    fn create(&self, spec: &NetworkSpec) -> Result<(), BackendError> {
        let request = NetworkRequest {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            driver: spec.driver.clone(),
            driver_opts: spec.driver_opts.clone(),
            internal: spec.internal,
            enable_ipv6: spec.enable_ipv6,
            ipam: spec
                .subnets
                .iter()
                .map(|s| IpamRequest {
                    subnet: s.subnet.clone(),
                    gateway: s.gateway.clone(),
                    ip_range: s.ip_range.clone(),
                })
                .collect(),
        };
        self.net
            .create_network(&request)
            .map(drop)
            .map_err(from_net)
    }

    /// Refused while a running container is attached; created or exited
    /// ones lose their interface on it.
    fn remove(&self, name: &str) -> Result<(), BackendError> {
        let running = |id: &str| {
            self.runtime
                .inspect(id)
                .is_ok_and(|i| i.observed.container_alive && i.observed.status != "created")
        };
        self.net.remove_network(name, &running).map_err(from_net)
    }
}
