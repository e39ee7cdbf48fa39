//! `rm`: stop (with force), then remove cgroup, mounts, name and state.

use std::fs;
use std::path::Path;
use std::time::Duration;

use nix::mount::{MntFlags, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cgroup::Cgroup;
use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::state::StateRoot;

impl Runtime {
    /// Removes a container. A running one (or one whose shim is still
    /// there) needs `force`, which kills it first.
    pub fn remove(&self, key: &str, force: bool) -> Result<()> {
        let info = self.inspect(key)?;
        let id = info.config.id.clone();
        if info.observed.container_alive || info.observed.shim_alive {
            if !force {
                return Err(Error::InvalidState {
                    id,
                    status: info.observed.status,
                    action: "remove (stop it first, or force)",
                });
            }
            // No restart after this kill, nor of one waiting to happen.
            crate::shim::tell_shim(&self.root.container(&id), crate::shim::control::STOP);
            if info.observed.container_alive {
                let _ = kill(Pid::from_raw(info.state.pid), Signal::SIGKILL);
                self.thaw_if_paused(&id);
            }
            if !self.wait_gone(&info, Duration::from_secs(10)) {
                return Err(Error::InvalidState {
                    id,
                    status: info.observed.status,
                    action: "remove (it did not die within 10 s)",
                });
            }
        }
        remove_files(&self.root, &self.cgroup_root, &info.config)
    }
}

/// Everything a container leaves behind: cgroup, any mount under its dir
/// (normally none: the rootfs lives in the container's mount namespace),
/// its name, its folder. Idempotent.
pub(crate) fn remove_files(
    root: &StateRoot,
    cgroup_root: &Path,
    cfg: &ContainerConfig,
) -> Result<()> {
    if let Ok(cg) = Cgroup::open(cgroup_root, &cfg.id) {
        cg.remove()?;
    }
    let dir = root.container(&cfg.id);
    for m in mounts_under(dir.path()).into_iter().rev() {
        tracing::debug!(target = %m, "umount leftover");
        let _ = umount2(m.as_str(), MntFlags::MNT_DETACH);
    }
    let name = root.path().join("names").join(&cfg.name);
    if fs::read_to_string(&name).is_ok_and(|id| id.trim() == cfg.id) {
        let _ = fs::remove_file(&name);
    }
    match fs::remove_dir_all(dir.path()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir.path(), e)),
    }
}

/// Mount points at or under `dir` in this mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(str::to_owned)
        .collect()
}
