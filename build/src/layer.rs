//! An overlayfs upper dir (or any tree in overlayfs format) → an OCI layer
//! tar: entries sorted by path, whiteouts (0/0 character devices) written
//! as `.wh.<name>`, opaque dirs (`trusted.overlay.opaque=y`) followed by
//! `.wh..wh..opq`, hard links within the layer as links, ownership and
//! modes as on disk, xattrs (but overlayfs's own) as PAX records. With
//! `epoch`, mtimes later than it are clamped to it (SOURCE_DATE_EPOCH).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// Whether `dir` holds nothing (an upper dir of a step that changed
/// nothing).
pub fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// Writes the tar of `root`'s contents (not `root` itself) to `out`.
pub fn write_tar(root: &Path, out: &mut dyn Write, epoch: Option<u64>) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    walk(root, "", &mut builder, &mut links, epoch)?;
    builder.finish()
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

fn walk(
    dir: &Path,
    prefix: &str,
    b: &mut tar::Builder<&mut dyn Write>,
    links: &mut HashMap<(u64, u64), String>,
    epoch: Option<u64>,
) -> io::Result<()> {
    for entry in sorted_entries(dir)? {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        let rel = format!("{prefix}{name}");
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let wh = format!("{prefix}.wh.{name}");
            let mut h = header(&meta, tar::EntryType::Regular, epoch);
            h.set_size(0);
            h.set_mode(0o644);
            b.append_data(&mut h, &wh, io::empty())?;
            continue;
        }
        append_xattrs(b, &path)?;
        if ft.is_dir() {
            let mut h = header(&meta, tar::EntryType::Directory, epoch);
            h.set_size(0);
            b.append_data(&mut h, format!("{rel}/"), io::empty())?;
            if xattr::get(&path, OPAQUE_XATTR).ok().flatten().as_deref() == Some(b"y") {
                let mut h = header(&meta, tar::EntryType::Regular, epoch);
                h.set_size(0);
                h.set_mode(0o644);
                b.append_data(&mut h, format!("{rel}/.wh..wh..opq"), io::empty())?;
            }
            walk(&path, &format!("{rel}/"), b, links, epoch)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            let mut h = header(&meta, tar::EntryType::Symlink, epoch);
            h.set_size(0);
            b.append_link(&mut h, &rel, &target)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&key) {
                    let mut h = header(&meta, tar::EntryType::Link, epoch);
                    h.set_size(0);
                    b.append_link(&mut h, &rel, first)?;
                    continue;
                }
                links.insert(key, rel.clone());
            }
            let mut h = header(&meta, tar::EntryType::Regular, epoch);
            h.set_size(meta.len());
            b.append_data(&mut h, &rel, fs::File::open(&path)?)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_fifo() {
                tar::EntryType::Fifo
            } else if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            let mut h = header(&meta, kind, epoch);
            h.set_size(0);
            let rdev = meta.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
            b.append_data(&mut h, &rel, io::empty())?;
        }
        // Sockets are not archived (Docker skips them too).
    }
    Ok(())
}

fn header(meta: &fs::Metadata, kind: tar::EntryType, epoch: Option<u64>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    let mtime = meta.mtime().max(0) as u64;
    h.set_mtime(epoch.map_or(mtime, |e| mtime.min(e)));
    h
}

/// xattrs other than overlayfs's own, as a PAX header for the next entry.
fn append_xattrs(b: &mut tar::Builder<&mut dyn Write>, path: &Path) -> io::Result<()> {
    let Ok(names) = xattr::list(path) else {
        return Ok(());
    };
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(path, &name) {
            records.push((format!("SCHILY.xattr.{name}"), value));
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    records.sort();
    b.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};

    fn names(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_become_oci_markers() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: whiteouts need root (mknod 0/0, trusted.* xattrs)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc/opaque")).unwrap();
        fs::write(root.join("etc/b.txt"), "b").unwrap();
        fs::write(root.join("etc/a.txt"), "a").unwrap();
        fs::hard_link(root.join("etc/a.txt"), root.join("etc/c.txt")).unwrap();
        mknod(
            &root.join("etc/gone"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0),
            makedev(0, 0),
        )
        .unwrap();
        xattr::set(root.join("etc/opaque"), OPAQUE_XATTR, b"y").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("etc/link")).unwrap();
        let mut out = Vec::new();
        write_tar(root, &mut out, Some(0)).unwrap();
        let got = names(&out);
        let expect = [
            ("etc/", tar::EntryType::Directory),
            ("etc/a.txt", tar::EntryType::Regular),
            ("etc/b.txt", tar::EntryType::Regular),
            ("etc/c.txt", tar::EntryType::Link),
            ("etc/.wh.gone", tar::EntryType::Regular),
            ("etc/link", tar::EntryType::Symlink),
            ("etc/opaque/", tar::EntryType::Directory),
            ("etc/opaque/.wh..wh..opq", tar::EntryType::Regular),
        ];
        let got: Vec<(&str, tar::EntryType)> = got.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        assert_eq!(got, expect);
        // The same tree gives the same bytes: reproducible layers.
        let mut again = Vec::new();
        write_tar(root, &mut again, Some(0)).unwrap();
        assert_eq!(out, again);
        let mut a = tar::Archive::new(&out[..]);
        for e in a.entries().unwrap() {
            assert_eq!(e.unwrap().header().mtime().unwrap(), 0, "mtime clamped");
        }
    }
}
