//! One pass over the root: discover the project folders, and load again
//! only those whose files changed since they were last loaded.
//!
//! Level-triggered: a scan compares content on disk with what was loaded,
//! so it needs no memory of which events were seen, and the periodic resync
//! and a watcher overflow are the same operation as an ordinary rescan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ProjectSource;
use super::discover::discover;
use super::load::{LoadResult, load_project};
use super::revision::revision;

/// What the store remembers of a project's last load.
#[derive(Debug, Clone)]
pub struct Known {
    pub files: Vec<PathBuf>,
    pub tracked: Vec<PathBuf>,
    pub revision: String,
}

/// The result of one scan.
#[derive(Debug)]
pub struct ScanReport {
    /// Every project key present on disk now.
    pub present: Vec<String>,
    /// The projects that were (re)loaded.
    pub loaded: Vec<LoadResult>,
}

pub fn scan(
    root: &Path,
    known: &BTreeMap<String, Known>,
    environment: &BTreeMap<String, String>,
) -> ScanReport {
    let sources = discover(root);
    let present = sources.iter().map(|s| s.key.clone()).collect();
    let loaded = sources
        .iter()
        .filter_map(|source| {
            let previous = known.get(&source.key);
            if previous.is_some_and(|k| is_unchanged(source, k)) {
                return None;
            }
            let tracked = previous.map(|k| k.tracked.as_slice()).unwrap_or(&[]);
            Some(load_project(source, tracked, environment))
        })
        .collect();
    ScanReport { present, loaded }
}

fn is_unchanged(source: &ProjectSource, known: &Known) -> bool {
    source.files == known.files && revision(&known.tracked) == known.revision
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known_from(report: &ScanReport) -> BTreeMap<String, Known> {
        report
            .loaded
            .iter()
            .map(|r| {
                (
                    r.source.key.clone(),
                    Known {
                        files: r.source.files.clone(),
                        tracked: r.tracked.clone(),
                        revision: r.revision.clone(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn reloads_only_what_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for p in ["a", "b"] {
            std::fs::create_dir_all(root.join(p)).unwrap();
            std::fs::write(root.join(p).join("compose.yaml"), "services: {}\n").unwrap();
        }
        let env = BTreeMap::new();
        let first = scan(root, &BTreeMap::new(), &env);
        assert_eq!(first.present, vec!["a", "b"]);
        assert_eq!(first.loaded.len(), 2);
        let known = known_from(&first);

        // Nothing changed: nothing reloads.
        std::fs::write(root.join("a/compose.yaml"), "services: {}\n").unwrap();
        assert!(scan(root, &known, &env).loaded.is_empty());

        // One file changed: only that project reloads.
        std::fs::write(root.join("b/compose.yaml"), "services: {x: {}}\n").unwrap();
        let again = scan(root, &known, &env);
        let keys: Vec<_> = again.loaded.iter().map(|r| r.source.key.as_str()).collect();
        assert_eq!(keys, vec!["b"]);

        // A new override file changes the file list: reload.
        std::fs::write(root.join("a/compose.override.yaml"), "services: {}\n").unwrap();
        let keys: Vec<_> = scan(root, &known, &env)
            .loaded
            .iter()
            .map(|r| r.source.key.clone())
            .collect();
        assert_eq!(keys, vec!["a", "b"]);

        // A deleted folder is no longer present.
        std::fs::remove_dir_all(root.join("a")).unwrap();
        assert_eq!(scan(root, &known, &env).present, vec!["b"]);
    }
}
