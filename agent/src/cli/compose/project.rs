//! The project a compose verb works on: loaded from its files, or, for the
//! verbs that only look at containers (`ps`, `logs`, `stop`, `down`...),
//! known by name alone when `-p NAME` is given and no compose file is
//! found (`docker compose -p NAME down` works anywhere, like this).
//!
//! Containers belong to a project by their `com.docker.compose.project`
//! label; [`ComposeProject::containers`] reads them once, sorted by name.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context, bail};
use berth_reconcilers::labels;
use berth_runtime::{ContainerInfo, Runtime};
use berth_spec::compose::{self, LoadOptions, model::Project, project_name};

use crate::cli::project_opts::ResolveError;
use crate::cli::{GlobalOpts, ProjectOpts};
use crate::engine::Engine;

/// A container's state as recorded, checked against its processes:
/// `inspect` without reading (and parsing) its config, for loops that
/// look often. `None` once it is removed.
pub fn quick_state(
    runtime: &berth_runtime::Runtime,
    id: &str,
) -> Option<(berth_runtime::State, berth_runtime::Observed)> {
    let dir = runtime.state_root().container(id);
    let state = berth_runtime::State::load(&dir.state()).ok()?;
    let observed = berth_runtime::observe(&dir, &state);
    Some((state, observed))
}

/// Whether a verb can work without a compose file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// `up`, `create`: the files say what to run.
    Required,
    /// Everything that acts on existing containers: `-p NAME` is enough.
    Optional,
}

pub struct ComposeProject {
    pub project: Project,
    /// False when only the name is known (`-p NAME`, no compose file):
    /// services are then whatever the containers' labels say.
    pub declared: bool,
    /// How the project was loaded, to load it again with every profile.
    load_options: Option<LoadOptions>,
    pub engine: Engine,
    pub runtime: Runtime,
}

/// One container of the project.
#[derive(Debug, Clone)]
pub struct ProjectContainer {
    pub info: ContainerInfo,
    pub service: String,
    pub number: Option<u32>,
    pub oneoff: bool,
}

impl ProjectContainer {
    pub fn id(&self) -> &str {
        &self.info.config.id
    }

    pub fn name(&self) -> &str {
        &self.info.config.name
    }

    pub fn running(&self) -> bool {
        self.info.observed.container_alive
    }

    /// The name logs are prefixed with: the container name without the
    /// project's `<project>-` (Compose's `web-1`), or a `container_name`
    /// as it is.
    pub fn display_name(&self, project: &str) -> String {
        let name = self.name();
        name.strip_prefix(project)
            .and_then(|rest| rest.strip_prefix('-'))
            .filter(|rest| rest.starts_with(self.service.as_str()))
            .unwrap_or(name)
            .to_owned()
    }
}

impl ComposeProject {
    /// Loads the project; `None` after printing the loader's diagnostics.
    pub fn open(
        opts: &ProjectOpts,
        global: &GlobalOpts,
        files: Files,
    ) -> anyhow::Result<Option<Self>> {
        let Some((project, load_options)) = load(opts, files)? else {
            return Ok(None);
        };
        let declared = load_options.is_some();
        let runtime = crate::cli::run::runtime(global);
        let mut engine = Engine::open(&global.root, runtime.clone()).with_context(|| {
            format!("cannot open berth's state under {}", global.root.display())
        })?;
        engine.images.note_pull_policies(&project);
        // A verb that builds shows the steps, as compose does.
        engine
            .images
            .set_build_output(std::sync::Arc::new(crate::engine::PlainBuildOutput::new(
                false,
            )));
        let mut cp = ComposeProject {
            project,
            declared,
            load_options,
            engine,
            runtime,
        };
        if !declared {
            // Known by name only: its services are what its containers'
            // labels say, with no dependencies between them.
            for c in cp.containers(&[], true) {
                cp.project.services.entry(c.service).or_default();
            }
        }
        Ok(Some(cp))
    }

    pub fn name(&self) -> &str {
        &self.project.name
    }

    /// Services the file declares but its profiles leave out: their
    /// containers are the project's, not orphans. Costs a second load (with
    /// every profile), so callers ask only when undeclared containers
    /// exist.
    pub fn disabled_services(&self) -> Vec<String> {
        let Some(options) = &self.load_options else {
            return Vec::new();
        };
        let all = LoadOptions {
            profiles: vec!["*".to_owned()],
            ..options.clone()
        };
        match compose::load_unchecked(&all) {
            Ok(loaded) => loaded
                .project
                .services
                .keys()
                .filter(|s| !self.project.services.contains_key(*s))
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Compose's check: every named service must be declared (a project
    /// known by name only takes any name its containers carry).
    pub fn check_services(&self, services: &[String]) -> anyhow::Result<()> {
        if !self.declared {
            return Ok(());
        }
        for s in services {
            if !self.project.services.contains_key(s) {
                bail!("no such service: {s}");
            }
        }
        Ok(())
    }

    /// The project's containers (one-off `run` containers only with
    /// `oneoff`), of `services` when not empty, sorted by name.
    pub fn containers(&self, services: &[String], oneoff: bool) -> Vec<ProjectContainer> {
        let wanted: BTreeSet<&str> = services.iter().map(String::as_str).collect();
        let mut out: Vec<ProjectContainer> = self
            .runtime
            .list(true)
            .into_iter()
            .filter_map(|info| {
                let l = &info.config.labels;
                if l.get(labels::PROJECT).map(String::as_str) != Some(self.name()) {
                    return None;
                }
                let service = l.get(labels::SERVICE).cloned().unwrap_or_default();
                let is_oneoff = l
                    .get(labels::ONEOFF)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let number = l.get(labels::NUMBER).and_then(|n| n.parse().ok());
                Some(ProjectContainer {
                    info,
                    service,
                    number,
                    oneoff: is_oneoff,
                })
            })
            .filter(|c| oneoff || !c.oneoff)
            .filter(|c| wanted.is_empty() || wanted.contains(c.service.as_str()))
            .collect();
        out.sort_by(|a, b| a.name().cmp(b.name()));
        out
    }
}

/// The project from its files (with the options it was loaded with), or
/// from `-p` alone when `files` allows it and there are none.
fn load(
    opts: &ProjectOpts,
    files: Files,
) -> anyhow::Result<Option<(Project, Option<LoadOptions>)>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env = crate::cli::process_environment();
    let options = match opts.resolve(&cwd, &env) {
        Ok(o) => o,
        Err(e @ ResolveError::NoConfigFile { .. }) => {
            let name = opts.project_name.clone().or_else(|| {
                env.get("COMPOSE_PROJECT_NAME")
                    .filter(|n| !n.is_empty())
                    .cloned()
            });
            return match (files, name) {
                (Files::Optional, Some(name)) => {
                    if !project_name::is_valid(&name) {
                        bail!(
                            "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
                        );
                    }
                    let project = Project {
                        name,
                        ..Project::default()
                    };
                    Ok(Some((project, None)))
                }
                _ => Err(e.into()),
            };
        }
    };
    let mut stderr = std::io::stderr().lock();
    match compose::load(&options) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                writeln!(stderr, "{w}").context("cannot write to stderr")?;
            }
            // Configs and secrets sourced from the environment carry
            // their value (see `engine::file_objects`).
            let mut project = loaded.project;
            crate::engine::file_objects::resolve_environment_sources(
                &mut project,
                &loaded.environment,
            );
            crate::engine::build_request::resolve_build_args(&mut project, &loaded.environment);
            Ok(Some((project, Some(options))))
        }
        Err(diagnostics) => {
            for d in &diagnostics.0 {
                writeln!(stderr, "{d}").context("cannot write to stderr")?;
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, service: &str) -> ProjectContainer {
        let config: berth_runtime::ContainerConfig = serde_json::from_value(serde_json::json!({
            "id": "0".repeat(64),
            "name": name,
            "rootfs": {"dir": "/"},
            "process": {"args": ["true"]},
        }))
        .unwrap();
        let state = berth_runtime::State::new(&config.id, name);
        let observed = berth_runtime::Observed {
            status: "exited".into(),
            reason: None,
            shim_alive: false,
            container_alive: false,
            from_earlier_boot: false,
        };
        ProjectContainer {
            info: ContainerInfo {
                config,
                state,
                observed,
            },
            service: service.into(),
            number: Some(1),
            oneoff: false,
        }
    }

    #[test]
    fn display_names_drop_the_project_prefix_only() {
        assert_eq!(container("shop-web-1", "web").display_name("shop"), "web-1");
        // container_name: kept as written.
        assert_eq!(container("my-db", "db").display_name("shop"), "my-db");
        assert_eq!(
            container("shopkeeper-web-1", "web").display_name("shop"),
            "shopkeeper-web-1"
        );
    }
}
