//! Compose's project flags (`-f`, `-p`, `--project-directory`, `--env-file`,
//! `--profile`) and the `COMPOSE_*` variables that stand in for them, resolved
//! into the loader's [`LoadOptions`] the way `docker compose` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_spec::compose::{LoadOptions, discover};

/// The flags of every command that works on one project.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProjectOpts {
    /// Compose file (repeatable; later files override earlier ones). Default:
    /// `COMPOSE_FILE` (path-separator separated), else `compose.yaml` and
    /// friends in the current folder or the nearest parent holding one.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name. Default: `COMPOSE_PROJECT_NAME`, else `name:` in the
    /// file, else the project folder's name.
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Folder relative paths resolve against. Default: the first compose
    /// file's folder.
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Env file for interpolation (repeatable). Default:
    /// `COMPOSE_ENV_FILES` (comma separated), else `<project dir>/.env`.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Profile to enable (repeatable). Default: `COMPOSE_PROFILES` (comma
    /// separated).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

/// Why the flags could not be turned into load options.
#[derive(Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// No `-f`, no `COMPOSE_FILE`, and no compose file in `start` or its
    /// parents.
    NoConfigFile { start: PathBuf },
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // docker compose's own wording, so scripts and people recognise it.
            Self::NoConfigFile { start } => write!(
                f,
                "no configuration file provided: not found (looked for {} in {} and its parents)",
                discover::COMPOSE_FILE_NAMES.join(", "),
                start.display()
            ),
        }
    }
}

impl std::error::Error for ResolveError {}

impl ProjectOpts {
    /// Resolves flags, then `COMPOSE_*` variables from `env`, then discovery.
    /// Relative paths are taken against `cwd`. `env` is also handed to the
    /// loader for interpolation.
    pub fn resolve(
        &self,
        cwd: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<LoadOptions, ResolveError> {
        let project_directory = self.project_directory.as_ref().map(|d| absolute(cwd, d));
        let files =
            if !self.files.is_empty() {
                self.files.iter().map(|f| absolute(cwd, f)).collect()
            } else if let Some(list) = non_empty(env, "COMPOSE_FILE") {
                let separator = non_empty(env, "COMPOSE_PATH_SEPARATOR")
                    .unwrap_or(if cfg!(windows) { ";" } else { ":" });
                list.split(separator)
                    .filter(|s| !s.is_empty())
                    .map(|f| absolute(cwd, Path::new(f)))
                    .collect()
            } else {
                // Like compose-go: discovery starts at the project directory when
                // one is given, else at the current folder.
                let start = project_directory
                    .clone()
                    .unwrap_or_else(|| cwd.to_path_buf());
                let files = discover_upwards(&start);
                if files.is_empty() {
                    return Err(ResolveError::NoConfigFile { start });
                }
                files
            };
        let env_files = if !self.env_files.is_empty() {
            self.env_files.iter().map(|f| absolute(cwd, f)).collect()
        } else {
            comma_list(env, "COMPOSE_ENV_FILES")
                .iter()
                .map(|f| absolute(cwd, Path::new(f)))
                .collect()
        };
        let profiles = if !self.profiles.is_empty() {
            self.profiles.clone()
        } else {
            comma_list(env, "COMPOSE_PROFILES")
        };
        let project_name = self
            .project_name
            .clone()
            .or_else(|| non_empty(env, "COMPOSE_PROJECT_NAME").map(str::to_owned));
        Ok(LoadOptions {
            project_directory,
            files,
            working_dir: cwd.to_path_buf(),
            env_files,
            project_name,
            profiles,
            environment: env.clone(),
        })
    }
}

/// The compose files of the nearest folder, from `start` up to the root,
/// that holds one.
pub fn discover_upwards(start: &Path) -> Vec<PathBuf> {
    start
        .ancestors()
        .map(discover::project_files)
        .find(|files| !files.is_empty())
        .unwrap_or_default()
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

fn non_empty<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn comma_list(env: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    non_empty(env, key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn discovers_in_the_nearest_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(root.join("compose.override.yml"), "services: {}\n").unwrap();
        let deep = root.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let opts = ProjectOpts::default().resolve(&deep, &env(&[])).unwrap();
        assert_eq!(
            opts.files,
            vec![root.join("compose.yaml"), root.join("compose.override.yml")]
        );
        assert_eq!(opts.working_dir, deep);
        assert_eq!(opts.project_directory, None);

        // A nearer folder with its own file wins.
        std::fs::write(deep.join("docker-compose.yml"), "services: {}\n").unwrap();
        let opts = ProjectOpts::default().resolve(&deep, &env(&[])).unwrap();
        assert_eq!(opts.files, vec![deep.join("docker-compose.yml")]);
    }

    #[test]
    fn no_file_anywhere_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ProjectOpts::default()
            .resolve(tmp.path(), &env(&[]))
            .unwrap_err();
        assert_eq!(
            err,
            ResolveError::NoConfigFile {
                start: tmp.path().to_path_buf()
            }
        );
        assert!(
            err.to_string()
                .starts_with("no configuration file provided")
        );
    }

    #[test]
    fn flags_win_over_environment() {
        let cwd = Path::new("/work/app");
        let vars = env(&[
            ("COMPOSE_FILE", "a.yml:/abs/b.yml"),
            ("COMPOSE_PROJECT_NAME", "fromenv"),
            ("COMPOSE_PROFILES", "x, y,,"),
            ("COMPOSE_ENV_FILES", "one.env,two.env"),
        ]);
        let from_env = ProjectOpts::default().resolve(cwd, &vars).unwrap();
        assert_eq!(
            from_env.files,
            vec![
                PathBuf::from("/work/app/a.yml"),
                PathBuf::from("/abs/b.yml")
            ]
        );
        assert_eq!(from_env.project_name.as_deref(), Some("fromenv"));
        assert_eq!(from_env.profiles, vec!["x", "y"]);
        assert_eq!(
            from_env.env_files,
            vec![
                PathBuf::from("/work/app/one.env"),
                PathBuf::from("/work/app/two.env")
            ]
        );
        assert_eq!(from_env.environment, vars);

        let flags = ProjectOpts {
            files: vec![PathBuf::from("c.yml")],
            project_name: Some("flag".into()),
            project_directory: Some(PathBuf::from("sub")),
            env_files: vec![PathBuf::from("/e.env")],
            profiles: vec!["z".into()],
        };
        let opts = flags.resolve(cwd, &vars).unwrap();
        assert_eq!(opts.files, vec![PathBuf::from("/work/app/c.yml")]);
        assert_eq!(opts.project_name.as_deref(), Some("flag"));
        assert_eq!(opts.project_directory, Some(PathBuf::from("/work/app/sub")));
        assert_eq!(opts.env_files, vec![PathBuf::from("/e.env")]);
        assert_eq!(opts.profiles, vec!["z"]);
    }

    #[test]
    fn compose_path_separator_is_honoured() {
        let vars = env(&[
            ("COMPOSE_FILE", "a.yml;b.yml"),
            ("COMPOSE_PATH_SEPARATOR", ";"),
        ]);
        let opts = ProjectOpts::default()
            .resolve(Path::new("/p"), &vars)
            .unwrap();
        assert_eq!(
            opts.files,
            vec![PathBuf::from("/p/a.yml"), PathBuf::from("/p/b.yml")]
        );
    }

    #[test]
    fn discovery_starts_at_the_project_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let proj = tmp.path().join("proj");
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::write(proj.join("compose.yml"), "services: {}\n").unwrap();
        let opts = ProjectOpts {
            project_directory: Some(PathBuf::from("proj")),
            ..Default::default()
        }
        .resolve(tmp.path(), &env(&[]))
        .unwrap();
        assert_eq!(opts.files, vec![proj.join("compose.yml")]);
    }
}
