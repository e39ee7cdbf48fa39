//! Content digests of context files, remembered by (device, inode, size,
//! mtime, ctime) so a rebuild reads only files that changed. Kept per
//! context directory in `<root>/build/statcache/<sha256 of the path>.json`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    sha256: String,
}

#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    entries: HashMap<PathBuf, Stamp>,
    dirty: bool,
}

fn nanos(secs: i64, nsec: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsec)
}

impl StatCache {
    /// Loads the cache of `context` kept under `dir` (empty when none).
    pub fn load(dir: &Path, context: &Path) -> Self {
        let key = hex::encode(Sha256::digest(context.as_os_str().as_encoded_bytes()));
        let file = dir.join(format!("{key}.json"));
        let entries = fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            file: Some(file),
            entries,
            dirty: false,
        }
    }

    /// The sha256 of a regular file's content.
    pub fn file_digest(&mut self, path: &Path, meta: &fs::Metadata) -> io::Result<[u8; 32]> {
        let stamp = |sha256: String| Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
            sha256,
        };
        if let Some(s) = self.entries.get(path) {
            let now = stamp(s.sha256.clone());
            if &now == s
                && let Ok(bytes) = hex::decode(&s.sha256)
                && let Ok(arr) = <[u8; 32]>::try_from(bytes.as_slice())
            {
                return Ok(arr);
            }
        }
        let mut hasher = Sha256::new();
        io::copy(&mut fs::File::open(path)?, &mut hasher)?;
        let digest: [u8; 32] = hasher.finalize().into();
        self.entries
            .insert(path.to_owned(), stamp(hex::encode(digest)));
        self.dirty = true;
        Ok(digest)
    }

    /// Writes the cache back when it learned something (best effort: a
    /// lost cache only costs re-reading files).
    pub fn save(&self) {
        let (Some(file), true) = (&self.file, self.dirty) else {
            return;
        };
        if let Some(dir) = file.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let Ok(bytes) = serde_json::to_vec(&self.entries) else {
            return;
        };
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        if fs::write(&tmp, bytes).is_ok() {
            let _ = fs::rename(&tmp, file);
        }
    }
}
