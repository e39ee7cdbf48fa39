//! The DNS server's one error type, with an [`ErrorKind`] callers branch on.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller handed an invalid value (a name, a domain, a records file
    /// from a newer berth).
    InvalidInput,
    /// A file, socket or process operation failed.
    System,
    /// The server could not start or stop.
    Server,
}

/// An error of the DNS records or server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error(
        "{} has version {found}, newer than this berth understands ({supported}); upgrade berth",
        path.display()
    )]
    NewerVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{action} failed")]
    Sys {
        action: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("cannot decode {}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "cannot listen on {addr} ({proto}): is the network's bridge up with this address, and port {} free?",
        addr.port()
    )]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the DNS server for {} {reason}", dir.display())]
    Server { dir: PathBuf, reason: String },
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidName { .. } | Error::NewerVersion { .. } => ErrorKind::InvalidInput,
            Error::Io { .. } | Error::Sys { .. } | Error::Json { .. } => ErrorKind::System,
            Error::Bind { .. } | Error::Server { .. } => ErrorKind::Server,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(action: &'static str, source: nix::Error) -> Self {
        Error::Sys { action, source }
    }

    pub(crate) fn server(dir: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Server {
            dir: dir.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
