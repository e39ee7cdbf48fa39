//! Compose projects: from files on disk to the normalized [`model::Project`].
//!
//! The pipeline, in order: find the files ([`discover`]), parse each into a
//! [`crate::yaml::Node`] tree, interpolate variables, resolve `include` and
//! `extends`, merge the files by the Compose merge rules, validate against the
//! Compose JSON schema, decode into the typed model, normalize (long syntax
//! everywhere, absolute paths, defaults), select profiles, and run the
//! semantic checks the schema cannot express.

pub mod decode;
pub mod discover;
mod files;
mod load;
pub mod merge;
pub mod model;
mod normalize;
pub mod paths;
pub mod problem;
pub mod project_name;
pub mod schema;
mod semantic;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diag::{Diagnostic, Diagnostics};

/// What to load, as `docker compose` takes it from flags and environment.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--project-directory`; default: the folder of the first compose file,
    /// or the current directory when discovering.
    pub project_directory: Option<PathBuf>,
    /// `-f`, in order; empty means discover in `working_dir`.
    pub files: Vec<PathBuf>,
    /// Where discovery starts (the current directory for the CLI).
    pub working_dir: PathBuf,
    /// `--env-file`; empty means `<project dir>/.env` when it exists.
    pub env_files: Vec<PathBuf>,
    /// `-p`; overrides `name:` and `COMPOSE_PROJECT_NAME`.
    pub project_name: Option<String>,
    /// `--profile`; `COMPOSE_PROFILES` adds to it.
    pub profiles: Vec<String>,
    /// The process environment (passed in, never read here, so loading is
    /// reproducible and testable).
    pub environment: BTreeMap<String, String>,
}

/// A successfully loaded project.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: model::Project,
    /// Every file whose content fed the model (compose files, included and
    /// extended files, env files, label files): what a revision hash covers.
    pub inputs: Vec<PathBuf>,
    pub warnings: Vec<Diagnostic>,
    /// The project's environment: `.env` (or the `--env-file`s) under the
    /// process environment, as interpolation saw it (compose-go's
    /// `Project.Environment`). Configs and secrets with `environment:`
    /// take their content from it.
    pub environment: BTreeMap<String, String>,
}

/// Loads, merges, validates and normalizes a project. Every error found is
/// returned, not only the first.
pub fn load(options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    load::load(options, true)
}

/// Like [`load`] but without the cross-reference checks (undefined services,
/// networks, volumes, secrets and configs, dependency cycles, port clashes):
/// compose-go's `SkipConsistencyCheck`. For inputs that are only meant to
/// exercise the syntax, such as compose-go's `full-example.yml`, which names
/// services it never defines.
pub fn load_unchecked(options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    load::load(options, false)
}
