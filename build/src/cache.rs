//! The build cache: one entry per step result, keyed by
//! `sha256(parent key, the step as executed, the digest of what it reads)`.
//!
//! Entries are [`berth_image::GcRoot`] files in
//! `<root>/gcroots/build-cache/<key hex>.json`: the image store's garbage
//! collection keeps the layer blob and snapshot an entry names, and
//! `berth builder prune` removes entries (then collects). A hit touches the
//! file's mtime, which prune's `until` filter reads as "last used".
//!
//! Entries imported from an image's inline cache (`--cache-from`, see
//! `inline_cache`) are held in memory for one build; one that is used is
//! written to the store's cache like any other, so the layers it names are
//! kept.

use std::collections::HashMap;
use std::fs;
use std::time::SystemTime;

use berth_image::{BuiltLayer, Digest, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The GC-root owner name of the build cache.
pub const OWNER: &str = "build-cache";

/// A cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(pub String);

impl Key {
    /// The key of a step: its parent's, what it is, what it read.
    pub fn step(parent: &Key, what: &str, inputs: &[u8]) -> Key {
        let mut h = Sha256::new();
        h.update(parent.0.as_bytes());
        h.update([0]);
        h.update(what.as_bytes());
        h.update([0]);
        h.update(inputs);
        Key(hex::encode(h.finalize()))
    }

    /// The key of a stage's start: its base.
    pub fn base(what: &str) -> Key {
        Key(hex::encode(Sha256::digest(what.as_bytes())))
    }

    /// The key of a `COPY --link` / `ADD --link` layer: what the step is
    /// and what it reads, not its parent, so the same layer serves any
    /// base.
    pub fn linked(what: &str, inputs: &[u8]) -> Key {
        Key::step(&Key::base("link"), what, inputs)
    }
}

/// One cached step result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// GC root fields: the layer blob, and the snapshot's chain id.
    #[serde(default)]
    pub blobs: Vec<Digest>,
    #[serde(default)]
    pub snapshots: Vec<Digest>,
    /// The layer the step added; `None` when it changed no file.
    pub layer: Option<BuiltLayer>,
    /// When the step first ran (RFC 3339): the history entry's time, so
    /// a cached rebuild gives the same image ID.
    pub created: String,
}

impl Entry {
    pub fn new(layer: Option<BuiltLayer>, chain: Option<Digest>, created: String) -> Self {
        Self {
            blobs: layer.iter().map(|l| l.blob.clone()).collect(),
            snapshots: chain.into_iter().collect(),
            layer,
            created,
        }
    }
}

/// Lookup and insertion over a store's cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    store: Store,
    /// From `--cache-from` images, for this build only.
    imported: HashMap<Key, Entry>,
}

impl Cache {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            imported: HashMap::new(),
        }
    }

    /// Adds entries read from a cache source; a key already imported
    /// keeps its first entry (the first `--cache-from` wins, as given).
    pub fn import(&mut self, entries: Vec<(Key, Entry)>) {
        for (key, entry) in entries {
            self.imported.entry(key).or_insert(entry);
        }
    }

    /// How many entries were imported.
    pub fn imported(&self) -> usize {
        self.imported.len()
    }

    fn path(&self, key: &Key) -> std::path::PathBuf {
        self.store
            .gc_roots_dir(OWNER)
            .join(format!("{}.json", key.0))
    }

    /// The entry for `key` when there is one whose layer blob is still in
    /// the store: the local cache's, else an imported one (then recorded
    /// locally).
    pub fn get(&self, key: &Key) -> Option<Entry> {
        self.get_local(key).or_else(|| {
            let entry = self.imported.get(key)?;
            if let Some(l) = &entry.layer
                && !self.store.has_blob(&l.blob)
            {
                return None;
            }
            if let Err(e) = self.put(key, entry) {
                tracing::warn!(error = %e, "cannot record an imported cache entry locally");
            }
            Some(entry.clone())
        })
    }

    fn get_local(&self, key: &Key) -> Option<Entry> {
        let path = self.path(key);
        let bytes = fs::read(&path).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        if let Some(l) = &entry.layer
            && !self.store.has_blob(&l.blob)
        {
            return None;
        }
        // Last used, for `builder prune --filter until=`.
        let _ = fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        Some(entry)
    }

    pub fn put(&self, key: &Key, entry: &Entry) -> crate::error::Result<()> {
        use crate::error::BuildError;
        // `Entry` is a superset of `GcRoot`: the sweep reads the same file.
        let dir = self.store.gc_roots_dir(OWNER);
        fs::create_dir_all(&dir).map_err(|e| BuildError::io(&dir, e))?;
        let bytes = serde_json::to_vec(entry)
            .map_err(|e| BuildError::Invalid(format!("build cache entry: {e}")))?;
        let path = self.path(key);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, &bytes).map_err(|e| BuildError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| BuildError::io(&path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_depend_on_parent_step_and_inputs() {
        let p = Key::base("scratch");
        let a = Key::step(&p, "COPY a /a", b"h1");
        assert_eq!(a, Key::step(&p, "COPY a /a", b"h1"));
        assert_ne!(a, Key::step(&p, "COPY a /a", b"h2"));
        assert_ne!(a, Key::step(&p, "COPY a /b", b"h1"));
        assert_ne!(a, Key::step(&Key::base("x"), "COPY a /a", b"h1"));
        // A linked layer's key has no parent to depend on.
        assert_eq!(
            Key::linked("COPY a /a", b"h1"),
            Key::linked("COPY a /a", b"h1")
        );
        assert_ne!(Key::linked("COPY a /a", b"h1"), a);
    }

    #[test]
    fn imported_entries_are_found_and_then_kept_locally() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let mut cache = Cache::new(store.clone());
        let key = Key::base("imported");
        let entry = Entry::new(None, None, "2021-01-01T00:00:00Z".into());
        cache.import(vec![(key.clone(), entry.clone())]);
        assert_eq!(cache.imported(), 1);
        assert_eq!(cache.get(&key), Some(entry.clone()));
        // Written through to the store: a plain cache finds it now.
        assert_eq!(Cache::new(store).get(&key), Some(entry));
    }

    #[test]
    fn entries_round_trip_and_are_gc_roots() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let cache = Cache::new(store.clone());
        let key = Key::base("k");
        assert!(cache.get(&key).is_none());
        let layer = store
            .write_layer(&mut |w| {
                let mut b = tar::Builder::new(w);
                let mut h = tar::Header::new_gnu();
                h.set_size(1);
                h.set_mode(0o644);
                b.append_data(&mut h, "f", &b"x"[..])?;
                b.finish()
            })
            .unwrap();
        let entry = Entry::new(Some(layer.clone()), None, "2020-01-01T00:00:00Z".into());
        cache.put(&key, &entry).unwrap();
        assert_eq!(cache.get(&key), Some(entry));
        // GC keeps the blob the entry names, though no image does.
        store.gc().unwrap();
        assert!(store.has_blob(&layer.blob));
        fs::remove_file(store.gc_roots_dir(OWNER).join(format!("{}.json", key.0))).unwrap();
        store.gc().unwrap();
        assert!(!store.has_blob(&layer.blob));
    }
}
