//! The network crate's one error type, with an [`ErrorKind`] callers branch
//! on.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No network (or endpoint) of that name.
    NotFound,
    /// A network of that name exists already.
    AlreadyExists,
    /// The caller asked for something invalid (subnet, address, port...).
    InvalidInput,
    /// Something else holds what was asked for (a host port, an address,
    /// a subnet), or the network still has containers.
    Conflict,
    /// No free subnet, address or port is left.
    Exhausted,
    /// A netlink, nftables, namespace or file operation failed.
    System,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such network: {0}")]
    NoSuchNetwork(String),
    #[error("network {0} already exists")]
    NetworkExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Exhausted(String),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{action}: {source}")]
    Sys {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink: {action}: {message}")]
    Netlink { action: String, message: String },
    #[error("nftables: {0}")]
    Nft(String),
    #[error("cannot decode {}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoSuchNetwork(_) => ErrorKind::NotFound,
            Error::NetworkExists(_) => ErrorKind::AlreadyExists,
            Error::Invalid(_) => ErrorKind::InvalidInput,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Exhausted(_) => ErrorKind::Exhausted,
            Error::Io { .. }
            | Error::Sys { .. }
            | Error::Netlink { .. }
            | Error::Nft(_)
            | Error::Json { .. } => ErrorKind::System,
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

    pub(crate) fn sys(action: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Sys {
            action: action.into(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
