//! `docker import`: a root filesystem tarball becomes a one-layer image.
//!
//! The tarball is stored as the layer blob exactly as given (gzip and zstd
//! stay compressed, with the matching media type; a plain tar stays
//! uncompressed), so its digest is the caller's file's digest. The diff ID
//! is hashed over the decompressed stream, which is also read through as a
//! tar to refuse input that is not one before anything names it.

use std::io::Read;
use std::time::SystemTime;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use serde_json::json;
use tracing::debug;

use crate::compress::{self, Compression};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::platform;
use crate::reference::Reference;
use crate::store::{BlobInfo, Image, Store};

/// How [`Store::import`] names and describes the image.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The reference to tag the image with; untagged when `None`.
    pub reference: Option<Reference>,
    /// The history comment (`docker import --message`); default
    /// `Imported from <source>`.
    pub message: Option<String>,
    /// Where the tarball came from, for the default comment (`-` for
    /// stdin).
    pub source: Option<String>,
    /// The image's creation time; now when `None`. Fixing it makes two
    /// imports of one tarball the same image.
    pub created: Option<SystemTime>,
}

/// A layer blob as ingested: its blob and uncompressed identity.
#[derive(Debug, Clone)]
pub(crate) struct LayerInfo {
    pub blob: BlobInfo,
    pub compression: Compression,
    pub diff_id: Digest,
}

impl Store {
    /// Imports a rootfs tarball (plain, gzip or zstd) read from `reader`
    /// as a one-layer image for the host platform, and returns it.
    pub fn import(&self, reader: &mut dyn Read, options: &ImportOptions) -> Result<Image> {
        let _content = self.lock_content_shared()?;
        let blob = self.write_blob(reader, None, None)?;
        let layer = self.inspect_layer(blob)?;
        debug!(blob = %layer.blob.digest, diff_id = %layer.diff_id, "imported layer");
        let created =
            humantime::format_rfc3339_nanos(options.created.unwrap_or_else(SystemTime::now))
                .to_string();
        let comment = options.message.clone().unwrap_or_else(|| {
            format!("Imported from {}", options.source.as_deref().unwrap_or("-"))
        });
        // json! keeps key order (serde_json's preserve_order), so a given
        // input and time always give the same config digest.
        let config = json!({
            "architecture": platform::host_arch(),
            "os": platform::HOST_OS,
            "created": created,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
            "history": [{"created": created, "created_by": "berth image import", "comment": comment}],
        });
        let config_bytes = serde_json::to_vec(&config).map_err(|source| Error::InvalidJson {
            what: "image config".into(),
            source,
        })?;
        let config_blob = self.write_blob_bytes(&config_bytes)?;
        let manifest = self.write_manifest(&config_blob, &[layer])?;
        match &options.reference {
            Some(r) => self.set_ref(r, &manifest)?,
            None => self.add_untagged(&manifest)?,
        }
        let digest = Digest::from_oci(manifest.digest())?;
        debug!(image = %config_blob.digest, manifest = %digest, reference = ?options.reference.as_ref().map(ToString::to_string), "image imported");
        self.image_from_manifest(&digest, options.reference.iter().cloned().collect())
    }

    /// Reads a stored layer blob through as a tar: its compression, and
    /// its diff ID (the digest of the uncompressed stream).
    pub(crate) fn inspect_layer(&self, blob: BlobInfo) -> Result<LayerInfo> {
        let file = self.open_blob(&blob.digest)?;
        let bad = |e: std::io::Error| {
            Error::InvalidArchive(format!("layer {} is not a tar archive: {e}", blob.digest))
        };
        let (compression, stream) = compress::decompress(file).map_err(bad)?;
        let mut archive = tar::Archive::new(HashingReader::new(stream));
        let mut entries = 0usize;
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            // Reading the data checks the archive is whole, not just its
            // headers.
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(bad)?;
            entries += 1;
        }
        if entries == 0 {
            return Err(Error::InvalidArchive(format!(
                "layer {} is empty or not a tar archive",
                blob.digest
            )));
        }
        let (diff_id, _) = archive.into_inner().finish().map_err(bad)?;
        Ok(LayerInfo {
            blob,
            compression,
            diff_id,
        })
    }

    /// Writes an OCI manifest for a config and layers; returns its
    /// descriptor.
    pub(crate) fn write_manifest(
        &self,
        config: &BlobInfo,
        layers: &[LayerInfo],
    ) -> Result<Descriptor> {
        let layers = layers
            .iter()
            .map(|l| {
                Ok(Descriptor::new(
                    l.compression.layer_media_type(),
                    l.blob.size,
                    l.blob.digest.to_oci()?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                config.size,
                config.digest.to_oci()?,
            ))
            .layers(layers)
            .build()
            .map_err(|e| Error::invalid("image manifest", e.to_string()))?;
        let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::InvalidJson {
            what: "image manifest".into(),
            source,
        })?;
        let blob = self.write_blob_bytes(&bytes)?;
        Ok(Descriptor::new(
            MediaType::ImageManifest,
            blob.size,
            blob.digest.to_oci()?,
        ))
    }
}
