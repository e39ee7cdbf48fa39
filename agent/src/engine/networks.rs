//! [`NetworkStore`]: what berth can honestly offer before it has bridges.
//!
//! Every container gets its own network namespace with only `lo`
//! (`Network::None`). A project's implicit `default` network (Compose adds
//! it to every service that names none) is recorded here as a plain
//! record, `<root>/networks/<name>/network.json`, so plans converge; it
//! connects nothing: services of a project cannot reach each other yet.
//! Any other network (declared in `networks:`, a driver, subnets,
//! `internal`) fails with `Unavailable` rather than be faked.

use std::path::{Path, PathBuf};

use berth_reconcilers::container::{NetworkSpec, labels};
use berth_reconcilers::observed::ObservedNetwork;
use berth_reconcilers::{BackendError, NetworkStore};
use berth_runtime::Runtime;

use super::NETWORKS_ANNOTATION;
use super::records::{self, Record};
use super::runtime::container_configs;

const FILE: &str = "network.json";

pub struct Networks {
    dir: PathBuf,
    runtime: Runtime,
}

impl Networks {
    pub fn new(root: &Path, runtime: Runtime) -> Self {
        Networks {
            dir: root.join("networks"),
            runtime,
        }
    }
}

/// A project's implicit `default` network with nothing asked of it.
fn is_plain_default(spec: &NetworkSpec) -> bool {
    spec.labels.get(labels::NETWORK).map(String::as_str) == Some("default")
        && spec.driver.as_deref().is_none_or(|d| d == "bridge")
        && spec.driver_opts.is_empty()
        && spec.subnets.is_empty()
        && !spec.internal
        && !spec.enable_ipv6
}

impl NetworkStore for Networks {
    fn list(&self) -> Result<Vec<ObservedNetwork>, BackendError> {
        Ok(records::list(&self.dir, FILE)?
            .into_iter()
            .map(|r| ObservedNetwork {
                name: r.name,
                labels: r.labels,
            })
            .collect())
    }

    fn create(&self, spec: &NetworkSpec) -> Result<(), BackendError> {
        records::check_name("network", &spec.name)?;
        if !is_plain_default(spec) {
            return Err(BackendError::unavailable(format!(
                "cannot create network {}: networks are not implemented yet \
                 (only a project's implicit default network is, and it isolates each container)",
                spec.name
            )));
        }
        let record = Record {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
        };
        records::create(&self.dir, FILE, &record, |_| Ok(()))
    }

    /// Refuses while a running container's spec named the network.
    fn remove(&self, name: &str) -> Result<(), BackendError> {
        let folder = records::existing(&self.dir, FILE, "network", name)?;
        for c in container_configs(&self.runtime) {
            let attached = c
                .annotations
                .get(NETWORKS_ANNOTATION)
                .is_some_and(|list| list.split(',').any(|n| n == name));
            if attached
                && self
                    .runtime
                    .inspect(&c.id)
                    .is_ok_and(|i| i.observed.container_alive)
            {
                return Err(BackendError::failed_precondition(format!(
                    "network {name} has a running container: {} ({})",
                    c.name, c.id
                )));
            }
        }
        records::remove(&folder)
    }
}
