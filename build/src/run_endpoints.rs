//! Network endpoints of RUN containers whose builder died. A builder
//! killed outright (SIGKILL, a second Ctrl+C) cannot detach its running
//! step's endpoint (network namespace, veth, address); the container's
//! shim removes the container (`CreateOptions::die_with_caller`) but knows
//! nothing of networks. So every attach is recorded first, with the
//! process that made it (`<root>/build/run-endpoints/<container id>`
//! holding `PID:START`), and the record goes with the detach. The leftover
//! sweep (every build, `builder prune`) detaches, through [`RunNetworks`],
//! the recorded endpoints whose builder is gone and whose container does
//! not exist any more; a live builder's record is left alone, since it may
//! be between its attach and its container's create.
//!
//! When the shim removes such a container it releases the endpoint itself
//! (its exit hook, `cli/shim.rs`); what is left then is only the record.
//! The endpoint stays when the shim died too (killed with the builder, a
//! host crash): the sweep's container removal knows nothing of networks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime::OwnerProcess;

use crate::network::{NetworkFailure, RunAttachment, RunNetworks};

/// Suffix of a record being written (renamed into place once complete).
const WRITING: &str = ".tmp";

/// The builder's [`RunNetworks`], with each attachment recorded until it
/// is detached.
#[derive(Debug)]
pub(crate) struct TrackedNetworks {
    inner: Arc<dyn RunNetworks>,
    records: PathBuf,
}

impl TrackedNetworks {
    /// `inner`'s attachments recorded under `records`.
    pub fn new(inner: Arc<dyn RunNetworks>, records: PathBuf) -> TrackedNetworks {
        TrackedNetworks { inner, records }
    }

    fn record(&self, container_id: &str) -> Result<(), NetworkFailure> {
        let owner =
            OwnerProcess::current().ok_or("cannot read this process's start time from /proc")?;
        std::fs::create_dir_all(&self.records)
            .map_err(|e| format!("cannot create {}: {e}", self.records.display()))?;
        let done = self.records.join(container_id);
        let writing = self.records.join(format!("{container_id}{WRITING}"));
        std::fs::write(&writing, owner.to_string())
            .and_then(|()| std::fs::rename(&writing, &done))
            .map_err(|e| {
                format!(
                    "cannot record the build's endpoint in {}: {e}",
                    done.display()
                )
            })?;
        Ok(())
    }

    fn forget(&self, container_id: &str) {
        let path = self.records.join(container_id);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a build endpoint's record");
        }
    }

    /// Detaches the recorded endpoints of builders that are gone, unless
    /// their container still exists (`container_exists`: its shim is still
    /// killing it, or it could not be removed; a later sweep takes it).
    /// Returns how many were released.
    pub fn sweep(&self, container_exists: &dyn Fn(&str) -> bool) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.records) else {
            return 0;
        };
        let mut released = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner_alive = owner_of(&entry.path()).is_some_and(|o| o.is_alive());
            if owner_alive {
                continue;
            }
            if name.ends_with(WRITING) {
                // Its builder died before the attach.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            if container_exists(&name) {
                continue;
            }
            match self.inner.is_attached(&name) {
                Ok(true) => {}
                // Released already (by the container's shim).
                Ok(false) => {
                    self.forget(&name);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(container.id = %name, error = %e,
                        "cannot read the network endpoint of a leftover build container");
                    continue;
                }
            }
            match self.inner.detach(&name) {
                Ok(()) => {
                    tracing::info!(container.id = %name, "released the network endpoint of a leftover build container");
                    self.forget(&name);
                    released += 1;
                }
                Err(e) => tracing::warn!(container.id = %name, error = %e,
                    "cannot release the network endpoint of a leftover build container"),
            }
        }
        released
    }
}

/// The process a record names; `None` for one that cannot be read (only
/// a damaged file: records are renamed into place complete).
fn owner_of(record: &Path) -> Option<OwnerProcess> {
    OwnerProcess::parse(std::fs::read_to_string(record).ok()?.trim())
}

impl RunNetworks for TrackedNetworks {
    fn attach(
        &self,
        container_id: &str,
        container_name: &str,
        network: Option<&str>,
    ) -> Result<RunAttachment, NetworkFailure> {
        // Before the attach: a builder killed during it leaves a record.
        self.record(container_id)?;
        let attached = self.inner.attach(container_id, container_name, network);
        if attached.is_err() {
            self.forget(container_id);
        }
        attached
    }

    fn detach(&self, container_id: &str) -> Result<(), NetworkFailure> {
        self.inner.detach(container_id)?;
        self.forget(container_id);
        Ok(())
    }

    fn is_attached(&self, container_id: &str) -> Result<bool, NetworkFailure> {
        self.inner.is_attached(container_id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use super::*;

    /// Endpoints as a set of container ids.
    #[derive(Debug, Default)]
    struct Endpoints(Mutex<BTreeSet<String>>);

    impl RunNetworks for Endpoints {
        fn attach(
            &self,
            container_id: &str,
            _: &str,
            _: Option<&str>,
        ) -> Result<RunAttachment, NetworkFailure> {
            self.0.lock().unwrap().insert(container_id.to_owned());
            Ok(RunAttachment {
                netns: PathBuf::from("/run/netns/x"),
                gateway: "10.0.0.1".parse().unwrap(),
                resolv_conf: None,
            })
        }

        fn detach(&self, container_id: &str) -> Result<(), NetworkFailure> {
            self.0.lock().unwrap().remove(container_id);
            Ok(())
        }

        fn is_attached(&self, container_id: &str) -> Result<bool, NetworkFailure> {
            Ok(self.0.lock().unwrap().contains(container_id))
        }
    }

    fn ids(e: &Endpoints) -> Vec<String> {
        e.0.lock().unwrap().iter().cloned().collect()
    }

    #[test]
    fn only_endpoints_of_dead_builders_without_a_container_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let endpoints = Arc::new(Endpoints::default());
        let tracked = TrackedNetworks::new(endpoints.clone(), dir.path().join("records"));
        for id in [
            "mine",
            "dead",
            "dead-with-container",
            "detached",
            "released",
        ] {
            tracked.attach(id, id, None).unwrap();
        }
        tracked.detach("detached").unwrap();
        assert!(!dir.path().join("records/detached").exists());
        // Two attachments of a builder that was killed: this pid with a
        // start time it does not have (a pid reused since).
        let dead = OwnerProcess {
            pid: i32::try_from(std::process::id()).unwrap(),
            start_time: u64::MAX,
        };
        for id in ["dead", "dead-with-container", "released"] {
            std::fs::write(dir.path().join("records").join(id), dead.to_string()).unwrap();
        }
        // Its container's shim released it; only the record is left.
        endpoints.detach("released").unwrap();
        // A write cut short by the kill, before its attach.
        std::fs::write(dir.path().join("records/cut.tmp"), dead.to_string()).unwrap();
        let released = tracked.sweep(&|id| id == "dead-with-container");
        assert_eq!(released, 1);
        assert_eq!(ids(&endpoints), ["dead-with-container", "mine"]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("records"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["dead-with-container", "mine"]);
        // Its container gone, the next sweep takes it.
        assert_eq!(tracked.sweep(&|_| false), 1);
        assert_eq!(ids(&endpoints), ["mine"]);
    }
}
