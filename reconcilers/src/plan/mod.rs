//! The planner: desired [`Project`] against [`Observed`] into a [`Plan`]:
//! actions, each with machine-readable [`Reason`]s, grouped into waves.
//!
//! Lifecycle of a reconcile (convention 7: observe → diff → act):
//! the agent observes (`execute::observe`), calls [`plan`], shows or
//! executes the plan (`execute::execute`), and observes again. Planning is
//! pure and level-triggered: it looks only at the two states, never at what
//! happened before, so a plan made after a crash at any point picks up where
//! the last one stopped, and a plan made on a converged state is empty.
//!
//! The rules (see `../shared/design/users.md`):
//! - only what changed is touched: a container is recreated when its config
//!   hash or image digest differs (or `--force-recreate`), started when it
//!   was stopped or its restart policy says so, and nothing else;
//! - containers carrying the project's labels are adopted by service and
//!   replica number, never duplicated; scale up fills the lowest free
//!   numbers, scale down removes the highest numbers first;
//! - a dependent restarts only when its `depends_on` entry says
//!   `restart: true` and the dependency was recreated or restarted in the
//!   same plan;
//! - a one-shot that exited 0 is complete and stays so until its config
//!   changes (unless `start_exited`: the CLI's `up` runs it again, as
//!   Compose does); a crash-looping container is restarted after its backoff
//!   (a not-before time), without holding up the rest of the plan;
//! - a project the user stopped is planned with [`Operation::Stop`]: its
//!   containers are stopped and stay so;
//! - orphans (containers of services no longer declared) are removed when
//!   `remove_orphans` is set; volumes only by `down` with `volumes`.
//!
//! Waves: every action lists the actions it comes [`PlannedAction::after`];
//! an action's wave is one more than the latest of those. Actions in one
//! wave are independent and may run in parallel.

mod down;
mod start;
mod types;
mod up;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use berth_spec::compose::model::Project;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::observed::Observed;

pub use types::{
    Action, ActionId, ContainerRef, Gate, PlannedAction, Reason, ReasonKind, UpdateOrder, WaitFor,
};

/// What the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    /// Converge to the project (`up`, drift repair).
    #[default]
    Up,
    /// Stop the project's containers and keep them stopped (`stop`, and
    /// every resync of a project the user stopped).
    Stop,
    /// Remove the project's containers and networks, and with `volumes`
    /// its volumes (`down`, `down -v`).
    Down { volumes: bool },
    /// Start the containers a project already has, in dependency order,
    /// creating nothing (`compose start`).
    Start,
    /// Stop and start the containers a project already has, in dependency
    /// order (`compose restart`).
    Restart,
}

/// When to pull images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PullMode {
    /// Pull what is missing locally (and services' `pull_policy: always`
    /// only when refreshing, see [`PlanOptions::refresh_images`]).
    #[default]
    Missing,
    /// Never pull; a missing image fails its container's creation.
    Never,
    /// Pull every image that is not built, present or not (`--pull always`).
    Always,
}

/// Flags of the operation, and inputs the planner cannot read itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOptions {
    pub operation: Operation,
    /// `up web api`: these services (and their dependencies unless
    /// `no_deps`); empty means all.
    pub services: Vec<String>,
    pub no_deps: bool,
    /// `--force-recreate`: recreate even unchanged containers.
    pub force_recreate: bool,
    /// `--no-recreate`: keep existing containers even when changed.
    pub no_recreate: bool,
    /// `--no-start`: create but do not start.
    pub no_start: bool,
    /// Start every exited container of the selected services now, as
    /// `docker compose up` does: a completed one-shot runs again, a
    /// crashed container skips its restart backoff. The agent's resyncs
    /// leave this off: completed stays completed, restarts follow the
    /// policy.
    #[serde(default)]
    pub start_exited: bool,
    /// Remove containers of services no longer declared. The agent sets
    /// it; `docker compose` defaults to false.
    pub remove_orphans: bool,
    /// Services declared but disabled by profiles: their containers are
    /// not orphans.
    pub inactive_services: Vec<String>,
    /// `--build`: build every selected service that has `build:`.
    pub build: bool,
    /// `--no-build`: never build, even a missing image; creating its
    /// containers then fails naming the image.
    #[serde(default)]
    pub no_build: bool,
    /// Honour `pull_policy: build` (build the image at every `up`, as
    /// compose does). The agent's resyncs leave it off: they rebuild when
    /// the build inputs change instead.
    #[serde(default)]
    pub build_policy: bool,
    pub pull: PullMode,
    /// Pull again images whose service says `pull_policy: always` (or
    /// `daily`/`weekly`/`every_*`: the agent decides when they are due).
    /// Off, a converged project plans nothing; the agent turns it on when
    /// it checks registries.
    pub refresh_images: bool,
    /// `--scale web=3`, over the file's replicas.
    pub scale: BTreeMap<String, u32>,
    /// `--timeout`: overrides every stop grace period.
    pub stop_timeout: Option<Duration>,
    /// Content digests of the files configs and secrets read (absolute
    /// path -> digest), for the config hash.
    pub file_digests: BTreeMap<String, String>,
    /// The planner's "now", for restart backoff.
    pub now: SystemTime,
    /// Leave containers the user stopped as they are, except what their
    /// restart policy brings back once the host has restarted (Docker's
    /// rules at a daemon restart: `always` comes back, `unless-stopped`
    /// does not). Off, `up` starts every stopped container of the
    /// project, as `docker compose up` does; the agent's reconcile turns
    /// it on, so a stop by the user holds.
    pub keep_user_stops: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            operation: Operation::Up,
            services: Vec::new(),
            no_deps: false,
            force_recreate: false,
            no_recreate: false,
            no_start: false,
            start_exited: false,
            remove_orphans: true,
            inactive_services: Vec::new(),
            build: false,
            no_build: false,
            build_policy: false,
            pull: PullMode::Missing,
            refresh_images: false,
            scale: BTreeMap::new(),
            stop_timeout: None,
            file_digests: BTreeMap::new(),
            now: SystemTime::UNIX_EPOCH,
            keep_user_stops: false,
        }
    }
}

/// An ordered, reasoned set of actions.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub project: String,
    pub operation: Operation,
    /// In wave order; ids are indexes.
    pub actions: Vec<PlannedAction>,
    /// The earliest not-before time among deferred restarts: when the
    /// agent should plan again even if nothing changes.
    pub requeue_after: Option<Duration>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The actions grouped by wave, in order.
    pub fn waves(&self) -> Vec<Vec<&PlannedAction>> {
        let count = self.actions.iter().map(|a| a.wave + 1).max().unwrap_or(0);
        let mut waves = vec![Vec::new(); count];
        for action in &self.actions {
            waves[action.wave].push(action);
        }
        waves
    }

    /// One line per action, `wave: action (Reason: message; ...)`: the
    /// dry-run output and what tests compare.
    pub fn lines(&self) -> Vec<String> {
        self.actions.iter().map(PlannedAction::line).collect()
    }
}

/// Plans `options.operation` for `desired` against `observed`. Pure: the
/// same inputs give the same plan. Fails only on a dependency cycle, which
/// the spec's checks already reject.
pub fn plan(desired: &Project, observed: &Observed, options: &PlanOptions) -> Result<Plan, Error> {
    let span =
        tracing::debug_span!("plan", project = %desired.name, operation = ?options.operation);
    let _enter = span.enter();
    let mut builder = Builder::default();
    match options.operation {
        Operation::Up => up::plan_up(desired, observed, options, &mut builder)?,
        Operation::Stop => down::plan_stop(desired, observed, options, &mut builder)?,
        Operation::Down { volumes } => {
            down::plan_down(desired, observed, options, volumes, &mut builder)?
        }
        Operation::Start => start::plan_start(desired, observed, options, &mut builder)?,
        Operation::Restart => start::plan_restart(desired, observed, options, &mut builder)?,
    }
    let plan = builder.finish(&desired.name, options);
    // Debug: a periodic resync plans often; the executor logs what it does.
    for action in &plan.actions {
        tracing::debug!(
            service = action.service.as_deref().unwrap_or(""),
            wave = action.wave,
            action = action.action.kind(),
            target = %action.action.target(),
            reason = ?action.reasons.iter().map(|r| r.kind).collect::<Vec<_>>(),
            "planned"
        );
    }
    Ok(plan)
}

/// Collects actions with their dependency edges; assigns waves.
#[derive(Default)]
pub(crate) struct Builder {
    actions: Vec<PlannedAction>,
}

impl Builder {
    pub(crate) fn push(
        &mut self,
        service: Option<&str>,
        action: Action,
        reasons: Vec<Reason>,
        after: Vec<ActionId>,
    ) -> ActionId {
        let id = self.actions.len();
        let mut after = after;
        after.sort_unstable();
        after.dedup();
        let wave = after
            .iter()
            .filter_map(|a| self.actions.get(*a))
            .map(|a| a.wave + 1)
            .max()
            .unwrap_or(0);
        self.actions.push(PlannedAction {
            id,
            wave,
            service: service.map(str::to_string),
            action,
            reasons,
            after,
            wait: Vec::new(),
            not_before: None,
            delay: Duration::ZERO,
        });
        id
    }

    pub(crate) fn get_mut(&mut self, id: ActionId) -> Option<&mut PlannedAction> {
        self.actions.get_mut(id)
    }

    pub(crate) fn get(&self, id: ActionId) -> Option<&PlannedAction> {
        self.actions.get(id)
    }

    fn finish(self, project: &str, options: &PlanOptions) -> Plan {
        // Stable sort by wave keeps the planning order inside a wave;
        // ids are renumbered to stay indexes.
        let mut actions = self.actions;
        actions.sort_by_key(|a| (a.wave, a.id));
        let renumber: BTreeMap<ActionId, ActionId> = actions
            .iter()
            .enumerate()
            .map(|(new, a)| (a.id, new))
            .collect();
        for action in &mut actions {
            action.id = renumber.get(&action.id).copied().unwrap_or(action.id);
            for a in &mut action.after {
                *a = renumber.get(a).copied().unwrap_or(*a);
            }
        }
        let requeue_after = actions
            .iter()
            .filter_map(|a| a.not_before)
            .filter_map(|t| t.duration_since(options.now).ok())
            .min();
        Plan {
            project: project.to_string(),
            operation: options.operation,
            actions,
            requeue_after,
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
