//! The backends' errors as the reconciler's [`ErrorKind`]s: it branches on
//! the kind (retry, adopt, give up), so each mapping says what the failure
//! means for a plan, not where it came from.

use berth_reconcilers::{BackendError, ErrorKind};

pub fn from_runtime(e: berth_runtime::Error) -> BackendError {
    use berth_runtime::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::AlreadyExists => ErrorKind::AlreadyExists,
        K::InvalidState => ErrorKind::FailedPrecondition,
        // A user, command or value the container cannot run with: the spec
        // is wrong, retrying does not help.
        K::InvalidInput | K::StartFailed => ErrorKind::InvalidArgument,
        K::System => ErrorKind::Internal,
    };
    BackendError::new(kind, e.to_string()).with_source(e)
}

pub fn from_image(e: berth_image::Error) -> BackendError {
    use berth_image::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::AlreadyExists => ErrorKind::AlreadyExists,
        K::Invalid => ErrorKind::InvalidArgument,
        K::InUse | K::Conflict => ErrorKind::FailedPrecondition,
        K::PermissionDenied | K::Io => ErrorKind::Internal,
        // Bad credentials do not heal by retrying; a registry that did
        // not answer may.
        K::Unauthorized => ErrorKind::FailedPrecondition,
        K::Registry => ErrorKind::Unavailable,
    };
    BackendError::new(kind, e.to_string()).with_source(e)
}

/// An I/O failure on one of the engine's own files.
pub fn io(action: &str, path: &std::path::Path, e: std::io::Error) -> BackendError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        _ => ErrorKind::Internal,
    };
    BackendError::new(kind, format!("cannot {action} {}: {e}", path.display())).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_kinds_map_to_reconciler_kinds() {
        let cases = [
            (
                berth_runtime::Error::NotFound("x".into()),
                ErrorKind::NotFound,
            ),
            (
                berth_runtime::Error::NameInUse("x".into()),
                ErrorKind::AlreadyExists,
            ),
            (
                berth_runtime::Error::InvalidState {
                    id: "x".into(),
                    status: "running".into(),
                    action: "remove",
                },
                ErrorKind::FailedPrecondition,
            ),
        ];
        for (e, kind) in cases {
            let message = e.to_string();
            let b = from_runtime(e);
            assert_eq!(b.kind(), kind);
            assert_eq!(b.message, message);
        }
    }
}
