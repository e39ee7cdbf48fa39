//! Docker's volume copy-up: a new (empty) volume mounted over a path that
//! has content in the image first receives that content, with owners,
//! modes, times, symlinks, device nodes and hard links, so that `/etc` or
//! `/var/lib/app` in a volume starts as the image had it.
//!
//! Runs in the container's pid 1 before `pivot_root`, while nothing of the
//! container runs yet: `from` is inside the container's root, `to` is the
//! volume's folder on the host. Symlinks are copied as links and never
//! followed, so an image cannot make this read or write outside either
//! tree. Extended attributes are not copied.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;

use crate::error::{Error, Result};

/// Copies `from` into `to` when `from` is a folder with entries and `to`
/// is an empty folder; returns whether it copied. `to` also takes
/// `from`'s owner and mode, as Docker does.
pub fn copy_up(from: &Path, to: &Path) -> Result<bool> {
    let Ok(src) = fs::symlink_metadata(from) else {
        return Ok(false);
    };
    if !src.is_dir() || is_empty(from)? || !is_empty(to)? {
        return Ok(false);
    }
    tracing::debug!(from = %from.display(), to = %to.display(), "volume copy-up");
    let mut links = HashMap::new();
    copy_dir(from, to, &mut links)?;
    attributes(to, &src)?;
    Ok(true)
}

fn is_empty(dir: &Path) -> Result<bool> {
    let mut entries = fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    Ok(entries.next().is_none())
}

fn sys<'a>(action: &'static str, path: &'a Path) -> impl Fn(nix::Error) -> Error + 'a {
    move |e| Error::io(action, path, std::io::Error::from_raw_os_error(e as i32))
}

/// Copies the entries of `from` into the existing folder `to`.
fn copy_dir(
    from: &Path,
    to: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<()> {
    for entry in fs::read_dir(from).map_err(|e| Error::io("read", from, e))? {
        let entry = entry.map_err(|e| Error::io("read", from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src).map_err(|e| Error::io("stat", &src, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst).map_err(|e| Error::io("create", &dst, e))?;
            copy_dir(&src, &dst, links)?;
            attributes(&dst, &meta)?;
            continue;
        }
        // A second name of a file already copied is linked, not copied.
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                fs::hard_link(first, &dst).map_err(|e| Error::io("link", &dst, e))?;
                continue;
            }
            links.insert(key, dst.clone());
        }
        if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| Error::io("read link", &src, e))?;
            symlink(&target, &dst).map_err(|e| Error::io("symlink", &dst, e))?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(|e| Error::io("copy", &src, e))?;
        } else {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else if ft.is_fifo() {
                SFlag::S_IFIFO
            } else if ft.is_socket() {
                SFlag::S_IFSOCK
            } else {
                continue;
            };
            mknod(
                &dst,
                kind,
                Mode::from_bits_truncate(meta.mode()),
                meta.rdev(),
            )
            .map_err(sys("mknod", &dst))?;
        }
        attributes(&dst, &meta)?;
    }
    Ok(())
}

/// Owner, mode (not for symlinks, which have none) and times of `meta`.
fn attributes(dst: &Path, meta: &fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| Error::io("chown", dst, e))?;
    if !meta.file_type().is_symlink() {
        // After chown, which clears set-user-ID and set-group-ID bits.
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| Error::io("chmod", dst, e))?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, dst, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .map_err(sys("set the times of", dst))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn copies_a_tree_into_an_empty_folder_only() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("image/etc");
        let to = tmp.path().join("volume");
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(from.join("a.conf"), "a").unwrap();
        fs::set_permissions(from.join("a.conf"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(from.join("sub/b"), "b").unwrap();
        fs::hard_link(from.join("sub/b"), from.join("b-link")).unwrap();
        symlink("/host/etc/shadow", from.join("evil")).unwrap();
        fs::set_permissions(&from, fs::Permissions::from_mode(0o750)).unwrap();
        assert!(copy_up(&from, &to).unwrap());
        assert_eq!(fs::read_to_string(to.join("a.conf")).unwrap(), "a");
        assert_eq!(
            fs::metadata(to.join("a.conf")).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_to_string(to.join("sub/b")).unwrap(), "b");
        assert_eq!(
            fs::metadata(to.join("sub/b")).unwrap().ino(),
            fs::metadata(to.join("b-link")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(to.join("evil")).unwrap(),
            Path::new("/host/etc/shadow")
        );
        assert_eq!(fs::metadata(&to).unwrap().mode() & 0o777, 0o750);
        assert_eq!(
            fs::metadata(to.join("a.conf")).unwrap().mtime(),
            fs::metadata(from.join("a.conf")).unwrap().mtime()
        );
        // Not empty any more: a second copy-up leaves it alone.
        fs::write(from.join("new"), "n").unwrap();
        assert!(!copy_up(&from, &to).unwrap());
        assert!(!to.join("new").exists());
        // Nothing to copy from.
        let empty = tmp.path().join("empty-volume");
        fs::create_dir(&empty).unwrap();
        assert!(!copy_up(&tmp.path().join("missing"), &empty).unwrap());
    }
}
