//! Turning a layer entry's path into a host path that is provably inside
//! the snapshot being unpacked.
//!
//! Two steps. [`clean`] works on the text: `.` and leading `/` go
//! (absolute entry paths are rooted at the layer, as in Docker and
//! containerd), `..` is applied, and a `..` that would climb above the root
//! is refused. [`resolve_dir`] then walks the parent components one at a
//! time with `symlink_metadata`, never letting the kernel follow a link: a
//! symlink the layer itself created earlier is followed by hand only when
//! its target is relative and stays inside the root; an absolute target
//! (`evil -> /etc`) or one that climbs out (`evil -> ../../..`) is refused,
//! since writing through it would write to the host.
//!
//! The check-then-use is race-free because the root is a fresh private
//! temp dir that only this unpack writes to.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use tracing::debug;

use crate::error::{Error, Result};

/// Symlinks followed while resolving one path, as Linux's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

fn unsafe_entry(entry: &str, reason: String) -> Error {
    Error::UnsafeEntry {
        entry: entry.to_owned(),
        reason,
    }
}

/// The components of `path` after lexical cleaning; refuses a path that
/// climbs out of the root. Empty for the root itself (`./`).
pub(crate) fn clean(entry: &str, path: &Path) -> Result<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p.to_owned()),
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(unsafe_entry(
                        entry,
                        "its path climbs out of the layer root with `..`".into(),
                    ));
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// Resolves directory components under `root`, following only in-root
/// relative symlinks. With `create`, missing directories are made (mode
/// 0755, like tar's implied parents); without, a missing one is an error.
pub(crate) fn resolve_dir(
    root: &Path,
    components: &[OsString],
    entry: &str,
    create: bool,
) -> Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        if c == OsStr::new("..") {
            if resolved.pop().is_none() {
                return Err(unsafe_entry(
                    entry,
                    "a symlink in its path climbs out of the layer root".into(),
                ));
            }
            continue;
        }
        if c.is_empty() || c == OsStr::new(".") {
            continue;
        }
        let here = join(root, &resolved).join(&c);
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.is_dir() => resolved.push(c),
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(unsafe_entry(entry, "too many levels of symlinks".into()));
                }
                let target = fs::read_link(&here).map_err(|source| Error::Unpack {
                    entry: entry.to_owned(),
                    action: "read symlink",
                    source,
                })?;
                let shown = display(&resolved, &c);
                if target.is_absolute() {
                    return Err(unsafe_entry(
                        entry,
                        format!(
                            "path component {shown:?} is a symlink to {:?}, outside the layer; \
                             writing through it would write to the host",
                            target.display()
                        ),
                    ));
                }
                debug!(entry, component = %shown, target = %target.display(), "following in-layer symlink");
                for part in target.components().rev() {
                    match part {
                        Component::Normal(p) => pending.push_front(p.to_owned()),
                        Component::ParentDir => pending.push_front(OsString::from("..")),
                        _ => {}
                    }
                }
            }
            Ok(_) => {
                return Err(unsafe_entry(
                    entry,
                    format!(
                        "path component {:?} is not a directory",
                        display(&resolved, &c)
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&here)
                    .map_err(|source| Error::Unpack {
                        entry: entry.to_owned(),
                        action: "create parent directory",
                        source,
                    })?;
                resolved.push(c);
            }
            Err(source) => {
                return Err(Error::Unpack {
                    entry: entry.to_owned(),
                    action: "look up path component",
                    source,
                });
            }
        }
    }
    Ok(join(root, &resolved))
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

fn display(resolved: &[OsString], last: &OsStr) -> String {
    let mut parts: Vec<String> = resolved
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    parts.push(last.to_string_lossy().into_owned());
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn comps(s: &str) -> Vec<OsString> {
        clean(s, Path::new(s)).unwrap()
    }

    #[test]
    fn cleaning_keeps_paths_inside() {
        assert_eq!(comps("./a/./b/"), vec![OsString::from("a"), "b".into()]);
        assert_eq!(
            comps("/etc/passwd"),
            vec![OsString::from("etc"), "passwd".into()]
        );
        assert_eq!(comps("a/../b"), vec![OsString::from("b")]);
        assert!(comps("./").is_empty());
        for bad in ["../x", "a/../../x", "/../x"] {
            assert!(clean(bad, Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn follows_only_links_that_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        fs::write(root.join("file"), b"").unwrap();
        let got = resolve_dir(root, &comps("lib/x"), "lib/x/y", true).unwrap();
        assert_eq!(got, root.join("usr/lib/x"));
        assert!(root.join("usr/lib/x").is_dir());
        for bad in ["abs", "up", "loop", "file", "abs/sub"] {
            let err = resolve_dir(root, &comps(bad), "e", true).unwrap_err();
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{bad}: {err}");
        }
        assert!(resolve_dir(root, &comps("missing"), "e", false).is_err());
    }
}
