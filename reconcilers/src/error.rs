//! Errors: [`BackendError`] is what a trait implementation returns, with an
//! [`ErrorKind`] the reconciler branches on (containerd's error classes:
//! never match on message text); [`Error`] is this crate's own, naming the
//! step that failed and chaining the backend's cause.

use std::fmt;

/// The class of a failure. Callers branch on this, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// The container, image, volume or network does not exist.
    NotFound,
    /// A resource with that name already exists.
    AlreadyExists,
    /// The resource is in a state that forbids the operation (removing a
    /// running container, removing a volume or network in use).
    FailedPrecondition,
    /// The backend is not reachable or was interrupted; retrying may work.
    Unavailable,
    /// The request itself is wrong (a spec the backend cannot express).
    InvalidArgument,
    /// A wait ran out of time.
    DeadlineExceeded,
    /// Anything else.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::DeadlineExceeded => "deadline exceeded",
            ErrorKind::Internal => "internal",
        })
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure reported by a [`crate::traits`] implementation.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct BackendError {
    pub kind: ErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Cause>,
}

impl BackendError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps the adapter's own error as the cause.
    pub fn with_source(mut self, source: impl Into<Cause>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// This crate's errors: which step failed, on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A backend call made while executing an action failed.
    #[error("{step} {target}")]
    Backend {
        step: &'static str,
        target: String,
        #[source]
        source: BackendError,
    },
    /// A dependency did not reach the condition its dependent waits for.
    #[error("service {service}: dependency {dependency} did not become {condition}: {message}")]
    Dependency {
        service: String,
        dependency: String,
        condition: String,
        message: String,
    },
    /// A wait for a dependency ran out of time.
    #[error(
        "service {service}: timed out after {waited:?} waiting for {dependency} to be {condition}"
    )]
    Timeout {
        service: String,
        dependency: String,
        condition: String,
        waited: std::time::Duration,
    },
    /// The services' dependencies form a cycle (the spec's checks reject
    /// these; this guards the ordering anyway).
    #[error("dependency cycle among services {services:?}")]
    Cycle { services: Vec<String> },
    /// An earlier action this one depends on did not complete.
    #[error("skipped: {reason}")]
    Skipped { reason: String },
}

impl Error {
    pub fn backend(step: &'static str, target: impl Into<String>, source: BackendError) -> Self {
        Error::Backend {
            step,
            target: target.into(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Backend { source, .. } => source.kind(),
            Error::Dependency { .. } | Error::Skipped { .. } => ErrorKind::FailedPrecondition,
            Error::Timeout { .. } => ErrorKind::DeadlineExceeded,
            Error::Cycle { .. } => ErrorKind::InvalidArgument,
        }
    }
}
