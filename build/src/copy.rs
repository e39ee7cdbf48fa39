//! COPY and ADD into a mounted stage filesystem, with Docker's rules:
//! a directory source copies its contents; a destination ending in `/`,
//! an existing directory, or several sources make the destination a
//! directory; missing parents are created; new files are owned by root
//! unless `--chown` (names looked up in the stage's `/etc/passwd` and
//! `/etc/group`; a user alone gives GID = UID); `--chmod` sets the mode of
//! what is copied; mtimes are kept; symlinks inside a copied directory are
//! copied as links. Every destination path is resolved inside the stage's
//! root ([`berth_runtime::secure_join`]), so nothing is written outside it.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};

use crate::context::{Source, SourceRoot};

/// Ownership and mode for what a step writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub uid: u32,
    pub gid: u32,
    /// `--chmod`, octal.
    pub mode: Option<u32>,
}

/// Resolves `--chown` against the stage's passwd and group files.
pub fn resolve_chown(spec: &str, root: &Path) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |f: &str| {
        berth_runtime::secure_join(root, f)
            .ok()
            .and_then(|p| fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let lookup = |file: &str, name: &str, what: &str| -> Result<u32, String> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        read(file)
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(name)).then(|| f.nth(1).and_then(|id| id.parse::<u32>().ok()))?
            })
            .ok_or_else(|| {
                format!(
                    "unable to convert {what} {name:?} to an id: not found in {file} of the stage"
                )
            })
    };
    let uid = lookup("/etc/passwd", user, "uid")?;
    let gid = match group {
        Some(g) => lookup("/etc/group", g, "gid")?,
        None => uid,
    };
    Ok((uid, gid))
}

/// Parses `--chmod` (octal only, as BuildKit without labs features).
pub fn parse_chmod(spec: &str) -> Result<u32, String> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid --chmod {spec:?}: give an octal mode such as 0755"))
}

/// Where a destination path lands in the stage: absolute, or relative to
/// the working dir; a trailing `/` (or `.`) marks a directory.
pub fn dest_path(dest: &str, workdir: &str) -> (String, bool) {
    let dir_hint = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let abs = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        format!("{}/{dest}", workdir.trim_end_matches('/'))
    };
    (abs, dir_hint)
}

/// Creates `path` (inside `root`) and its missing parents, owned by `attrs`.
pub fn mkdir_all(root: &Path, path: &str, attrs: Attrs) -> Result<PathBuf, String> {
    let mut built = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        built.push('/');
        built.push_str(part);
        let p = berth_runtime::secure_join(root, &built).map_err(|e| e.to_string())?;
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "cannot create directory {built}: a file is in the way"
                ));
            }
            Err(_) => {
                fs::create_dir(&p).map_err(|e| format!("mkdir {built}: {e}"))?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("chmod {built}: {e}"))?;
                chown(&p, attrs.uid, attrs.gid)?;
            }
        }
    }
    berth_runtime::secure_join(root, path).map_err(|e| e.to_string())
}

fn chown(p: &Path, uid: u32, gid: u32) -> Result<(), String> {
    fchownat(
        None,
        p,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| format!("chown {}: {e}", p.display()))
}

fn keep_mtime(p: &Path, meta: &fs::Metadata) -> Result<(), String> {
    let t = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, p, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| format!("set mtime of {}: {e}", p.display()))
}

/// Copies the sources of one COPY/ADD (already expanded) to `dest`.
pub fn copy_sources(
    from: &SourceRoot,
    sources: &[Source],
    root: &Path,
    dest: &str,
    dest_is_dir_hint: bool,
    attrs: Attrs,
) -> Result<(), String> {
    let existing_dir = berth_runtime::secure_join(root, dest)
        .ok()
        .is_some_and(|p| p.is_dir());
    let many = sources.len() > 1
        || sources
            .iter()
            .any(|s| s.wildcard && s.path.is_file() && sources.len() > 1);
    if many && !dest_is_dir_hint && !existing_dir {
        return Err(
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
                .to_owned(),
        );
    }
    for s in sources {
        let meta = fs::metadata(&s.path).map_err(|e| format!("{}: {e}", s.rel))?;
        if meta.is_dir() {
            let target = mkdir_all(root, dest, attrs)?;
            copy_dir_contents(from, &s.path, &s.rel, &s.rel, &target, attrs)?;
        } else {
            let into_dir = dest_is_dir_hint || existing_dir || many;
            let target_rel = if into_dir {
                let name = Path::new(&s.rel)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                mkdir_all(root, dest, attrs)?;
                format!("{}/{name}", dest.trim_end_matches('/'))
            } else {
                let parent = Path::new(dest)
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "/".to_owned());
                mkdir_all(root, &parent, attrs)?;
                dest.to_owned()
            };
            let target =
                berth_runtime::secure_join(root, &target_rel).map_err(|e| e.to_string())?;
            copy_file(&s.path, &meta, &target, attrs)?;
        }
    }
    Ok(())
}

/// Writes one file at `target_rel` (parents created) from `src`, with
/// `mtime` when given (else now).
pub fn install_file(
    root: &Path,
    target_rel: &str,
    src: &Path,
    mtime: Option<std::time::SystemTime>,
    attrs: Attrs,
) -> Result<(), String> {
    let parent = Path::new(target_rel)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".to_owned());
    mkdir_all(root, &parent, attrs)?;
    let target = berth_runtime::secure_join(root, target_rel).map_err(|e| e.to_string())?;
    let meta = fs::metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    copy_file(src, &meta, &target, attrs)?;
    if let Some(t) = mtime {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let ts = TimeSpec::new(d.as_secs() as i64, i64::from(d.subsec_nanos()));
        utimensat(None, &target, &ts, &ts, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| format!("set mtime of {}: {e}", target.display()))?;
    }
    Ok(())
}

fn copy_file(src: &Path, meta: &fs::Metadata, target: &Path, attrs: Attrs) -> Result<(), String> {
    if let Ok(m) = fs::symlink_metadata(target) {
        if m.is_dir() {
            return Err(format!(
                "cannot replace directory {} with a file",
                target.display()
            ));
        }
        fs::remove_file(target).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    let mut input = fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut out = fs::File::create(target).map_err(|e| format!("{}: {e}", target.display()))?;
    io::copy(&mut input, &mut out).map_err(|e| format!("copy to {}: {e}", target.display()))?;
    drop(out);
    chown(target, attrs.uid, attrs.gid)?;
    let mode = attrs.mode.unwrap_or(meta.mode() & 0o7777);
    fs::set_permissions(target, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", target.display()))?;
    keep_mtime(target, meta)
}

fn copy_dir_contents(
    from: &SourceRoot,
    src: &Path,
    base: &str,
    rel: &str,
    target: &Path,
    attrs: Attrs,
) -> Result<(), String> {
    let mut names: Vec<String> = fs::read_dir(src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let child = src.join(&name);
        let meta = fs::symlink_metadata(&child).map_err(|e| format!("{child_rel}: {e}"))?;
        if from.excluded_below(base, &child_rel, meta.is_dir())
            && !(meta.is_dir()
                && from
                    .ignore
                    .as_ref()
                    .is_some_and(|i| i.may_contain_exceptions(&child_rel)))
        {
            continue;
        }
        let out = target.join(&name);
        let ft = meta.file_type();
        if ft.is_dir() {
            match fs::symlink_metadata(&out) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                    fs::create_dir(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                }
                Err(_) => fs::create_dir(&out).map_err(|e| format!("{}: {e}", out.display()))?,
            }
            copy_dir_contents(from, &child, base, &child_rel, &out, attrs)?;
            chown(&out, attrs.uid, attrs.gid)?;
            let mode = attrs.mode.unwrap_or(meta.mode() & 0o7777);
            fs::set_permissions(&out, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("chmod {}: {e}", out.display()))?;
            keep_mtime(&out, &meta)?;
        } else if ft.is_symlink() {
            let link = fs::read_link(&child).map_err(|e| format!("{child_rel}: {e}"))?;
            if let Ok(m) = fs::symlink_metadata(&out) {
                if m.is_dir() {
                    fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                } else {
                    fs::remove_file(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                }
            }
            std::os::unix::fs::symlink(&link, &out)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            chown(&out, attrs.uid, attrs.gid)?;
            keep_mtime(&out, &meta)?;
        } else if ft.is_file() {
            copy_file(&child, &meta, &out, attrs)?;
        }
        // Devices, fifos and sockets in a context are skipped, as BuildKit
        // does for the local context.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn destinations_follow_docker_rules() {
        assert_eq!(dest_path("app/", "/work"), ("/work/app/".to_owned(), true));
        assert_eq!(dest_path("/x", "/work"), ("/x".to_owned(), false));
        assert_eq!(dest_path(".", "/"), ("/.".to_owned(), true));
    }

    #[test]
    fn chown_names_come_from_the_stage() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(d.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_chown("app", d.path()).unwrap(), (1000, 1000));
        assert_eq!(resolve_chown("app:staff", d.path()).unwrap(), (1000, 50));
        assert_eq!(resolve_chown("7:8", d.path()).unwrap(), (7, 8));
        assert!(
            resolve_chown("nobody", d.path())
                .unwrap_err()
                .contains("not found")
        );
        assert_eq!(parse_chmod("0750").unwrap(), 0o750);
        assert!(parse_chmod("u+x").is_err());
    }

    #[test]
    fn copies_files_and_directory_contents() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("dir/sub")).unwrap();
        fs::write(src.path().join("dir/sub/f"), "f").unwrap();
        fs::write(src.path().join("one"), "1").unwrap();
        let root = tempfile::tempdir().unwrap();
        let from = SourceRoot::context(src.path().to_owned(), None);
        let attrs = Attrs {
            uid: 0,
            gid: 0,
            mode: None,
        };
        copy_sources(
            &from,
            &from.expand("dir").unwrap(),
            root.path(),
            "/app",
            false,
            attrs,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("app/sub/f")).unwrap(),
            "f"
        );
        copy_sources(
            &from,
            &from.expand("one").unwrap(),
            root.path(),
            "/app",
            false,
            attrs,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("app/one")).unwrap(),
            "1"
        );
        copy_sources(
            &from,
            &from.expand("one").unwrap(),
            root.path(),
            "/x/renamed",
            false,
            attrs,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("x/renamed")).unwrap(),
            "1"
        );
        let e = copy_sources(
            &from,
            &from.expand("*").unwrap(),
            root.path(),
            "/nodir",
            false,
            attrs,
        )
        .unwrap_err();
        assert!(e.contains("must be a directory"), "{e}");
    }
}
