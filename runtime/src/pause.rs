//! `pause` and `unpause`: the cgroup freezer. v1 writes `FROZEN` or
//! `THAWED` to the freezer hierarchy's `freezer.state` (and waits out
//! `FREEZING`); v2 writes `1` or `0` to `cgroup.freeze` and reads
//! `frozen` from `cgroup.events`.
//!
//! A paused container is still running to everyone else (`ps` says
//! `running`, plus `(Paused)` in its status). Signals queue until it is
//! thawed, so `stop` and `kill` thaw it after signalling, as Docker does
//! (on v1 even SIGKILL waits for the thaw).

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::{cgroup_path, v1_mount_point};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

/// Where a container's freezer is.
enum Freezer {
    /// The v1 freezer hierarchy's folder.
    V1(PathBuf),
    /// The unified folder.
    V2(PathBuf),
}

impl Runtime {
    fn freezer(&self, id: &str) -> Option<Freezer> {
        let rel = cgroup_path(id);
        let rel = rel.strip_prefix("/").unwrap_or(&rel).to_owned();
        if self.cgroup_root.join("cgroup.controllers").exists() {
            return Some(Freezer::V2(self.cgroup_root.join(rel)));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        v1_mount_point(&mountinfo, "freezer").map(|m| Freezer::V1(m.join(rel)))
    }

    /// True while the container's cgroup is frozen.
    pub fn is_paused(&self, id: &str) -> bool {
        match self.freezer(id) {
            Some(Freezer::V1(dir)) => fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING")),
            Some(Freezer::V2(dir)) => fs::read_to_string(dir.join("cgroup.events"))
                .is_ok_and(|s| s.lines().any(|l| l.trim() == "frozen 1")),
            None => false,
        }
    }

    /// Freezes every process of a running container.
    pub fn pause(&self, key: &str) -> Result<()> {
        let info = self.inspect(key)?;
        let id = info.config.id.clone();
        if !info.observed.container_alive {
            return Err(Error::InvalidState {
                id,
                status: info.observed.status,
                action: "pause it (it is not running)",
            });
        }
        if self.is_paused(&id) {
            return Err(Error::InvalidState {
                id,
                status: "paused".to_owned(),
                action: "pause it again",
            });
        }
        tracing::debug!(container.id = %id, "freeze");
        self.set_frozen(&id, true)
    }

    /// Thaws a paused container.
    pub fn unpause(&self, key: &str) -> Result<()> {
        let info = self.inspect(key)?;
        let id = info.config.id.clone();
        if !self.is_paused(&id) {
            return Err(Error::InvalidState {
                id,
                status: info.observed.status,
                action: "unpause it (it is not paused)",
            });
        }
        tracing::debug!(container.id = %id, "thaw");
        self.set_frozen(&id, false)
    }

    /// Thaws the container if it is paused; for `stop` and `kill`, whose
    /// signals wait for the thaw. Errors are ignored: a container whose
    /// cgroup is gone is not frozen.
    pub(crate) fn thaw_if_paused(&self, id: &str) {
        if self.is_paused(id) {
            let _ = self.set_frozen(id, false);
        }
    }

    fn set_frozen(&self, id: &str, frozen: bool) -> Result<()> {
        let (path, value) = match self.freezer(id) {
            Some(Freezer::V1(dir)) => (
                dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            Some(Freezer::V2(dir)) => (dir.join("cgroup.freeze"), if frozen { "1" } else { "0" }),
            None => {
                return Err(Error::Cgroup {
                    action: "freeze",
                    path: id.to_owned(),
                    reason: "this machine has no cgroup freezer".to_owned(),
                });
            }
        };
        fs::write(&path, value).map_err(|e| Error::io("write", &path, e))?;
        // v1 passes through FREEZING while tasks stop; v2 reports frozen
        // in cgroup.events once done. Wait (briefly) for the final state.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.is_paused(id) != frozen || self.freezing(id) {
            if Instant::now() >= deadline {
                return Err(Error::Cgroup {
                    action: if frozen { "freeze" } else { "thaw" },
                    path: path.display().to_string(),
                    reason: "the freezer did not settle within 5 s".to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    fn freezing(&self, id: &str) -> bool {
        match self.freezer(id) {
            Some(Freezer::V1(dir)) => {
                fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FREEZING")
            }
            _ => false,
        }
    }
}
