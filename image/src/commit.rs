//! Images made by a builder: layers written from a tar stream (gzip, with
//! both digests computed on the way through), snapshots adopted from a
//! directory the builder already holds in overlayfs format (a RUN's upper
//! dir), layers prepared by blob and diff ID without an image around them,
//! and the final config + manifest committed under any number of tags.
//!
//! Callers hold a [`Store::lease`] from the first layer they write until
//! the image (or a GC root, [`Store::write_gc_root`]) references it.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::compress::Compression;
use crate::digest::{Digest, HashingWriter, chain_ids};
use crate::error::{Error, IoContext, Result};
use crate::import::LayerInfo;
use crate::reference::Reference;
use crate::snapshot::UnpackOptions;
use crate::store::{BlobInfo, Image, Store, sync_parent};

/// A gzip layer blob in the store and its uncompressed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltLayer {
    /// Digest of the compressed blob.
    pub blob: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: Digest,
}

/// Blobs and snapshots that garbage collection keeps although no image
/// references them (a build cache's layers). One JSON file per root under
/// `<root>/gcroots/<owner>/`; unknown fields are ignored, so an owner may
/// keep its own data in the same file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRoot {
    #[serde(default)]
    pub blobs: Vec<Digest>,
    /// Chain IDs whose snapshot dirs are kept.
    #[serde(default)]
    pub snapshots: Vec<Digest>,
}

impl Store {
    /// Writes a layer: `write_tar` writes an uncompressed tar into the
    /// writer it is given; the blob is stored gzip-compressed. Identical
    /// tars give identical blobs (no name or time in the gzip header).
    pub fn write_layer(
        &self,
        write_tar: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<BuiltLayer> {
        let tmp_dir = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".layer-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o444))
            .tempfile_in(&tmp_dir)
            .io_at("create temp file in", &tmp_dir)?;
        let tmp_path = tmp.path().to_owned();
        let file_hash = HashingWriter::new(BufWriter::new(tmp.as_file()));
        // Level 1: layers are written on every changed build step, and the
        // ratio gained by higher levels is small next to the time.
        let gz = GzEncoder::new(file_hash, GzLevel::fast());
        let mut tar_hash = HashingWriter::new(gz);
        write_tar(&mut tar_hash).io_at("write layer", &tmp_path)?;
        let (diff_id, _, gz) = tar_hash.finish();
        let file_hash = gz.finish().io_at("compress layer", &tmp_path)?;
        let (blob, size, mut buf) = file_hash.finish();
        buf.flush().io_at("write", &tmp_path)?;
        drop(buf);
        let path = self.blob_path(&blob);
        if !path.exists() {
            tmp.as_file().sync_all().io_at("fsync", &tmp_path)?;
            tmp.persist(&path)
                .map_err(|e| Error::io("rename blob into", &path, e.error))?;
            sync_parent(&path)?;
        }
        debug!(%blob, %diff_id, size, "layer written");
        Ok(BuiltLayer {
            blob,
            size,
            diff_id,
        })
    }

    /// Makes `dir` (an overlayfs-format tree: whiteouts as 0/0 character
    /// devices, opaque dirs by xattr) the snapshot of `chain`, by rename.
    /// When another caller made that snapshot first, `dir` is deleted and
    /// theirs is kept. Returns the snapshot's `fs` dir.
    pub fn adopt_snapshot(&self, chain: &Digest, dir: &Path) -> Result<PathBuf> {
        let fs_dir = self.snapshot_path(chain);
        let _lock = self.lock_snapshot(chain)?;
        if fs_dir.is_dir() {
            let _ = fs::remove_dir_all(dir);
            return Ok(fs_dir);
        }
        let parent = self.snapshots_dir().join(chain.hex());
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&parent)
            .io_at("create directory", &parent)?;
        fs::rename(dir, &fs_dir).io_at("rename snapshot into", &fs_dir)?;
        sync_parent(&fs_dir)?;
        debug!(%chain, "snapshot adopted");
        Ok(fs_dir)
    }

    /// The snapshot dirs of `layers` (lowest first), unpacking those that
    /// are missing, as [`Store::prepare_rootfs`] does for an image.
    pub fn prepare_layers(&self, layers: &[BuiltLayer]) -> Result<Vec<PathBuf>> {
        let _content = self.lock_content_shared()?;
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let options = UnpackOptions::for_current_user();
        layers
            .iter()
            .zip(chain_ids(&diff_ids))
            .map(|(l, chain)| self.ensure_snapshot(&chain, &l.blob, &l.diff_id, &options))
            .collect()
    }

    /// The layers of `image` as [`BuiltLayer`]s (for building on it).
    pub fn image_layers(&self, image: &Image) -> Result<Vec<BuiltLayer>> {
        image
            .layers()
            .iter()
            .zip(image.diff_ids())
            .map(|(desc, diff_id)| {
                Ok(BuiltLayer {
                    blob: Digest::from_oci(desc.digest())?,
                    size: desc.size(),
                    diff_id: diff_id.clone(),
                })
            })
            .collect()
    }

    /// Stores `config` (the image config JSON, written byte for byte) and a
    /// manifest over `layers`, tags it with every reference in `tags` (or
    /// records it untagged), and returns the image.
    pub fn commit_image(
        &self,
        config: &[u8],
        layers: &[BuiltLayer],
        tags: &[Reference],
    ) -> Result<Image> {
        let _content = self.lock_content_shared()?;
        let config_blob = self.write_blob_bytes(config)?;
        let mut infos = Vec::with_capacity(layers.len());
        for l in layers {
            // A layer taken over from a base image keeps its own
            // compression (the manifest must describe the blob as stored).
            let compression = match self.open_blob(&l.blob) {
                Ok(mut f) => {
                    let mut head = [0u8; 4];
                    let n = io::Read::read(&mut f, &mut head).unwrap_or(0);
                    Compression::detect(head.get(..n).unwrap_or_default())
                }
                Err(e) => return Err(e),
            };
            infos.push(LayerInfo {
                blob: BlobInfo {
                    digest: l.blob.clone(),
                    size: l.size,
                },
                compression,
                diff_id: l.diff_id.clone(),
            });
        }
        let manifest = self.write_manifest(&config_blob, &infos)?;
        if tags.is_empty()
            && !self
                .read_index()?
                .iter()
                .any(|d| d.digest() == manifest.digest())
        {
            self.add_untagged(&manifest)?;
        }
        // A tag that already names this manifest is left alone: a cached
        // rebuild does not rewrite index.json.
        let current = self.references().unwrap_or_default();
        for tag in tags {
            let same = current
                .iter()
                .any(|(r, d)| r == tag && d.to_oci().ok().as_ref() == Some(manifest.digest()));
            if !same {
                self.set_ref(tag, &manifest)?;
            }
        }
        let digest = Digest::from_oci(manifest.digest())?;
        self.image_from_manifest(&digest, tags.to_vec())
    }

    /// `<root>/gcroots/<owner>`: where an owner's [`GcRoot`] files live.
    pub fn gc_roots_dir(&self, owner: &str) -> PathBuf {
        self.root().join("gcroots").join(owner)
    }

    /// Writes (atomically) the root `name` of `owner`.
    pub fn write_gc_root(&self, owner: &str, name: &str, root: &GcRoot) -> Result<()> {
        let dir = self.gc_roots_dir(owner);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .io_at("create directory", &dir)?;
        let bytes = serde_json::to_vec(root).map_err(|source| Error::InvalidJson {
            what: "gc root".into(),
            source,
        })?;
        self.write_atomic(&dir.join(format!("{name}.json")), &bytes)
    }

    /// Every root under `<root>/gcroots/*/*.json`; unreadable ones are
    /// skipped (a half-written file cannot exist: roots are renamed in).
    pub(crate) fn gc_roots(&self) -> Vec<GcRoot> {
        let mut roots = Vec::new();
        let Ok(owners) = fs::read_dir(self.root().join("gcroots")) else {
            return roots;
        };
        for owner in owners.flatten() {
            let Ok(files) = fs::read_dir(owner.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "json")
                    && let Ok(bytes) = fs::read(&path)
                    && let Ok(root) = serde_json::from_slice::<GcRoot>(&bytes)
                {
                    roots.push(root);
                }
            }
        }
        roots
    }
}
