//! Applying one layer tar to an empty directory, the way overlayfs needs
//! it: [`unpack`] with [`UnpackOptions`].
//!
//! OCI whiteouts become overlayfs ones: `.wh.<name>` a character device
//! 0/0 named `<name>`, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr
//! on its directory (both need root). Files, directories, symlinks, hard
//! links (to earlier entries of the same layer), FIFOs and device nodes
//! are created with their mode, owner (with
//! [`UnpackOptions::preserve_ownership`]), mtime and PAX `SCHILY.xattr.*`
//! attributes. Directory modes and mtimes are applied last, since writing
//! into a directory changes its mtime and a read-only one would refuse the
//! writes.
//!
//! Every entry's location goes through `snapshot::resolve`; nothing is
//! written through a symlink that leaves the root.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use tar::EntryType;
use tracing::{debug, warn};

use super::resolve::{clean, resolve_dir};
use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What [`unpack`] may do beyond plain files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Give entries the layer's uid/gid (lchown). Needs CAP_CHOWN;
    /// without it everything belongs to the unpacking user.
    pub preserve_ownership: bool,
    /// Create whiteouts and device nodes (mknod) and set `trusted.*`
    /// xattrs (opaque directories). Needs root; without it such an entry
    /// is an error of kind `PermissionDenied`, since a snapshot missing
    /// them would show deleted files.
    pub privileged: bool,
}

impl UnpackOptions {
    /// Everything when running as root, plain files only otherwise.
    pub fn for_current_user() -> Self {
        let root = nix::unistd::geteuid().is_root();
        Self {
            preserve_ownership: root,
            privileged: root,
        }
    }
}

/// Counts of what [`unpack`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    pub whiteouts: u64,
}

/// A directory's mode and mtime, applied once its contents are written.
struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: u64,
}

/// The metadata of one entry, read before its data.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Unpacks the (uncompressed) layer tar `reader` into `root`, an empty
/// directory. `reader` is left just after the tar's end-of-archive marker.
pub fn unpack(reader: &mut dyn Read, root: &Path, options: &UnpackOptions) -> Result<Unpacked> {
    debug!(root = %root.display(), ?options, "unpack layer");
    let mut archive = tar::Archive::new(reader);
    let mut stats = Unpacked::default();
    let mut dirs: Vec<DirMeta> = Vec::new();
    let read_err = |source| Error::ReadArchive(source);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = entry.path().map_err(read_err)?.into_owned();
        let meta = read_meta(&mut entry, &name)?;
        stats.entries += 1;
        let kind = entry.header().entry_type();
        let components = clean(&name, &path)?;
        let Some((base, parents)) = components.split_last() else {
            if kind.is_dir() {
                dirs.push(DirMeta {
                    path: root.to_path_buf(),
                    mode: meta.mode,
                    mtime: meta.mtime,
                });
                apply_owner_and_xattrs(root, &meta, &name, options)?;
                continue;
            }
            return Err(Error::UnsafeEntry {
                entry: name,
                reason: "a non-directory entry names the layer root".into(),
            });
        };
        let base_str = base.to_string_lossy();
        if base_str == OPAQUE_WHITEOUT {
            let dir = resolve_dir(root, parents, &name, true)?;
            require_root(options, &name, "mark a directory opaque")?;
            debug!(dir = %dir.display(), "opaque whiteout");
            xattr::set(&dir, OVERLAY_OPAQUE_XATTR, b"y").map_err(|source| Error::Unpack {
                entry: name.clone(),
                action: "set trusted.overlay.opaque",
                source,
            })?;
            stats.whiteouts += 1;
            continue;
        }
        if base_str.starts_with(WHITEOUT_META_PREFIX) {
            // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): not content.
            debug!(entry = %name, "skipping whiteout metadata");
            continue;
        }
        if let Some(hidden) = base_str.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden.contains('/') {
                return Err(Error::UnsafeEntry {
                    entry: name,
                    reason: "malformed whiteout".into(),
                });
            }
            let dir = resolve_dir(root, parents, &name, true)?;
            require_root(options, &name, "create a whiteout")?;
            let target = dir.join(hidden);
            remove_existing(&target, false, &name)?;
            debug!(path = %target.display(), "whiteout");
            mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|errno| unpack_err(&name, "create whiteout device", errno.into()))?;
            stats.whiteouts += 1;
            continue;
        }
        let dir = resolve_dir(root, parents, &name, true)?;
        let dest = dir.join(base);
        match kind {
            EntryType::Directory => {
                remove_existing(&dest, true, &name)?;
                if !dest.is_dir() {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&dest)
                        .map_err(|e| unpack_err(&name, "create directory", e))?;
                }
                apply_owner_and_xattrs(&dest, &meta, &name, options)?;
                dirs.push(DirMeta {
                    path: dest,
                    mode: meta.mode,
                    mtime: meta.mtime,
                });
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_existing(&dest, false, &name)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&dest)
                    .map_err(|e| unpack_err(&name, "create file", e))?;
                io::copy(&mut entry, &mut file).map_err(|e| unpack_err(&name, "write file", e))?;
                drop(file);
                finish(&dest, &meta, &name, options, true)?;
            }
            EntryType::Symlink => {
                let target = link_target(&entry, &name, "read symlink target")?;
                remove_existing(&dest, false, &name)?;
                // The target is only data: it is never followed while
                // unpacking except through resolve_dir's checks.
                std::os::unix::fs::symlink(&target, &dest)
                    .map_err(|e| unpack_err(&name, "create symlink", e))?;
                finish(&dest, &meta, &name, options, false)?;
            }
            EntryType::Link => {
                let target = link_target(&entry, &name, "read hard link target")?;
                let source = hard_link_source(root, &target, &name)?;
                if source == dest {
                    continue;
                }
                remove_existing(&dest, false, &name)?;
                // link(2) does not follow a symlink source, so a link to a
                // symlink links the symlink itself.
                fs::hard_link(&source, &dest)
                    .map_err(|e| unpack_err(&name, "create hard link", e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let flag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                if kind != EntryType::Fifo {
                    require_root(options, &name, "create a device node")?;
                }
                let header = entry.header();
                let major = header.device_major().map_err(read_err)?.unwrap_or(0);
                let minor = header.device_minor().map_err(read_err)?.unwrap_or(0);
                remove_existing(&dest, false, &name)?;
                mknod(
                    &dest,
                    flag,
                    Mode::from_bits_truncate(0o600),
                    makedev(u64::from(major), u64::from(minor)),
                )
                .map_err(|errno| unpack_err(&name, "create device node", errno.into()))?;
                finish(&dest, &meta, &name, options, true)?;
            }
            other => {
                debug!(entry = %name, kind = ?other, "skipping unsupported entry type");
            }
        }
    }
    // Deepest first, so a parent's mtime is set after its children's.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in dirs {
        let name = d.path.display().to_string();
        fs::set_permissions(&d.path, fs::Permissions::from_mode(d.mode & 0o7777))
            .map_err(|e| unpack_err(&name, "set directory mode", e))?;
        set_mtime(&d.path, d.mtime, &name)?;
    }
    // Leave the reader at the end of the archive for the caller's digest.
    let _ = archive.into_inner();
    Ok(stats)
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(Error::ReadArchive)? {
        for ext in exts {
            let ext = ext.map_err(Error::ReadArchive)?;
            if let Some(attr) = ext
                .key()
                .ok()
                .and_then(|k| k.strip_prefix(PAX_XATTR_PREFIX))
            {
                xattrs.push((attr.to_owned(), ext.value_bytes().to_vec()));
            }
        }
    }
    let header = entry.header();
    // Go's archive/tar (which wrote most layers) reads an empty numeric
    // field as 0, and some tools leave owner and mtime empty: do the same
    // for those. A mode must be there.
    Ok(Meta {
        mode: header.mode().map_err(Error::ReadArchive)?,
        uid: header.uid().unwrap_or_else(|_| {
            debug!(entry = name, "unreadable uid, using 0");
            0
        }),
        gid: header.gid().unwrap_or(0),
        mtime: header.mtime().unwrap_or(0),
        xattrs,
    })
}

/// Owner, then mode (chown clears set-uid bits, so mode comes after),
/// xattrs, mtime.
fn finish(
    path: &Path,
    meta: &Meta,
    name: &str,
    options: &UnpackOptions,
    chmod: bool,
) -> Result<()> {
    apply_owner_and_xattrs(path, meta, name, options)?;
    if chmod {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode & 0o7777))
            .map_err(|e| unpack_err(name, "set mode", e))?;
    }
    set_mtime(path, meta.mtime, name)
}

fn apply_owner_and_xattrs(
    path: &Path,
    meta: &Meta,
    name: &str,
    options: &UnpackOptions,
) -> Result<()> {
    if options.preserve_ownership {
        let uid = u32::try_from(meta.uid).map_err(|_| {
            unpack_err(
                name,
                "chown (uid out of range)",
                io::ErrorKind::InvalidData.into(),
            )
        })?;
        let gid = u32::try_from(meta.gid).map_err(|_| {
            unpack_err(
                name,
                "chown (gid out of range)",
                io::ErrorKind::InvalidData.into(),
            )
        })?;
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| unpack_err(name, "chown", e))?;
    }
    for (attr, value) in &meta.xattrs {
        let privileged_ns = attr.starts_with("trusted.") || attr.starts_with("security.");
        if privileged_ns && !options.privileged {
            debug!(entry = name, attr, "skipping privileged xattr");
            continue;
        }
        if let Err(e) = xattr::set(path, attr, value) {
            // As containerd does: a filesystem without xattr support, or a
            // namespace we may not write, loses the attribute, not the
            // layer.
            match e.raw_os_error() {
                Some(nix::libc::ENOTSUP) | Some(nix::libc::EPERM) => {
                    warn!(entry = name, attr, error = %e, "cannot set xattr; skipped");
                }
                _ => return Err(unpack_err(name, "set xattr", e)),
            }
        }
    }
    Ok(())
}

fn set_mtime(path: &Path, mtime: u64, name: &str) -> Result<()> {
    let secs = i64::try_from(mtime).unwrap_or(i64::MAX);
    let t = TimeSpec::new(secs, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|errno| unpack_err(name, "set mtime", errno.into()))
}

/// Makes room for a new entry at `path`: anything there goes, except a
/// directory that a directory entry re-declares (its contents stay).
fn remove_existing(path: &Path, keep_dir: bool, name: &str) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unpack_err(name, "look up existing file", e)),
    };
    if meta.is_dir() {
        if keep_dir {
            return Ok(());
        }
        fs::remove_dir_all(path).map_err(|e| unpack_err(name, "replace directory", e))
    } else {
        fs::remove_file(path).map_err(|e| unpack_err(name, "replace file", e))
    }
}

/// Where a hard link entry's target is: an earlier, non-directory entry of
/// this layer, inside the root.
fn hard_link_source(root: &Path, target: &Path, name: &str) -> Result<PathBuf> {
    let shown = target.display().to_string();
    let components: Vec<OsString> = clean(&shown, target).map_err(|_| Error::UnsafeEntry {
        entry: name.to_owned(),
        reason: format!("hard link target {shown:?} is outside the layer"),
    })?;
    let Some((base, parents)) = components.split_last() else {
        return Err(Error::UnsafeEntry {
            entry: name.to_owned(),
            reason: "hard link to the layer root".into(),
        });
    };
    let dir = resolve_dir(root, parents, name, false).map_err(|e| match e {
        Error::UnsafeEntry { reason, .. } => Error::UnsafeEntry {
            entry: name.to_owned(),
            reason: format!("hard link target {shown:?}: {reason}"),
        },
        other => other,
    })?;
    let source = dir.join(base);
    match fs::symlink_metadata(&source) {
        Ok(meta) if meta.is_dir() => Err(Error::UnsafeEntry {
            entry: name.to_owned(),
            reason: format!("hard link target {shown:?} is a directory"),
        }),
        Ok(_) => Ok(source),
        Err(e) => Err(unpack_err(name, "find hard link target in this layer", e)),
    }
}

fn require_root(options: &UnpackOptions, name: &str, action: &'static str) -> Result<()> {
    if options.privileged {
        return Ok(());
    }
    Err(Error::Unpack {
        entry: name.to_owned(),
        action,
        source: io::Error::new(
            io::ErrorKind::PermissionDenied,
            "needs root (mknod / trusted xattrs)",
        ),
    })
}

/// The target of a symlink or hard link entry; `what` names it in errors.
fn link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &str,
    what: &'static str,
) -> Result<PathBuf> {
    entry
        .link_name()
        .map_err(Error::ReadArchive)?
        .map(|target| target.into_owned())
        .ok_or_else(|| unpack_err(name, what, io::ErrorKind::InvalidData.into()))
}

fn unpack_err(name: &str, action: &'static str, source: io::Error) -> Error {
    Error::Unpack {
        entry: name.to_owned(),
        action,
        source,
    }
}
