//! [`Store`]: the content store and snapshots under one state root.
//!
//! Layout (all under the root passed to [`Store::open`], default
//! `/var/lib/berth`):
//!
//! ```text
//! content/                 an OCI image layout (image-spec "image-layout")
//!   oci-layout             {"imageLayoutVersion":"1.0.0"}
//!   index.json             one descriptor per image manifest; tagged ones
//!                          carry org.opencontainers.image.ref.name = the
//!                          full reference (docker.io/library/busybox:latest)
//!   blobs/sha256/<hex>     manifests, configs, layers, by digest
//! snapshots/<chain-hex>/fs one unpacked layer (an overlayfs lower dir)
//! tmp/                     ingest files and unpack dirs, renamed into place
//! locks/                   flock(2) files, see below
//! ```
//!
//! Concurrency: every write lands in `tmp/` and is renamed into place, so a
//! reader never sees half a blob, snapshot or `index.json`. Two locks order
//! writers: `locks/gc.lock` is held shared by everything that adds content
//! (ingest, import, load, tag, unpack) and exclusive by garbage collection,
//! so GC never deletes a blob that an import has written but not yet
//! referenced; `locks/index.lock` serializes the read-modify-write of
//! `index.json`. Unpacking takes a per-snapshot lock so that two callers
//! never unpack the same layer twice. Locks are taken in that order (gc,
//! index, snapshot).
//!
//! The work is split by role: `blobs` (content), `refs` (index.json),
//! `images` (resolving and listing), `gc` (removal); import, load and
//! snapshots live in their own modules and add methods to [`Store`].

mod blobs;
mod gc;
mod images;
mod refs;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use tracing::debug;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

pub use blobs::BlobInfo;
pub use gc::Removed;
pub use images::{Image, ImageSummary};

/// The default state root.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// The OCI annotation that names a manifest in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// The content store and snapshot directory under one state root. Cheap to
/// open; holds no file descriptors between calls, so any number of
/// `Store`s (threads, processes) may share a root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A held flock; released on drop.
pub(crate) struct LockGuard {
    _lock: Flock<File>,
}

/// Keeps garbage collection out while it lives (see [`Store::lease`]).
#[must_use = "the lease ends when dropped"]
pub struct Lease {
    _lock: LockGuard,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl Store {
    /// Opens the store under `root`, creating its folders when missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Self { root: root.into() };
        debug!(root = %store.root.display(), "opening image store");
        for (dir, mode) in [
            (store.root.clone(), 0o711),
            (store.content_dir(), 0o755),
            (store.content_dir().join("blobs").join("sha256"), 0o755),
            // Snapshots hold set-uid binaries of every image: keep other
            // users out, as Docker does for overlay2.
            (store.snapshots_dir(), 0o700),
            (store.tmp_dir(), 0o700),
            (store.locks_dir(), 0o700),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&dir)
                .io_at("create directory", &dir)?;
        }
        let layout = store.content_dir().join("oci-layout");
        if !layout.exists() {
            store.write_atomic(&layout, OCI_LAYOUT.as_bytes())?;
        }
        Ok(store)
    }

    /// The state root this store lives under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI image layout directory (`<root>/content`).
    pub fn content_dir(&self) -> PathBuf {
        self.root.join("content")
    }

    /// Where blob `digest` lives, whether or not it exists.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.content_dir()
            .join("blobs")
            .join("sha256")
            .join(digest.hex())
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.content_dir().join("index.json")
    }

    /// `<root>/snapshots`.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Holds the content lock shared until the [`Lease`] is dropped:
    /// nothing is collected (no `remove`, no `gc`) meanwhile. A caller that
    /// resolves an image, prepares its rootfs and then records somewhere
    /// of its own that it uses the image (a container's config, which the
    /// `in_use` of [`Store::remove`] reads) holds one across all three, so
    /// a concurrent `rmi` cannot delete the snapshots in between.
    pub fn lease(&self) -> Result<Lease> {
        Ok(Lease {
            _lock: self.lock_content_shared()?,
        })
    }

    /// Shared: content may be added but not collected.
    pub(crate) fn lock_content_shared(&self) -> Result<LockGuard> {
        self.lock("gc.lock", FlockArg::LockShared)
    }

    /// Exclusive: nothing is being added; garbage may be collected.
    pub(crate) fn lock_content_exclusive(&self) -> Result<LockGuard> {
        self.lock("gc.lock", FlockArg::LockExclusive)
    }

    pub(crate) fn lock_index(&self) -> Result<LockGuard> {
        self.lock("index.lock", FlockArg::LockExclusive)
    }

    pub(crate) fn lock_snapshot(&self, chain: &Digest) -> Result<LockGuard> {
        self.lock(
            &format!("snapshot-{}.lock", chain.hex()),
            FlockArg::LockExclusive,
        )
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<LockGuard> {
        let path = self.locks_dir().join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .io_at("open lock file", &path)?;
        debug!(path = %path.display(), ?arg, "flock");
        let lock = Flock::lock(file, arg).map_err(|(_, errno)| Error::Lock {
            path,
            source: errno.into(),
        })?;
        Ok(LockGuard { _lock: lock })
    }

    /// Writes `bytes` to `path` atomically: a temp file in `tmp/`, fsync,
    /// rename, fsync of the parent directory.
    pub(crate) fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp_dir = self.tmp_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(".write-")
            .permissions(fs::Permissions::from_mode(0o644))
            .tempfile_in(&tmp_dir)
            .io_at("create temp file in", &tmp_dir)?;
        tmp.write_all(bytes).io_at("write", tmp.path().to_owned())?;
        tmp.as_file()
            .sync_all()
            .io_at("fsync", tmp.path().to_owned())?;
        debug!(path = %path.display(), bytes = bytes.len(), "atomic write");
        tmp.persist(path)
            .map_err(|e| Error::io("rename temp file to", path, e.error))?;
        sync_parent(path)
    }
}

/// fsyncs the directory holding `path`, so a rename into it survives a
/// crash.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .io_at("fsync directory", parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_an_oci_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("state")).unwrap();
        let layout = fs::read_to_string(store.content_dir().join("oci-layout")).unwrap();
        assert_eq!(layout, OCI_LAYOUT);
        assert!(store.content_dir().join("blobs/sha256").is_dir());
        assert!(store.snapshots_dir().is_dir());
        // Opening again is harmless.
        Store::open(store.root()).unwrap();
    }

    #[test]
    fn a_lease_holds_off_gc_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lease = store.lease().unwrap();
        // Content may still be added under a lease (shared with writers).
        drop(store.lock_content_shared().unwrap());
        let s2 = store.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            s2.gc().unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(100))
                .is_err()
        );
        drop(lease);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_waits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.lock_content_shared().unwrap();
        let b = store.lock_content_shared().unwrap();
        let s2 = store.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _g = s2.lock_content_exclusive().unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(100))
                .is_err()
        );
        drop((a, b));
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }
}

#[cfg(test)]
mod lifecycle_tests;
