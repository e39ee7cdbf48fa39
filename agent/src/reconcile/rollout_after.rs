//! What follows a rollout's run: the health gate, and by its verdict the
//! revision put in place, left failed, or rolled back (`rollout.rs` has
//! the whole story); and a manual rollback's revision put in place.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use berth_reconcilers::status::ServiceStatus;
use berth_spec::compose::model::Project;

use super::events_log::{InvolvedObject, NewEvent, reason};
use super::gate::{FailureAction, Gate, Verdict};
use super::revisions::{ActionRecord, RevisionState};
use super::rollout::{Blocked, GateState, InPlace, Target};
use super::rollout_records::{action_records, changed_services, config_hashes, update_revision};
use super::run::Job;
use super::status::RunResult;
use super::{Finished, Shared, digests};
use crate::timefmt::rfc3339;

/// How often the gate looks at the services (each look is a reconcile).
const GATE_POLL: Duration = Duration::from_secs(1);

/// What the worker needs to run a job and record it, handed to [`after`]
/// so a rollback can run through the same path.
pub trait Runner {
    fn run(
        &self,
        job: Job,
        revision: String,
    ) -> impl std::future::Future<Output = (Finished, super::worker::Next)> + Send;
}

/// What the worker does with its answer after [`after`].
pub enum After {
    /// Keep the run's answer and next step.
    Keep,
    /// A rollback ran: its answer replaces the run's.
    Replace((Finished, super::worker::Next)),
    /// The gate waits: reconcile again after this long (which also
    /// repairs drift meanwhile, as any reconcile).
    Poll(Duration),
}

/// After a run was recorded: events, and for a rollout one look of the
/// health gate and, once it decides, what follows. The gate is level
/// triggered: it lives in the project's state between reconciles, each
/// of which repairs what drifted and looks again (`Target::Gating`).
#[allow(clippy::too_many_arguments)]
pub async fn after(
    shared: &Shared,
    key: &str,
    name: &str,
    job: &Job,
    target: &Target,
    number: Option<u64>,
    result: &RunResult,
    old_services: &[ServiceStatus],
    started: Instant,
    runner: &impl Runner,
) -> After {
    let number = match target {
        Target::Gating(n) => Some(*n),
        _ => number,
    };
    let label = number.map(|n| format!("rev-{n}"));
    super::rollout_events::run_events(shared, name, result, old_services, label.as_deref());
    let rolling = matches!(target, Target::Fresh | Target::Gating(_));
    if let Some((_, message)) = &result.error {
        let Some(n) = number.filter(|_| rolling) else {
            return After::Keep;
        };
        // A rollout that fails half-way may have replaced containers
        // already: with `rollback`, the previous revision comes back
        // rather than an app left down while the worker retries.
        let mut touched: Vec<String> = result
            .steps
            .iter()
            .filter_map(|s| s.service.clone())
            .collect();
        touched.sort();
        touched.dedup();
        if touched.is_empty() {
            touched = job.project.services.keys().cloned().collect();
        }
        let policy = super::gate::policy(&job.project, touched, shared.options.rollout.gate);
        let previous = {
            let store = shared.store.read().await;
            store
                .get(key)
                .is_some_and(|p| p.reconcile.rollout.in_place.is_some())
        };
        if policy.failure_action == FailureAction::Rollback && previous {
            take_gate(shared, key).await;
            shared.events.emit(
                NewEvent::warning(
                    reason::ROLLOUT_FAILED,
                    InvolvedObject::project(name),
                    format!("revision rev-{n} failed to apply: {message}"),
                )
                .revision(format!("rev-{n}")),
            );
            let why = format!("apply failed: {message}");
            let actions = action_records(&result.steps);
            let elapsed = started.elapsed().as_millis() as u64;
            return roll_back(
                shared,
                key,
                name,
                job,
                n,
                why,
                actions,
                BTreeMap::new(),
                elapsed,
                runner,
            )
            .await;
        }
        let message = message.clone();
        update_revision(shared, key, name, n, move |r| {
            r.state = RevisionState::Failed;
            r.message = format!("apply failed: {message}");
        })
        .await;
        return After::Keep;
    }
    if let Target::Pinned(n) = target {
        manual_rollback_done(shared, key, name, *n).await;
        return After::Keep;
    }
    let Some(number) = number.filter(|_| rolling) else {
        return After::Keep;
    };
    let mut gate = match take_gate(shared, key).await {
        Some(g) if g.revision == number => g,
        _ => {
            let changed = changed_services(&result.steps);
            let policy = super::gate::policy(&job.project, changed, shared.options.rollout.gate);
            tracing::info!(revision = number, services = ?policy.services, timeout = ?policy.timeout,
                failure_action = policy.failure_action.as_str(), "health gate");
            let now = SystemTime::now();
            GateState {
                revision: number,
                digest: job_digest(shared, key).await,
                services: policy.services.clone(),
                started_at: now,
                deadline: now + policy.timeout,
                failure_action: policy.failure_action,
                message: String::new(),
                machine: Gate::new(policy, Instant::now()),
                actions: action_records(&result.steps),
                started,
            }
        }
    };
    let observed: &[ServiceStatus] = result
        .observation
        .as_ref()
        .map_or(&[], |o| o.services.as_slice());
    let verdict = if gate.services.is_empty() {
        Verdict::Passed
    } else {
        gate.machine.step(Instant::now(), observed)
    };
    let why = match verdict {
        Verdict::Waiting(why) => {
            gate.message = why;
            let mut store = shared.store.write().await;
            if let Some(p) = store.get_mut(key) {
                p.reconcile.rollout.gate = Some(gate);
                super::status::refresh_conditions(p, SystemTime::now());
            }
            shared.metrics.observe(&store);
            return After::Poll(GATE_POLL);
        }
        Verdict::Passed => None,
        Verdict::Failed(why) => Some(why),
    };
    let action = gate.failure_action;
    let actions = std::mem::take(&mut gate.actions);
    let hashes = config_hashes(result);
    let elapsed = gate.started.elapsed().as_millis() as u64;
    let object = InvolvedObject::project(name);
    let Some(why) = why else {
        let done = actions_done(&actions);
        put_in_place(
            shared,
            key,
            name,
            job,
            number,
            RevisionState::Applied,
            String::new(),
            actions,
            hashes,
            elapsed,
        )
        .await;
        shared.events.recover(
            &[
                reason::HEALTH_GATE_FAILED,
                reason::ROLLBACK_FAILED,
                reason::ROLLOUT_FAILED,
            ],
            NewEvent::normal(reason::REVISION_APPLIED, object.clone(), String::new()),
        );
        shared.events.emit(
            NewEvent::normal(
                reason::REVISION_APPLIED,
                object,
                format!("revision rev-{number} applied and healthy ({done} action(s))"),
            )
            .revision(format!("rev-{number}")),
        );
        return After::Keep;
    };
    shared.events.emit(
        NewEvent::warning(
            reason::HEALTH_GATE_FAILED,
            object.clone(),
            format!(
                "revision rev-{number} failed its health gate: {why}; failure_action {}",
                action.as_str()
            ),
        )
        .revision(format!("rev-{number}")),
    );
    match action {
        FailureAction::Continue => {
            let message = format!("health gate failed (failure_action continue): {why}");
            put_in_place(
                shared,
                key,
                name,
                job,
                number,
                RevisionState::Applied,
                message,
                actions,
                hashes,
                elapsed,
            )
            .await;
            After::Keep
        }
        FailureAction::Pause => {
            let message =
                format!("health gate failed; paused (failure_action pause), left in place: {why}");
            put_in_place(
                shared,
                key,
                name,
                job,
                number,
                RevisionState::Failed,
                message,
                actions,
                hashes,
                elapsed,
            )
            .await;
            After::Keep
        }
        FailureAction::Rollback => {
            let why = format!("health gate failed: {why}");
            roll_back(
                shared, key, name, job, number, why, actions, hashes, elapsed, runner,
            )
            .await
        }
    }
}

fn actions_done(actions: &[ActionRecord]) -> usize {
    actions
        .iter()
        .filter(|a| a.outcome.as_deref() == Some("done"))
        .count()
}

/// The files' revision the job applies (for the gate's identity).
async fn job_digest(shared: &Shared, key: &str) -> String {
    let store = shared.store.read().await;
    store
        .get(key)
        .and_then(|p| p.last_good.as_ref())
        .map(|g| g.revision.clone())
        .unwrap_or_default()
}

async fn take_gate(shared: &Shared, key: &str) -> Option<GateState> {
    let mut store = shared.store.write().await;
    let p = store.get_mut(key)?;
    let gate = p.reconcile.rollout.gate.take();
    super::status::refresh_conditions(p, SystemTime::now());
    gate
}

/// Drops a gate in progress (its files changed, or a manual rollback
/// came first); its revision is recorded as failed, saying why.
pub async fn abandon_gate(shared: &Shared, key: &str, name: &str, why: &str) {
    let Some(gate) = take_gate(shared, key).await else {
        return;
    };
    tracing::info!(
        revision = gate.revision,
        reason = why,
        "health gate abandoned"
    );
    let message = format!("health gate not finished: {why}");
    update_revision(shared, key, name, gate.revision, move |r| {
        r.state = RevisionState::Failed;
        r.message = message;
    })
    .await;
}

/// Marks `number` in place with `state`.
#[allow(clippy::too_many_arguments)]
async fn put_in_place(
    shared: &Shared,
    key: &str,
    name: &str,
    job: &Job,
    number: u64,
    state: RevisionState,
    message: String,
    actions: Vec<ActionRecord>,
    hashes: BTreeMap<String, String>,
    elapsed: u64,
) {
    let updated = update_revision(shared, key, name, number, move |r| {
        r.state = state;
        r.message = message;
        r.actions = actions;
        r.config_hashes = hashes;
        r.duration_ms = Some(elapsed);
        r.last_applied_at = Some(rfc3339(SystemTime::now()));
    })
    .await;
    let mut store = shared.store.write().await;
    if let Some(p) = store.get_mut(key) {
        let r = &mut p.reconcile.rollout;
        r.in_place = Some(InPlace {
            number,
            digest: updated.map(|u| u.source.digest).unwrap_or_default(),
            model: job.project.clone(),
        });
        r.blocked = None;
        r.forced = None;
        super::status::refresh_conditions(p, SystemTime::now());
    }
    shared.metrics.observe(&store);
}

/// Applies the revision in place before `failed` again and blocks
/// `failed`.
#[allow(clippy::too_many_arguments)]
async fn roll_back(
    shared: &Shared,
    key: &str,
    name: &str,
    job: &Job,
    failed: u64,
    why: String,
    actions: Vec<ActionRecord>,
    hashes: BTreeMap<String, String>,
    elapsed: u64,
    runner: &impl Runner,
) -> After {
    let object = InvolvedObject::project(name);
    let previous = {
        let store = shared.store.read().await;
        store
            .get(key)
            .and_then(|p| p.reconcile.rollout.in_place.clone())
    };
    let refused = match &previous {
        None => Some("there is no earlier revision to roll back to".to_owned()),
        Some(prev) => check_files(shared, name, prev.number, &prev.model)
            .await
            .err(),
    };
    if let Some(refused) = refused {
        let message = format!("{why}; not rolled back: {refused}");
        shared.events.emit(
            NewEvent::warning(reason::ROLLBACK_FAILED, object, message.clone())
                .revision(format!("rev-{failed}")),
        );
        put_in_place(
            shared,
            key,
            name,
            job,
            failed,
            RevisionState::Failed,
            message,
            actions,
            hashes,
            elapsed,
        )
        .await;
        return After::Keep;
    }
    let Some(prev) = previous else {
        return After::Keep;
    };
    tracing::warn!(failed = failed, to = prev.number, reason = %why, "rolling back");
    let rollback = Job {
        kind: job.kind,
        project: prev.model.clone(),
        dir: job.dir.clone(),
        remove_orphans: job.remove_orphans,
        trigger: super::Trigger::Rollback,
        rollout: Target::Current(prev.number),
    };
    let answer = runner.run(rollback, prev.digest.clone()).await;
    let ok = answer
        .0
        .operation
        .as_ref()
        .is_some_and(|o| o.phase == super::status::OperationPhase::Succeeded);
    let digest = {
        let store = shared.store.read().await;
        store
            .get(key)
            .and_then(|p| {
                p.reconcile
                    .rollout
                    .history
                    .iter()
                    .find(|r| r.number == failed)
            })
            .map(|r| r.source.digest.clone())
            .unwrap_or_default()
    };
    let message = format!("{why}; rolled back to rev-{}", prev.number);
    let to = prev.number;
    // Blocked first: whoever sees the record rolled back sees the block.
    {
        let mut store = shared.store.write().await;
        if let Some(p) = store.get_mut(key) {
            p.reconcile.rollout.blocked = Some(Blocked {
                number: failed,
                digest,
                message: message.clone(),
            });
            super::status::refresh_conditions(p, SystemTime::now());
        }
        shared.metrics.observe(&store);
    }
    let record_message = message.clone();
    update_revision(shared, key, name, failed, move |r| {
        r.state = RevisionState::RolledBack;
        r.message = record_message;
        r.rolled_back_to = Some(to);
        r.actions = actions;
        r.config_hashes = hashes;
        r.duration_ms = Some(elapsed);
    })
    .await;
    if ok {
        update_revision(shared, key, name, to, |r| {
            r.last_applied_at = Some(rfc3339(SystemTime::now()));
            r.reconciliations += 1;
        })
        .await;
    }
    shared.metrics.rolled_back(name, "automatic");
    let event = if ok {
        NewEvent::normal(reason::ROLLED_BACK, object, message)
    } else {
        NewEvent::warning(
            reason::ROLLBACK_FAILED,
            object,
            format!("{message}, but applying rev-{to} failed; the worker retries it"),
        )
    };
    shared.events.emit(event.revision(format!("rev-{to}")));
    After::Replace(answer)
}

/// `Err` naming the config and secret files of revision `number` whose
/// content changed since it was applied.
pub async fn check_files(
    shared: &Shared,
    name: &str,
    number: u64,
    model: &Project,
) -> Result<(), String> {
    let revisions = shared.revisions.clone();
    let options = shared.options.rollout.clone();
    let model = model.clone();
    let name = name.to_owned();
    let changed = tokio::task::spawn_blocking(move || {
        let current = digests::file_digests(&model);
        revisions.with(&options, &name, |s| {
            Ok(s.get(number).map(|r| r.changed_files(&current)))
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    match changed {
        None => Err(format!("revision rev-{number} is no longer kept")),
        Some(files) if files.is_empty() => Ok(()),
        Some(files) => Err(format!(
            "rev-{number} needs config/secret files whose content changed since: {} \
             (their content is not kept, only digests); restore them or edit the compose files instead",
            files.join(", ")
        )),
    }
}

/// A pinned revision ran: it is in place now.
async fn manual_rollback_done(shared: &Shared, key: &str, name: &str, number: u64) {
    let already = {
        let store = shared.store.read().await;
        store
            .get(key)
            .and_then(|p| p.reconcile.rollout.in_place.as_ref())
            .is_some_and(|i| i.number == number)
    };
    if already {
        return;
    }
    let updated = update_revision(shared, key, name, number, |r| {
        r.last_applied_at = Some(rfc3339(SystemTime::now()));
        r.reconciliations += 1;
    })
    .await;
    let Some(updated) = updated else { return };
    {
        let mut store = shared.store.write().await;
        if let Some(p) = store.get_mut(key) {
            p.reconcile.rollout.in_place = Some(InPlace {
                number,
                digest: updated.source.digest.clone(),
                model: updated.model.clone(),
            });
            super::status::refresh_conditions(p, SystemTime::now());
        }
    }
    shared.metrics.rolled_back(name, "manual");
    shared.events.emit(
        NewEvent::normal(
            reason::ROLLED_BACK,
            InvolvedObject::project(name),
            format!("rolled back by hand to rev-{number}; pinned until the files change or the project is resumed"),
        )
        .revision(format!("rev-{number}")),
    );
}
