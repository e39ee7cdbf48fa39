//! A writable view of a stage's filesystem for COPY, ADD and WORKDIR: an
//! overlayfs mount of the stage's snapshots with a fresh upper dir, so
//! what the step writes lands in the upper dir in overlayfs format (the
//! next layer, and its snapshot once renamed), and paths in the image
//! (symlinks, existing directories) are resolved as a container sees them.
//!
//! Mounted in berth's own mount namespace under `<root>/build/tmp/`; the
//! guard detaches it on every path out, panics included.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::error::{BuildError, Result};

pub struct OverlayView {
    dir: Option<tempfile::TempDir>,
    mounted: bool,
}

impl OverlayView {
    /// Mounts `lowers` (lowest first) with an empty upper dir, in a temp
    /// dir under `tmp_parent`.
    pub fn mount(tmp_parent: &Path, lowers: &[PathBuf]) -> Result<Self> {
        fs::create_dir_all(tmp_parent).map_err(|e| BuildError::io(tmp_parent, e))?;
        let dir = tempfile::Builder::new()
            .prefix("fsop-")
            .tempdir_in(tmp_parent)
            .map_err(|e| BuildError::io(tmp_parent, e))?;
        let base = dir.path();
        for sub in ["upper", "work", "mnt", "empty"] {
            fs::create_dir(base.join(sub)).map_err(|e| BuildError::io(base.join(sub), e))?;
        }
        let lowers: Vec<PathBuf> = if lowers.is_empty() {
            vec![base.join("empty")]
        } else {
            lowers.to_vec()
        };
        let options =
            berth_runtime::overlay_options(&lowers, &base.join("upper"), &base.join("work"));
        mount(
            Some("overlay"),
            &base.join("mnt"),
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|e| {
            BuildError::Invalid(format!(
                "cannot mount the build step's filesystem (overlay on {}): {e}",
                base.join("mnt").display()
            ))
        })?;
        Ok(Self {
            dir: Some(dir),
            mounted: true,
        })
    }

    fn base(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    /// The merged filesystem (writable).
    pub fn root(&self) -> PathBuf {
        self.base().join("mnt")
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            let mnt = self.root();
            umount2(&mnt, MntFlags::empty())
                .or_else(|_| umount2(&mnt, MntFlags::MNT_DETACH))
                .map_err(|e| {
                    BuildError::Invalid(format!("cannot unmount {}: {e}", mnt.display()))
                })?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Unmounts and returns the temp dir whose `upper/` holds the diff.
    pub fn finish(mut self) -> Result<tempfile::TempDir> {
        self.unmount()?;
        self.dir
            .take()
            .ok_or_else(|| BuildError::Invalid("overlay view already finished".into()))
    }
}

impl Drop for OverlayView {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.root(), MntFlags::MNT_DETACH);
        }
    }
}
