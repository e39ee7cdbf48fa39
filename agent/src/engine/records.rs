//! Named records on disk, one folder each: `<dir>/<name>/<file>` holding
//! the name and labels. Volumes and networks share this shape; the folder
//! itself is the claim on the name (`mkdir` is atomic, so two creates of
//! one name cannot both succeed), and a folder without its record yet is a
//! create in progress, not listed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_reconcilers::{BackendError, ErrorKind};
use serde::{Deserialize, Serialize};

use super::error::io;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Docker's rule for volume and network names, which also keeps a name
/// from being a path (`..`, `/`).
pub fn check_name(what: &str, name: &str) -> Result<(), BackendError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err(BackendError::new(
            ErrorKind::InvalidArgument,
            format!("invalid {what} name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ))
    }
}

/// Claims `<dir>/<name>`, lets `prepare` fill it, then writes the record.
pub fn create(
    dir: &Path,
    file: &str,
    record: &Record,
    prepare: impl FnOnce(&Path) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let folder = dir.join(&record.name);
    match std::fs::create_dir(&folder) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackendError::already_exists(format!(
                "{} already exists",
                record.name
            )));
        }
        Err(e) => return Err(io("create", &folder, e)),
    }
    let filled = prepare(&folder).and_then(|()| {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| BackendError::new(ErrorKind::Internal, e.to_string()))?;
        let tmp = folder.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, bytes).map_err(|e| io("write", &tmp, e))?;
        let target = folder.join(file);
        std::fs::rename(&tmp, &target).map_err(|e| io("rename into place", &target, e))
    });
    if filled.is_err() {
        // Give the name back: a half-made record would block it forever.
        let _ = std::fs::remove_dir_all(&folder);
    }
    filled
}

/// Every complete record under `dir`, by name.
pub fn list(dir: &Path, file: &str) -> Result<Vec<Record>, BackendError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", dir, e)),
    };
    let mut out: Vec<Record> = entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join(file)).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The folder of an existing record, or `NotFound`.
pub fn existing(dir: &Path, file: &str, what: &str, name: &str) -> Result<PathBuf, BackendError> {
    let folder = dir.join(name);
    if check_name(what, name).is_err() || !folder.join(file).exists() {
        return Err(BackendError::not_found(format!("no such {what}: {name}")));
    }
    Ok(folder)
}

pub fn remove(folder: &Path) -> Result<(), BackendError> {
    std::fs::remove_dir_all(folder).map_err(|e| io("remove", folder, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_be_paths_are_refused() {
        for bad in ["", "..", ".x", "a/b", "-a", "a b"] {
            assert_eq!(
                check_name("volume", bad).map_err(|e| e.kind()),
                Err(ErrorKind::InvalidArgument),
                "{bad:?}"
            );
        }
        for good in ["a", "proj_data", "x.y-z_1"] {
            assert!(check_name("volume", good).is_ok(), "{good:?}");
        }
    }
}
