//! The reconciler's traits ([`berth_reconcilers::traits`]) over the real
//! backends: containers on [`berth_runtime::Runtime`], images from the
//! [`berth_image::Store`], named volumes as folders under the state root,
//! and the one kind of network berth can honestly provide today.
//!
//! Everything lives under one state root (`--root`, `/var/lib/berth`):
//! the image store's and the runtime's folders, plus `volumes/<name>/`
//! ([`Volumes`]) and `networks/<name>/` ([`Networks`]).
//!
//! What is not there yet, and fails instead of being faked: registry pulls
//! and builds ([`Images`] returns `Unavailable`), networks other than a
//! project's implicit `default` one (`Unavailable`), and the container
//! features the runtime lacks (ports, dns, tty...: `create` fails with
//! `InvalidArgument` naming them, see `translate`).

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
        Ok(Engine {
            containers: Containers::new(runtime.clone(), store.clone(), volumes.clone()),
            images: Images::new(store),
            volumes,
            networks: Networks::new(root, runtime),
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
