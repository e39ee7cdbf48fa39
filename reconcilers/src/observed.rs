//! Observed state: what the backends report, in one snapshot the planner
//! compares against the desired project.
//!
//! Identity lives in labels, as in Compose: a container belongs to a
//! project, a service and a replica number by its `com.docker.compose.*`
//! labels, and what it was created from by `berth.config-hash` and
//! `berth.image-digest`. That is what makes adoption work: containers that
//! carry a project's labels are that project's, whoever created them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::container::labels;

/// A runtime-assigned container id.
pub type ContainerId = String;

/// A container's lifecycle state, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status", content = "exitCode")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    Running,
    /// Exited, and the runtime's supervisor will start it again once its
    /// restart policy's backoff is over (Docker's `restarting`): the
    /// planner leaves it to the supervisor.
    Restarting,
    /// Stopped or finished, with its exit code.
    Exited(i64),
    /// The runtime failed to stop or remove it; only removal helps.
    Dead,
    Unknown,
}

/// Health as the runtime's probe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    /// No healthcheck.
    #[default]
    None,
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedContainer {
    pub id: ContainerId,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The image reference it was created with.
    pub image: String,
    pub state: ContainerState,
    pub health: Health,
    /// Restarts since creation.
    pub restart_count: u32,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    /// The last stop came through [`crate::traits::ContainerRuntime::stop`]
    /// (Docker's `HasBeenManuallyStopped`), not an exit of its own: such a
    /// container is started again by `up`, but not by a restart policy.
    pub manually_stopped: bool,
    /// The runtime already applied the container's restart policy to this
    /// exit (berth's per-container supervisor restarts containers itself,
    /// and an exit it recorded is one it chose not to answer): the planner
    /// must not restart it by policy again. False for an exit nothing
    /// supervised (the host went down under the container).
    #[serde(default)]
    pub restart_policy_applied: bool,
    /// The exit code of the last run, also while the runtime waits to
    /// restart it (`Restarting`), when `Exited` no longer says it.
    #[serde(default)]
    pub last_exit_code: Option<i64>,
    /// The runtime's last error for it (failed start, OOM...).
    pub error: Option<String>,
    /// Out of service: created by a start-first replacement and not yet
    /// promoted, or put out of service by one (its published ports and
    /// DNS names moved to its replacement). The planner keeps serving
    /// containers over these.
    #[serde(default)]
    pub standby: bool,
}

impl ObservedContainer {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn project(&self) -> Option<&str> {
        self.label(labels::PROJECT)
    }

    pub fn service(&self) -> Option<&str> {
        self.label(labels::SERVICE)
    }

    /// The replica number: the label, else the `-<n>` suffix of the name
    /// (containers from older tools sometimes lack the label).
    pub fn number(&self) -> Option<u32> {
        self.label(labels::NUMBER)
            .and_then(|n| n.parse().ok())
            .or_else(|| self.name.rsplit_once('-').and_then(|(_, n)| n.parse().ok()))
    }

    /// `run` containers (`oneoff=True`) are never adopted or pruned.
    pub fn is_oneoff(&self) -> bool {
        self.label(labels::ONEOFF)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub fn config_hash(&self) -> Option<&str> {
        self.label(labels::CONFIG_HASH)
    }

    pub fn config_keys(&self) -> Option<&str> {
        self.label(labels::CONFIG_KEYS)
    }

    pub fn image_digest(&self) -> Option<&str> {
        self.label(labels::IMAGE_DIGEST)
    }

    pub fn is_running(&self) -> bool {
        self.state == ContainerState::Running
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedVolume {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedNetwork {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// One snapshot of everything the planner compares against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// The project's containers (the runtime's `list(project)`), one-off
    /// containers included; the planner leaves those alone.
    pub containers: Vec<ObservedContainer>,
    /// All volumes (a project may use external ones).
    pub volumes: Vec<ObservedVolume>,
    /// All networks.
    pub networks: Vec<ObservedNetwork>,
    /// Local images: reference as services name them -> digest.
    pub images: BTreeMap<String, String>,
    /// Images of services with `build:` whose build inputs changed since
    /// they were built: reference -> what changed.
    #[serde(default)]
    pub stale_builds: BTreeMap<String, String>,
}

impl Observed {
    /// Service containers of `project`, one-offs excluded.
    pub fn project_containers<'a>(
        &'a self,
        project: &'a str,
    ) -> impl Iterator<Item = &'a ObservedContainer> + 'a {
        self.containers
            .iter()
            .filter(move |c| c.project() == Some(project) && !c.is_oneoff())
    }

    /// Service containers of one service.
    pub fn service_containers<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
    ) -> impl Iterator<Item = &'a ObservedContainer> + 'a {
        self.project_containers(project)
            .filter(move |c| c.service() == Some(service))
    }

    pub fn has_volume(&self, name: &str) -> bool {
        self.volumes.iter().any(|v| v.name == name)
    }

    pub fn has_network(&self, name: &str) -> bool {
        self.networks.iter().any(|n| n.name == name)
    }

    pub fn image_digest(&self, reference: &str) -> Option<&str> {
        self.images.get(reference).map(String::as_str)
    }

    /// Why `reference`'s built image is stale, if it is.
    pub fn build_stale(&self, reference: &str) -> Option<&str> {
        self.stale_builds.get(reference).map(String::as_str)
    }
}
