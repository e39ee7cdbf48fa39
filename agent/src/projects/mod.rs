//! The projects under the agent's `--dir`: finding them ([`discover`]),
//! fingerprinting their inputs ([`revision`]) and loading them ([`load`]).
//!
//! Everything here is blocking file I/O; the supervisor runs it on tokio's
//! blocking pool.

pub mod discover;
pub mod load;
pub mod revision;
pub mod scan;

use std::path::PathBuf;

/// One project folder found under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSource {
    /// The folder relative to the root, `/`-separated; `.` for the root.
    pub key: String,
    /// Absolute project folder.
    pub dir: PathBuf,
    /// Its compose files (main file, then override), absolute.
    pub files: Vec<PathBuf>,
}
