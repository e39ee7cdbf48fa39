//! `docker pull`: a reference's manifest (an index resolved to one
//! platform), its config and layers into the store, then the reference
//! pointed at it.
//!
//! Manifests are fetched raw and checked against their digest (the
//! reference's when pinned, the registry's `Docker-Content-Digest`
//! otherwise, and an index entry's for the platform manifest), so the bytes
//! stored are the bytes the registry signed off. Blobs stream to disk
//! (`fetch`), a few at once; blobs the store has are not fetched again.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use tracing::debug;

use super::records::RegistryRecords;
use super::{Progress, Registry, by_digest, fetch, registry_error, to_oci_ref};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use crate::reference::Reference;
use crate::store::{Image, Store};

/// Manifest media types asked for, most specific first.
pub(crate) const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// `--platform os/arch[/variant]`; `None`: the host's.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<String>,
}

/// Whether the reference moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// It named this image already: "Image is up to date for ...".
    UpToDate,
    /// "Downloaded newer image for ...".
    Downloaded,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub image: Image,
    /// The registry's digest for the reference (the index's for a
    /// multi-platform image), as `Digest:` prints it.
    pub digest: Digest,
    pub status: PullStatus,
    /// Blobs that moved.
    pub fetched: usize,
}

impl Registry {
    /// Pulls `reference` into `store`.
    pub async fn pull(
        &self,
        store: &Store,
        reference: &Reference,
        options: &PullOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<PullOutcome> {
        let shown = reference.familiar();
        let image_ref = to_oci_ref(reference)?;
        let client = self.client(reference.domain());
        let auth = self.auth_for(reference, super::oauth::Access::Pull).await?;
        let (bytes, digest) = client
            .pull_manifest_raw(&image_ref, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| registry_error("pull", &shown, e))?;
        let top_digest = Digest::parse(&digest)?;
        check_digest(&bytes, &top_digest, &shown)?;
        if let Some(pinned) = reference.digest()
            && pinned != &top_digest
        {
            return Err(Error::DigestMismatch {
                expected: pinned.clone(),
                actual: top_digest,
            });
        }
        let top_type = media_type_of(&bytes);
        let (index_bytes, manifest_bytes, manifest_desc) = if platform::is_index(&top_type) {
            let index: ImageIndex = parse_json(&bytes, &format!("image index of {shown}"))?;
            let chosen = match &options.platform {
                Some(p) => select_platform(index.manifests(), p)?,
                None => platform::select(index.manifests()),
            }
            .ok_or_else(|| {
                Error::NoMatchingPlatform(
                    options
                        .platform
                        .clone()
                        .unwrap_or_else(platform::host_platform),
                )
            })?
            .clone();
            let child = Digest::from_oci(chosen.digest())?;
            debug!(%child, "platform manifest chosen from the index");
            let (child_bytes, _) = client
                .pull_manifest_raw(&by_digest(&image_ref, &child), &auth, MANIFEST_TYPES)
                .await
                .map_err(|e| registry_error("pull", &shown, e))?;
            check_digest(&child_bytes, &child, &shown)?;
            let mut desc = chosen;
            desc.set_size(child_bytes.len() as u64);
            (Some(bytes), child_bytes, desc)
        } else {
            let desc = Descriptor::new(top_type.clone(), bytes.len() as u64, top_digest.to_oci()?);
            (None, bytes, desc)
        };
        let manifest: ImageManifest =
            parse_json(&manifest_bytes, &format!("image manifest of {shown}"))?;
        let manifest_digest = Digest::from_oci(manifest_desc.digest())?;

        let previous = store.image(&reference.to_string()).ok();
        let _content = store.lock_content_shared()?;
        let config = manifest.config();
        let mut blobs: Vec<(Digest, u64)> =
            vec![(Digest::from_oci(config.digest())?, config.size())];
        for layer in manifest.layers() {
            blobs.push((Digest::from_oci(layer.digest())?, layer.size()));
        }
        let fetched: Vec<bool> =
            stream::iter(blobs.into_iter().enumerate().map(|(i, (digest, size))| {
                let client = client.clone();
                let image_ref = image_ref.clone();
                // docker shows layers only, not the config.
                let progress: Arc<dyn Progress> = if i == 0 {
                    Arc::new(super::NoProgress)
                } else {
                    progress.clone()
                };
                let shown = shown.clone();
                async move {
                    fetch::fetch_blob(&client, &image_ref, store, &digest, size, progress.as_ref())
                        .await
                        .map_err(|e| corrupt_blob(e, &shown, &digest))
                }
            }))
            .buffered(self.concurrency)
            .try_collect()
            .await?;

        if fetched.iter().any(|f| *f) {
            // The renames of the fetched blobs, durable before anything
            // refers to them (fetch leaves this to here: one fsync, not
            // one per blob).
            crate::store::sync_parent(&store.blob_path(&manifest_digest))?;
        }
        if let Some(index_bytes) = &index_bytes {
            store.write_blob(&mut &index_bytes[..], Some(&top_digest), None)?;
        }
        store.write_blob(&mut &manifest_bytes[..], Some(&manifest_digest), None)?;
        let mut entry = manifest_desc.clone();
        entry.set_platform(None);
        entry.set_annotations(None);
        let image = store.image_from_manifest(&manifest_digest, Vec::new())?;
        // A digest reference is kept as a name too (`name@sha256:...`),
        // so it resolves later even when it is an index's digest.
        store.set_ref(reference, &entry)?;
        store.record_registry_digest(reference, &top_digest, &image.id, true)?;
        drop(_content);
        let image = store
            .image(&reference.to_string())
            .or_else(|_| store.image(&image.id.to_string()))?;
        let status = match previous {
            Some(p) if p.manifest_digest == image.manifest_digest => PullStatus::UpToDate,
            _ => PullStatus::Downloaded,
        };
        Ok(PullOutcome {
            image,
            digest: top_digest,
            status,
            fetched: fetched.iter().filter(|f| **f).count(),
        })
    }
}

fn check_digest(bytes: &[u8], expected: &Digest, shown: &str) -> Result<()> {
    let actual = Digest::of(bytes);
    if &actual != expected {
        return Err(Error::Registry {
            action: "pull",
            reference: shown.to_owned(),
            message: format!(
                "the registry sent a manifest whose digest is {actual}, not {expected}: refusing it"
            ),
            kind: ErrorKind::Invalid,
        });
    }
    Ok(())
}

/// A blob that did not hash to its digest, said as a pull error.
fn corrupt_blob(e: Error, shown: &str, digest: &Digest) -> Error {
    match e {
        Error::DigestMismatch { expected, actual } => Error::Registry {
            action: "pull",
            reference: shown.to_owned(),
            message: format!(
                "blob {expected} from the registry hashes to {actual}: corrupt content refused (nothing was stored)"
            ),
            kind: ErrorKind::Invalid,
        },
        Error::SizeMismatch {
            expected, actual, ..
        } => Error::Registry {
            action: "pull",
            reference: shown.to_owned(),
            message: format!(
                "blob {digest} from the registry is {actual} bytes, not {expected}: refused (nothing was stored)"
            ),
            kind: ErrorKind::Invalid,
        },
        other => other,
    }
}

/// The media type a manifest says it has; without one, an index when it
/// lists `manifests`, else an image manifest (OCI allows leaving it out).
pub(crate) fn media_type_of(bytes: &[u8]) -> MediaType {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match value.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => MediaType::from(m),
        None if value.get("manifests").is_some() => MediaType::ImageIndex,
        None => MediaType::ImageManifest,
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::InvalidJson {
        what: what.to_owned(),
        source,
    })
}

/// The entry of `manifests` for `os/arch[/variant]`.
fn select_platform<'a>(
    manifests: &'a [Descriptor],
    wanted: &str,
) -> Result<Option<&'a Descriptor>> {
    let mut parts = wanted.split('/');
    let (Some(os), Some(arch)) = (parts.next(), parts.next()) else {
        return Err(Error::InvalidReference {
            reference: wanted.to_owned(),
            reason: "a platform is os/arch[/variant], e.g. linux/arm64".into(),
        });
    };
    let variant = parts.next();
    Ok(manifests.iter().find(|d| {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == os
                && p.architecture().to_string() == arch
                && variant.is_none_or(|v| p.variant().as_deref() == Some(v))
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_document() {
        assert_eq!(
            media_type_of(br#"{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#),
            MediaType::from("application/vnd.docker.distribution.manifest.list.v2+json")
        );
        assert_eq!(media_type_of(br#"{"manifests":[]}"#), MediaType::ImageIndex);
        assert_eq!(media_type_of(br#"{"layers":[]}"#), MediaType::ImageManifest);
    }
}
