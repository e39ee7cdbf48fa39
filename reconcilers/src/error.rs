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
    /// A start-first replacement's new container did not pass its health
    /// gate (unhealthy, exited, restarted, or not healthy in time): it was
    /// removed and the old container keeps serving. What an agent rolls
    /// back on.
    GateFailed,
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
            ErrorKind::GateFailed => "health gate failed",
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
    /// A start-first replacement's new container failed its health gate;
    /// it was removed (`cleanup` says if that failed too) and `old` keeps
    /// serving.
    #[error(
        "service {service}: {new} failed its health gate ({failure}); {old} keeps serving{cleanup}",
        cleanup = cleanup.as_deref().map(|c| format!("; removing {new} failed: {c}")).unwrap_or_default()
    )]
    Gate {
        service: String,
        old: String,
        new: String,
        failure: GateFailure,
        cleanup: Option<String>,
    },
}

/// Why a new container did not pass its health gate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "cause")]
pub enum GateFailure {
    /// Its healthcheck reports unhealthy.
    Unhealthy,
    /// It exited (or died) before passing.
    Exited { code: Option<i64> },
    /// Its restart policy restarted it: it crashed at least once.
    Restarted { count: u32 },
    /// Not healthy (or not stable) within the gate's timeout.
    TimedOut { waited: std::time::Duration },
    /// It could not be started, or its traffic could not be switched.
    NotStarted { message: String },
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateFailure::Unhealthy => f.write_str("its healthcheck reports unhealthy"),
            GateFailure::Exited { code: Some(c) } => write!(f, "it exited with code {c}"),
            GateFailure::Exited { code: None } => f.write_str("it died"),
            GateFailure::Restarted { count } => {
                write!(f, "it crashed and was restarted {count} time(s)")
            }
            GateFailure::TimedOut { waited } => {
                write!(f, "not healthy after {waited:?} (update_config.monitor)")
            }
            GateFailure::NotStarted { message } => write!(f, "{message}"),
        }
    }
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
            Error::Gate { .. } => ErrorKind::GateFailed,
        }
    }
}

/// An error and its causes, `: `-separated, leaving out a cause whose text
/// the message already carries (backends often put their cause's text in
/// their own message and keep it as the source too).
pub fn describe_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let cause = std::io::Error::other("connection refused");
        let e = BackendError::new(ErrorKind::Unavailable, "pull x: connection refused")
            .with_source(cause);
        assert_eq!(
            describe_chain(&e),
            "unavailable: pull x: connection refused"
        );
        let e = BackendError::new(ErrorKind::Internal, "cannot write")
            .with_source(std::io::Error::other("disk full"));
        assert_eq!(describe_chain(&e), "internal: cannot write: disk full");
    }
}
