//! Claiming a container name (`names/<name>`, holding the id) so that a
//! creator killed half-way (SIGKILL, power cut) does not hold the name
//! for ever.
//!
//! The claim is written to a temporary file, locked (`flock`) and only
//! then linked into place: `link` fails when the name exists, so the
//! claim is exclusive, and from the instant it is visible its creator's
//! lock is on it. The creator keeps the lock until the container's
//! `state.json` is written (the end of `create`). A claim found with no
//! lock held and no `state.json` behind it was left by a creator that
//! died: it is taken back, with the incomplete container folder. A claim
//! whose container has a state is a real container (alive or dead: the
//! caller removes those), and stays.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::runtime::{Runtime, try_lock};

/// A held claim; the lock goes with it.
pub(crate) struct Claim {
    pub path: PathBuf,
    _lock: File,
}

impl Runtime {
    /// Claims `name` for `id`; `NameInUse` when a real container (or a
    /// live creator) has it.
    pub(crate) fn claim_name(&self, name: &str, id: &str) -> Result<Claim> {
        let path = self.names_dir().join(name);
        for _ in 0..2 {
            let tmp = self
                .names_dir()
                .join(format!(".{name}.{}.{id}", std::process::id()));
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| Error::io("create", &tmp, e))?;
            let locked = try_lock(&file, libc::LOCK_EX);
            let written = file.write_all(id.as_bytes());
            let linked = fs::hard_link(&tmp, &path);
            let _ = fs::remove_file(&tmp);
            written.map_err(|e| Error::io("write", &tmp, e))?;
            match linked {
                Ok(()) if locked => return Ok(Claim { path, _lock: file }),
                Ok(()) => {
                    let _ = fs::remove_file(&path);
                    return Err(Error::Shim {
                        id: id.to_owned(),
                        reason: format!("cannot lock the claim on the name {name:?}"),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !self.take_back_stale(&path) {
                        return Err(Error::NameInUse(name.to_owned()));
                    }
                }
                Err(e) => return Err(Error::io("claim", &path, e)),
            }
        }
        Err(Error::NameInUse(name.to_owned()))
    }

    /// Removes the claim at `path` (and its container's incomplete folder)
    /// when its creator died before the container had a state; true when
    /// it did.
    fn take_back_stale(&self, path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            // Gone meanwhile: try again.
            return true;
        };
        if !try_lock(&file, libc::LOCK_EX) {
            return false; // Its creator is at work.
        }
        let id = fs::read_to_string(path).unwrap_or_default();
        let id = id.trim();
        let dir = self.root.container(id);
        if !id.is_empty() && dir.state().exists() {
            return false; // A real container has the name.
        }
        tracing::warn!(name = %path.display(), container.id = %id, "taking back a name whose creator died");
        // No state: no shim was ever spawned for it, so nothing runs there.
        if !id.is_empty() {
            let _ = fs::remove_dir_all(dir.path());
        }
        fs::remove_file(path).is_ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn runtime(dir: &Path) -> Runtime {
        fs::create_dir_all(dir.join("names")).unwrap();
        Runtime::new(dir, "/sys/fs/cgroup", "/proc/self/exe")
    }

    #[test]
    fn a_name_is_claimed_once_and_taken_back_from_a_dead_creator() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = runtime(tmp.path());
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let held = rt.claim_name("web", &a).unwrap();
        assert_eq!(fs::read_to_string(&held.path).unwrap(), a);
        // Its creator is at work (the lock is held): in use.
        assert!(matches!(rt.claim_name("web", &b), Err(Error::NameInUse(_))));
        // It has a state: a real container, in use even with no lock.
        let dir = rt.root.container(&a);
        fs::create_dir_all(dir.path()).unwrap();
        fs::write(dir.state(), "{}").unwrap();
        drop(held);
        assert!(matches!(rt.claim_name("web", &b), Err(Error::NameInUse(_))));
        // The creator died before the state: the name comes back, and the
        // half-made folder goes.
        fs::remove_file(dir.state()).unwrap();
        fs::write(dir.config(), "{}").unwrap();
        let claim = rt.claim_name("web", &b).unwrap();
        assert_eq!(fs::read_to_string(&claim.path).unwrap(), b);
        assert!(!dir.path().exists());
        // A claim with nothing in it (killed between create and write).
        drop(claim);
        fs::write(tmp.path().join("names/db"), "").unwrap();
        assert!(rt.claim_name("db", &a).is_ok());
        // No temporary files left behind.
        let names: Vec<String> = fs::read_dir(tmp.path().join("names"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
