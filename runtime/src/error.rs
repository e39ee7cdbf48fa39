//! The runtime's one error type, with a [`ErrorKind`] callers branch on.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is, for callers that branch on it
/// (the CLI maps `NotFound` to "no such container", for example).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No container with that id or name.
    NotFound,
    /// A container with that name exists already.
    AlreadyExists,
    /// The container is in the wrong state for the operation.
    InvalidState,
    /// The caller handed an invalid value (config, user, signal, ...).
    InvalidInput,
    /// The container could not start (unknown user, missing command, ...).
    StartFailed,
    /// A system call, file or cgroup operation failed.
    System,
}

/// An error from the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("the container name {0:?} is already in use")]
    NameInUse(String),
    #[error("container {id} is {status}: cannot {action}")]
    InvalidState {
        id: String,
        status: String,
        action: &'static str,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
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
    #[error("cgroup {action} failed for {path}: {reason}")]
    Cgroup {
        action: &'static str,
        path: String,
        reason: String,
    },
    #[error("cannot decode {}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{message}")]
    Start {
        id: String,
        code: i32,
        message: String,
    },
    #[error("the shim for container {id} failed: {reason}")]
    Shim { id: String, reason: String },
    /// A lifecycle hook failed, timed out, or could not run.
    #[error("{kind} hook {number} ({command}) {reason}")]
    Hook {
        kind: &'static str,
        /// 1-based, as a user counts the list.
        number: usize,
        command: String,
        reason: String,
    },
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::NameInUse(_) => ErrorKind::AlreadyExists,
            Error::InvalidState { .. } => ErrorKind::InvalidState,
            Error::Invalid { .. } => ErrorKind::InvalidInput,
            Error::Io { .. }
            | Error::Sys { .. }
            | Error::Cgroup { .. }
            | Error::Json { .. }
            | Error::Shim { .. } => ErrorKind::System,
            Error::Start { .. } | Error::Hook { .. } => ErrorKind::StartFailed,
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

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
