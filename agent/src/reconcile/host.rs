//! What a reconcile acts on: the reconciler's four backends, plus the one
//! question the agent asks the machine as a whole (which projects did an
//! agent deploy from which folder). A trait so the worker, the sweep and
//! the API run against `berth_reconcilers::fakes` in unit tests.

use std::collections::BTreeSet;
use std::path::PathBuf;

use berth_reconcilers::{BackendError, Backends};
use berth_runtime::Runtime;

use crate::engine::Engine;

/// The label the agent puts on every container it creates: the absolute
/// folder of the project it came from. It is not part of the config hash,
/// so adding it never recreates anything; it lets a later agent find
/// projects whose folder is gone or whose `name:` changed.
pub const AGENT_DIR_LABEL: &str = "berth.agent.dir";

/// The machine, as a reconcile sees it. Calls block: run them off the
/// async threads.
pub trait Host: Send + Sync + 'static {
    fn backends(&self) -> Backends<'_>;

    /// Tells the image adapter the project's timed `pull_policy`s
    /// (`daily`, `weekly`, `every_*`) before a reconcile that may refresh
    /// images; fakes ignore it.
    fn note_pull_policies(&self, _project: &berth_spec::compose::model::Project) {}

    /// Every `(project, folder)` pair named by the labels of a container
    /// an agent created ([`AGENT_DIR_LABEL`]).
    fn labelled_projects(&self) -> Result<BTreeSet<(String, PathBuf)>, BackendError>;

    /// The Compose project of container `id`, if it has one.
    fn container_project(&self, id: &str) -> Option<String>;

    /// The folder whose changes are container events (`reconcile::events`),
    /// when there is one to watch.
    fn containers_dir(&self) -> Option<PathBuf>;
}

/// The real machine: the engine's adapters over one state root.
pub struct EngineHost {
    engine: Engine,
    runtime: Runtime,
}

impl EngineHost {
    pub fn new(engine: Engine, runtime: Runtime) -> Self {
        Self { engine, runtime }
    }
}

impl Host for EngineHost {
    fn backends(&self) -> Backends<'_> {
        self.engine.backends()
    }

    fn note_pull_policies(&self, project: &berth_spec::compose::model::Project) {
        self.engine.images.note_pull_policies(project);
    }

    fn labelled_projects(&self) -> Result<BTreeSet<(String, PathBuf)>, BackendError> {
        Ok(self
            .runtime
            .list(true)
            .into_iter()
            .filter_map(|info| {
                let labels = &info.config.labels;
                let project = labels.get(berth_reconcilers::labels::PROJECT)?;
                let dir = labels.get(AGENT_DIR_LABEL)?;
                Some((project.clone(), PathBuf::from(dir)))
            })
            .collect())
    }

    /// Read from `config.json` directly: cheaper than an inspect, and it is
    /// there from the moment a container is created.
    fn container_project(&self, id: &str) -> Option<String> {
        let config = self.runtime.state_root().container(id).config();
        let bytes = std::fs::read(config).ok()?;
        let config: berth_runtime::ContainerConfig = serde_json::from_slice(&bytes).ok()?;
        config
            .labels
            .get(berth_reconcilers::labels::PROJECT)
            .cloned()
    }

    fn containers_dir(&self) -> Option<PathBuf> {
        Some(self.runtime.state_root().containers_dir())
    }
}
