//! The reconciler's traits ([`berth_reconcilers::traits`]) over the real
//! backends: containers on [`berth_runtime::Runtime`], images from the
//! [`berth_image::Store`], named volumes as folders under the state root,
//! bridge networks from [`berth_net::Net`] (containers join them in
//! `create`, see `attach`).
//!
//! Everything lives under one state root (`--root`, `/var/lib/berth`):
//! the image store's and the runtime's folders, plus `volumes/<name>/`
//! ([`Volumes`]) and the network crate's `networks/`, `endpoints/`,
//! `netns/` ([`Networks`]).
//!
//! What is not there yet, and fails instead of being faked: registry pulls
//! ([`Images`] returns `Unavailable`), and the container
//! features the runtime lacks (capabilities, devices...: `create` fails
//! with `InvalidArgument` naming them, see `translate`).

mod attach;
pub mod build_cache;
mod build_inputs;
pub mod build_network;
mod build_output;
pub mod build_request;
mod error;
pub mod file_objects;
mod images;
mod networks;
mod options;
mod records;
mod runtime;
mod sidecar;
mod translate;
mod volumes;

use std::path::Path;

use berth_image::Store;
use berth_reconcilers::{BackendError, Backends};
use berth_runtime::Runtime;

pub use build_output::{BuildOutput, PlainBuildOutput};
pub use images::Images;
pub use networks::Networks;
pub use runtime::Containers;
pub use volumes::Volumes;

/// Annotation listing the networks a container's spec attached it to
/// (comma separated), so a network's removal can tell it is in use.
pub const NETWORKS_ANNOTATION: &str = "berth.networks";

/// The four adapters over one state root.
pub struct Engine {
    pub containers: Containers,
    pub images: Images,
    pub volumes: Volumes,
    pub networks: Networks,
}

impl Engine {
    /// Opens the image store under `root` and uses `runtime` (whose state
    /// root should be the same folder) for containers.
    pub fn open(root: &Path, runtime: Runtime) -> Result<Self, BackendError> {
        let store = Store::open(root).map_err(error::from_image)?;
        let volumes = Volumes::new(root, runtime.clone());
        let net = open_net(root, runtime.shim_exe());
        restore_networks_once(root, &net, &runtime);
        Ok(Engine {
            containers: Containers::new(
                runtime.clone(),
                store.clone(),
                volumes.clone(),
                net.clone(),
            ),
            images: Images::new(store, runtime.clone()),
            volumes,
            networks: Networks::new(net, runtime),
        })
    }

    pub fn backends(&self) -> Backends<'_> {
        Backends {
            runtime: &self.containers,
            images: &self.images,
            volumes: &self.volumes,
            networks: &self.networks,
        }
    }
}

/// The network crate over `root`, each network's DNS server run as `exe
/// dns` (this binary).
pub fn open_net(root: &Path, exe: &Path) -> berth_net::Net {
    berth_net::Net::open(root).with_dns(std::sync::Arc::new(BerthDns {
        exe: exe.to_owned(),
    }))
}

/// After a reboot (or someone deleting a bridge or berth's nftables
/// table), running containers' published ports and names work again as
/// soon as any berth process opens the state: the agent at its start,
/// every compose verb. The networking of containers removed behind
/// berth's back (a shim's `--rm`) is released then too. Once per root
/// and process; a failure is logged, not fatal (the verb at hand may not
/// need networks).
fn restore_networks_once(root: &Path, net: &berth_net::Net, runtime: &Runtime) {
    static DONE: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if done.iter().any(|r| r == root) {
        return;
    }
    done.push(root.to_owned());
    // A minute is far longer than any create takes between its attach and
    // the runtime's create.
    let exists = |id: &str| runtime.inspect(id).is_ok();
    if let Err(e) = net.drop_stale_endpoints(&exists, std::time::Duration::from_secs(60)) {
        tracing::warn!(root = %root.display(), error = %e, "cannot release the networking of removed containers");
    }
    match net.restore_if_missing() {
        Ok(true) => tracing::info!(root = %root.display(), "networks restored"),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(root = %root.display(), error = %e, "cannot restore networks; published ports may not answer")
        }
    }
}

/// Each network's DNS server: a detached `berth dns` process of the same
/// binary that runs the shims (`berth_net::dns`).
struct BerthDns {
    exe: std::path::PathBuf,
}

impl berth_net::DnsControl for BerthDns {
    fn ensure_running(&self, dir: &Path) -> Result<(), String> {
        berth_net::dns::spawn(dir, &self.exe)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn stop(&self, dir: &Path) -> Result<(), String> {
        berth_net::dns::stop(dir)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
