//! `docker save` archives: `manifest.json` lists each image's config file,
//! `RepoTags` and layer files (`<id>/layer.tar` before Docker 25,
//! `blobs/sha256/<hex>` since). Each becomes an OCI manifest in the store;
//! the config blob is kept byte for byte, so the image ID is Docker's.

use serde::Deserialize;
use tracing::debug;

use super::{ArchiveFiles, LoadedImage};
use crate::compress::Compression;
use crate::config::ConfigFile;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::import::LayerInfo;
use crate::reference::Reference;
use crate::store::Store;

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

impl Store {
    pub(super) fn load_docker(
        &self,
        files: &ArchiveFiles,
        manifest_json: &[u8],
    ) -> Result<Vec<LoadedImage>> {
        let entries: Vec<Entry> =
            serde_json::from_slice(manifest_json).map_err(|source| Error::InvalidJson {
                what: "manifest.json".into(),
                source,
            })?;
        let mut loaded = Vec::new();
        for entry in entries {
            let config = files.blob(&entry.config)?.clone();
            let config_file = ConfigFile::parse(&self.read_blob(&config.digest)?, &entry.config)?;
            if config_file.diff_ids.len() != entry.layers.len() {
                return Err(Error::InvalidArchive(format!(
                    "{} lists {} layers but its config has {} diff_ids",
                    entry.config,
                    entry.layers.len(),
                    config_file.diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for (path, diff_id) in entry.layers.iter().zip(&config_file.diff_ids) {
                let blob = files.blob(path)?.clone();
                let compression = self.sniff_compression(&blob.digest)?;
                // An uncompressed layer's digest is its diff ID: check it
                // now. Compressed ones are checked when unpacked.
                if compression == Compression::None && &blob.digest != diff_id {
                    return Err(Error::DigestMismatch {
                        expected: diff_id.clone(),
                        actual: blob.digest,
                    });
                }
                layers.push(LayerInfo {
                    blob,
                    compression,
                    diff_id: diff_id.clone(),
                });
            }
            let manifest = self.write_manifest(&config, &layers)?;
            let references = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<Vec<_>>>()?;
            if references.is_empty() {
                self.add_untagged(&manifest)?;
            }
            for r in &references {
                self.set_ref(r, &manifest)?;
            }
            let digest = Digest::from_oci(manifest.digest())?;
            debug!(image = %config.digest, manifest = %digest, "loaded docker-save image");
            loaded.push(LoadedImage {
                image: self.image_from_manifest(&digest, references.clone())?,
                references,
            });
        }
        Ok(loaded)
    }

    /// A stored blob's compression, from its first bytes.
    pub(crate) fn sniff_compression(&self, digest: &Digest) -> Result<Compression> {
        use std::io::Read;
        let mut head = [0u8; 4];
        let mut file = self.open_blob(digest)?;
        let mut n = 0;
        while n < head.len() {
            let read = file
                .read(&mut head[n..])
                .io_at("read blob", self.blob_path(digest))?;
            if read == 0 {
                break;
            }
            n += read;
        }
        Ok(Compression::detect(&head[..n]))
    }
}
