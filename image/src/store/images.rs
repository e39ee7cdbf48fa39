//! Images: resolving a name or ID to an [`Image`] (manifest + config), and
//! listing and tagging them.

use std::time::SystemTime;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use tracing::debug;

use super::Store;
use super::refs::ref_of;
use crate::config::{ConfigFile, ImageConfig};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use crate::reference::Reference;

/// An image in the store: its manifest, parsed config, and the references
/// that name it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image ID: the config blob's digest, as Docker defines it.
    pub id: Digest,
    /// The digest of the (platform-specific) manifest.
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    /// Every reference that names this image; empty for an untagged one.
    pub references: Vec<Reference>,
    /// The config blob, parsed.
    pub config_file: ConfigFile,
    /// Bytes of content: config plus layer blobs as stored (compressed
    /// layers count compressed).
    pub size: u64,
    /// The `index.json` entry's digest: the manifest's, or the nested
    /// index's the manifest was chosen from.
    pub(crate) entry_digest: Digest,
}

/// One row of `docker images`: an image under one of its references (or
/// none).
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub reference: Option<Reference>,
    pub image: Image,
}

impl Image {
    /// The runtime defaults: Env, Cmd, Entrypoint, ...
    pub fn config(&self) -> &ImageConfig {
        &self.config_file.config
    }

    /// The uncompressed layer digests, lowest first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.config_file.diff_ids
    }

    /// The layer blobs, lowest first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }

    /// When the image was created, if its config says (and says it in RFC
    /// 3339).
    pub fn created(&self) -> Option<SystemTime> {
        // Weak: configs carry any number of fractional digits. Offsets
        // other than Z/+00:00 are not parsed (humantime is UTC-only).
        humantime::parse_rfc3339_weak(self.config_file.created.as_deref()?).ok()
    }
}

impl Store {
    /// Resolves `name_or_id` like `docker image inspect` does: a reference
    /// (`busybox`, `busybox:1`, `name@sha256:...`) first, then an image ID
    /// or unique ID prefix (`sha256:` optional), then a manifest digest.
    pub fn image(&self, name_or_id: &str) -> Result<Image> {
        let index = self.read_index()?;
        if let Ok(reference) = Reference::parse(name_or_id) {
            let full = reference.to_string();
            let found = index
                .iter()
                .find(|d| ref_of(d).is_some_and(|r| r.to_string() == full));
            let found = found.or_else(|| {
                // `name@digest` also names any entry with that manifest.
                let digest = reference.digest()?.to_oci().ok()?;
                index.iter().find(|d| d.digest() == &digest)
            });
            if let Some(desc) = found {
                return self.image_from_entry(desc, &index);
            }
        }
        let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut matches = Vec::new();
            let mut seen = Vec::new();
            for desc in &index {
                if seen.contains(desc.digest()) {
                    continue;
                }
                seen.push(desc.digest().clone());
                let image = self.image_from_entry(desc, &index)?;
                if image.id.hex().starts_with(hex) || image.manifest_digest.hex() == hex {
                    matches.push(image);
                }
            }
            // Several manifests may share a config (same image, re-wrapped).
            matches.dedup_by(|a, b| a.id == b.id);
            match matches.len() {
                0 => {}
                1 => return Ok(matches.remove(0)),
                _ => {
                    return Err(Error::Conflict(format!(
                        "image ID prefix {name_or_id:?} is ambiguous"
                    )));
                }
            }
        }
        Err(Error::ImageNotFound(name_or_id.to_owned()))
    }

    /// Every image in the store, one per manifest, each with all its
    /// references; tagged ones first, in index order.
    pub fn images(&self) -> Result<Vec<Image>> {
        let index = self.read_index()?;
        let mut out: Vec<Image> = Vec::new();
        for desc in &index {
            if out
                .iter()
                .any(|i| i.manifest_digest.to_oci().ok().as_ref() == Some(desc.digest()))
            {
                continue;
            }
            match self.image_from_entry(desc, &index) {
                Ok(image) => out.push(image),
                // An entry whose content is gone (another tool edited the
                // layout) must not hide every other image.
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    debug!(digest = %desc.digest(), error = %e, "skipping index entry");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// [`Store::images`] as `docker images` rows: one per reference, and one
    /// for each untagged image.
    pub fn image_summaries(&self) -> Result<Vec<ImageSummary>> {
        let mut rows = Vec::new();
        for image in self.images()? {
            if image.references.is_empty() {
                rows.push(ImageSummary {
                    reference: None,
                    image,
                });
            } else {
                for r in image.references.clone() {
                    rows.push(ImageSummary {
                        reference: Some(r),
                        image: image.clone(),
                    });
                }
            }
        }
        Ok(rows)
    }

    /// `docker tag`: points `target` at the image `source` names. Cheap:
    /// only `index.json` changes.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<Image> {
        let _content = self.lock_content_shared()?;
        let image = self.image(source)?;
        // The new reference names the same index entry (a nested index
        // stays one), so both tags always resolve alike.
        let entry = image.entry_digest.to_oci()?;
        let desc = self
            .read_index()?
            .into_iter()
            .find(|d| d.digest() == &entry)
            .ok_or_else(|| Error::ImageNotFound(source.to_owned()))?;
        self.set_ref(target, &desc)?;
        self.image(&target.to_string())
    }

    /// Builds the image an index entry names, following a nested index to
    /// the host platform's manifest.
    fn image_from_entry(&self, desc: &Descriptor, index: &[Descriptor]) -> Result<Image> {
        let references: Vec<Reference> = index
            .iter()
            .filter(|d| d.digest() == desc.digest())
            .filter_map(ref_of)
            .collect();
        let manifest_digest = self.resolve_manifest(desc, 0)?;
        let mut image = self.image_from_manifest(&manifest_digest, references)?;
        image.entry_digest = Digest::from_oci(desc.digest())?;
        Ok(image)
    }

    /// Follows index descriptors down to an image manifest for this host.
    pub(crate) fn resolve_manifest(&self, desc: &Descriptor, depth: usize) -> Result<Digest> {
        let digest = Digest::from_oci(desc.digest())?;
        if !platform::is_index(desc.media_type()) {
            return Ok(digest);
        }
        if depth > 4 {
            return Err(Error::invalid(
                format!("image index {digest}"),
                "nested too deeply",
            ));
        }
        let bytes = self.read_blob(&digest)?;
        let nested: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
                what: format!("image index {digest}"),
                source,
            })?;
        let chosen = platform::select(nested.manifests())
            .ok_or_else(|| Error::NoMatchingPlatform(platform::host_platform()))?;
        self.resolve_manifest(chosen, depth + 1)
    }

    pub(crate) fn image_from_manifest(
        &self,
        manifest_digest: &Digest,
        references: Vec<Reference>,
    ) -> Result<Image> {
        let manifest = self.read_manifest(manifest_digest)?;
        let id = Digest::from_oci(manifest.config().digest())?;
        let config_bytes = self.read_blob(&id)?;
        let config_file = ConfigFile::parse(&config_bytes, &id.to_string())?;
        let size =
            manifest.config().size() + manifest.layers().iter().map(Descriptor::size).sum::<u64>();
        Ok(Image {
            id,
            manifest_digest: manifest_digest.clone(),
            manifest,
            references,
            config_file,
            size,
            entry_digest: manifest_digest.clone(),
        })
    }

    pub(crate) fn read_manifest(&self, digest: &Digest) -> Result<ImageManifest> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
            what: format!("image manifest {digest}"),
            source,
        })
    }

    /// The config blob of `image` as JSON, for `image inspect`.
    pub fn raw_config(&self, image: &Image) -> Result<serde_json::Value> {
        let bytes = self.read_blob(&image.id)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
            what: format!("image config {}", image.id),
            source,
        })
    }
}
