//! One reconcile of one project, blocking: observe, plan, execute, in
//! rounds until a plan comes out empty (or fails, or only defers), then
//! observe once more for the status. Runs on a blocking thread; every
//! runtime call below may fork-and-exec a shim or sleep in a stop.
//!
//! Level-triggered: each round plans from what is observed now, never from
//! what the previous round meant to do, so a reconcile that follows a crash
//! (of a container, or of the agent) picks up where things are.

use std::path::{Path, PathBuf};

use berth_reconcilers::status::summarize;
use berth_reconcilers::{
    Action, Clock, ErrorKind, ExecuteOptions, Operation, Outcome, Plan, PlanOptions, Report,
    execute, observe, plan,
};
use berth_spec::compose::model::Project;

use super::digests::file_digests;
use super::host::{AGENT_DIR_LABEL, Host};
use super::status::{Observation, OperationKind, RunResult, StepState};
use super::trigger::Trigger;

/// Rounds per reconcile. One is the norm; a second picks up what the first
/// made possible (a container whose image a pull just brought). More would
/// only hide a plan that never converges, which the next trigger retries.
const MAX_ROUNDS: usize = 3;

/// What to do, with everything it needs (a copy: the store may change
/// while it runs).
#[derive(Debug, Clone)]
pub struct Job {
    pub kind: OperationKind,
    pub project: Project,
    /// The project folder, put on created containers ([`AGENT_DIR_LABEL`]).
    pub dir: PathBuf,
    pub remove_orphans: bool,
    pub trigger: Trigger,
    /// What the model is to the rollout (`rollout.rs`).
    pub rollout: super::rollout::Target,
}

/// Runs `job`; `on_plan` sees each round's plan before it executes (the
/// worker shows it in the status while it runs).
pub fn run(
    host: &dyn Host,
    job: &Job,
    clock: &dyn Clock,
    exec: &ExecuteOptions,
    on_plan: &mut dyn FnMut(&[StepState]),
) -> RunResult {
    let backends = host.backends();
    let mut options = PlanOptions {
        operation: match job.kind {
            OperationKind::Apply => Operation::Up,
            OperationKind::Delete => Operation::Down { volumes: false },
        },
        remove_orphans: job.remove_orphans,
        file_digests: file_digests(&job.project),
        // A container the user stopped through berth (`stop`, `compose
        // stop`) stays stopped until `start` or `up`, as Docker keeps a
        // stopped container down: the agent restores what was removed or
        // died, not what someone chose to stop.
        keep_user_stops: true,
        // `pull_policy: always` (and a due `daily`/`weekly`/`every_*`)
        // pulls when the project is applied (the agent starts, its files
        // change, a manual trigger), not at every resync or container
        // event: those repair drift with the images at hand.
        refresh_images: matches!(
            job.trigger,
            Trigger::Initial | Trigger::FsWatch | Trigger::Git | Trigger::Manual
        ),
        ..PlanOptions::default()
    };
    host.note_pull_policies(&job.project);
    let mut steps = Vec::new();
    let mut error = None;
    for _ in 0..MAX_ROUNDS {
        options.now = clock.now();
        let mut plan = match observe(&job.project, backends)
            .and_then(|observed| plan(&job.project, &observed, &options))
        {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "cannot observe or plan");
                error = Some((e.kind(), chain(&e)));
                break;
            }
        };
        if plan.is_empty() {
            break;
        }
        label(&mut plan, &job.dir);
        log_plan(&plan, job, options.now);
        let planned = steps_of(&plan, None);
        on_plan(&planned);
        let report = execute(&plan, backends, clock, exec);
        // Images are refreshed once per reconcile: the next rounds (and
        // the residual) converge with what was pulled.
        options.refresh_images = false;
        steps.extend(steps_of(&plan, Some(&report)));
        if let Some(failure) = first_failure(&report) {
            error = Some(failure);
            break;
        }
        if report.done() == 0 {
            // Only deferred restarts: the worker requeues for them.
            break;
        }
    }
    options.now = clock.now();
    let observation = match observe(&job.project, backends) {
        Ok(observed) => {
            let residual = plan(&job.project, &observed, &options).ok();
            let services = match job.kind {
                OperationKind::Apply => {
                    summarize(&job.project, &observed, residual.as_ref(), None, &options)
                }
                OperationKind::Delete => Vec::new(),
            };
            Some(Observation {
                services,
                requeue_after: residual.as_ref().and_then(|p| p.requeue_after),
                residual: residual.map(|p| steps_of(&p, None)).unwrap_or_default(),
            })
        }
        Err(e) => {
            error.get_or_insert((e.kind(), chain(&e)));
            None
        }
    };
    RunResult {
        steps,
        error,
        observation,
    }
}

/// Marks what the agent creates as its own (see [`AGENT_DIR_LABEL`]).
fn label(plan: &mut Plan, dir: &Path) {
    let dir = dir.display().to_string();
    for a in &mut plan.actions {
        if let Action::CreateContainer { spec, .. }
        | Action::Recreate { spec, .. }
        | Action::Replace { spec, .. } = &mut a.action
        {
            spec.labels.insert(AGENT_DIR_LABEL.to_owned(), dir.clone());
        }
    }
}

/// Each action with its reasons: a warning when the machine drifted from
/// a spec that did not change (someone stopped or removed a container, one
/// exited), information when the spec changed.
fn log_plan(plan: &Plan, job: &Job, now: std::time::SystemTime) {
    let drift = job.kind == OperationKind::Apply && job.trigger.finds_drift();
    for a in &plan.actions {
        // A restart still in its backoff is not acted on yet: said once
        // it is, not at every look in between.
        if let Some(until) = a.not_before.filter(|t| *t > now) {
            tracing::debug!(service = a.service.as_deref().unwrap_or(""), action = a.action.kind(),
                target = a.action.target(), until = %crate::timefmt::rfc3339(until), "deferred (restart backoff)");
            continue;
        }
        let reasons: Vec<String> = a
            .reasons
            .iter()
            .map(|r| format!("{}: {}", r.kind, r.message))
            .collect();
        let service = a.service.as_deref().unwrap_or("");
        let action = a.action.kind();
        let target = a.action.target();
        let reasons = reasons.join("; ");
        if drift {
            tracing::warn!(service, action, target, %reasons, "drift: correcting");
        } else {
            tracing::info!(service, action, target, %reasons, "planned");
        }
    }
}

fn steps_of(plan: &Plan, report: Option<&Report>) -> Vec<StepState> {
    plan.actions
        .iter()
        .map(|a| StepState {
            service: a.service.clone(),
            action: a.action.kind(),
            target: a.action.target().to_owned(),
            reasons: a.reasons.clone(),
            outcome: report
                .and_then(|r| r.results.iter().find(|x| x.id == a.id))
                .map(|x| outcome_text(&x.outcome)),
        })
        .collect()
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Done => "done".to_owned(),
        Outcome::Deferred { until } => {
            format!("deferred until {}", crate::timefmt::rfc3339(*until))
        }
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Failed { kind, message } => format!("failed ({kind}): {message}"),
    }
}

fn first_failure(report: &Report) -> Option<(ErrorKind, String)> {
    report.failures().next().and_then(|r| match &r.outcome {
        Outcome::Failed { kind, message } => {
            Some((*kind, format!("{} {}: {message}", r.action, r.target)))
        }
        _ => None,
    })
}

fn chain(e: &dyn std::error::Error) -> String {
    berth_reconcilers::describe_chain(e)
}
