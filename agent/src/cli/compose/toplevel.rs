//! Compose usage of the top-level container verbs (`berth ps`, `logs`,
//! `stop`, `start`, `restart`, `kill`, `rm`, `top`), which keep their
//! docker meaning first:
//!
//! - a name that is a container (name, ID or ID prefix) means that
//!   container, as in docker;
//! - a name that is no container but a service of the project (the one
//!   `-p`/`--file`/`--project-directory` name, else the one discovered
//!   from the current folder, as `docker compose` finds it) means that
//!   service's containers, as in `docker compose`;
//! - with project flags and no name, the verb applies to the whole
//!   project (`berth stop -p shop`, `berth ps -p shop`, `berth logs
//!   --project-directory ./shop`).
//!
//! The project file flag is `--file` only: `-f` keeps docker's meaning
//! (`ps -f` filter, `logs -f` follow, `rm -f` force).

use std::path::PathBuf;

use anyhow::bail;

use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};

/// The project flags the top-level verbs take.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TopLevelProject {
    /// Compose file of the project whose services the names are
    /// (repeatable); `-f` keeps docker's meaning here.
    #[arg(long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name: names are its services; with no name, the whole
    /// project.
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// The project's folder.
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Env file for the project's interpolation (repeatable).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Profile to enable (repeatable).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

/// What the names of a top-level verb turned out to be.
pub enum Targets {
    /// Containers, by the names as given: the docker meaning.
    Containers(Vec<String>),
    /// Services of a project (empty: all of them): the compose meaning.
    Services(Box<ComposeProject>, Vec<String>),
}

impl TopLevelProject {
    /// A project flag was given: the verb is about that project.
    pub fn given(&self) -> bool {
        !self.files.is_empty() || self.project_name.is_some() || self.project_directory.is_some()
    }

    fn opts(&self) -> ProjectOpts {
        ProjectOpts {
            files: self.files.clone(),
            project_name: self.project_name.clone(),
            project_directory: self.project_directory.clone(),
            env_files: self.env_files.clone(),
            profiles: self.profiles.clone(),
        }
    }

    /// The project when project flags are given (`None` after printing
    /// its diagnostics is an error).
    pub fn project(&self, global: &GlobalOpts) -> anyhow::Result<ComposeProject> {
        match ComposeProject::open(&self.opts(), global, Files::Optional)? {
            Some(cp) => Ok(cp),
            None => bail!("cannot load the project"),
        }
    }

    /// The project whose services `names` are: the given one, else the
    /// one discovered from the current folder, if it declares them all.
    pub fn service_project(
        &self,
        names: &[String],
        global: &GlobalOpts,
    ) -> anyhow::Result<Option<ComposeProject>> {
        let cp = if self.given() {
            self.project(global)?
        } else {
            // Quietly: no compose file here, or one that does not load,
            // just means these are not services.
            let cwd = std::env::current_dir()?;
            if crate::cli::project_opts::discover_upwards(&cwd).is_empty()
                && std::env::var_os("COMPOSE_FILE").is_none()
            {
                return Ok(None);
            }
            match ComposeProject::open(&self.opts(), global, Files::Required) {
                Ok(Some(cp)) => cp,
                _ => return Ok(None),
            }
        };
        let all_services = names
            .iter()
            .all(|n| cp.project.services.contains_key(n) || !cp.declared);
        Ok(all_services.then_some(cp))
    }

    /// Sorts `names` into containers (docker meaning) or services of a
    /// project (compose meaning). Names that are neither are an error,
    /// as docker reports them.
    pub fn targets(&self, names: &[String], global: &GlobalOpts) -> anyhow::Result<Targets> {
        if names.is_empty() {
            if self.given() {
                return Ok(Targets::Services(
                    Box::new(self.project(global)?),
                    Vec::new(),
                ));
            }
            bail!(
                "a container name or ID is required (or -p/--file/--project-directory for a project)"
            );
        }
        if self.given() {
            return Ok(Targets::Services(
                Box::new(self.project(global)?),
                names.to_vec(),
            ));
        }
        let rt = crate::cli::run::runtime(global);
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| rt.resolve(n).is_err())
            .cloned()
            .collect();
        if unknown.is_empty() {
            return Ok(Targets::Containers(names.to_vec()));
        }
        if unknown.len() == names.len()
            && let Some(cp) = self.service_project(names, global)?
        {
            return Ok(Targets::Services(Box::new(cp), names.to_vec()));
        }
        // Some are containers and some are not: docker's handling, which
        // reports each unknown one.
        Ok(Targets::Containers(names.to_vec()))
    }
}
