//! `docker load`: image archives into the store.
//!
//! Two formats, told apart by their top-level files: a `docker save`
//! archive has `manifest.json` (and is converted to OCI manifests, see
//! `docker`); an OCI image-layout archive has `index.json` and no
//! `manifest.json` (see `oci`). Docker 25+ writes both; its
//! `manifest.json` is read then, because it carries `RepoTags`.
//!
//! An archive is a stream (it may come from stdin), and its files come in
//! any order, so it is read once: every file that may be content is
//! ingested as a blob as it passes (verified when its path names its
//! digest), the small JSON files are kept in memory, and the manifests are
//! interpreted at the end. Ingested files no image ends up using are
//! garbage-collected.

mod docker;
mod oci;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use tracing::debug;

use crate::compress;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{BlobInfo, Image, Store};

/// Top-level files read into memory instead of the store, and their size
/// limit.
const METADATA_FILES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];
const MAX_METADATA: u64 = 16 * 1024 * 1024;
const MAX_LINK_HOPS: usize = 16;

/// One image an archive held.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub image: Image,
    /// The references the archive gave it (empty: loaded untagged).
    pub references: Vec<Reference>,
}

/// An archive's files after one pass: small metadata in memory, the rest
/// in the store, and the archive's own symlinks and hard links.
#[derive(Default)]
pub(crate) struct ArchiveFiles {
    metadata: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, BlobInfo>,
    links: HashMap<String, String>,
}

impl ArchiveFiles {
    /// The blob a path in the archive holds, following links.
    pub(crate) fn blob(&self, path: &str) -> Result<&BlobInfo> {
        let mut path = normalize(path).ok_or_else(|| bad_path(path))?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(blob) = self.blobs.get(&path) {
                return Ok(blob);
            }
            match self.links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        Err(Error::InvalidArchive(format!(
            "{path:?} is missing from the archive"
        )))
    }

    fn ingested(&self) -> impl Iterator<Item = &Digest> {
        self.blobs.values().map(|b| &b.digest)
    }
}

fn bad_path(path: &str) -> Error {
    Error::InvalidArchive(format!("bad path {path:?}"))
}

impl Store {
    /// Loads every image in a `docker save` or OCI image-layout archive
    /// (optionally gzip- or zstd-compressed) and tags it as the archive
    /// says.
    pub fn load(&self, reader: &mut dyn Read) -> Result<Vec<LoadedImage>> {
        let (loaded, ingested) = {
            let _content = self.lock_content_shared()?;
            let files = self.read_archive(reader)?;
            let loaded = if let Some(manifest) = files.metadata.get("manifest.json") {
                self.load_docker(&files, manifest)?
            } else if let Some(index) = files.metadata.get("index.json") {
                self.load_oci(&files, index)?
            } else {
                return Err(Error::InvalidArchive(
                    "neither manifest.json (docker save) nor index.json (OCI layout) at the top level"
                        .into(),
                ));
            };
            let ingested: HashSet<Digest> = files.ingested().cloned().collect();
            (loaded, ingested)
        };
        // Layers of other platforms, nested indexes, legacy files: collect
        // them now rather than keep them until the next rmi.
        let mut used: HashSet<Digest> = HashSet::new();
        for l in &loaded {
            used.insert(l.image.id.clone());
            used.insert(l.image.manifest_digest.clone());
            used.extend(
                l.image
                    .layers()
                    .iter()
                    .filter_map(|d| Digest::from_oci(d.digest()).ok()),
            );
        }
        if !ingested.is_subset(&used) {
            self.gc()?;
        }
        Ok(loaded)
    }

    /// One pass over the archive (see the module docs).
    fn read_archive(&self, reader: &mut dyn Read) -> Result<ArchiveFiles> {
        let (_, stream) = compress::decompress(reader).map_err(Error::ReadArchive)?;
        let mut archive = tar::Archive::new(stream);
        let mut files = ArchiveFiles::default();
        for entry in archive.entries().map_err(Error::ReadArchive)? {
            let mut entry = entry.map_err(Error::ReadArchive)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = normalize(&raw).ok_or_else(|| bad_path(&raw))?;
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(Error::ReadArchive)?
                    .ok_or_else(|| bad_path(&raw))?;
                let target = target.to_string_lossy();
                // Symlinks are relative to their folder, hard links to the
                // archive root.
                let joined = if kind.is_symlink() {
                    match Path::new(&path).parent() {
                        Some(dir) => dir.join(target.as_ref()).to_string_lossy().into_owned(),
                        None => target.into_owned(),
                    }
                } else {
                    target.into_owned()
                };
                let target = normalize(&joined).ok_or_else(|| bad_path(&joined))?;
                files.links.insert(path, target);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            if METADATA_FILES.contains(&path.as_str()) {
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(MAX_METADATA + 1)
                    .read_to_end(&mut bytes)
                    .map_err(Error::ReadArchive)?;
                if bytes.len() as u64 > MAX_METADATA {
                    return Err(Error::InvalidArchive(format!("{path} is too large")));
                }
                files.metadata.insert(path, bytes);
                continue;
            }
            // Legacy per-layer metadata of `docker save` (v1 JSON, VERSION):
            // nothing reads it.
            if path.ends_with("/json") || path.ends_with("/VERSION") {
                continue;
            }
            let expected = path
                .strip_prefix("blobs/sha256/")
                .map(Digest::from_hex)
                .transpose()?;
            let size = entry.size();
            debug!(path, size, "ingest archive file");
            let blob = self.write_blob(&mut entry, expected.as_ref(), Some(size))?;
            files.blobs.insert(path, blob);
        }
        Ok(files)
    }
}

/// An archive path made canonical: relative, no `.` or empty parts, `..`
/// applied; `None` when it climbs out of the archive.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in PathBuf::from(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.join("/"))
}

/// The name an OCI index entry gives its image, as `docker load` reads it:
/// containerd's full-name annotation, else a ref name that is a whole
/// reference (a bare tag names no repository).
pub(crate) fn name_from_annotations(
    annotations: Option<&HashMap<String, String>>,
) -> Option<Reference> {
    let annotations = annotations?;
    if let Some(name) = annotations.get("io.containerd.image.name") {
        return Reference::parse(name).ok();
    }
    let name = annotations.get(crate::store::REF_NAME_ANNOTATION)?;
    if name.contains(['/', ':', '@']) {
        Reference::parse(name).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
