//! `rm`: stop (with force), then remove cgroup, mounts, name and state.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{MntFlags, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cgroup::Cgroup;
use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::runtime::{Runtime, try_lock};
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
    let retired = retire(root, cfg)?;
    purge(root, retired.as_deref(), false)
}

/// The part of [`remove_files`] that makes a container whose cgroup is
/// gone invisible to everyone (leftover mounts, name, and its folder
/// renamed into `trash/`, out of `containers/`), without deleting the
/// folder's files yet: a
/// `run --rm` reports the exit once this is done, and deletes the files
/// afterwards ([`purge`]), off the time its caller waits (unlinking a
/// dozen files and dirs took 13 ms and more on a busy ext4). Returns the
/// folder's new place, `None` when it was gone already.
pub(crate) fn retire(root: &StateRoot, cfg: &ContainerConfig) -> Result<Option<PathBuf>> {
    let dir = root.container(&cfg.id);
    for m in mounts_under(dir.path()).into_iter().rev() {
        tracing::debug!(target = %m, "umount leftover");
        let _ = umount2(m.as_str(), MntFlags::MNT_DETACH);
    }
    // The folder goes first, the name after: a new container that takes
    // the name is never listed beside this one.
    let retired = if dir.path().exists() {
        let trash = root.trash_dir();
        let retired = trash.join(&cfg.id);
        match fs::create_dir_all(&trash).and_then(|()| fs::rename(dir.path(), &retired)) {
            Ok(()) => Some(retired),
            Err(e) => {
                // A stale folder of the same id in the trash, or a trash
                // on another file system: delete in place, as before.
                tracing::debug!(error = %e, "cannot move {} to the trash", dir.path().display());
                delete_dir(dir.path())?;
                None
            }
        }
    } else {
        None
    };
    let name = root.path().join("names").join(&cfg.name);
    if fs::read_to_string(&name).is_ok_and(|id| id.trim() == cfg.id) {
        let _ = fs::remove_file(&name);
    }
    Ok(retired)
}

/// Deletes `retired` (from [`retire`]) and whatever else is in the trash
/// that nobody is deleting: what a process killed in the middle of a
/// deletion left. A folder is deleted only under its `shim.lock`, so two
/// removals never delete the same one at once (a shim holds its own lock
/// already: `locked`).
pub(crate) fn purge(root: &StateRoot, retired: Option<&Path>, locked: bool) -> Result<()> {
    if let Some(dir) = retired {
        match (locked, lock_for_deletion(dir)) {
            (true, _) => delete_dir(dir)?,
            (false, Some(_held)) => delete_dir(dir)?,
            // Someone sweeping the trash took it first and deletes it.
            (false, None) => {}
        }
    }
    let Ok(entries) = fs::read_dir(root.trash_dir()) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if Some(path.as_path()) == retired {
            continue;
        }
        if let Some(_held) = lock_for_deletion(&path) {
            let _ = delete_dir(&path);
        }
    }
    Ok(())
}

/// `dir/shim.lock`, locked exclusively (held until dropped); `None` when
/// another process holds it. A folder without one locks nothing.
fn lock_for_deletion(dir: &Path) -> Option<Option<fs::File>> {
    match fs::File::open(dir.join("shim.lock")) {
        Ok(f) if try_lock(&f, libc::LOCK_EX) => Some(Some(f)),
        Ok(_) => None,
        Err(_) => Some(None),
    }
}

fn delete_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, e)),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn purge_deletes_the_retired_folder_and_stale_trash_but_not_one_being_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(tmp.path());
        let entry = |id: &str| {
            let d = root.trash_dir().join(id);
            fs::create_dir_all(d.join("upper/etc")).unwrap();
            fs::write(d.join("shim.lock"), "").unwrap();
            fs::write(d.join("upper/etc/hosts"), "x").unwrap();
            d
        };
        let (mine, stale, busy) = (entry("aaa"), entry("bbb"), entry("ccc"));
        // Another shim still deleting `busy` holds its lock.
        let held = fs::File::open(busy.join("shim.lock")).unwrap();
        assert!(try_lock(&held, libc::LOCK_EX));
        purge(&root, Some(&mine), false).unwrap();
        assert!(!mine.exists() && !stale.exists());
        assert!(busy.exists());
        // `rm` of a folder someone else is deleting leaves it to them; a
        // shim deleting its own (it holds the lock) goes ahead.
        purge(&root, Some(&busy), false).unwrap();
        assert!(busy.exists());
        purge(&root, Some(&busy), true).unwrap();
        assert!(!busy.exists());
        drop(held);
        let again = entry("ddd");
        purge(&root, None, false).unwrap();
        assert!(!again.exists());
    }
}
