//! References: `content/index.json`, the store's roots.
//!
//! Each entry is a manifest descriptor. A tagged image's entry carries the
//! full reference in `org.opencontainers.image.ref.name` (the form
//! containerd and `docker save` write); an entry without one is an
//! untagged ("dangling") image, kept like Docker's `<none>:<none>` when its
//! tag moves to a newer image, so containers still running it keep their
//! layers. Everything reachable from these entries survives GC.

use std::collections::HashMap;
use std::io;

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use tracing::debug;

use super::{REF_NAME_ANNOTATION, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;

impl Store {
    /// The manifest descriptors in `index.json`; none when it is missing.
    pub(crate) fn read_index(&self) -> Result<Vec<Descriptor>> {
        let path = self.index_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        debug!(path = %path.display(), "read index");
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
                what: format!("image index {}", path.display()),
                source,
            })?;
        Ok(index.manifests().clone())
    }

    /// Read-modify-write of `index.json` under the index lock; written
    /// atomically when `f` succeeds.
    pub(crate) fn update_index<T>(
        &self,
        f: impl FnOnce(&mut Vec<Descriptor>) -> Result<T>,
    ) -> Result<T> {
        let _guard = self.lock_index()?;
        let mut manifests = self.read_index()?;
        let out = f(&mut manifests)?;
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|e| Error::invalid("image index", e.to_string()))?;
        let bytes = serde_json::to_vec_pretty(&index).map_err(|source| Error::InvalidJson {
            what: "image index".into(),
            source,
        })?;
        self.write_atomic(&self.index_path(), &bytes)?;
        Ok(out)
    }

    /// Every tagged reference and the manifest it names, in index order.
    pub fn references(&self) -> Result<Vec<(Reference, Digest)>> {
        let mut out = Vec::new();
        for desc in self.read_index()? {
            if let Some(r) = ref_of(&desc) {
                out.push((r, Digest::from_oci(desc.digest())?));
            }
        }
        Ok(out)
    }

    /// Points `reference` at `manifest`. The image it named before, when
    /// no other reference names it, stays as an untagged entry. The caller
    /// holds the shared content lock (the manifest's blobs must not be
    /// collected before this lands).
    pub(crate) fn set_ref(&self, reference: &Reference, manifest: &Descriptor) -> Result<()> {
        let new = Digest::from_oci(manifest.digest())?;
        debug!(%reference, manifest = %new, "set reference");
        let full = reference.to_string();
        self.update_index(|entries| {
            let mut previous = Vec::new();
            entries.retain(|d| {
                let same_ref = ref_name(d) == Some(full.as_str());
                if same_ref {
                    previous.push(d.digest().clone());
                }
                // Drop the new image's untagged entry: it is tagged now.
                let untagged_new = ref_name(d).is_none() && d.digest() == manifest.digest();
                !same_ref && !untagged_new
            });
            let mut tagged = manifest.clone();
            tagged.set_annotations(Some(HashMap::from([(
                REF_NAME_ANNOTATION.to_owned(),
                full.clone(),
            )])));
            entries.push(tagged);
            for old in previous {
                if !entries.iter().any(|d| d.digest() == &old) {
                    let mut dangling = manifest.clone();
                    dangling.set_digest(old.clone());
                    // The old manifest's size, not the new one's.
                    if let Ok(size) = Digest::from_oci(&old).and_then(|d| self.blob_size(&d)) {
                        dangling.set_size(size);
                    }
                    dangling.set_annotations(None);
                    dangling.set_platform(None);
                    entries.push(dangling);
                }
            }
            Ok(())
        })
    }

    /// Records `manifest` as an image without a reference (an archive
    /// entry with no name), unless it is already in the index.
    pub(crate) fn add_untagged(&self, manifest: &Descriptor) -> Result<()> {
        self.update_index(|entries| {
            if !entries.iter().any(|d| d.digest() == manifest.digest()) {
                let mut d = manifest.clone();
                d.set_annotations(None);
                entries.push(d);
            }
            Ok(())
        })
    }
}

/// The raw reference annotation of an index entry.
pub(crate) fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()?
        .get(REF_NAME_ANNOTATION)
        .map(String::as_str)
}

/// The reference an index entry carries, when it is one berth can use. A
/// bare tag (`latest`, as some OCI layouts write) names no repository and
/// counts as untagged.
pub(crate) fn ref_of(desc: &Descriptor) -> Option<Reference> {
    let name = ref_name(desc)?;
    if !name.contains(['/', ':', '@']) {
        return None;
    }
    Reference::parse(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_desc(store: &Store, body: &[u8]) -> Descriptor {
        let info = store.write_blob_bytes(body).unwrap();
        Descriptor::new(
            MediaType::ImageManifest,
            info.size,
            info.digest.to_oci().unwrap(),
        )
    }

    #[test]
    fn moving_a_tag_keeps_the_old_image_untagged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = manifest_desc(&store, b"{\"a\":1}");
        let b = manifest_desc(&store, b"{\"b\":2}");
        let busybox = Reference::parse("busybox").unwrap();
        store.set_ref(&busybox, &a).unwrap();
        store
            .set_ref(&Reference::parse("busybox:1").unwrap(), &a)
            .unwrap();
        store.set_ref(&busybox, &b).unwrap();
        let refs = store.references().unwrap();
        assert_eq!(refs.len(), 2, "{refs:?}");
        // a is still tagged busybox:1, so no untagged entry.
        assert_eq!(store.read_index().unwrap().len(), 2);
        store
            .set_ref(&Reference::parse("busybox:1").unwrap(), &b)
            .unwrap();
        let index = store.read_index().unwrap();
        assert_eq!(index.len(), 3);
        let untagged: Vec<_> = index.iter().filter(|d| ref_name(d).is_none()).collect();
        assert_eq!(untagged.len(), 1);
        assert_eq!(untagged[0].digest(), a.digest());
        assert_eq!(untagged[0].size(), a.size());
        // index.json is a valid OCI index with full names.
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.index_path()).unwrap()).unwrap();
        assert_eq!(raw["schemaVersion"], 2);
        assert_eq!(
            raw["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
            "docker.io/library/busybox:latest"
        );
    }
}
