//! Removal (`docker rmi`) and garbage collection: blobs and snapshots that
//! no `index.json` entry reaches are deleted.
//!
//! GC runs under the exclusive content lock, so it never races an import
//! that has written blobs it has not referenced yet (those hold the lock
//! shared), and it may clear `tmp/` and stale snapshot lock files.

use std::collections::HashSet;
use std::fs;
use std::io;

use oci_spec::image::{Descriptor, ImageIndex};
use tracing::debug;

use super::Store;
use super::refs::ref_name;
use crate::config::ConfigFile;
use crate::digest::{Digest, chain_ids};
use crate::error::{Error, IoContext, Result};
use crate::platform;
use crate::reference::Reference;

/// What [`Store::remove`] did, in the order `docker rmi` reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// References removed.
    pub untagged: Vec<Reference>,
    /// Image IDs deleted (none when the image kept other references, or
    /// stays as an untagged image because it is in use).
    pub deleted: Vec<Digest>,
    /// What the garbage collection that followed freed.
    pub collected: Collected,
}

/// What a garbage collection freed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub blobs: usize,
    pub bytes: u64,
    pub snapshots: usize,
}

impl Store {
    /// `docker rmi`: removes a reference, or an image by ID.
    ///
    /// By reference: the tag goes; when it was the image's last one, the
    /// image goes too. By ID: the image and all its references go, which
    /// needs `force` when it has several. `in_use` is asked about the image
    /// ID before an image is deleted (the runtime answers "a container was
    /// created from it"); an image in use is refused with
    /// [`crate::ErrorKind::InUse`], or with `force` is only untagged and
    /// stays as an untagged image. Unreachable blobs and snapshots are then
    /// collected.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Removed> {
        let _content = self.lock_content_exclusive()?;
        let image = self.image(name_or_id)?;
        let by_ref = Reference::parse(name_or_id)
            .ok()
            .filter(|r| image.references.contains(r));
        let mut removed = Removed::default();
        let entry = image.entry_digest.to_oci()?;
        let (drop_refs, delete_image) = match by_ref {
            Some(r) if image.references.len() > 1 => (vec![r], false),
            Some(r) => (vec![r], true),
            None => {
                if image.references.len() > 1 && !force {
                    return Err(Error::Conflict(format!(
                        "unable to delete {} (must be forced): image is referenced in multiple repositories",
                        image.id.short()
                    )));
                }
                (image.references.clone(), true)
            }
        };
        let keep_untagged = delete_image && in_use(&image.id);
        if keep_untagged && (!force || drop_refs.is_empty()) {
            return Err(Error::InUse {
                image: name_or_id.to_owned(),
            });
        }
        let names: Vec<String> = drop_refs.iter().map(ToString::to_string).collect();
        self.update_index(|entries| {
            entries.retain(|d| {
                let named = ref_name(d).is_some_and(|n| names.iter().any(|x| x == n));
                let whole = delete_image && !keep_untagged && d.digest() == &entry;
                !named && !whole
            });
            if keep_untagged && !entries.iter().any(|d| d.digest() == &entry) {
                let mut d = Descriptor::new(
                    oci_spec::image::MediaType::ImageManifest,
                    self.blob_size(&image.entry_digest)?,
                    entry.clone(),
                );
                if let Some(mt) = image.manifest.media_type() {
                    d.set_media_type(mt.clone());
                }
                entries.push(d);
            }
            Ok(())
        })?;
        removed.untagged = drop_refs;
        if delete_image && !keep_untagged {
            removed.deleted.push(image.id.clone());
        }
        removed.collected = self.collect_garbage()?;
        Ok(removed)
    }

    /// Deletes every blob and snapshot no `index.json` entry reaches, and
    /// leftovers of interrupted writes.
    pub fn gc(&self) -> Result<Collected> {
        let _content = self.lock_content_exclusive()?;
        self.collect_garbage()
    }

    /// The sweep; the caller holds the exclusive content lock.
    fn collect_garbage(&self) -> Result<Collected> {
        let mut blobs = HashSet::new();
        let mut snapshots = HashSet::new();
        for desc in self.read_index()? {
            self.mark(&desc, &mut blobs, &mut snapshots, 0);
        }
        // What a build cache (or any owner of a root) still refers to.
        for root in self.gc_roots() {
            blobs.extend(root.blobs);
            snapshots.extend(root.snapshots.iter().map(|c| c.hex().to_owned()));
        }
        let mut collected = Collected::default();
        for digest in self.list_blobs()? {
            if blobs.contains(&digest) {
                continue;
            }
            let path = self.blob_path(&digest);
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            debug!(%digest, "gc: remove blob");
            remove_file(&path)?;
            collected.blobs += 1;
            collected.bytes += size;
        }
        let snap_dir = self.snapshots_dir();
        for entry in fs::read_dir(&snap_dir).io_at("list", &snap_dir)? {
            let entry = entry.io_at("list", &snap_dir)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if snapshots.contains(name.as_ref()) {
                continue;
            }
            debug!(snapshot = %name, "gc: remove snapshot");
            remove_all(&entry.path())?;
            collected.snapshots += 1;
        }
        // Nothing is being written (we hold the lock exclusively), so
        // whatever is in tmp/ is left over from a crash.
        // Except partial registry downloads, which the next pull of the
        // same blob resumes: those go once a day old.
        let tmp = self.tmp_dir();
        for entry in fs::read_dir(&tmp).io_at("list", &tmp)? {
            let entry = entry.io_at("list", &tmp)?;
            if entry.file_name() == "partial" {
                let dir = entry.path();
                for part in fs::read_dir(&dir).io_at("list", &dir)? {
                    let part = part.io_at("list", &dir)?;
                    let stale = part
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_none_or(|age| age > std::time::Duration::from_secs(24 * 3600));
                    if stale {
                        remove_all(&part.path())?;
                    }
                }
                continue;
            }
            remove_all(&entry.path())?;
        }
        let locks = self.root().join("locks");
        for entry in fs::read_dir(&locks).io_at("list", &locks)? {
            let entry = entry.io_at("list", &locks)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(hex) = name
                .strip_prefix("snapshot-")
                .and_then(|n| n.strip_suffix(".lock"))
                && !snapshots.contains(hex)
            {
                remove_file(&entry.path())?;
            }
        }
        debug!(?collected, "gc done");
        Ok(collected)
    }

    /// Marks what `desc` reaches. Unreadable content marks nothing more
    /// (it cannot be unpacked anyway), rather than failing every GC.
    fn mark(
        &self,
        desc: &Descriptor,
        blobs: &mut HashSet<Digest>,
        snapshots: &mut HashSet<String>,
        depth: usize,
    ) {
        let Ok(digest) = Digest::from_oci(desc.digest()) else {
            return;
        };
        blobs.insert(digest.clone());
        if depth > 4 {
            return;
        }
        if platform::is_index(desc.media_type()) {
            if let Some(index) = self
                .read_blob(&digest)
                .ok()
                .and_then(|b| serde_json::from_slice::<ImageIndex>(&b).ok())
            {
                for child in index.manifests() {
                    self.mark(child, blobs, snapshots, depth + 1);
                }
            }
            return;
        }
        let Ok(manifest) = self.read_manifest(&digest) else {
            return;
        };
        for layer in manifest.layers() {
            if let Ok(d) = Digest::from_oci(layer.digest()) {
                blobs.insert(d);
            }
        }
        let Ok(config) = Digest::from_oci(manifest.config().digest()) else {
            return;
        };
        blobs.insert(config.clone());
        if let Some(file) = self
            .read_blob(&config)
            .ok()
            .and_then(|b| ConfigFile::parse(&b, "").ok())
        {
            for chain in chain_ids(&file.diff_ids) {
                snapshots.insert(chain.hex().to_owned());
            }
        }
    }
}

fn remove_file(path: &std::path::Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

fn remove_all(path: &std::path::Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("stat", path, e)),
    };
    let result = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}
