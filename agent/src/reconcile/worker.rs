//! One project's reconcile loop: take the pending triggers (coalesced in
//! the [`Queue`]), decide from the store what the project needs, run it on
//! a blocking thread, record the result, and come back when a deferred
//! restart is due or a failure should be retried.
//!
//! One reconcile at a time per project, by construction (one task per
//! project, awaiting its run); projects never wait for each other, since
//! each has its own task and its own blocking thread while it runs.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use super::queue::{Pending, Queue};
use super::rollout::Target;
use super::run::{self, Job};
use super::status::{OperationKind, OperationPhase, OperationState, RunResult, refresh_conditions};
use super::trigger::Trigger;
use super::{Finished, Reconcilers, Shared};
use crate::state::ProjectState;

/// What the worker does after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Wait for the next trigger.
    Idle,
    /// Reconcile again after this long (under this trigger), unless a
    /// trigger comes first.
    After(Duration, Trigger),
    /// The project is gone from the store: end the worker.
    Exit,
}

/// What the store says the project needs now.
#[derive(Debug)]
pub(super) enum Decision {
    Gone,
    /// Remove the entry without touching the machine (a gone folder whose
    /// project name another folder now uses).
    Forget(String),
    /// Deletion grace not over yet.
    Wait(Duration),
    Skip(String),
    Run(Box<Job>, String, u64),
}

/// Pure: the store's view of one project, at `now`.
pub(super) fn decide(
    p: Option<&ProjectState>,
    now: SystemTime,
    shared_grace: Duration,
    remove_orphans: bool,
    trigger: Trigger,
) -> Decision {
    let Some(p) = p else {
        return Decision::Gone;
    };
    let Some(good) = &p.last_good else {
        if p.deleting_since.is_some() {
            return Decision::Gone;
        }
        return Decision::Skip(
            "no valid model yet: fix the compose file (see status.errors)".to_owned(),
        );
    };
    // A pin (manual rollback) or a rolled back revision picks another
    // model than the files' (`rollout.rs`).
    let (target, model, revision) = super::rollout::target(&p.reconcile.rollout, good);
    // A model not applied yet is a change of the spec, whatever woke the
    // worker: a container event or a retry can get there before the file
    // event that loaded it. Named so, its actions are not drift.
    let fresh = p.reconcile.last_applied_revision.as_deref() != Some(revision);
    let trigger = if fresh && trigger.finds_drift() {
        if p.source_revision.is_some() {
            Trigger::Git
        } else {
            Trigger::FsWatch
        }
    } else {
        trigger
    };
    let job = |kind, project: &berth_spec::compose::model::Project, target| {
        Box::new(Job {
            kind,
            project: project.clone(),
            dir: p.dir.clone(),
            remove_orphans,
            trigger,
            rollout: target,
        })
    };
    if let Some(since) = p.deleting_since {
        if let Some(conflict) = &p.conflict {
            return Decision::Forget(format!(
                "its folder is gone and another folder declares the same project: {}",
                conflict.message
            ));
        }
        let due = since + shared_grace;
        return match due.duration_since(now) {
            Ok(left) if !left.is_zero() => Decision::Wait(left),
            // What runs is torn down, whichever revision it is.
            _ => Decision::Run(
                job(OperationKind::Delete, &good.project, Target::None),
                good.revision.clone(),
                p.generation,
            ),
        };
    }
    if p.suspended {
        return Decision::Skip("reconciliation is suspended: POST .../resume to resume".to_owned());
    }
    if let Some(conflict) = &p.conflict {
        return Decision::Skip(format!(
            "not reconciled while the name is ambiguous: {}",
            conflict.message
        ));
    }
    // An invalid edit keeps the last good model running (and repaired).
    Decision::Run(
        job(OperationKind::Apply, model, target),
        revision.to_owned(),
        p.generation,
    )
}

pub(super) async fn run_worker(mgr: Arc<Reconcilers>, key: String, queue: Arc<Queue>) {
    let mut wake: Option<(tokio::time::Instant, Trigger)> = None;
    loop {
        let pending = tokio::select! {
            p = queue.next() => match p {
                Some(p) => p,
                None => break,
            },
            () = sleep_until(wake.map(|w| w.0)), if wake.is_some() => {
                Pending::new(wake.map_or(Trigger::Requeue, |w| w.1))
            }
        };
        let (finished, next) = reconcile(&mgr.shared, &key, &pending).await;
        for waiter in pending.waiters {
            let _ = waiter.send(finished.clone());
        }
        match next {
            Next::Idle => wake = None,
            Next::After(d, trigger) => wake = Some((tokio::time::Instant::now() + d, trigger)),
            Next::Exit => break,
        }
    }
    mgr.retire(&key, &queue);
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One pass: decide, run, record. Returns the answer for waiters and what
/// to do next.
pub(super) async fn reconcile(shared: &Shared, key: &str, pending: &Pending) -> (Finished, Next) {
    super::rollout::prepare(shared, key).await;
    let trigger = pending.trigger;
    let now = SystemTime::now();
    let manual_at = (trigger == Trigger::Manual).then_some(now);
    let (decision, name) = {
        let store = shared.store.read().await;
        let p = store.get(key);
        let name = p.map(|p| p.name.clone()).unwrap_or_default();
        let d = decide(
            p,
            now,
            shared.options.delete_grace,
            shared.options.remove_orphans,
            trigger,
        );
        (d, name)
    };
    let (job, revision, generation) = match decision {
        Decision::Gone => {
            return (Finished::skipped("the project is gone"), Next::Exit);
        }
        Decision::Forget(why) => {
            tracing::warn!(project = %name, key, reason = %why, "forgetting the project without a teardown");
            let mut store = shared.store.write().await;
            if store.get(key).is_some_and(|p| p.deleting_since.is_some()) {
                store.remove(key);
            }
            shared.metrics.observe(&store);
            return (Finished::skipped(&why), Next::Exit);
        }
        Decision::Wait(left) => {
            return (
                Finished::skipped("waiting out the deletion grace period"),
                Next::After(left, Trigger::Deletion),
            );
        }
        Decision::Skip(why) => {
            tracing::debug!(project = %name, key, trigger = trigger.as_str(), reason = %why, "not reconciled");
            {
                let mut store = shared.store.write().await;
                if let Some(p) = store.get_mut(key) {
                    let generation = p.generation;
                    p.reconcile.skip(why.clone(), generation, manual_at);
                    refresh_conditions(p, now);
                }
                shared.metrics.observe(&store);
            }
            return (Finished::skipped(&why), Next::Idle);
        }
        Decision::Run(job, revision, generation) => (job, revision, generation),
    };
    let started = Instant::now();
    let number = match job.rollout {
        Target::Fresh if shared.options.rollout.dir.is_some() => {
            // A gate still running is for files that changed since.
            super::rollout::abandon_gate(shared, key, &name, "the files changed again").await;
            super::rollout::begin(shared, key, &job).await
        }
        _ => None,
    };
    let old_services = {
        let store = shared.store.read().await;
        store
            .get(key)
            .map(|p| p.reconcile.services.clone())
            .unwrap_or_default()
    };
    let target = job.rollout.clone();
    let runner = WorkerRunner {
        shared,
        key,
        name: &name,
        generation,
        coalesced: pending.coalesced,
    };
    let (result, answer) = runner.execute(*job.clone(), revision).await;
    let then = super::rollout::after(
        shared,
        key,
        &name,
        &job,
        &target,
        number,
        &result,
        &old_services,
        started,
        &runner,
    )
    .await;
    match then {
        super::rollout::After::Keep => answer,
        super::rollout::After::Replace(rolled_back) => rolled_back,
        super::rollout::After::Poll(every) => {
            let next = match answer.1 {
                Next::After(d, trigger) if d < every => Next::After(d, trigger),
                Next::Exit => Next::Exit,
                _ => Next::After(every, Trigger::Requeue),
            };
            (answer.0, next)
        }
    }
}

/// Runs jobs for one project and records them: the worker's own run,
/// and a rollback's (`rollout.rs`).
struct WorkerRunner<'a> {
    shared: &'a Shared,
    key: &'a str,
    name: &'a str,
    generation: u64,
    coalesced: usize,
}

impl super::rollout::Runner for WorkerRunner<'_> {
    async fn run(&self, job: Job, revision: String) -> (Finished, Next) {
        self.execute(job, revision).await.1
    }
}

impl WorkerRunner<'_> {
    /// Runs `job` on a blocking thread and records its result.
    async fn execute(&self, job: Job, revision: String) -> (RunResult, (Finished, Next)) {
        let (shared, key, name) = (self.shared, self.key, self.name);
        let now = SystemTime::now();
        let trigger = job.trigger;
        let span = tracing::info_span!(
            "reconcile",
            project = %name,
            key,
            trigger = trigger.as_str(),
            operation = job.kind.as_str(),
            coalesced = self.coalesced,
        );
        let started = Instant::now();
        {
            let mut store = shared.store.write().await;
            if let Some(p) = store.get_mut(key) {
                let source_revision = source_revision_of(p, &revision);
                p.reconcile.begin(OperationState {
                    kind: job.kind,
                    phase: OperationPhase::Running,
                    trigger,
                    started_at: now,
                    finished_at: None,
                    revision,
                    generation: self.generation,
                    plan: Vec::new(),
                    message: String::new(),
                });
                p.reconcile.note_source_revision(source_revision);
                refresh_conditions(p, now);
            }
            shared.metrics.observe(&store);
        }
        let result = {
            let host = shared.host.clone();
            let store = shared.store.clone();
            let exec = shared.options.execute.clone();
            let key = key.to_owned();
            let job = job.clone();
            let blocking_span = span.clone();
            let task = tokio::task::spawn_blocking(move || {
                blocking_span.in_scope(|| {
                    let mut on_plan = |steps: &[super::status::StepState]| {
                        let mut store = store.blocking_write();
                        if let Some(p) = store.get_mut(&key) {
                            p.reconcile.planned(steps.to_vec());
                            refresh_conditions(p, SystemTime::now());
                        }
                    };
                    run::run(
                        &*host,
                        &job,
                        &berth_reconcilers::SystemClock,
                        &exec,
                        &mut on_plan,
                    )
                })
            });
            match task.instrument(span.clone()).await {
                Ok(result) => result,
                Err(e) => RunResult {
                    error: Some((
                        berth_reconcilers::ErrorKind::Internal,
                        format!("the reconcile task failed: {e}"),
                    )),
                    ..RunResult::default()
                },
            }
        };
        let elapsed = started.elapsed();
        let answer = record(
            shared,
            key,
            name,
            job.kind,
            trigger,
            result.clone(),
            elapsed,
        )
        .instrument(span)
        .await;
        (result, answer)
    }
}

/// The git revision of the model with files digest `digest`: the files'
/// own, or a kept revision's (a rollback, a pin). `None` outside git mode.
pub(super) fn source_revision_of(p: &ProjectState, digest: &str) -> Option<String> {
    if let Some(good) = &p.last_good
        && good.revision == digest
    {
        return good.source_revision.clone();
    }
    p.reconcile
        .rollout
        .history
        .iter()
        .find(|h| h.source.digest == digest)
        .and_then(|h| h.source.revision.clone())
}

/// Stores the result, updates metrics, and picks what comes next.
async fn record(
    shared: &Shared,
    key: &str,
    name: &str,
    kind: OperationKind,
    trigger: Trigger,
    result: RunResult,
    elapsed: Duration,
) -> (Finished, Next) {
    let now = SystemTime::now();
    let failed = result.error.clone();
    let in_sync = result
        .observation
        .as_ref()
        .is_some_and(|o| o.residual.is_empty());
    let requeue_after = result.observation.as_ref().and_then(|o| o.requeue_after);
    let drift: Vec<(String, String)> = if trigger.finds_drift() {
        result
            .steps
            .iter()
            .filter(|s| s.outcome.as_deref() == Some("done"))
            .flat_map(|s| {
                let service = s.service.clone().unwrap_or_default();
                s.reasons
                    .iter()
                    .map(move |r| (service.clone(), r.kind.to_string()))
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut store = shared.store.write().await;
    let outcome = if failed.is_some() {
        "failure"
    } else {
        "success"
    };
    shared
        .metrics
        .reconciled(name, outcome, trigger.as_str(), elapsed);
    for (service, reason) in &drift {
        shared.metrics.drift_corrected(name, service, reason);
    }
    // A finished teardown forgets the project, unless its folder came back
    // meanwhile (then the next reconcile applies it again).
    if kind == OperationKind::Delete && failed.is_none() && in_sync {
        let still_deleting = store.get(key).is_some_and(|p| p.deleting_since.is_some());
        if still_deleting {
            let mut finished = Finished::skipped("");
            if let Some(mut p) = store.remove(key) {
                p.reconcile.finish(result, now);
                finished = Finished::of(&p);
            }
            shared.metrics.observe(&store);
            tracing::info!(
                elapsed_ms = elapsed.as_millis() as u64,
                "project torn down; named volumes kept"
            );
            return (finished, Next::Exit);
        }
        return (
            Finished::skipped("the folder came back"),
            Next::After(Duration::ZERO, Trigger::FsWatch),
        );
    }
    let Some(p) = store.get_mut(key) else {
        shared.metrics.observe(&store);
        return (Finished::skipped("the project is gone"), Next::Exit);
    };
    p.reconcile.finish(result, now);
    let next = match &failed {
        Some(_) => {
            let n = p.reconcile.consecutive_failures;
            Next::After(
                retry_delay(n, shared.options.max_retry_delay),
                Trigger::Requeue,
            )
        }
        None if in_sync => Next::Idle,
        // Deferred restarts come due; anything else left over is looked
        // at again shortly (a plan that keeps failing to converge backs
        // off through the failure path).
        None => Next::After(
            requeue_after
                .unwrap_or(Duration::from_secs(2))
                .max(Duration::from_millis(200)),
            Trigger::Requeue,
        ),
    };
    p.reconcile.next_reconcile_at = match next {
        Next::After(d, _) => Some(now + d),
        _ => None,
    };
    refresh_conditions(p, now);
    let finished = Finished::of(p);
    match &failed {
        Some((error_kind, message)) => tracing::warn!(
            kind = %error_kind,
            error = %message,
            attempt = p.reconcile.consecutive_failures,
            retry_in_ms = p
                .reconcile
                .next_reconcile_at
                .and_then(|t| t.duration_since(now).ok())
                .map(|d| d.as_millis() as u64),
            elapsed_ms = elapsed.as_millis() as u64,
            "reconcile failed"
        ),
        None => {
            let actions = p
                .reconcile
                .operation
                .as_ref()
                .map(|o| o.plan.len())
                .unwrap_or(0);
            // A container event (each healthcheck run is one) that finds
            // nothing to do would otherwise log a line per check.
            if actions == 0 && in_sync && trigger == Trigger::Event {
                tracing::debug!(
                    actions,
                    in_sync,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "reconciled"
                );
            } else {
                tracing::info!(
                    actions,
                    in_sync,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "reconciled"
                );
            }
        }
    }
    shared.metrics.observe(&store);
    (finished, next)
}

/// Exponential backoff for failed reconciles: 1 s, 2 s, 4 s... up to `max`.
pub(super) fn retry_delay(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_cap() {
        let max = Duration::from_secs(60);
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n, max).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(1000, max), max);
    }
}
