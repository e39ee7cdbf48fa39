//! Whether a service's built image is stale: a digest of everything its
//! build reads ([`BuildInputs::digest`]: the `build:` section as the
//! builder gets it, the Dockerfile's text, every file of the context
//! that `.dockerignore` lets in, and the files or image IDs of named
//! contexts), recorded beside the image it gave
//! ([`BuildInputs::record`], `<root>/build/compose/<ref-digest>.json`),
//! compared on each observation ([`BuildInputs::stale`]).
//!
//! Hashing a context on every resync of the agent would cost as much as
//! the context is big, so files are re-read only when their stat (size,
//! mtime, ctime, inode, mode) changed since the last walk: a no-op resync
//! costs one `lstat` per file. The stat cache lives in memory and under
//! `<root>/build/compose/statcache/`, so a restarted agent does not re-read
//! everything either.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_build::{DockerfileSource, NamedContext, SecretSource};
use berth_reconcilers::BackendError;
use berth_spec::dockerignore::DockerIgnore;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::io;

/// What a file looked like when its content was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    mode: u32,
}

impl Stat {
    fn of(m: &std::fs::Metadata) -> Self {
        Stat {
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            ino: m.ino(),
            mode: m.mode(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StatCache {
    /// Relative path -> (stat, sha256 hex of the content).
    files: BTreeMap<String, (Stat, String)>,
}

/// The record of one build: its inputs and the image they gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    inputs: String,
    image_id: String,
    /// Which inputs (`dockerfile`, `context`, `config`), to say what changed.
    parts: BTreeMap<String, String>,
}

/// The digest of a build's inputs, with its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub digest: String,
    parts: BTreeMap<String, String>,
}

pub struct BuildInputs {
    dir: PathBuf,
    caches: Mutex<HashMap<PathBuf, StatCache>>,
    /// Reference -> inputs whose build failed in this process: not tried
    /// again on every resync until they change (a failing RUN step would
    /// otherwise run each time the agent looks).
    failed: Mutex<HashMap<String, String>>,
}

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

impl BuildInputs {
    /// Records and caches under `<root>/build/compose`.
    pub fn new(root: &Path) -> Self {
        BuildInputs {
            dir: root.join("build").join("compose"),
            caches: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// The digest of what building `request` reads; `image_id` gives the
    /// current ID of an image a named context names (`docker-image://`,
    /// compose's `service:`), so a rebuilt base makes this image stale.
    pub fn digest(
        &self,
        request: &berth_build::BuildRequest,
        image_id: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Inputs, BackendError> {
        let context = request
            .context
            .canonicalize()
            .map_err(|e| io("read the build context", &request.context, e))?;
        let (dockerfile, ignore_candidates) = match &request.dockerfile {
            Some(DockerfileSource::Inline(text)) => (text.clone().into_bytes(), Vec::new()),
            Some(DockerfileSource::Path(p)) => {
                let mut ignore = p.as_os_str().to_owned();
                ignore.push(".dockerignore");
                (
                    std::fs::read(p).map_err(|e| io("read", p, e))?,
                    vec![PathBuf::from(ignore)],
                )
            }
            None => {
                let p = context.join("Dockerfile");
                (
                    std::fs::read(&p).map_err(|e| io("read", &p, e))?,
                    Vec::new(),
                )
            }
        };
        let mut ignore = None;
        for path in ignore_candidates
            .into_iter()
            .chain(std::iter::once(context.join(".dockerignore")))
        {
            if let Ok(text) = std::fs::read_to_string(&path) {
                ignore = Some(DockerIgnore::parse(&text, &path).map_err(|d| {
                    BackendError::new(berth_reconcilers::ErrorKind::InvalidArgument, d.to_string())
                })?);
                break;
            }
        }
        let (context_digest, _) = self.context_digest(&context, ignore.as_ref())?;
        let mut config = serde_json::json!({
            "context": context.to_string_lossy(),
            "args": request.build_args,
            "target": request.target,
            "labels": request.labels,
            "tags": request.tags,
            "network": format!("{:?}", request.network),
            "extraHosts": format!("{:?}", request.extra_hosts),
            "ulimits": format!("{:?}", request.ulimits),
            "entitlements": format!("{:?}", request.entitlements),
            "shmSize": request.shm_size,
            "platform": request.platform,
            "secrets": request.secrets.iter().map(|(k, v)| (k.clone(), match v {
                SecretSource::File(p) => format!("file:{}", p.display()),
                SecretSource::Value(v) => format!("value:{}", sha(v)),
            })).collect::<BTreeMap<_, _>>(),
        });
        // Only when set: the digests of builds without it stay as they were.
        if request.inline_cache {
            config["inlineCache"] = serde_json::json!(true);
        }
        let mut parts = BTreeMap::from([
            ("dockerfile".to_owned(), sha(&dockerfile)),
            ("context".to_owned(), context_digest),
            ("config".to_owned(), sha(config.to_string().as_bytes())),
        ]);
        // Only with named contexts: the digests of builds without them
        // (recorded before they existed) stay the same.
        if !request.named_contexts.is_empty() {
            let mut named = BTreeMap::new();
            for (name, context) in &request.named_contexts {
                let value = match context {
                    NamedContext::Dir(dir) => {
                        let dir = dir
                            .canonicalize()
                            .map_err(|e| io("read the build context", dir, e))?;
                        let (digest, _) = self.context_digest(&dir, None)?;
                        format!("dir:{}:{digest}", dir.display())
                    }
                    NamedContext::Image(reference) => {
                        format!(
                            "image:{reference}:{}",
                            image_id(reference).unwrap_or_default()
                        )
                    }
                    // Resolved on its remote by the build itself.
                    NamedContext::Git(url) => format!("git:{url}"),
                };
                named.insert(name.clone(), value);
            }
            parts.insert(
                "contexts".to_owned(),
                sha(serde_json::to_string(&named).unwrap_or_default().as_bytes()),
            );
        }
        let digest = sha(serde_json::to_string(&parts).unwrap_or_default().as_bytes());
        Ok(Inputs { digest, parts })
    }

    /// Remembers that building `inputs` for `reference` failed.
    pub fn record_failure(&self, reference: &str, inputs: &Inputs) {
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(reference.to_owned(), inputs.digest.clone());
    }

    /// Remembers that `inputs` built `image_id` for `reference`.
    pub fn record(&self, reference: &str, inputs: &Inputs, image_id: &str) {
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(reference);
        let record = Record {
            inputs: inputs.digest.clone(),
            image_id: image_id.to_owned(),
            parts: inputs.parts.clone(),
        };
        let path = self.record_path(reference);
        if let Err(e) = write_json(&path, &record) {
            tracing::warn!(path = %path.display(), error = %e,
                "cannot record the build's inputs; the next observation rebuilds");
        }
    }

    /// Why `reference` (now `image_id`) must be built again, if it must:
    /// its recorded inputs differ from `current`. An image berth did not
    /// build for this reference (loaded, tagged by hand) has no record
    /// and is left alone, as is a reference retagged since the build.
    pub fn stale(&self, reference: &str, image_id: &str, current: &Inputs) -> Option<String> {
        let text = std::fs::read(self.record_path(reference)).ok()?;
        let record: Record = serde_json::from_slice(&text).ok()?;
        if record.image_id != image_id || record.inputs == current.digest {
            return None;
        }
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(reference)
            .is_some_and(|d| *d == current.digest);
        if failed {
            tracing::debug!(%reference, "these build inputs failed to build already; waiting for a change");
            return None;
        }
        let changed: Vec<&str> = current
            .parts
            .iter()
            .filter(|(k, v)| record.parts.get(*k) != Some(*v))
            .map(|(k, _)| match k.as_str() {
                "dockerfile" => "the Dockerfile",
                "context" => "the build context",
                "contexts" => "a named build context",
                _ => "the build: section",
            })
            .collect();
        Some(format!(
            "{} changed since {reference} was built",
            if changed.is_empty() {
                "its inputs".to_owned()
            } else {
                changed.join(" and ")
            }
        ))
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.dir.join(format!("{}.json", sha(reference.as_bytes())))
    }

    /// A digest over every file the context lets in: path, type, mode
    /// and content (symlinks: their target); and how many files had to be
    /// read (the others' stat matched the cache).
    fn context_digest(
        &self,
        context: &Path,
        ignore: Option<&DockerIgnore>,
    ) -> Result<(String, usize), BackendError> {
        let cache_path = self.dir.join("statcache").join(format!(
            "{}.json",
            sha(context.as_os_str().as_encoded_bytes())
        ));
        let mut caches = self
            .caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = caches.remove(context).unwrap_or_else(|| {
            std::fs::read(&cache_path)
                .ok()
                .and_then(|t| serde_json::from_slice(&t).ok())
                .unwrap_or_default()
        });
        let mut new = StatCache::default();
        let mut hasher = Sha256::new();
        let mut reread = 0usize;
        walk(context, "", ignore, &mut |rel, path, meta| {
            let ft = meta.file_type();
            let entry = if ft.is_symlink() {
                let target = std::fs::read_link(path).map_err(|e| io("read", path, e))?;
                format!("l {rel} {:o} {}", meta.mode(), target.display())
            } else if ft.is_dir() {
                format!("d {rel} {:o}", meta.mode())
            } else if ft.is_file() {
                let stat = Stat::of(meta);
                let content = match old.files.get(rel) {
                    Some((s, h)) if *s == stat => h.clone(),
                    _ => {
                        reread += 1;
                        hash_file(path)?
                    }
                };
                let line = format!("f {rel} {:o} {content}", meta.mode());
                new.files.insert(rel.to_owned(), (stat, content));
                line
            } else {
                format!("o {rel} {:o}", meta.mode())
            };
            hasher.update(entry.as_bytes());
            hasher.update(b"\n");
            Ok(())
        })?;
        tracing::debug!(context = %context.display(), files = new.files.len(), reread, "build context hashed");
        if reread > 0 || new.files.len() != old.files.len() {
            if let Err(e) = write_json(&cache_path, &new) {
                tracing::debug!(path = %cache_path.display(), error = %e, "cannot save the stat cache");
            }
        }
        caches.insert(context.to_owned(), new);
        Ok((format!("{:x}", hasher.finalize()), reread))
    }
}

/// Calls `f(relative path, path, lstat)` for every entry under `dir` the
/// ignore file lets in, sorted by name so the digest is stable.
fn walk(
    dir: &Path,
    prefix: &str,
    ignore: Option<&DockerIgnore>,
    f: &mut dyn FnMut(&str, &Path, &std::fs::Metadata) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| io("read", dir, e))?
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    entries.sort();
    for (name, path) in entries {
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io("stat", &path, e))?;
        let is_dir = meta.file_type().is_dir();
        let excluded = ignore.is_some_and(|i| i.is_excluded(&rel, is_dir));
        if !excluded {
            f(&rel, &path, &meta)?;
        }
        if is_dir && ignore.is_none_or(|i| i.should_descend(&rel)) {
            walk(&path, &rel, ignore, f)?;
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<String, BackendError> {
    let mut file = std::fs::File::open(path).map_err(|e| io("read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_vec(value).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[path = "build_inputs_tests.rs"]
mod tests;
