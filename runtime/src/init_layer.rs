//! One read-only overlay layer shared by every container made from layers,
//! stacked on top of the image's: it holds the mount targets the runtime
//! binds over (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`, empty)
//! and the dirs it mounts on (`/proc`, `/sys`, `/dev`), like Docker's
//! per-container `-init` layer but made once per state root.
//!
//! Why: without it each container's start created them in its fresh upper
//! dir (copying `/etc` up, then three files): four inodes created (and
//! later deleted) per container, the largest cost of starting from an
//! image rather than a directory on a busy ext4. As with Docker's init
//! layer, these entries shadow the image's own (a `/etc/resolv.conf`
//! symlink, say), which the runtime's bind mounts hide anyway.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::state::StateRoot;

/// Bumped whenever the layer's contents change, so an old one is never
/// taken for the new.
const NAME: &str = "init-layer.v1";
const DIRS: &[&str] = &["etc", "proc", "sys", "dev"];
const FILES: &[&str] = &["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// The layer's dir under `root`, made on first use. Safe to call from
/// concurrent shims: it is built aside and renamed into place, so it is
/// complete whenever it exists.
pub(crate) fn ensure(root: &StateRoot) -> Result<PathBuf> {
    let layer = root.path().join(NAME);
    if layer.is_dir() {
        return Ok(layer);
    }
    let tmp = root
        .path()
        .join(format!(".{NAME}.tmp.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    // Modes set explicitly, whatever the umask: the merged `/etc` takes
    // this layer's, and a container's non-root users must traverse it.
    let mkdir = |rel: &str| {
        let p = tmp.join(rel);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&p)
            .and_then(|()| fs::set_permissions(&p, fs::Permissions::from_mode(0o755)))
            .map_err(|e| Error::io("create", p, e))
    };
    mkdir("")?;
    for d in DIRS {
        mkdir(d)?;
    }
    for f in FILES {
        let p = tmp.join(f);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
            .and_then(|f| f.set_permissions(fs::Permissions::from_mode(0o644)))
            .map_err(|e| Error::io("create", p, e))?;
    }
    match fs::rename(&tmp, &layer) {
        Ok(()) => Ok(layer),
        // Another shim made it meanwhile.
        Err(_) if layer.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(layer)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(Error::io("rename into place", layer, e))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_layer_is_made_once_with_every_target_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(tmp.path());
        let layer = ensure(&root).unwrap();
        for d in DIRS {
            let mode = fs::metadata(layer.join(d)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{d}");
        }
        for f in FILES {
            let m = fs::metadata(layer.join(f)).unwrap();
            assert!(m.is_file() && m.len() == 0, "{f}");
            assert_eq!(m.permissions().mode() & 0o777, 0o644, "{f}");
        }
        // Again: the same dir, untouched; no temp dir left beside it.
        fs::write(layer.join("etc/hosts"), "kept").unwrap();
        assert_eq!(ensure(&root).unwrap(), layer);
        assert_eq!(fs::read_to_string(layer.join("etc/hosts")).unwrap(), "kept");
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(NAME)]);
    }
}
