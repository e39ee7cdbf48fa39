//! [`VolumeStore`]: named volumes as folders, `<root>/volumes/<name>/_data`
//! (Docker's `local` driver layout) with `volume.json` holding the name and
//! labels. A container mounts a volume as a bind of its `_data`; a new,
//! empty volume first receives what the image has at the mount point
//! (Docker's copy-up, done by the runtime; `nocopy: true` turns it off).
//!
//! Anonymous volumes (`volumes: [/data]` and the image's `VOLUME`s) are
//! volumes too, with a random 64-hex name and labels naming the replica
//! they belong to (project, service, number, target). A replica's new
//! container takes over its predecessor's (so data survives a recreate, as
//! Compose does it); they go only with `down -v` (they carry the project
//! label) or `rm -v`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_reconcilers::ContainerSpec;
use berth_reconcilers::container::{VolumeSpec, labels};
use berth_reconcilers::observed::ObservedVolume;
use berth_reconcilers::{BackendError, ErrorKind, VolumeStore};
use berth_runtime::{ContainerConfig, Runtime};

use super::error::io;
use super::records::{self, Record};
use super::runtime::container_configs;

const FILE: &str = "volume.json";

/// Docker's label on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
/// The container path an anonymous volume is mounted at.
pub const TARGET_LABEL: &str = "berth.volume.target";

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

    /// The anonymous volume for each of `targets` of replica `spec`, by
    /// target: the replica's own from an earlier container when there is
    /// one that no other container uses, else a new one.
    pub fn anonymous_for(
        &self,
        spec: &ContainerSpec,
        targets: &[String],
    ) -> Result<BTreeMap<String, String>, BackendError> {
        if targets.is_empty() {
            return Ok(BTreeMap::new());
        }
        let existing = records::list(&self.dir, FILE)?;
        let configs = container_configs(&self.runtime);
        let number = spec.number.to_string();
        let mut out = BTreeMap::new();
        for target in targets {
            let wanted = anonymous_labels(spec, &number, target);
            let reusable = existing.iter().find(|r| {
                wanted.iter().all(|(k, v)| r.labels.get(k) == Some(v))
                    && !configs
                        .iter()
                        .any(|c| c.name != spec.name && binds(c, &self.data_dir(&r.name)))
            });
            let name = match reusable {
                Some(r) => r.name.clone(),
                None => {
                    let name = berth_runtime::new_id();
                    self.create(&VolumeSpec {
                        name: name.clone(),
                        driver: None,
                        driver_opts: BTreeMap::new(),
                        labels: wanted,
                    })?;
                    tracing::info!(service = %spec.service, container = %spec.name, volume = %name, %target, "created anonymous volume");
                    name
                }
            };
            out.insert(target.clone(), name);
        }
        Ok(out)
    }

    /// A start-first replacement's anonymous volumes: those `old` binds at
    /// the same targets, carried over as a stop-first recreate carries
    /// them (the two containers share them while both run, as they share
    /// named volumes). They stay labelled with the old replica's number
    /// until the new container is promoted ([`Volumes::adopt_anonymous`]),
    /// so a failed replacement leaves them the old one's.
    pub fn inherit_anonymous(
        &self,
        old: &ContainerConfig,
        targets: &[String],
    ) -> Result<BTreeMap<String, String>, BackendError> {
        let mut out = BTreeMap::new();
        if targets.is_empty() {
            return Ok(out);
        }
        for r in records::list(&self.dir, FILE)? {
            let target = match r.labels.get(TARGET_LABEL) {
                Some(t) if r.labels.contains_key(ANONYMOUS_LABEL) && targets.contains(t) => {
                    t.clone()
                }
                _ => continue,
            };
            if !out.contains_key(&target) && binds(old, &self.data_dir(&r.name)) {
                tracing::info!(from = %old.name, volume = %r.name, %target, "anonymous volume carried over");
                out.insert(target, r.name);
            }
        }
        Ok(out)
    }

    /// Labels the anonymous volumes `config` binds with its replica
    /// `number`: a promoted replacement's, so later replacements of that
    /// replica find them.
    pub fn adopt_anonymous(
        &self,
        config: &ContainerConfig,
        number: &str,
    ) -> Result<(), BackendError> {
        for mut r in records::list(&self.dir, FILE)? {
            if !r.labels.contains_key(ANONYMOUS_LABEL)
                || r.labels.get(labels::NUMBER).map(String::as_str) == Some(number)
                || !binds(config, &self.data_dir(&r.name))
            {
                continue;
            }
            r.labels
                .insert(labels::NUMBER.to_string(), number.to_owned());
            let file = self.dir.join(&r.name).join(FILE);
            let bytes = serde_json::to_vec_pretty(&r)
                .map_err(|e| BackendError::new(ErrorKind::Internal, e.to_string()))?;
            let tmp = file.with_extension("json.tmp");
            std::fs::write(&tmp, bytes).map_err(|e| io("write", &tmp, e))?;
            std::fs::rename(&tmp, &file).map_err(|e| io("rename into place", &file, e))?;
        }
        Ok(())
    }

    /// Removes the anonymous volumes `config` mounts (`rm -v`), leaving
    /// named ones; a volume another container still uses stays.
    pub fn remove_anonymous_of(
        &self,
        config: &ContainerConfig,
    ) -> Result<Vec<String>, BackendError> {
        let mut removed = Vec::new();
        for r in records::list(&self.dir, FILE)? {
            if !r.labels.contains_key(ANONYMOUS_LABEL) || !binds(config, &self.data_dir(&r.name)) {
                continue;
            }
            match self.remove(&r.name) {
                Ok(()) => removed.push(r.name),
                Err(e) if e.kind() == ErrorKind::FailedPrecondition => {
                    tracing::warn!(volume = %r.name, error = %e, "anonymous volume still in use: kept");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// The labels that tie an anonymous volume to its replica and target.
fn anonymous_labels(spec: &ContainerSpec, number: &str, target: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::PROJECT.to_string(), spec.project.clone()),
        (labels::SERVICE.to_string(), spec.service.clone()),
        (labels::NUMBER.to_string(), number.to_string()),
        (ANONYMOUS_LABEL.to_string(), String::new()),
        (TARGET_LABEL.to_string(), target.to_string()),
    ])
}

/// Whether `config` binds `data` (or a folder in it).
fn binds(config: &ContainerConfig, data: &Path) -> bool {
    config.mounts.iter().any(|m| match m {
        berth_runtime::Mount::Bind { source, .. } => source.starts_with(data),
        berth_runtime::Mount::Tmpfs { .. } | berth_runtime::Mount::File { .. } => false,
    })
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
        let user = container_configs(&self.runtime)
            .into_iter()
            .find(|c| binds(c, &data));
        if let Some(c) = user {
            return Err(BackendError::failed_precondition(format!(
                "volume {name} is in use by container {} ({})",
                c.name, c.id
            )));
        }
        records::remove(&folder)
    }
}
