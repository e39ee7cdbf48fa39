//! `docker save`: images into one tar archive in the layout Docker 25+
//! writes, which both `docker load` (any version since 1.10: it reads
//! `manifest.json`) and OCI tools (`index.json`, `oci-layout`; skopeo's
//! `oci-archive:`) read:
//!
//! ```text
//! blobs/sha256/<hex>   configs, layers (as stored), manifests
//! index.json           one entry per tag (io.containerd.image.name and
//!                      org.opencontainers.image.ref.name), one per
//!                      untagged image
//! manifest.json        [{"Config", "RepoTags", "Layers"}] for docker load
//! oci-layout
//! ```
//!
//! Configs go byte for byte, so the image ID survives a save and load.
//! Entries are sorted and their mtimes zero: saving the same images twice
//! gives the same archive.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::{Value, json};
use tracing::debug;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::reference::Reference;
use crate::store::{Image, Store};

/// One image of an archive and the names it goes under.
struct Saved {
    image: Image,
    tags: BTreeSet<Reference>,
}

impl Store {
    /// Writes the images `names` name (references or IDs) to `out`. A
    /// reference saves that name with the image; an ID saves the image
    /// untagged, as `docker save ID` does.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<Vec<Image>> {
        // Nothing is collected while the blobs are read.
        let _lease = self.lease()?;
        let mut saved: BTreeMap<Digest, Saved> = BTreeMap::new();
        for name in names {
            let image = self.image(name)?;
            let tag = Reference::parse(name).ok().filter(|r| {
                image.references.contains(r) && r.tag().is_some() && r.digest().is_none()
            });
            let entry = saved.entry(image.id.clone()).or_insert_with(|| Saved {
                image: image.clone(),
                tags: BTreeSet::new(),
            });
            entry.tags.extend(tag);
        }
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut manifest_json = Vec::new();
        let mut index = Vec::new();
        for s in saved.values() {
            let image = &s.image;
            blobs.insert(image.id.clone());
            blobs.insert(image.manifest_digest.clone());
            let mut layer_paths = Vec::new();
            for layer in image.layers() {
                let d = Digest::from_oci(layer.digest())?;
                layer_paths.push(format!("blobs/sha256/{}", d.hex()));
                blobs.insert(d);
            }
            manifest_json.push(json!({
                "Config": format!("blobs/sha256/{}", image.id.hex()),
                "RepoTags": s.tags.iter().map(Reference::familiar).collect::<Vec<_>>(),
                "Layers": layer_paths,
            }));
            let media_type = image.manifest.media_type().as_ref().map_or_else(
                || "application/vnd.oci.image.manifest.v1+json".to_owned(),
                ToString::to_string,
            );
            let descriptor = json!({
                "mediaType": media_type,
                "digest": image.manifest_digest.to_string(),
                "size": self.blob_size(&image.manifest_digest)?,
            });
            if s.tags.is_empty() {
                index.push(descriptor.clone());
            }
            for tag in &s.tags {
                let mut d = descriptor.clone();
                d["annotations"] = json!({
                    "io.containerd.image.name": tag.to_string(),
                    "org.opencontainers.image.ref.name": tag.tag().unwrap_or("latest"),
                });
                index.push(d);
            }
        }
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        dir(&mut tar, "blobs/")?;
        dir(&mut tar, "blobs/sha256/")?;
        for digest in &blobs {
            let path = self.blob_path(digest);
            let file = self.open_blob(digest)?;
            let size = file.metadata().io_at("stat blob", &path)?.len();
            debug!(%digest, size, "save blob");
            let mut header = header(size);
            tar.append_data(&mut header, format!("blobs/sha256/{}", digest.hex()), file)
                .io_at("write archive entry for", &path)?;
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index,
        });
        for (name, value) in [
            ("index.json", index),
            ("manifest.json", Value::Array(manifest_json)),
        ] {
            let bytes = serde_json::to_vec(&value).map_err(|source| Error::InvalidJson {
                what: name.into(),
                source,
            })?;
            file(&mut tar, name, &bytes)?;
        }
        file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        tar.into_inner()
            .and_then(|w| w.flush())
            .map_err(|e| Error::io("finish", "the archive", e))?;
        Ok(saved.into_values().map(|s| s.image).collect())
    }
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn dir(tar: &mut tar::Builder<&mut dyn Write>, path: &str) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(|e| Error::io("write archive entry for", path, e))
}

fn file(tar: &mut tar::Builder<&mut dyn Write>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut h = header(bytes.len() as u64);
    tar.append_data(&mut h, path, bytes)
        .map_err(|e| Error::io("write archive entry for", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestImage, docker_save, tar_of};

    #[test]
    fn save_then_load_keeps_ids_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("a")).unwrap();
        let img = TestImage::new(vec![tar_of(&[("a.txt", b"a")])], &["app:1", "app:2"]);
        store
            .load(&mut &docker_save(std::slice::from_ref(&img))[..])
            .unwrap();
        let mut archive = Vec::new();
        store
            .save(&["app:1".into(), img.id().to_string()], &mut archive)
            .unwrap();
        let mut again = Vec::new();
        store
            .save(&["app:1".into(), img.id().to_string()], &mut again)
            .unwrap();
        assert_eq!(archive, again, "reproducible");
        let other = Store::open(dir.path().join("b")).unwrap();
        let loaded = other.load(&mut &archive[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].image.id, img.id());
        assert_eq!(
            loaded[0].references,
            vec![Reference::parse("app:1").unwrap()],
            "only the name asked for"
        );
        assert!(other.image("app:2").is_err());
    }
}
