//! What a project's reconcile worker records, and the summary read from
//! it: phase, sync, health and the kstatus conditions (`Ready`,
//! `Reconciling`, `Stalled`, `Healthy`), following
//! `shared/design/status-api.md`.
//!
//! Plain data and pure functions: the worker hands in results and the
//! current time, the store and the API read. Every rule here is tested
//! without a runtime (`status_tests.rs`).

use std::time::{Duration, SystemTime};

use berth_reconcilers::ErrorKind;
use berth_reconcilers::Reason;
use berth_reconcilers::status::{ServicePhase, ServiceStatus};

use super::trigger::Trigger;
use crate::state::{Condition, ConditionStatus, Phase, ProjectState};

/// What one operation does to the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Converge on the model (`up`).
    Apply,
    /// Tear the project down (its folder is gone).
    Delete,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Delete => "Delete",
        }
    }
}

/// Argo CD's `operationState.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationPhase {
    Running,
    Succeeded,
    Failed,
}

impl OperationPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

/// One planned action and, once run, how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepState {
    pub service: Option<String>,
    pub action: &'static str,
    pub target: String,
    pub reasons: Vec<Reason>,
    /// `done`, `deferred`, `skipped: ...`, `failed (kind): ...`; `None`
    /// until it ran, and for steps still called for (`residual`).
    pub outcome: Option<String>,
}

/// The current or last operation (Argo's `operationState`).
#[derive(Debug, Clone, PartialEq)]
pub struct OperationState {
    pub kind: OperationKind,
    pub phase: OperationPhase,
    pub trigger: Trigger,
    pub started_at: SystemTime,
    pub finished_at: Option<SystemTime>,
    pub revision: String,
    pub generation: u64,
    /// Every action planned, over all rounds, with outcomes.
    pub plan: Vec<StepState>,
    pub message: String,
}

/// The result of one run, handed to [`ReconcileState::finish`].
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub steps: Vec<StepState>,
    /// The first failure: an action's, or observing or planning.
    pub error: Option<(ErrorKind, String)>,
    /// The state after the run, when it could be observed.
    pub observation: Option<Observation>,
}

/// What the last observation found.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub services: Vec<ServiceStatus>,
    /// What a plan made now would still do: empty when in sync.
    pub residual: Vec<StepState>,
    /// When a deferred restart comes due.
    pub requeue_after: Option<Duration>,
}

/// Argo CD's sync axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    Unknown,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "Synced",
            Self::OutOfSync => "OutOfSync",
            Self::Unknown => "Unknown",
        }
    }
}

/// Argo CD's health axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthStatus {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    Unknown,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
            Self::Suspended => "Suspended",
            Self::Missing => "Missing",
            Self::Unknown => "Unknown",
        }
    }
}

/// How many operations [`ReconcileState::history`] keeps.
pub const HISTORY: usize = 10;

/// A project's reconcile record.
#[derive(Debug, Clone)]
pub struct ReconcileState {
    pub operation: Option<OperationState>,
    /// The last operations that changed something or failed, newest
    /// first (a quiet resync does not push out why the app last changed).
    pub history: std::collections::VecDeque<OperationState>,
    /// From the last observation (empty before it).
    pub services: Vec<ServiceStatus>,
    pub observed_at: Option<SystemTime>,
    /// `None` before the first observation.
    pub residual: Option<Vec<StepState>>,
    pub last_applied_revision: Option<String>,
    pub last_applied_generation: Option<u64>,
    pub last_attempted_revision: Option<String>,
    /// In git mode, the same two as `main@sha1:<commit>` labels, and the
    /// current operation's.
    pub last_applied_source_revision: Option<String>,
    pub last_attempted_source_revision: Option<String>,
    pub operation_source_revision: Option<String>,
    /// The generation the conditions were computed from by a reconcile.
    pub observed_generation: u64,
    pub last_handled_reconcile_at: Option<SystemTime>,
    pub next_reconcile_at: Option<SystemTime>,
    pub last_error: Option<String>,
    pub last_error_kind: Option<ErrorKind>,
    pub consecutive_failures: u32,
    /// Why the last trigger did nothing (suspended, no valid model...).
    pub skipped: Option<String>,
    pub ready: Condition,
    pub reconciling: Condition,
    pub stalled: Condition,
    pub healthy: Condition,
    /// Revisions, the revision in place, the gate (`rollout.rs`).
    pub rollout: super::rollout::RolloutState,
}

pub mod reason {
    pub const PENDING: &str = "Pending";
    pub const SUCCEEDED: &str = "ReconciliationSucceeded";
    pub const FAILED: &str = "ReconciliationFailed";
    pub const PROGRESSING: &str = "Progressing";
    pub const RETRYING: &str = "ProgressingWithRetry";
    pub const IDLE: &str = "Idle";
    pub const DELETING: &str = "Deleting";
    pub const SUSPENDED: &str = "Suspended";
    /// The files' revision failed and the previous one runs again.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// A manual rollback holds the project on an earlier revision.
    pub const PINNED: &str = "Pinned";
    pub const HEALTHY: &str = "AllServicesHealthy";
    pub const UNHEALTHY: &str = "ServicesUnhealthy";
    pub const STARTING: &str = "ServicesStarting";
    pub const NOT_OBSERVED: &str = "NotObserved";
}

impl ReconcileState {
    pub fn new(now: SystemTime) -> Self {
        Self {
            operation: None,
            history: std::collections::VecDeque::new(),
            services: Vec::new(),
            observed_at: None,
            residual: None,
            last_applied_revision: None,
            last_applied_generation: None,
            last_attempted_revision: None,
            last_applied_source_revision: None,
            last_attempted_source_revision: None,
            operation_source_revision: None,
            observed_generation: 0,
            last_handled_reconcile_at: None,
            next_reconcile_at: None,
            last_error: None,
            last_error_kind: None,
            consecutive_failures: 0,
            skipped: None,
            ready: Condition::new("Ready", reason::PENDING, now),
            reconciling: Condition::new("Reconciling", reason::IDLE, now),
            stalled: Condition::new("Stalled", reason::IDLE, now),
            healthy: Condition::new("Healthy", reason::NOT_OBSERVED, now),
            rollout: super::rollout::RolloutState::default(),
        }
    }

    /// An operation starts.
    pub fn begin(&mut self, op: OperationState) {
        if op.trigger == Trigger::Manual {
            self.last_handled_reconcile_at = Some(op.started_at);
        }
        self.last_attempted_revision = Some(op.revision.clone());
        self.observed_generation = op.generation;
        self.skipped = None;
        self.operation = Some(op);
    }

    /// The git revision the operation that just began applies (`None`
    /// outside git mode).
    pub fn note_source_revision(&mut self, revision: Option<String>) {
        self.last_attempted_source_revision = revision.clone();
        self.operation_source_revision = revision;
    }

    /// A round's plan is known: its steps join the operation's.
    pub fn planned(&mut self, steps: Vec<StepState>) {
        if let Some(op) = &mut self.operation {
            op.plan.extend(steps);
        }
    }

    /// The operation ended with `result`.
    pub fn finish(&mut self, result: RunResult, now: SystemTime) {
        if let Some(obs) = result.observation {
            self.services = obs.services;
            self.residual = Some(obs.residual);
            self.observed_at = Some(now);
        }
        let Some(op) = &mut self.operation else {
            return;
        };
        op.plan = result.steps;
        op.finished_at = Some(now);
        match result.error {
            Some((kind, message)) => {
                op.phase = OperationPhase::Failed;
                op.message = message.clone();
                self.last_error = Some(message);
                self.last_error_kind = Some(kind);
                self.consecutive_failures += 1;
            }
            None => {
                op.phase = OperationPhase::Succeeded;
                let done = op
                    .plan
                    .iter()
                    .filter(|s| s.outcome.as_deref() == Some("done"));
                op.message = match done.count() {
                    0 => "nothing to do".to_owned(),
                    n => format!("{n} action(s) done"),
                };
                self.last_error = None;
                self.last_error_kind = None;
                self.consecutive_failures = 0;
                self.last_applied_revision = Some(op.revision.clone());
                self.last_applied_generation = Some(op.generation);
                self.last_applied_source_revision = self.operation_source_revision.clone();
            }
        }
        if op.phase == OperationPhase::Failed || !op.plan.is_empty() {
            self.history.push_front(op.clone());
            self.history.truncate(HISTORY);
        }
    }

    /// A trigger that did nothing, and why.
    pub fn skip(&mut self, why: String, generation: u64, manual_at: Option<SystemTime>) {
        self.skipped = Some(why);
        self.observed_generation = generation;
        if manual_at.is_some() {
            self.last_handled_reconcile_at = manual_at;
        }
    }

    /// The operation's plan has actions still to run or running.
    fn applying(&self) -> Option<&OperationState> {
        self.operation
            .as_ref()
            .filter(|o| o.phase == OperationPhase::Running && !o.plan.is_empty())
    }
}

/// A service's health for probes and the project's health: running and
/// ready, or a one-shot that completed, is healthy; on its way there is
/// progressing; anything else (exited, failed, stopped by hand) is
/// degraded. Returns the reason when not healthy.
pub fn service_health(s: &ServiceStatus) -> (HealthStatus, Option<String>) {
    use berth_reconcilers::status::HealthStatus as H;
    let name = &s.name;
    let counts = format!("{}/{} replicas ready", s.ready_replicas, s.desired_replicas);
    if s.desired_replicas == 0 {
        return (HealthStatus::Healthy, None);
    }
    if s.health == H::Degraded && s.replicas.iter().any(|r| r.health == "unhealthy") {
        return (
            HealthStatus::Degraded,
            Some(format!("{name}: unhealthy ({counts})")),
        );
    }
    if s.phase == ServicePhase::Completed
        || (s.phase == ServicePhase::Running && s.ready_replicas >= s.desired_replicas)
    {
        return (HealthStatus::Healthy, None);
    }
    let (status, what) = match s.phase {
        ServicePhase::Pending => (HealthStatus::Missing, "no container".to_owned()),
        ServicePhase::Starting => (HealthStatus::Progressing, "starting".to_owned()),
        ServicePhase::Restarting => (
            HealthStatus::Degraded,
            format!("restarting after it exited{}", exit_note(s)),
        ),
        ServicePhase::Stopped => (HealthStatus::Degraded, "stopped".to_owned()),
        ServicePhase::Failed => (HealthStatus::Degraded, format!("exited{}", exit_note(s))),
        // Partly there: say which part is missing.
        _ => {
            let exited = s
                .replicas
                .iter()
                .any(|r| r.state == "exited" || r.state == "dead");
            let missing = s.desired_replicas.saturating_sub(s.replicas.len() as u32);
            if exited {
                (HealthStatus::Degraded, format!("exited{}", exit_note(s)))
            } else if missing > 0 {
                (
                    HealthStatus::Progressing,
                    format!("{missing} replica(s) missing"),
                )
            } else {
                (HealthStatus::Progressing, "starting".to_owned())
            }
        }
    };
    (status, Some(format!("{name}: {what} ({counts})")))
}

fn exit_note(s: &ServiceStatus) -> String {
    s.last_exit
        .as_ref()
        .map(|e| format!(" with code {}", e.code))
        .unwrap_or_default()
}

/// The project's health over its services, with a message.
pub fn project_health(p: &ProjectState) -> (HealthStatus, String) {
    let r = &p.reconcile;
    if p.suspended {
        return (
            HealthStatus::Suspended,
            "reconciliation is suspended".into(),
        );
    }
    if r.observed_at.is_none() {
        return (HealthStatus::Unknown, "not observed yet".into());
    }
    let total = r.services.len();
    let judged: Vec<(HealthStatus, Option<String>)> =
        r.services.iter().map(service_health).collect();
    let healthy = judged
        .iter()
        .filter(|(h, _)| *h == HealthStatus::Healthy)
        .count();
    let worst = judged
        .iter()
        .map(|(h, _)| *h)
        .max_by_key(|h| match h {
            HealthStatus::Degraded => 3,
            HealthStatus::Missing => 2,
            HealthStatus::Progressing => 1,
            _ => 0,
        })
        .unwrap_or(HealthStatus::Healthy);
    let problems: Vec<String> = judged.into_iter().filter_map(|(_, why)| why).collect();
    let mut message = format!("{healthy}/{total} services healthy");
    if !problems.is_empty() {
        message.push_str(": ");
        message.push_str(&problems.join("; "));
    }
    // All missing is Argo's Missing; some missing is still on its way.
    let status = match worst {
        HealthStatus::Missing if healthy > 0 => HealthStatus::Progressing,
        other => other,
    };
    (status, message)
}

/// Argo's sync axis: compared only when the spec is valid.
pub fn sync_status(p: &ProjectState) -> (SyncStatus, String) {
    if p.spec_errors() {
        return (
            SyncStatus::Unknown,
            "the spec is invalid: cannot compare".into(),
        );
    }
    let rollout = &p.reconcile.rollout;
    // Argo's sense: the files' revision is not what runs.
    if let Some(b) = &rollout.blocked {
        return (
            SyncStatus::OutOfSync,
            format!(
                "revision rev-{} was rolled back; rev-{} runs",
                b.number,
                rollout.in_place.as_ref().map_or(0, |i| i.number)
            ),
        );
    }
    if let Some((pin, _)) = &rollout.pin {
        return (
            SyncStatus::OutOfSync,
            format!("pinned to rev-{} by a manual rollback", pin.number),
        );
    }
    match &p.reconcile.residual {
        None => (SyncStatus::Unknown, "not observed yet".into()),
        Some(steps) if steps.is_empty() => (SyncStatus::Synced, String::new()),
        Some(steps) => (
            SyncStatus::OutOfSync,
            format!("{} action(s) pending", steps.len()),
        ),
    }
}

/// The summary phase, by GitLab's precedence (see [`Phase`]).
pub fn phase(p: &ProjectState) -> Phase {
    let r = &p.reconcile;
    if p.deleting_since.is_some() {
        return Phase::Deleting;
    }
    if p.suspended {
        return Phase::Suspended;
    }
    if p.spec_errors() {
        return Phase::Failed;
    }
    if r.operation.is_none() {
        return Phase::Pending;
    }
    if r.applying().is_some() || r.rollout.gate.is_some() {
        return Phase::Progressing;
    }
    if r.consecutive_failures > 0 || r.rollout.blocked.is_some() {
        return Phase::Failed;
    }
    match project_health(p).0 {
        HealthStatus::Healthy => Phase::Ready,
        HealthStatus::Degraded => Phase::Degraded,
        _ => Phase::Progressing,
    }
}

/// Recomputes `Ready`, `Reconciling`, `Stalled` and `Healthy` from the
/// rest of the state; transition times move only on flips.
pub fn refresh_conditions(p: &mut ProjectState, now: SystemTime) {
    use ConditionStatus::{False, True, Unknown};
    let generation = p.reconcile.observed_generation;
    let spec_error = p
        .errors()
        .next()
        .map(|d| (d.to_string(), p.conflict.is_some()));
    let deleting = p.deleting_since.is_some();
    let (health, health_message) = project_health(p);
    let r = &p.reconcile;
    let applying = r.applying().map(|o| {
        format!(
            "{} action(s) for {} (trigger {})",
            o.plan.len(),
            o.kind.as_str().to_lowercase(),
            o.trigger.as_str()
        )
    });
    // Retrying will not help: the spec, or a request the machine cannot
    // carry out as written.
    let hopeless = r.last_error_kind == Some(ErrorKind::InvalidArgument);
    let last_error = r.last_error.clone().unwrap_or_default();

    let ready = if deleting {
        (
            False,
            reason::DELETING,
            "the project folder is gone; tearing it down".to_owned(),
        )
    } else if let Some((message, conflict)) = &spec_error {
        let why = if *conflict {
            crate::state::reason::NAME_CONFLICT
        } else {
            crate::state::reason::VALIDATION_FAILED
        };
        (False, why, message.clone())
    } else if r.operation.is_none() {
        (Unknown, reason::PENDING, "not reconciled yet".to_owned())
    } else if let Some(what) = &applying {
        (Unknown, reason::PROGRESSING, what.clone())
    } else if r.consecutive_failures > 0 {
        (False, reason::FAILED, last_error.clone())
    } else if let Some(b) = &r.rollout.blocked {
        (False, reason::ROLLED_BACK, b.message.clone())
    } else if let Some((pin, _)) = &r.rollout.pin {
        (
            True,
            reason::PINNED,
            format!("rolled back by hand to rev-{}", pin.number),
        )
    } else {
        let revision = r.last_applied_revision.clone().unwrap_or_default();
        (
            True,
            reason::SUCCEEDED,
            format!("applied revision {revision}"),
        )
    };
    let reconciling = if let Some(what) = applying {
        let why = if deleting {
            reason::DELETING
        } else {
            reason::PROGRESSING
        };
        (True, why, what)
    } else if r.consecutive_failures > 0 && !hopeless && spec_error.is_none() {
        let next = r
            .next_reconcile_at
            .map(|t| format!("; next attempt at {}", crate::timefmt::rfc3339(t)))
            .unwrap_or_default();
        (
            True,
            reason::RETRYING,
            format!("attempt {} failed{next}", r.consecutive_failures),
        )
    } else {
        (False, reason::IDLE, String::new())
    };
    let stalled = if let Some((message, conflict)) = &spec_error {
        let why = if *conflict {
            crate::state::reason::NAME_CONFLICT
        } else {
            crate::state::reason::VALIDATION_FAILED
        };
        (True, why, message.clone())
    } else if r.consecutive_failures > 0 && hopeless {
        (True, reason::FAILED, last_error)
    } else if let Some(b) = &r.rollout.blocked {
        // No retry until the files change: the kstatus sense of stalled.
        (True, reason::ROLLED_BACK, b.message.clone())
    } else {
        (False, reason::IDLE, String::new())
    };
    let healthy = match health {
        HealthStatus::Healthy => (True, reason::HEALTHY, health_message),
        HealthStatus::Unknown => (Unknown, reason::NOT_OBSERVED, health_message),
        HealthStatus::Suspended => (Unknown, reason::SUSPENDED, health_message),
        HealthStatus::Progressing | HealthStatus::Missing => {
            (False, reason::STARTING, health_message)
        }
        HealthStatus::Degraded => (False, reason::UNHEALTHY, health_message),
    };
    let r = &mut p.reconcile;
    for (c, (status, why, message)) in [
        (&mut r.ready, ready),
        (&mut r.reconciling, reconciling),
        (&mut r.stalled, stalled),
        (&mut r.healthy, healthy),
    ] {
        c.set(status, why, message, generation, now);
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
