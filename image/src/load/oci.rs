//! OCI image-layout archives: `index.json` lists manifests (or nested
//! indexes, resolved to the host platform); every blob is already in the
//! store after the archive pass, verified against its path. The store
//! records the platform's manifest itself, named from the entry's
//! annotations.

use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use tracing::debug;

use super::{ArchiveFiles, LoadedImage, name_from_annotations};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::Store;

impl Store {
    pub(super) fn load_oci(
        &self,
        _files: &ArchiveFiles,
        index_json: &[u8],
    ) -> Result<Vec<LoadedImage>> {
        let index: ImageIndex =
            serde_json::from_slice(index_json).map_err(|source| Error::InvalidJson {
                what: "index.json".into(),
                source,
            })?;
        if index.manifests().is_empty() {
            return Err(Error::InvalidArchive("index.json lists no images".into()));
        }
        let mut loaded = Vec::new();
        for entry in index.manifests() {
            self.check_descriptor(entry)?;
            let manifest_digest = self.resolve_manifest(entry, 0)?;
            let manifest = self.read_manifest(&manifest_digest)?;
            self.check_descriptor(manifest.config())?;
            for layer in manifest.layers() {
                self.check_descriptor(layer)?;
            }
            let desc = Descriptor::new(
                manifest
                    .media_type()
                    .clone()
                    .unwrap_or(MediaType::ImageManifest),
                self.blob_size(&manifest_digest)?,
                manifest_digest.to_oci()?,
            );
            let image = self.image_from_manifest(&manifest_digest, Vec::new())?;
            if image.diff_ids().len() != image.layers().len() {
                return Err(Error::InvalidArchive(format!(
                    "manifest {manifest_digest} has {} layers but its config has {} diff_ids",
                    image.layers().len(),
                    image.diff_ids().len()
                )));
            }
            let references: Vec<_> = name_from_annotations(entry.annotations().as_ref())
                .into_iter()
                .collect();
            match references.first() {
                Some(r) => self.set_ref(r, &desc)?,
                None => self.add_untagged(&desc)?,
            }
            debug!(image = %image.id, manifest = %manifest_digest, "loaded OCI image");
            loaded.push(LoadedImage {
                image: self.image_from_manifest(&manifest_digest, references.clone())?,
                references,
            });
        }
        Ok(loaded)
    }

    /// A descriptor's blob must be in the archive with the stated size.
    fn check_descriptor(&self, desc: &Descriptor) -> Result<()> {
        let digest = Digest::from_oci(desc.digest())?;
        let size = self.blob_size(&digest).map_err(|_| {
            Error::InvalidArchive(format!("blob {digest} is missing from the archive"))
        })?;
        if size != desc.size() {
            return Err(Error::SizeMismatch {
                digest,
                expected: desc.size(),
                actual: size,
            });
        }
        Ok(())
    }
}
