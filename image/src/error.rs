//! [`Error`], the one error type of berth-image, and the [`ErrorKind`]
//! callers branch on (never the message text).

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// The class of an [`Error`], for callers that react differently to, say, a
/// missing image and a corrupt one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An image, reference or blob that does not exist.
    NotFound,
    /// Something that must not exist yet does.
    AlreadyExists,
    /// Bad input: a malformed reference, digest, archive, manifest or layer
    /// entry, or content whose digest does not match.
    Invalid,
    /// The image is used by a container (see `Store::remove`).
    InUse,
    /// The request is ambiguous or conflicts with the store's state (an ID
    /// that names several tagged images without `force`).
    Conflict,
    /// The operation needs privileges this process lacks (mknod, chown,
    /// `trusted.*` xattrs).
    PermissionDenied,
    /// Any other I/O failure.
    Io,
    /// A registry refused the credentials (or had none and wants some).
    Unauthorized,
    /// A registry could not be reached or answered with an error.
    Registry,
}

/// Everything that can go wrong in berth-image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex digits>")]
    InvalidDigest(String),
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("blob {0} is not in the content store")]
    BlobNotFound(Digest),
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("invalid {what}")]
    InvalidJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what}: {reason}")]
    InvalidContent { what: String, reason: String },
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("cannot read the tar archive")]
    ReadArchive(#[source] io::Error),
    #[error("refusing layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    #[error("cannot {action} for layer entry {entry:?}")]
    Unpack {
        entry: String,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no manifest for platform {0} in the image index")]
    NoMatchingPlatform(String),
    #[error("image {image} is in use by a container")]
    InUse { image: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{action} {reference}: {message}")]
    Registry {
        action: &'static str,
        reference: String,
        message: String,
        kind: ErrorKind,
    },
    #[error("registry credentials: {0}")]
    Credentials(String),
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The class of this error; branch on this, not on the message.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. }
            | Error::Unpack { source, .. }
            | Error::Lock { source, .. } => io_kind(source),
            // tar reports malformed input as plain I/O errors; a stream
            // that cannot be read as an archive is bad input.
            Error::ReadArchive(_) => ErrorKind::Invalid,
            Error::ImageNotFound(_) | Error::BlobNotFound(_) | Error::NoMatchingPlatform(_) => {
                ErrorKind::NotFound
            }
            Error::InvalidDigest(_)
            | Error::InvalidReference { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::InvalidJson { .. }
            | Error::InvalidContent { .. }
            | Error::InvalidArchive(_)
            | Error::UnsafeEntry { .. } => ErrorKind::Invalid,
            Error::InUse { .. } => ErrorKind::InUse,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Registry { kind, .. } => *kind,
            Error::Credentials(_) => ErrorKind::Invalid,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidContent {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

fn io_kind(err: &io::Error) -> ErrorKind {
    match err.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ErrorKind::Invalid,
        _ if err.raw_os_error() == Some(nix::libc::EPERM) => ErrorKind::PermissionDenied,
        _ => ErrorKind::Io,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `map_err` shorthand for I/O on a path: `.io_at("read", &path)?`.
pub(crate) trait IoContext<T> {
    fn io_at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn io_at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::io(action, path, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_io_cause() {
        let missing = Error::io("open", "/x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        let eperm = Error::io(
            "mknod",
            "/x",
            io::Error::from_raw_os_error(nix::libc::EPERM),
        );
        assert_eq!(eperm.kind(), ErrorKind::PermissionDenied);
        assert_eq!(Error::ImageNotFound("x".into()).kind(), ErrorKind::NotFound);
        assert_eq!(Error::InUse { image: "x".into() }.kind(), ErrorKind::InUse);
    }
}
