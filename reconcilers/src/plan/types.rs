//! The vocabulary of a plan: [`Action`]s, their [`Reason`]s, and what an
//! action waits for ([`WaitFor`]).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::container::{BuildRequest, ContainerSpec, NetworkSpec, VolumeSpec};
use crate::observed::ContainerId;
use crate::order::Condition;

/// An index into [`super::Plan::actions`].
pub type ActionId = usize;

/// An existing container an action works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRef {
    pub id: ContainerId,
    pub name: String,
    pub number: Option<u32>,
}

/// One step of a plan.
/// Serialized with `"type": "<kind>"` (the variant name, as
/// [`Action::kind`]); fields are single words.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Action {
    PullImage {
        reference: String,
    },
    BuildImage {
        request: Box<BuildRequest>,
    },
    CreateVolume {
        spec: VolumeSpec,
    },
    CreateNetwork {
        spec: NetworkSpec,
    },
    /// Create, then start unless `start` is false (`--no-start`). Two
    /// steps: a crash between them leaves a `Created` container, which the
    /// next plan starts.
    CreateContainer {
        spec: Box<ContainerSpec>,
        start: bool,
    },
    StartContainer {
        target: ContainerRef,
    },
    StopContainer {
        target: ContainerRef,
        grace: Duration,
        signal: Option<String>,
    },
    /// Stop then start (a dependency was restarted, or it is unhealthy).
    RestartContainer {
        target: ContainerRef,
        grace: Duration,
        signal: Option<String>,
    },
    /// Stop if running, then remove.
    RemoveContainer {
        target: ContainerRef,
        grace: Duration,
        signal: Option<String>,
    },
    /// Stop and remove `old`, create `spec` (same replica number and name),
    /// start it unless `start` is false (`update_config.order:
    /// stop-first`, the default).
    Recreate {
        old: ContainerRef,
        grace: Duration,
        signal: Option<String>,
        spec: Box<ContainerSpec>,
        start: bool,
    },
    /// Start-first replacement (`update_config.order: start-first`):
    /// create and start `spec` (a replica number of its own) out of
    /// service (no published ports, not in DNS), wait for its health
    /// `gate`, move the published ports and DNS names from `old` to it in
    /// one step, then stop and remove `old`. A failed gate removes the new
    /// container and leaves `old` serving (`ErrorKind::GateFailed`).
    Replace {
        old: ContainerRef,
        grace: Duration,
        signal: Option<String>,
        spec: Box<ContainerSpec>,
        gate: Gate,
    },
    RemoveNetwork {
        name: String,
    },
    RemoveVolume {
        name: String,
    },
}

impl Action {
    /// The action's name, as events and metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::PullImage { .. } => "PullImage",
            Action::BuildImage { .. } => "BuildImage",
            Action::CreateVolume { .. } => "CreateVolume",
            Action::CreateNetwork { .. } => "CreateNetwork",
            Action::CreateContainer { .. } => "CreateContainer",
            Action::StartContainer { .. } => "StartContainer",
            Action::StopContainer { .. } => "StopContainer",
            Action::RestartContainer { .. } => "RestartContainer",
            Action::RemoveContainer { .. } => "RemoveContainer",
            Action::Recreate { .. } => "Recreate",
            Action::Replace { .. } => "Replace",
            Action::RemoveNetwork { .. } => "RemoveNetwork",
            Action::RemoveVolume { .. } => "RemoveVolume",
        }
    }

    /// What it acts on: an image reference, a volume, network or
    /// container name.
    pub fn target(&self) -> &str {
        match self {
            Action::PullImage { reference } => reference,
            Action::BuildImage { request } => &request.reference,
            Action::CreateVolume { spec } => &spec.name,
            Action::CreateNetwork { spec } => &spec.name,
            Action::CreateContainer { spec, .. } => &spec.name,
            Action::StartContainer { target }
            | Action::StopContainer { target, .. }
            | Action::RestartContainer { target, .. }
            | Action::RemoveContainer { target, .. } => &target.name,
            Action::Recreate { spec, .. } => &spec.name,
            Action::Replace { old, .. } => &old.name,
            Action::RemoveNetwork { name } | Action::RemoveVolume { name } => name,
        }
    }

    /// Whether the action ends with a container starting, so it waits for
    /// its service's dependencies first.
    pub fn starts_container(&self) -> bool {
        match self {
            Action::CreateContainer { start, .. } | Action::Recreate { start, .. } => *start,
            Action::StartContainer { .. }
            | Action::RestartContainer { .. }
            | Action::Replace { .. } => true,
            _ => false,
        }
    }

    /// What the line says beyond kind and target: how a replacement runs.
    pub fn detail(&self) -> Option<String> {
        match self {
            Action::Replace { spec, .. } => Some(format!("(start-first: {})", spec.name)),
            _ => None,
        }
    }
}

/// How a changed replica is replaced: Compose's `update_config.order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop and remove the old container, then create the new one
    /// (Compose's default: one container per replica at any time).
    #[default]
    StopFirst,
    /// Start the new one, wait for its health gate, switch traffic, then
    /// remove the old one.
    StartFirst,
}

/// What a start-first replacement's new container must show before it
/// takes the old one's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Longest wait for `healthy` (or for the stable period): the
    /// service's `update_config.monitor`, else a default derived from its
    /// healthcheck.
    pub timeout: Duration,
    /// With no healthcheck: how long the container must run without
    /// exiting or restarting.
    pub stable: Duration,
}

/// Why an action is planned: a stable identifier for machines and a
/// message for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReasonKind {
    /// The config hash differs (the message names the keys when known).
    ConfigChanged,
    /// The image's digest differs from the one the container runs.
    ImageDigestChanged,
    /// A replica has no container.
    ContainerMissing,
    /// A container was created but never started.
    NotStarted,
    /// A container exited and its restart policy restarts it.
    Exited,
    /// A container was stopped (by `stop`) and the project is up again.
    Stopped,
    /// A running container reports unhealthy.
    Unhealthy,
    /// The runtime reports the container dead.
    Dead,
    /// A dependency with `restart: true` was restarted or recreated.
    DependencyRestarted,
    /// `--force-recreate` or `--build`.
    Forced,
    /// The container's service is no longer declared.
    Orphaned,
    /// Two containers claim the same replica number.
    Duplicate,
    ScaledDown,
    ScaledUp,
    /// An image a container needs is not present locally.
    ImageMissing,
    /// A periodic re-pull of an image with `pull_policy: always`.
    ImageRefresh,
    /// What a service's image is built from (its Dockerfile, build
    /// context or `build:` section) changed since it was built.
    BuildContextChanged,
    /// A volume or network the project uses does not exist.
    ResourceMissing,
    /// `down`.
    Down,
    /// The project is stopped.
    ProjectStopped,
    /// Asked for by name (`compose start`, `compose restart`).
    Requested,
    /// A start-first replacement left out of service by an interrupted
    /// update: it never took traffic, so it is replaced like a stale one.
    Standby,
}

impl fmt::Display for ReasonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub kind: ReasonKind,
    pub message: String,
}

impl Reason {
    pub fn new(kind: ReasonKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Before its container starts, an action waits until `service` is in
/// `condition` (a `depends_on` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitFor {
    pub service: String,
    pub condition: Condition,
    /// `required: false`: a failed wait is logged, not fatal.
    pub required: bool,
}

/// An action in a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    pub id: ActionId,
    /// Actions of one wave are independent of each other.
    pub wave: usize,
    pub service: Option<String>,
    pub action: Action,
    pub reasons: Vec<Reason>,
    /// Actions that must succeed first.
    pub after: Vec<ActionId>,
    /// Dependency conditions to wait for before starting the container.
    pub wait: Vec<WaitFor>,
    /// Not before this time (restart backoff); the executor defers the
    /// action, and those after it, when it comes too early.
    pub not_before: Option<SystemTime>,
    /// Waited right before the action runs: `update_config.delay` between
    /// two batches of a service's replacements.
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub delay: Duration,
}

impl PlannedAction {
    /// `0 Recreate shop-web-1 [ConfigChanged: environment changed]`.
    pub fn line(&self) -> String {
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|r| {
                if r.message.is_empty() {
                    r.kind.to_string()
                } else {
                    format!("{}: {}", r.kind, r.message)
                }
            })
            .collect();
        let detail = self
            .action
            .detail()
            .map(|d| format!(" {d}"))
            .unwrap_or_default();
        format!(
            "{} {} {}{detail} [{}]",
            self.wave,
            self.action.kind(),
            self.action.target(),
            reasons.join("; ")
        )
    }

    pub fn reason_kinds(&self) -> Vec<ReasonKind> {
        self.reasons.iter().map(|r| r.kind).collect()
    }
}
