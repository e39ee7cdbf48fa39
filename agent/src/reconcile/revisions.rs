//! A project's revision history on disk: one JSON file per revision the
//! agent applied, under `<root>/agent/projects/<name>/revisions/<n>.json`,
//! the last `keep` of them.
//!
//! A revision is everything needed to apply it again without its files:
//! the normalized model (env files are already merged into it by the
//! loader), the digests of the config and secret files its config hashes
//! cover, the per-service config hashes it produced, and what happened
//! (the plan's actions with their reasons, the outcome).
//!
//! Secrets: the model holds environment values in clear (as `docker
//! compose config` prints them), so the folder is 0700 and each file
//! 0600, root's like the rest of the state root. Config and secret *files*
//! are not copied: only their digests are kept, and a rollback whose
//! revision needs a file whose content changed since is refused, naming
//! the file (`changed_files`), rather than run with content it never had.
//!
//! Writes are atomic (temp file, fsync, rename), so a crash leaves either
//! the old or the new record, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_spec::compose::model::Project;
use serde::{Deserialize, Serialize};

/// How many revisions a project keeps by default.
pub const DEFAULT_KEEP: usize = 10;

/// What became of a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevisionState {
    /// Being applied, or waiting for its health gate.
    Progressing,
    /// Applied and past its health gate.
    Applied,
    /// Its apply or its health gate failed, and nothing was rolled back
    /// (`failure_action: pause`, no earlier revision, or a refused
    /// rollback).
    Failed,
    /// It failed its health gate and the previous revision runs again.
    RolledBack,
}

impl RevisionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progressing => "Progressing",
            Self::Applied => "Applied",
            Self::Failed => "Failed",
            Self::RolledBack => "RolledBack",
        }
    }
}

/// One input file and its content digest (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFile {
    pub path: String,
    pub digest: Option<String>,
}

/// Where a revision came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// The project's revision: `sha256:` over its input files.
    pub digest: String,
    pub dir: String,
    pub files: Vec<SourceFile>,
    /// In git mode: the commit the files were read at, and its label
    /// (`main@sha1:<commit>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// One action of the plan that applied the revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    pub service: Option<String>,
    pub action: String,
    pub target: String,
    /// `Kind: message` per reason.
    pub reasons: Vec<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub number: u64,
    /// RFC 3339.
    pub created_at: String,
    /// When its state last changed.
    pub updated_at: String,
    /// When it was last put in place (first apply, or a rollback to it).
    pub last_applied_at: Option<String>,
    pub state: RevisionState,
    /// Why it is in its state (the gate's verdict, the apply's error).
    pub message: String,
    /// For `RolledBack`: the revision that runs instead.
    pub rolled_back_to: Option<u64>,
    /// How many reconciles applied it (retries, rollbacks to it).
    pub reconciliations: u64,
    /// How long its apply and gate took, in milliseconds.
    pub duration_ms: Option<u64>,
    pub source: Source,
    /// Config and secret file path -> content digest, as hashed.
    pub file_digests: BTreeMap<String, String>,
    /// Service -> config hash, once applied.
    pub config_hashes: BTreeMap<String, String>,
    pub actions: Vec<ActionRecord>,
    pub model: Project,
}

impl Revision {
    /// The files among this revision's configs and secrets whose content
    /// differs from `current` (path -> digest) now.
    pub fn changed_files(&self, current: &BTreeMap<String, String>) -> Vec<String> {
        self.file_digests
            .iter()
            .filter(|(path, digest)| current.get(*path) != Some(digest))
            .map(|(path, _)| path.clone())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error("project name {0:?} cannot name a folder")]
    BadName(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RevisionError + '_ {
    move |source| RevisionError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The revisions of one project, read once and kept in memory.
#[derive(Debug)]
pub struct RevisionStore {
    dir: PathBuf,
    keep: usize,
    revisions: BTreeMap<u64, Revision>,
}

impl RevisionStore {
    /// Opens `<root>/<name>/revisions`, reading what is there. Unreadable
    /// files are skipped with a warning: a corrupt record must not stop
    /// the agent from applying the project.
    pub fn open(root: &Path, name: &str, keep: usize) -> Result<Self, RevisionError> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(RevisionError::BadName(name.to_owned()));
        }
        let dir = root.join(name).join("revisions");
        let mut revisions = BTreeMap::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Some(number) = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_suffix(".json"))
                        .and_then(|n| n.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    let read = std::fs::read(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| {
                            serde_json::from_slice::<Revision>(&b).map_err(|e| e.to_string())
                        });
                    match read {
                        Ok(r) if r.number == number => {
                            revisions.insert(number, r);
                        }
                        Ok(_) => {
                            tracing::warn!(path = %path.display(), "ignoring a revision whose number does not match its file name")
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable revision")
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&dir)(e)),
        }
        Ok(Self {
            dir,
            keep: keep.max(1),
            revisions,
        })
    }

    /// Newest first.
    pub fn list(&self) -> impl Iterator<Item = &Revision> {
        self.revisions.values().rev()
    }

    pub fn get(&self, number: u64) -> Option<&Revision> {
        self.revisions.get(&number)
    }

    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.values().next_back()
    }

    pub fn next_number(&self) -> u64 {
        self.latest().map_or(1, |r| r.number + 1)
    }

    /// Writes a new revision (its number must be [`Self::next_number`])
    /// and drops the oldest beyond `keep`. The revision in place now (the
    /// newest `Applied` one by `last_applied_at`) is never dropped, so a
    /// rollback always has its target.
    pub fn insert(&mut self, revision: Revision) -> Result<(), RevisionError> {
        self.write(&revision)?;
        self.revisions.insert(revision.number, revision);
        let protected = self.in_place().map(|r| r.number);
        while self.revisions.len() > self.keep {
            let Some(oldest) = self
                .revisions
                .keys()
                .copied()
                .find(|n| Some(*n) != protected)
            else {
                break;
            };
            let path = self.path(oldest);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
            self.revisions.remove(&oldest);
        }
        Ok(())
    }

    /// Changes a revision and writes it again; `None` when there is none.
    pub fn update(
        &mut self,
        number: u64,
        change: impl FnOnce(&mut Revision),
    ) -> Result<Option<&Revision>, RevisionError> {
        let Some(mut revision) = self.revisions.get(&number).cloned() else {
            return Ok(None);
        };
        change(&mut revision);
        self.write(&revision)?;
        self.revisions.insert(number, revision);
        Ok(self.revisions.get(&number))
    }

    /// The revision running now: the one put in place last (a rollback
    /// puts an older one back). Whatever its state: a `Failed` one left in
    /// place by `failure_action: pause`, or a rolled back one a user
    /// pinned by hand, is what runs.
    pub fn in_place(&self) -> Option<&Revision> {
        self.revisions
            .values()
            .filter(|r| r.last_applied_at.is_some())
            .max_by(|a, b| {
                (a.last_applied_at.as_deref(), a.number)
                    .cmp(&(b.last_applied_at.as_deref(), b.number))
            })
    }

    /// The newest `Applied` revision other than `not`: where an automatic
    /// rollback goes, and a manual one without `--to`.
    pub fn previous_good(&self, not: u64) -> Option<&Revision> {
        self.list()
            .filter(|r| r.number != not && r.state == RevisionState::Applied)
            .find(|r| r.last_applied_at.is_some())
    }

    fn path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{number}.json"))
    }

    fn write(&self, revision: &Revision) -> Result<(), RevisionError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))?;
        let path = self.path(revision.number);
        let bytes =
            serde_json::to_vec_pretty(revision).map_err(|source| RevisionError::Encode {
                path: path.clone(),
                source,
            })?;
        let tmp = self.dir.join(format!(
            ".{}.json.tmp.{}",
            revision.number,
            std::process::id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }
}

/// The pin a manual rollback sets: revision `number` runs until the
/// project's files change from `files_digest` (or the user resumes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    pub number: u64,
    pub files_digest: String,
    pub at: String,
}

fn pin_path(root: &Path, name: &str) -> PathBuf {
    root.join(name).join("pin.json")
}

/// Reads the project's pin, if any (an unreadable one is ignored, said).
pub fn load_pin(root: &Path, name: &str) -> Option<Pin> {
    let path = pin_path(root, name);
    let bytes = std::fs::read(&path).ok()?;
    serde_json::from_slice(&bytes)
        .inspect_err(|e| tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable rollback pin"))
        .ok()
}

/// Writes or (with `None`) removes the project's pin.
pub fn save_pin(root: &Path, name: &str, pin: Option<&Pin>) -> Result<(), RevisionError> {
    let path = pin_path(root, name);
    let Some(pin) = pin else {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        };
    };
    let dir = root.join(name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir))?;
    let bytes = serde_json::to_vec(pin).map_err(|source| RevisionError::Encode {
        path: path.clone(),
        source,
    })?;
    let tmp = dir.join(format!(".pin.json.tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(&bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// Each path with the sha256 of its content (`None` when unreadable).
pub fn source_files(paths: &[PathBuf]) -> Vec<SourceFile> {
    use sha2::{Digest, Sha256};
    paths
        .iter()
        .map(|p| SourceFile {
            path: p.display().to_string(),
            digest: std::fs::read(p)
                .ok()
                .map(|b| format!("sha256:{:x}", Sha256::digest(&b))),
        })
        .collect()
}

#[cfg(test)]
#[path = "revisions_tests.rs"]
mod tests;
