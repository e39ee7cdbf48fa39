//! `berth builder prune`: removes build cache entries, then lets the image
//! store collect the layers and snapshots nothing refers to any more.

use std::fs;
use std::time::{Duration, SystemTime};

use berth_image::Store;

use crate::cache::{Entry, OWNER};
use crate::error::{BuildError, Result};

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Every entry, also those whose layers images still use.
    pub all: bool,
    /// Only entries last used longer ago than this.
    pub until: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub entries: usize,
    /// Bytes of blobs the store freed afterwards.
    pub reclaimed: u64,
}

/// Removes cache entries: by default those whose layer no image in the
/// store uses (Docker's "dangling" cache), with `all` every one; `until`
/// keeps entries used more recently. Leftover build temp dirs go too,
/// and (without `until`) the git checkouts.
pub fn prune(store: &Store, options: &PruneOptions) -> Result<Pruned> {
    let dir = store.gc_roots_dir(OWNER);
    let mut used = std::collections::HashSet::new();
    if !options.all {
        for image in store.images()? {
            for l in image.layers() {
                used.insert(l.digest().to_string());
            }
        }
    }
    let now = SystemTime::now();
    let mut pruned = Pruned::default();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pruned),
        Err(e) => return Err(BuildError::io(&dir, e)),
    };
    for file in entries.flatten() {
        let path = file.path();
        if let Some(until) = options.until {
            let recent = file
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() < until);
            if recent {
                continue;
            }
        }
        if !options.all {
            let entry: Option<Entry> = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let in_use = entry
                .and_then(|e| e.layer)
                .is_some_and(|l| used.contains(&l.blob.to_string()));
            if in_use {
                continue;
            }
        }
        fs::remove_file(&path).map_err(|e| BuildError::io(&path, e))?;
        pruned.entries += 1;
    }
    let tmp = store.root().join("build").join("tmp");
    detach_mounts_under(&tmp);
    if let Ok(leftovers) = fs::read_dir(&tmp) {
        for d in leftovers.flatten() {
            let _ = fs::remove_dir_all(d.path());
        }
    }
    // Git checkouts are fetched again (by commit) when a build needs them.
    if options.all || options.until.is_none() {
        let _ = fs::remove_dir_all(store.root().join("build").join("git"));
    }
    pruned.reclaimed = store.gc()?.bytes;
    Ok(pruned)
}

/// Overlay mounts a killed build left under `dir`, detached before their
/// folders are removed (deepest first).
fn detach_mounts_under(dir: &std::path::Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}
