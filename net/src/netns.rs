//! Network namespaces kept alive by a bind mount of their nsfs file, as
//! `ip netns` does, so a container's namespace (and its veths, addresses
//! and routes) exists from `create` to `remove` whether or not a process
//! runs in it, and the runtime joins it by path (`Network::Join`).

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::{Error, Result};

/// `NSFS_MAGIC` from linux/magic.h: what `statfs` reports for a bound
/// namespace file.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Whether `path` is a namespace file bound in place (not the empty file
/// left behind after a reboot or an unmount).
pub fn is_bound(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

/// Creates a new network namespace bound at `path` (idempotent: a bound
/// one is kept). `lo` is brought up by the caller.
pub fn create(path: &Path) -> Result<()> {
    if is_bound(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    // unshare applies to the calling thread only: a thread of its own
    // makes the namespace, binds it, and takes it away when it ends.
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::sys("unshare a network namespace", e))?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                Error::sys(
                    format!("bind the network namespace at {}", path.display()),
                    e,
                )
            })
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Nft("netns thread panicked".into())))
    })
}

/// Unbinds and deletes the namespace file; a missing one is fine. The
/// namespace itself goes once no process is left in it.
pub fn remove(path: &Path) -> Result<()> {
    if is_bound(path) {
        nix::mount::umount2(path, MntFlags::MNT_DETACH)
            .map_err(|e| Error::sys(format!("unmount {}", path.display()), e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Whether a live process is in the namespace bound at `path` (a
/// `container:` sharer, a lingering `exec`): found by its inode among
/// every process's `/proc/<pid>/ns/net`. Unknown (unreadable) counts as
/// held.
pub fn in_use(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(ns) = std::fs::metadata(path) else {
        return false;
    };
    let (dev, ino) = (ns.dev(), ns.ino());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    procs
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|e| {
            std::fs::metadata(e.path().join("ns/net"))
                .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
        })
}
