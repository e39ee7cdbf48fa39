//! One blob from a registry into the store, streamed to disk and hashed as
//! it arrives, never held in memory.
//!
//! Each byte is hashed once: blobs are asked for with a `Range` (from 0 the
//! first time), which oci-client streams without its own digest check, and
//! ours runs on a thread of its own while the next bytes arrive.
//!
//! The bytes land in `tmp/partial/<hex>` (keyed by digest, so a pull that
//! dies half-way and the next one share it). A later fetch of the same blob
//! hashes what is there and asks the registry for the rest with a `Range`
//! request; a registry that answers `200` instead of `206` sends it all
//! again and the partial file starts over. A dropped connection is resumed
//! the same way a few times before the fetch gives up (leaving the partial
//! file for next time). Only a blob whose SHA-256 and size match the
//! descriptor is renamed into `blobs/sha256/`; a mismatch deletes the
//! partial file and fails naming the blob and the registry.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use futures_util::StreamExt;
use nix::fcntl::{Flock, FlockArg};
use oci_client::client::BlobResponse;
use sha2::{Digest as _, Sha256};
use tracing::debug;

use super::{Progress, ProgressEvent, registry_error};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// Connection drops a fetch survives (each resumes where it broke).
const RETRIES: usize = 3;

/// Fetches blob `digest` (`size` bytes, as the manifest says) of `image`
/// into `store`, unless it is there already. Returns whether bytes moved.
pub(crate) async fn fetch_blob(
    client: &oci_client::Client,
    image: &oci_client::Reference,
    store: &Store,
    digest: &Digest,
    size: u64,
    progress: &dyn Progress,
) -> Result<bool> {
    if store.has_blob(digest) {
        progress.event(ProgressEvent::Exists {
            digest: digest.clone(),
        });
        return Ok(false);
    }
    let dir = store.tmp_dir().join("partial");
    std::fs::create_dir_all(&dir).io_at("create", &dir)?;
    let path = dir.join(digest.hex());
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .io_at("open partial download", &path)?;
    // Two pulls of one blob at once: the second waits for the first, then
    // finds the blob in the store.
    let mut file = lock(file, &path).await?;
    if store.has_blob(digest) {
        // The other puller renamed its file into the store; ours (if the
        // path is still ours) is an empty leftover.
        use std::os::unix::fs::MetadataExt;
        let ours = file.metadata().map(|m| m.ino()).ok();
        if std::fs::metadata(&path).map(|m| m.ino()).ok() == ours {
            let _ = std::fs::remove_file(&path);
        }
        progress.event(ProgressEvent::Exists {
            digest: digest.clone(),
        });
        return Ok(false);
    }
    let (hashed, mut offset) = rehash(&mut file, &path, size)?;
    let mut hasher = HashThread::start(hashed)?;
    progress.event(ProgressEvent::Started {
        digest: digest.clone(),
        size,
        offset,
    });
    let digest_text = digest.to_string();
    let mut failures = 0;
    let mut writeback = Writeback::new(offset);
    // A partial file that is already whole needs no request.
    while offset < size || size == 0 {
        // Always a range request (`bytes=0-` the first time): a registry
        // answers it with 206, whose stream oci-client leaves unverified,
        // so each byte is hashed once, by `hasher`, which also carries a
        // resume over. One that ignores ranges answers 200, verified by
        // oci-client as well. An empty blob has no range to ask for.
        let response = if offset > 0 || size > 0 {
            client
                .pull_blob_stream_partial(image, digest_text.as_str(), offset, None)
                .await
        } else {
            client
                .pull_blob_stream(image, digest_text.as_str())
                .await
                .map(BlobResponse::Full)
        };
        let mut stream = match response {
            Ok(BlobResponse::Partial(stream)) => {
                if offset > 0 {
                    debug!(%digest, offset, "resuming blob download");
                }
                stream
            }
            Ok(BlobResponse::Full(stream)) => {
                if offset > 0 {
                    debug!(%digest, offset, "registry ignored the range: starting over");
                    file.set_len(0).io_at("truncate", &path)?;
                    file.seek(SeekFrom::Start(0)).io_at("seek", &path)?;
                    hasher = HashThread::start(Sha256::new())?;
                    offset = 0;
                }
                stream
            }
            Err(e) if failures < RETRIES && is_transient(&e) => {
                failures += 1;
                continue;
            }
            Err(e) => return Err(registry_error("fetch blob", &digest_text, e)),
        };
        let mut broken = None;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            };
            if offset + chunk.len() as u64 > size {
                drop(file);
                let _ = std::fs::remove_file(&path);
                return Err(Error::SizeMismatch {
                    digest: digest.clone(),
                    expected: size,
                    actual: offset + chunk.len() as u64,
                });
            }
            file.write_all(&chunk).io_at("write", &path)?;
            hasher.update(chunk.clone())?;
            offset += chunk.len() as u64;
            writeback.written(&file, &path, offset).await?;
            progress.event(ProgressEvent::Bytes {
                digest: digest.clone(),
                done: offset,
                size,
            });
        }
        match broken {
            // When the registry ignored the range (200), oci-client checks
            // the digest itself at the end: a mismatch is final, and
            // reported below by ours.
            None => break,
            // Everything arrived (oci-client's own digest check may have
            // complained at the end): ours below decides.
            Some(_) if offset >= size => break,
            Some(e) if e.kind() == std::io::ErrorKind::InvalidData => break,
            Some(e) if failures < RETRIES && offset < size => {
                failures += 1;
                debug!(%digest, offset, error = %e, "blob download broke; resuming");
            }
            Some(e) => {
                return Err(Error::Registry {
                    action: "fetch blob",
                    reference: digest_text,
                    message: format!(
                        "the download broke at byte {offset} of {size}: {e} (run the pull again to resume)"
                    ),
                    kind: crate::error::ErrorKind::Registry,
                });
            }
        }
    }
    let actual = Digest::from_hex(&hex::encode(hasher.finish()?.finalize()))?;
    if offset != size || &actual != digest {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(if offset != size {
            Error::SizeMismatch {
                digest: digest.clone(),
                expected: size,
                actual: offset,
            }
        } else {
            Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            }
        });
    }
    // What the background syncs did not reach yet.
    writeback.finish(&path).await?;
    file.sync_all().io_at("fsync", &path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))
        .io_at("chmod", &path)?;
    let target = store.blob_path(digest);
    // The blobs folder is fsynced once for all of a pull's blobs, before
    // the reference that makes them reachable is written (`pull`).
    std::fs::rename(&path, &target).io_at("rename blob into", &target)?;
    progress.event(ProgressEvent::Done {
        digest: digest.clone(),
    });
    Ok(true)
}

/// Chunks waiting for the hashing thread before the download waits for it.
const HASH_QUEUE: usize = 64;

/// SHA-256 on a thread of its own: hashing was the largest cost of a pull
/// (42% of its CPU time for a 100 MiB layer, SHA-NI included), and there
/// it overlaps with receiving and writing the next chunks instead of
/// following each. The queue is bounded, so a blob is never held in memory.
struct HashThread {
    chunks: Option<std::sync::mpsc::SyncSender<bytes::Bytes>>,
    thread: Option<std::thread::JoinHandle<Sha256>>,
}

impl HashThread {
    /// Goes on from `hasher` (what a partial file held).
    fn start(mut hasher: Sha256) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(HASH_QUEUE);
        let thread = std::thread::Builder::new()
            .name("blob-hash".into())
            .spawn(move || {
                for chunk in rx {
                    hasher.update(&chunk);
                }
                hasher
            })
            .map_err(|e| Error::io("start a hashing thread for", "a blob download", e))?;
        Ok(HashThread {
            chunks: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `chunk` (a reference-counted view: no copy).
    fn update(&self, chunk: bytes::Bytes) -> Result<()> {
        let sent = self.chunks.as_ref().map(|tx| tx.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(Self::lost()),
        }
    }

    /// The hash of everything queued.
    fn finish(mut self) -> Result<Sha256> {
        drop(self.chunks.take());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .ok_or_else(Self::lost)
    }

    fn lost() -> Error {
        Error::io(
            "hash",
            "a blob download",
            std::io::Error::other("the hashing thread ended early"),
        )
    }
}

impl Drop for HashThread {
    fn drop(&mut self) {
        // An abandoned download: the thread ends once the queue closes.
        drop(self.chunks.take());
    }
}

/// Bytes written between two background `fdatasync`s.
const WRITEBACK_STEP: u64 = 16 << 20;

/// Gets the blob to disk while it downloads: every [`WRITEBACK_STEP`]
/// bytes an `fdatasync` runs on a blocking thread (one at a time), so the
/// `fsync` that must come before the blob's rename waits for the last
/// stretch only, not for the whole blob (100 MiB took ~180 ms to sync
/// here, as long as the download itself). An error of a background sync
/// fails the fetch: the kernel reports a writeback error to one `fsync`
/// of the file only.
struct Writeback {
    synced_from: u64,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Writeback {
    fn new(offset: u64) -> Self {
        Writeback {
            synced_from: offset,
            running: None,
        }
    }

    async fn written(&mut self, file: &File, path: &Path, offset: u64) -> Result<()> {
        if offset < self.synced_from + WRITEBACK_STEP {
            return Ok(());
        }
        if let Some(running) = &self.running {
            if !running.is_finished() {
                return Ok(());
            }
            self.finish(path).await?;
        }
        // A clone shares the open file (and its error state) with `file`.
        let clone = file.try_clone().io_at("dup", path)?;
        self.running = Some(tokio::task::spawn_blocking(move || clone.sync_data()));
        self.synced_from = offset;
        Ok(())
    }

    /// Waits for the sync in flight, if any.
    async fn finish(&mut self, path: &Path) -> Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        running
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            .io_at("fdatasync", path)
    }
}

/// Takes the partial file's lock, waiting on a blocking thread when
/// another pull holds it.
async fn lock(file: File, path: &Path) -> Result<Flock<File>> {
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            let path2 = path.to_owned();
            tokio::task::spawn_blocking(move || {
                Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| Error::Lock {
                    path: path2,
                    source: errno.into(),
                })
            })
            .await
            .map_err(|e| Error::Lock {
                path: path.to_owned(),
                source: std::io::Error::other(e.to_string()),
            })?
        }
        Err((_, errno)) => Err(Error::Lock {
            path: path.to_owned(),
            source: errno.into(),
        }),
    }
}

/// Hashes what a partial file holds (dropping it when it is longer than
/// the blob) and leaves the file positioned at its end.
fn rehash(file: &mut File, path: &Path, size: u64) -> Result<(Sha256, u64)> {
    let len = file.metadata().io_at("stat", path)?.len();
    let mut hasher = Sha256::new();
    if len > size {
        file.set_len(0).io_at("truncate", path)?;
        return Ok((hasher, 0));
    }
    file.seek(SeekFrom::Start(0)).io_at("seek", path)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    loop {
        let n = file.read(&mut buf).io_at("read", path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok((hasher, done))
}

/// A request that failed on the way (connection refused or reset,
/// timeout), not an answer: worth another try.
fn is_transient(e: &oci_client::errors::OciDistributionError) -> bool {
    matches!(e, oci_client::errors::OciDistributionError::RequestError(_))
}
