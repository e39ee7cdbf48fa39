//! [`BuildError`]: everything a build can fail with, each naming what is
//! wrong and, where there is one, the Dockerfile line.

use std::path::PathBuf;

/// Where in the Dockerfile a step comes from, for messages
/// (`Dockerfile:12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAt {
    pub file: String,
    pub line: u32,
    /// The instruction as written.
    pub instruction: String,
}

impl std::fmt::Display for StepAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.instruction)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse; the text lists every diagnostic.
    #[error("{0}")]
    Dockerfile(String),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "base image {image:?} is not in the local store (at {at}); get it with `berth pull {image}` or `berth load -i ARCHIVE`"
    )]
    BaseImageMissing { image: String, at: StepAt },
    #[error("{at}: {message}")]
    Step { at: StepAt, message: String },
    #[error("{at}: process \"{command}\" did not complete successfully: exit code: {code}")]
    RunFailed {
        at: StepAt,
        command: String,
        code: i32,
    },
    /// A source path that is not in the context, or leaves it.
    #[error("{at}: {message}")]
    Context { at: StepAt, message: String },
    #[error("image store: {0}")]
    Image(#[from] berth_image::Error),
    #[error("runtime: {0}")]
    Runtime(#[from] berth_runtime::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("build cancelled")]
    Cancelled,
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BuildError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
