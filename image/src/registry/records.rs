//! `<root>/registry.json`: what the store knows of registries, per full
//! reference: the digest the registry gave it (the index's for a
//! multi-platform image, as Docker's `RepoDigests` shows), the image ID it
//! named then, and when it was last pulled (for `pull_policy: daily`,
//! `weekly`, `every_<duration>`).
//!
//! Written under the store's index lock, atomically, like `index.json`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{Image, Store};

const FILE: &str = "registry.json";

/// One reference's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRecord {
    /// The registry's digest for the reference (index or manifest).
    pub digest: Digest,
    /// The image ID (config digest) it resolved to.
    pub image_id: Digest,
    /// Seconds since the epoch of the last pull; `None` for a reference
    /// only pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_at: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    references: BTreeMap<String, PullRecord>,
}

/// Reads and updates `registry.json`.
pub trait RegistryRecords {
    /// The record of `reference` (full form), if any.
    fn pull_record(&self, reference: &Reference) -> Result<Option<PullRecord>>;
    /// Records that `reference` was pulled (or pushed, `pulled: false`) as
    /// `digest`, naming `image_id`.
    fn record_registry_digest(
        &self,
        reference: &Reference,
        digest: &Digest,
        image_id: &Digest,
        pulled: bool,
    ) -> Result<()>;
    /// Docker's `RepoDigests` of `image`: `name@digest` for every
    /// reference recorded with its ID.
    fn repo_digests(&self, image: &Image) -> Result<Vec<String>>;
    /// How long ago `reference` was last pulled; `None`: never.
    fn since_pull(&self, reference: &Reference) -> Result<Option<Duration>>;
}

impl Store {
    fn read_records(&self) -> Result<File> {
        let path = self.root().join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
                what: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }
}

fn key(reference: &Reference) -> String {
    // A digest-pinned reference is recorded under its repository: the
    // digest is the record's value.
    match reference.digest() {
        Some(_) if reference.tag().is_none() => format!("{}@", reference.name()),
        _ => reference.to_string(),
    }
}

impl RegistryRecords for Store {
    fn pull_record(&self, reference: &Reference) -> Result<Option<PullRecord>> {
        Ok(self.read_records()?.references.remove(&key(reference)))
    }

    fn record_registry_digest(
        &self,
        reference: &Reference,
        digest: &Digest,
        image_id: &Digest,
        pulled: bool,
    ) -> Result<()> {
        let _guard = self.lock_index()?;
        let mut file = self.read_records()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let k = key(reference);
        let previous_pull = file.references.get(&k).and_then(|r| r.pulled_at);
        file.references.insert(
            k,
            PullRecord {
                digest: digest.clone(),
                image_id: image_id.clone(),
                pulled_at: if pulled { Some(now) } else { previous_pull },
            },
        );
        let bytes = serde_json::to_vec_pretty(&file).map_err(|source| Error::InvalidJson {
            what: FILE.into(),
            source,
        })?;
        // Atomic (temp file + rename) but not fsynced: losing the last
        // record to a crash costs a RepoDigest or one early re-pull, and
        // a pull is cheaper without two more fsyncs.
        let path = self.root().join(FILE);
        let tmp = self
            .tmp_dir()
            .join(format!(".registry-{}.json", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename temp file to", &path, e))
    }

    fn repo_digests(&self, image: &Image) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for (k, record) in self.read_records()?.references {
            if record.image_id != image.id {
                continue;
            }
            let name = k.trim_end_matches('@');
            let Ok(reference) = Reference::parse(name) else {
                continue;
            };
            let entry = format!("{}@{}", reference.familiar_name(), record.digest);
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    fn since_pull(&self, reference: &Reference) -> Result<Option<Duration>> {
        let Some(at) = self.pull_record(reference)?.and_then(|r| r.pulled_at) else {
            return Ok(None);
        };
        let at = UNIX_EPOCH + Duration::from_secs(at);
        Ok(Some(
            SystemTime::now().duration_since(at).unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_give_repo_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = Reference::parse("localhost:5000/app:1").unwrap();
        assert_eq!(store.pull_record(&r).unwrap(), None);
        assert_eq!(store.since_pull(&r).unwrap(), None);
        let d = Digest::of(b"manifest");
        let id = Digest::of(b"config");
        store.record_registry_digest(&r, &d, &id, false).unwrap();
        assert_eq!(store.since_pull(&r).unwrap(), None, "a push is no pull");
        store.record_registry_digest(&r, &d, &id, true).unwrap();
        assert!(store.since_pull(&r).unwrap().unwrap() < Duration::from_secs(60));
        let rec = store.pull_record(&r).unwrap().unwrap();
        assert_eq!(rec.digest, d);
        assert_eq!(rec.image_id, id);
    }
}
