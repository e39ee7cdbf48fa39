//! `docker push`: an image's blobs the registry lacks, then its manifest.
//!
//! Blobs the registry has (a `HEAD`) are skipped; a blob another
//! repository of the same registry got from this store (recorded in
//! `registry.json`) is mounted across repositories instead of uploaded.
//! Uploads stream from the store's files, one `PUT` each. A layer stored
//! uncompressed (an imported rootfs, a `docker save` archive) is gzipped
//! for the registry as `docker push` does, which changes the manifest (and
//! its digest) but not the image ID: the config's `diff_ids` name the
//! uncompressed content.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt, TryStreamExt, stream};
use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use tokio::io::AsyncReadExt;
use tracing::debug;

use super::records::RegistryRecords;
use super::{Progress, ProgressEvent, Registry, registry_error, to_oci_ref};
use crate::compress::Compression;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::reference::Reference;
use crate::store::Store;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// The pushed manifest's digest.
    pub digest: Digest,
    /// Its size in bytes (`docker push` prints it).
    pub size: u64,
    /// Blobs uploaded (not found in the registry, not mounted).
    pub uploaded: usize,
}

/// One blob to push: where its bytes are, and its descriptor as pushed.
struct Upload {
    path: PathBuf,
    digest: Digest,
    size: u64,
    /// A gzipped copy made for this push, removed afterwards.
    temporary: bool,
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Registry {
    /// Pushes the image `reference` names in `store` to `reference`.
    pub async fn push(
        &self,
        store: &Store,
        reference: &Reference,
        progress: Arc<dyn Progress>,
    ) -> Result<PushOutcome> {
        let shown = reference.familiar();
        // Nothing collected while the blobs stream out.
        let _lease = store.lease()?;
        let image = store.image(&reference.to_string()).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::ImageNotFound(format!(
                "{shown} (an image does not exist locally with that name: tag one with `berth tag`)"
            )),
            _ => e,
        })?;
        let image_ref = to_oci_ref(reference)?;
        let client = self.client(reference.domain());
        let mount_from = self.mount_source(store, reference, &image.id)?;
        let access = super::oauth::Access::Push {
            mount_from: mount_from.as_ref().map(|m| m.repository()),
        };
        let auth = self.auth_for(reference, access).await?;
        client
            .auth(&image_ref, &auth, RegistryOperation::Push)
            .await
            .map_err(|e| registry_error("push", &shown, e))?;

        let docker = image
            .manifest
            .media_type()
            .as_ref()
            .map(ToString::to_string)
            == Some(DOCKER_MANIFEST.to_owned());
        let mut layers: Vec<Descriptor> = Vec::new();
        let mut uploads: Vec<Upload> = Vec::new();
        let mut changed = false;
        for layer in image.layers() {
            let digest = Digest::from_oci(layer.digest())?;
            let path = store.blob_path(&digest);
            let compression =
                Compression::from_layer_media_type(layer.media_type()).unwrap_or(Compression::Gzip);
            if compression == Compression::None {
                let (gz_path, gz_digest, gz_size) = gzip_for_push(store, &path, &digest).await?;
                let media = if docker {
                    MediaType::from(DOCKER_LAYER_GZIP)
                } else {
                    MediaType::ImageLayerGzip
                };
                let mut desc = Descriptor::new(media, gz_size, gz_digest.to_oci()?);
                desc.set_annotations(layer.annotations().clone());
                layers.push(desc);
                uploads.push(Upload {
                    path: gz_path,
                    digest: gz_digest,
                    size: gz_size,
                    temporary: true,
                });
                changed = true;
            } else {
                layers.push(layer.clone());
                uploads.push(Upload {
                    path,
                    digest,
                    size: layer.size(),
                    temporary: false,
                });
            }
        }
        uploads.push(Upload {
            path: store.blob_path(&image.id),
            digest: image.id.clone(),
            size: image.manifest.config().size(),
            temporary: false,
        });

        let jobs: Vec<_> = uploads
            .iter()
            .map(|u| (u.path.clone(), u.digest.clone(), u.size))
            .enumerate()
            .map(|(i, (path, digest, size))| {
                let client = client.clone();
                let image_ref = image_ref.clone();
                // docker shows layers only, not the config (the last upload).
                let progress: Arc<dyn Progress> = if i + 1 == uploads.len() {
                    Arc::new(super::NoProgress)
                } else {
                    progress.clone()
                };
                let mount_from = mount_from.clone();
                let shown = shown.clone();
                async move {
                    let digest_text = digest.to_string();
                    let exists = client
                        .blob_exists(&image_ref, &digest_text)
                        .await
                        .map_err(|e| registry_error("push", &shown, e))?;
                    if exists {
                        progress.event(ProgressEvent::Exists {
                            digest: digest.clone(),
                        });
                        return Ok(false);
                    }
                    if let Some(from) = &mount_from {
                        match client.mount_blob(&image_ref, from, &digest_text).await {
                            Ok(()) => {
                                progress.event(ProgressEvent::Mounted {
                                    digest: digest.clone(),
                                    from: from.repository().to_owned(),
                                });
                                return Ok(false);
                            }
                            Err(e) => {
                                debug!(digest = %digest, error = %e, "mount refused; uploading")
                            }
                        }
                    }
                    progress.event(ProgressEvent::Started {
                        digest: digest.clone(),
                        size,
                        offset: 0,
                    });
                    let body =
                        file_stream(path.clone(), digest.clone(), size, progress.clone()).await?;
                    client
                        .push_blob_stream(&image_ref, body, &digest_text, Some(size))
                        .await
                        .map_err(|e| registry_error("push", &shown, e))?;
                    progress.event(ProgressEvent::Done {
                        digest: digest.clone(),
                    });
                    Ok::<bool, Error>(true)
                }
                .boxed()
            })
            .collect();
        let uploaded: Vec<bool> = stream::iter(jobs)
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;

        let (manifest_bytes, media_type) = if changed {
            let mut manifest: ImageManifest = image.manifest.clone();
            manifest.set_layers(layers);
            let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::InvalidJson {
                what: "image manifest".into(),
                source,
            })?;
            (bytes, manifest_type(&manifest))
        } else {
            (
                store.read_blob(&image.manifest_digest)?,
                manifest_type(&image.manifest),
            )
        };
        let digest = Digest::of(&manifest_bytes);
        let size = manifest_bytes.len() as u64;
        let content_type = media_type
            .parse()
            .map_err(|_| Error::invalid("manifest media type", media_type.clone()))?;
        client
            .push_manifest_raw(&image_ref, manifest_bytes, content_type)
            .await
            .map_err(|e| registry_error("push", &shown, e))?;
        store.record_registry_digest(reference, &digest, &image.id, false)?;
        Ok(PushOutcome {
            digest,
            size,
            uploaded: uploaded.iter().filter(|u| **u).count(),
        })
    }

    /// Another repository of the same registry this image was pushed to
    /// or pulled from: its blobs can be mounted rather than sent.
    fn mount_source(
        &self,
        store: &Store,
        reference: &Reference,
        image_id: &Digest,
    ) -> Result<Option<oci_client::Reference>> {
        let image = store.image(&image_id.to_string())?;
        for entry in store.repo_digests(&image)? {
            let Some((name, _)) = entry.split_once('@') else {
                continue;
            };
            let Ok(other) = Reference::parse(name) else {
                continue;
            };
            if other.domain() == reference.domain() && other.path() != reference.path() {
                return Ok(Some(to_oci_ref(&other)?));
            }
        }
        Ok(None)
    }
}

fn manifest_type(manifest: &ImageManifest) -> String {
    manifest
        .media_type()
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| MediaType::ImageManifest.to_string())
}

/// Gzips an uncompressed layer into `tmp/` (on a blocking thread),
/// returning the file, its digest and size.
async fn gzip_for_push(
    store: &Store,
    source: &std::path::Path,
    digest: &Digest,
) -> Result<(PathBuf, Digest, u64)> {
    let tmp = store.tmp_dir().join(format!("push-{}.gz", digest.hex()));
    let source = source.to_owned();
    let out = tmp.clone();
    tokio::task::spawn_blocking(move || -> Result<(PathBuf, Digest, u64)> {
        let mut input = std::fs::File::open(&source).io_at("open blob", &source)?;
        let file = std::fs::File::create(&out).io_at("create", &out)?;
        let hashing = HashingWriter::new(std::io::BufWriter::new(file));
        // Level 1: a push is bounded by compression speed well before the
        // registry's; the ratio differs by a few percent.
        let mut gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
        std::io::copy(&mut input, &mut gz).io_at("gzip", &out)?;
        let hashing = gz.finish().io_at("gzip", &out)?;
        let (digest, size, mut writer) = hashing.finish();
        std::io::Write::flush(&mut writer).io_at("write", &out)?;
        Ok((out, digest, size))
    })
    .await
    .map_err(|e| Error::io("gzip", tmp, std::io::Error::other(e.to_string())))?
}

/// A blob file as a stream of chunks for the upload body, reporting
/// progress as it is read.
async fn file_stream(
    path: PathBuf,
    digest: Digest,
    size: u64,
    progress: Arc<dyn Progress>,
) -> Result<impl Stream<Item = std::result::Result<Bytes, OciDistributionError>> + Send + 'static> {
    let file = tokio::fs::File::open(&path)
        .await
        .io_at("open blob", &path)?;
    Ok(stream::try_unfold((file, 0u64), move |(mut file, done)| {
        let progress = progress.clone();
        let digest = digest.clone();
        async move {
            let mut buf = vec![0u8; 1024 * 1024];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            let done = done + n as u64;
            progress.event(ProgressEvent::Bytes { digest, done, size });
            Ok::<_, OciDistributionError>(Some((Bytes::from(buf), (file, done))))
        }
    })
    .boxed())
}
