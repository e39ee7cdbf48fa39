//! Blobs: content-addressed files under `content/blobs/sha256/`, written
//! through a temp file and verified before they become visible.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};

use tracing::debug;

use super::{Store, sync_parent};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};

/// JSON blobs (manifests, configs, indexes) larger than this are refused:
/// they are read whole into memory, and no real one comes near it.
pub(crate) const MAX_JSON_BLOB: u64 = 32 * 1024 * 1024;

/// A stored blob's address and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

impl Store {
    /// Streams `reader` into the store. When `expected` is given the
    /// content must hash to it (and be `expected_size` bytes when that is
    /// given too), else nothing is stored and
    /// [`Error::DigestMismatch`]/[`Error::SizeMismatch`] is returned.
    /// Writing a blob that already exists is a cheap no-op after the check.
    ///
    /// Callers that go on to reference the blob must hold the shared
    /// content lock across both steps; the public import/load/tag entry
    /// points do.
    pub fn write_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobInfo> {
        let tmp_dir = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".blob-")
            // Read-only content, readable like any OCI layout.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o444))
            .tempfile_in(&tmp_dir)
            .io_at("create temp file in", &tmp_dir)?;
        let tmp_path = tmp.path().to_owned();
        let mut writer = HashingWriter::new(BufWriter::new(tmp.as_file()));
        // A failure here is the reader's (a truncated archive) as often as
        // the disk's; the message names the temp file either way.
        io::copy(reader, &mut writer).io_at("copy content into", &tmp_path)?;
        let (digest, size, mut buf) = writer.finish();
        buf.flush().io_at("write", &tmp_path)?;
        drop(buf);
        if let Some(expected) = expected {
            if &digest != expected {
                return Err(Error::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        if let Some(expected_size) = expected_size
            && expected_size != size
        {
            return Err(Error::SizeMismatch {
                digest,
                expected: expected_size,
                actual: size,
            });
        }
        let path = self.blob_path(&digest);
        if path.exists() {
            debug!(%digest, "blob already present");
            return Ok(BlobInfo { digest, size });
        }
        tmp.as_file().sync_all().io_at("fsync", &tmp_path)?;
        // Rename is atomic, and two writers of one digest write the same
        // bytes, so the last rename winning is harmless.
        tmp.persist(&path)
            .map_err(|e| Error::io("rename blob into", &path, e.error))?;
        sync_parent(&path)?;
        debug!(%digest, size, path = %path.display(), "blob written");
        Ok(BlobInfo { digest, size })
    }

    /// [`Store::write_blob`] for bytes in memory (manifests, configs).
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<BlobInfo> {
        // Rewriting a config or manifest that is already stored (a cached
        // rebuild) costs a hash, not a temp file.
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) {
            return Ok(BlobInfo {
                digest,
                size: bytes.len() as u64,
            });
        }
        self.write_blob(&mut &bytes[..], None, None)
    }

    /// Whether blob `digest` is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens blob `digest` for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        debug!(%digest, "open blob");
        File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                Error::BlobNotFound(digest.clone())
            } else {
                Error::io("open blob", path, source)
            }
        })
    }

    /// The size of blob `digest` on disk.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(Error::io("stat blob", path, e)),
        }
    }

    /// Reads a small (JSON) blob whole, re-checking its digest: a blob
    /// file changed on disk must not be trusted as the content it names.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let file = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        file.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .io_at("read blob", self.blob_path(digest))?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            return Err(Error::invalid(
                format!("blob {digest}"),
                format!("larger than {MAX_JSON_BLOB} bytes"),
            ));
        }
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// All blob digests present, for garbage collection.
    pub(crate) fn list_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.content_dir().join("blobs").join("sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).io_at("list", &dir)? {
            let entry = entry.io_at("list", &dir)?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|name| Digest::from_hex(name).ok())
            {
                out.push(d);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn blobs_are_content_addressed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let info = store.write_blob_bytes(b"hello").unwrap();
        assert_eq!(info.digest, Digest::of(b"hello"));
        assert_eq!(info.size, 5);
        assert_eq!(store.read_blob(&info.digest).unwrap(), b"hello");
        assert_eq!(
            fs::read(
                store
                    .content_dir()
                    .join("blobs/sha256")
                    .join(info.digest.hex())
            )
            .unwrap(),
            b"hello"
        );
        // Again: a no-op.
        store.write_blob_bytes(b"hello").unwrap();
        assert_eq!(store.list_blobs().unwrap(), vec![info.digest.clone()]);
    }

    #[test]
    fn a_wrong_digest_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let claimed = Digest::of(b"something else");
        let err = store
            .write_blob(&mut &b"hello"[..], Some(&claimed), None)
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(!store.has_blob(&claimed));
        assert!(!store.has_blob(&Digest::of(b"hello")));
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        let err = store
            .write_blob(&mut &b"hello"[..], Some(&Digest::of(b"hello")), Some(4))
            .unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    }

    #[test]
    fn tampered_blobs_are_refused_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let info = store.write_blob_bytes(b"{}").unwrap();
        let path = store.blob_path(&info.digest);
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"{\"x\":1}").unwrap();
        let err = store.read_blob(&info.digest).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        let missing = Digest::of(b"nope");
        assert_eq!(
            store.read_blob(&missing).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
