//! Loading one project with the Compose loader, under a tracing span that
//! names it, and fingerprinting exactly the inputs that load read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_spec::compose::{self, LoadOptions, Loaded};
use berth_spec::diag::Diagnostics;

use super::ProjectSource;
use super::revision::{model_inputs, revision, tracked_paths};

/// How often a load is retried when its inputs change while it runs.
const MAX_ATTEMPTS: usize = 3;

/// The outcome of loading one project folder.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub source: ProjectSource,
    pub outcome: Result<Loaded, Diagnostics>,
    /// The files [`Self::revision`] covers.
    pub tracked: Vec<PathBuf>,
    pub revision: String,
    pub duration: Duration,
}

/// Loads `source` the way `docker compose` would from inside its folder.
///
/// `previous` is the file set the last load tracked: when any of those
/// changes while the loader runs, the model might mix old and new content
/// under the new revision, so the load is done again.
pub fn load_project(
    source: &ProjectSource,
    previous: &[PathBuf],
    environment: &BTreeMap<String, String>,
) -> LoadResult {
    let span = tracing::info_span!("load", project = %source.key);
    let _entered = span.enter();
    let options = LoadOptions {
        project_directory: Some(source.dir.clone()),
        files: source.files.clone(),
        working_dir: source.dir.clone(),
        environment: environment.clone(),
        ..LoadOptions::default()
    };
    let mut watched = tracked_paths(&source.dir, &source.files, previous);
    let mut attempt = 1;
    loop {
        let before = revision(&watched);
        let started = Instant::now();
        // Configs and secrets sourced from the environment carry their
        // value, as with `berth up` (see `engine::file_objects`).
        let outcome = compose::load(&options).map(|mut loaded| {
            crate::engine::file_objects::resolve_environment_sources(
                &mut loaded.project,
                &loaded.environment,
            );
            crate::engine::build_request::resolve_build_args(
                &mut loaded.project,
                &loaded.environment,
            );
            loaded
        });
        let duration = started.elapsed();
        let inputs: Vec<PathBuf> = outcome
            .as_ref()
            .map(|l| {
                let mut inputs = l.inputs.clone();
                inputs.extend(model_inputs(&l.project));
                inputs
            })
            .unwrap_or_default();
        let tracked = tracked_paths(&source.dir, &source.files, &inputs);
        // Check both the old set and the one this load reported.
        watched.extend(tracked.iter().cloned());
        watched.sort();
        watched.dedup();
        let stable = revision(&watched) == before || attempt >= MAX_ATTEMPTS;
        if stable {
            let revision = revision(&tracked);
            match &outcome {
                Ok(loaded) => tracing::debug!(
                    name = %loaded.project.name,
                    services = loaded.project.services.len(),
                    warnings = loaded.warnings.len(),
                    %revision,
                    duration_ms = duration.as_millis() as u64,
                    "project loaded"
                ),
                Err(diags) => tracing::debug!(
                    errors = diags.0.len(),
                    %revision,
                    duration_ms = duration.as_millis() as u64,
                    "project failed to load"
                ),
            }
            return LoadResult {
                source: source.clone(),
                outcome,
                tracked,
                revision,
                duration,
            };
        }
        tracing::debug!(attempt, "inputs changed during load; loading again");
        attempt += 1;
    }
}

/// The name Compose would give a project in `dir` without `name:` or `-p`:
/// the folder name, lower-cased, with only `a-z 0-9 _ -` kept and no leading
/// `_` or `-`. Used to label a project whose load has never succeeded.
pub fn fallback_name(source: &ProjectSource) -> String {
    let base = source
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let kept: String = base
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let trimmed = kept.trim_start_matches(['_', '-']);
    if trimmed.is_empty() {
        "default".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &std::path::Path) -> ProjectSource {
        ProjectSource {
            key: ".".into(),
            dir: dir.to_path_buf(),
            files: vec![dir.join("compose.yaml")],
        }
    }

    #[test]
    fn fallback_name_follows_compose_normalization() {
        let name = |d: &str| fallback_name(&source(std::path::Path::new(d)));
        assert_eq!(name("/srv/My.Shop"), "myshop");
        assert_eq!(name("/srv/_-web_1"), "web_1");
        assert_eq!(name("/srv/..."), "default");
    }

    #[test]
    fn a_load_tracks_compose_files_and_dotenv_and_hashes_them() {
        let tmp = tempfile::tempdir().unwrap();
        let src = source(tmp.path());
        std::fs::write(&src.files[0], "services: {}\n").unwrap();
        let result = load_project(&src, &[], &BTreeMap::new());
        // Whether or not the loader accepts it, the compose file and .env
        // are tracked, and the revision is theirs.
        assert!(result.tracked.contains(&src.files[0]));
        assert!(result.tracked.contains(&tmp.path().join(".env")));
        assert_eq!(result.revision, revision(&result.tracked));
        assert_eq!(result.source, src);
    }
}
