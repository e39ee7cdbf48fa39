//! [`VolumeStore`]: named volumes as folders, `<root>/volumes/<name>/_data`
//! (Docker's `local` driver layout) with `volume.json` holding the name and
//! labels. A container mounts a volume as a bind of its `_data`.
//!
//! Unlike Docker, the image's content at the mount point is not copied into
//! a new empty volume (`nocopy` is what berth always does); that is for the
//! issue that brings image `VOLUME`s.

use std::path::{Path, PathBuf};

use berth_reconcilers::container::VolumeSpec;
use berth_reconcilers::observed::ObservedVolume;
use berth_reconcilers::{BackendError, ErrorKind, VolumeStore};
use berth_runtime::Runtime;

use super::records::{self, Record};
use super::runtime::container_configs;

const FILE: &str = "volume.json";

#[derive(Clone)]
pub struct Volumes {
    dir: PathBuf,
    runtime: Runtime,
}

impl Volumes {
    pub fn new(root: &Path, runtime: Runtime) -> Self {
        Volumes {
            dir: root.join("volumes"),
            runtime,
        }
    }

    /// The host folder a container binds for volume `name` (existing or
    /// not).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// The data folder of an existing volume, for a container's mount.
    pub fn mount_source(&self, name: &str) -> Result<PathBuf, BackendError> {
        records::existing(&self.dir, FILE, "volume", name)?;
        Ok(self.data_dir(name))
    }
}

impl VolumeStore for Volumes {
    fn list(&self) -> Result<Vec<ObservedVolume>, BackendError> {
        Ok(records::list(&self.dir, FILE)?
            .into_iter()
            .map(|r| ObservedVolume {
                name: r.name,
                labels: r.labels,
            })
            .collect())
    }

    fn create(&self, spec: &VolumeSpec) -> Result<(), BackendError> {
        records::check_name("volume", &spec.name)?;
        if spec.driver.as_deref().is_some_and(|d| d != "local") || !spec.driver_opts.is_empty() {
            return Err(BackendError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "volume {}: only the local driver without options is supported",
                    spec.name
                ),
            ));
        }
        let record = Record {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
        };
        records::create(&self.dir, FILE, &record, |folder| {
            let data = folder.join("_data");
            std::fs::create_dir(&data).map_err(|e| super::error::io("create", &data, e))
        })
    }

    /// Refuses while any container, in any state, binds the volume's data
    /// (found by reading every container's config: one small file each).
    fn remove(&self, name: &str) -> Result<(), BackendError> {
        let folder = records::existing(&self.dir, FILE, "volume", name)?;
        let data = self.data_dir(name);
        let user = container_configs(&self.runtime).into_iter().find(|c| {
            c.mounts.iter().any(|m| match m {
                berth_runtime::Mount::Bind { source, .. } => source.starts_with(&data),
                berth_runtime::Mount::Tmpfs { .. } => false,
            })
        });
        if let Some(c) = user {
            return Err(BackendError::failed_precondition(format!(
                "volume {name} is in use by container {} ({})",
                c.name, c.id
            )));
        }
        records::remove(&folder)
    }
}
