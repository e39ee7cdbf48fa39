//! Snapshots: each layer unpacked once into `<root>/snapshots/<chain-id>/fs`,
//! ready to be an overlayfs lower dir.
//!
//! [`Store::prepare_rootfs`] returns an image's snapshot dirs **lowest
//! layer first** (manifest order). overlayfs wants the opposite
//! (`lowerdir=top:...:bottom`); [`overlay_lowerdir`] builds that option
//! value from this order, so callers never reverse by hand.
//!
//! A snapshot is keyed by its chain ID (the layer and every layer under
//! it), as containerd does, and holds only that layer's own files with
//! OCI whiteouts turned into overlayfs ones (see [`unpack`]). It is
//! unpacked into `tmp/` and renamed into place, under a per-snapshot lock,
//! so concurrent callers unpack it once and nobody sees half of one. Its
//! diff ID is verified while unpacking.

mod resolve;
pub mod unpack;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use tracing::{debug, info};

use crate::compress;
use crate::digest::{Digest, HashingReader, chain_ids};
use crate::error::{Error, IoContext, Result};
use crate::store::{Image, Store};

pub use unpack::{UnpackOptions, Unpacked};

/// The overlayfs `lowerdir=` value for snapshot dirs given lowest first
/// (as [`Store::prepare_rootfs`] returns them): topmost first, joined by
/// `:`.
pub fn overlay_lowerdir(lowest_first: &[PathBuf]) -> OsString {
    let mut out = OsString::new();
    for (i, dir) in lowest_first.iter().rev().enumerate() {
        if i > 0 {
            out.push(":");
        }
        out.push(dir.as_os_str());
    }
    out
}

impl Store {
    /// Unpacks every layer of `image` that is not unpacked yet and returns
    /// the snapshot `fs` dirs, **lowest layer first**. Safe to call
    /// concurrently from threads and processes.
    ///
    /// Whiteouts, device nodes, ownership and `trusted.*` xattrs need root;
    /// see [`UnpackOptions`].
    pub fn prepare_rootfs(&self, image: &Image) -> Result<Vec<PathBuf>> {
        self.prepare_rootfs_with(image, &UnpackOptions::for_current_user())
    }

    /// [`Store::prepare_rootfs`] with explicit unpack options.
    pub fn prepare_rootfs_with(
        &self,
        image: &Image,
        options: &UnpackOptions,
    ) -> Result<Vec<PathBuf>> {
        let diff_ids = image.diff_ids();
        let layers = image.layers();
        if diff_ids.len() != layers.len() {
            return Err(Error::invalid(
                format!("image {}", image.id),
                format!("{} layers but {} diff_ids", layers.len(), diff_ids.len()),
            ));
        }
        let _content = self.lock_content_shared()?;
        let mut dirs = Vec::with_capacity(layers.len());
        for ((layer, diff_id), chain) in layers.iter().zip(diff_ids).zip(chain_ids(diff_ids)) {
            let blob = Digest::from_oci(layer.digest())?;
            dirs.push(self.ensure_snapshot(&chain, &blob, diff_id, options)?);
        }
        Ok(dirs)
    }

    /// The `fs` dir of snapshot `chain`, whether or not it exists.
    pub fn snapshot_path(&self, chain: &Digest) -> PathBuf {
        self.snapshots_dir().join(chain.hex()).join("fs")
    }

    pub(crate) fn ensure_snapshot(
        &self,
        chain: &Digest,
        blob: &Digest,
        diff_id: &Digest,
        options: &UnpackOptions,
    ) -> Result<PathBuf> {
        let fs_dir = self.snapshot_path(chain);
        if fs_dir.is_dir() {
            return Ok(fs_dir);
        }
        let _lock = self.lock_snapshot(chain)?;
        // Someone else may have finished it while we waited.
        if fs_dir.is_dir() {
            debug!(%chain, "snapshot unpacked by another caller");
            return Ok(fs_dir);
        }
        let tmp_root = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".snapshot-")
            .tempdir_in(&tmp_root)
            .io_at("create temp dir in", &tmp_root)?;
        let tmp_fs = tmp.path().join("fs");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp_fs)
            .io_at("create directory", &tmp_fs)?;
        info!(%chain, %blob, "unpacking layer");
        let file = self.open_blob(blob)?;
        let (_, stream) = compress::decompress(file)
            .map_err(|e| Error::InvalidArchive(format!("layer {blob}: {e}")))?;
        let mut hashing = HashingReader::new(stream);
        let stats = unpack::unpack(&mut hashing, &tmp_fs, options)?;
        let (actual, _) = hashing
            .finish()
            .map_err(|e| Error::InvalidArchive(format!("layer {blob}: {e}")))?;
        if &actual != diff_id {
            // The temp dir goes with `tmp`'s drop.
            return Err(Error::DigestMismatch {
                expected: diff_id.clone(),
                actual,
            });
        }
        debug!(%chain, entries = stats.entries, "layer unpacked");
        sync_filesystem(&tmp_fs)?;
        let target = self.snapshots_dir().join(chain.hex());
        let kept = tmp.keep();
        debug!(from = %kept.display(), to = %target.display(), "rename snapshot into place");
        if let Err(e) = fs::rename(&kept, &target) {
            let _ = fs::remove_dir_all(&kept);
            return Err(Error::io("rename snapshot into", target, e));
        }
        crate::store::sync_parent(&target)?;
        Ok(fs_dir)
    }
}

/// One syncfs(2) for the whole unpacked tree, far cheaper than an fsync
/// per file, so a crash after the rename never leaves a snapshot that
/// exists but holds empty files.
fn sync_filesystem(dir: &Path) -> Result<()> {
    let handle = fs::File::open(dir).io_at("open", dir)?;
    debug!(dir = %dir.display(), "syncfs");
    nix::unistd::syncfs(handle.as_raw_fd()).map_err(|errno| Error::io("syncfs", dir, errno.into()))
}

#[cfg(test)]
mod tests;
