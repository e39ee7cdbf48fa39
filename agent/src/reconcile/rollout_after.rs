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

/// How often the gate looks at the services.
const GATE_POLL: Duration = Duration::from_millis(500);

/// What the worker needs to run a job and record it, handed to [`after`]
/// so a rollback can run through the same path.
pub trait Runner {
    fn run(
        &self,
        job: Job,
        revision: String,
    ) -> impl std::future::Future<Output = (Finished, super::worker::Next)> + Send;
}

/// After a run was recorded: events, and for a rollout the gate and what
/// follows it. Returns a replacement answer when it ran a rollback.
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
) -> Option<(Finished, super::worker::Next)> {
    let label = number.map(|n| format!("rev-{n}"));
    super::rollout_events::run_events(shared, name, result, old_services, label.as_deref());
    if let Some((_, message)) = &result.error {
        // A rollout that fails half-way may have replaced containers
        // already: with `rollback`, the previous revision comes back
        // rather than an app left down while the worker retries.
        if let (Target::Fresh, Some(n)) = (target, number) {
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
        }
        if let Some(n) = number {
            let message = message.clone();
            update_revision(shared, key, name, n, move |r| {
                r.state = RevisionState::Failed;
                r.message = format!("apply failed: {message}");
            })
            .await;
        }
        return None;
    }
    match target {
        Target::Fresh => {}
        Target::Pinned(n) => {
            manual_rollback_done(shared, key, name, *n).await;
            return None;
        }
        _ => return None,
    }
    let number = number?;
    let changed = changed_services(&result.steps);
    let policy = super::gate::policy(&job.project, changed, shared.options.rollout.gate);
    let action = policy.failure_action;
    let verdict = run_gate(shared, key, &job.project, number, policy).await;
    let actions = action_records(&result.steps);
    let hashes = config_hashes(result);
    let elapsed = started.elapsed().as_millis() as u64;
    let object = InvolvedObject::project(name);
    let failure = match verdict {
        Verdict::Passed => None,
        Verdict::Failed(why) => Some(why),
        Verdict::Waiting(why) => Some(why),
    };
    let Some(why) = failure else {
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
                format!(
                    "revision rev-{number} applied and healthy ({} action(s))",
                    result.steps.len()
                ),
            )
            .revision(format!("rev-{number}")),
        );
        return None;
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
            None
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
            None
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

/// Watches the changed services until the gate decides.
async fn run_gate(
    shared: &Shared,
    key: &str,
    model: &Project,
    number: u64,
    policy: super::gate::GatePolicy,
) -> Verdict {
    if policy.services.is_empty() {
        return Verdict::Passed;
    }
    let now = SystemTime::now();
    let mut gate = Gate::new(policy.clone(), Instant::now());
    let set_state = |message: String| GateState {
        revision: number,
        services: policy.services.clone(),
        started_at: now,
        deadline: now + policy.timeout,
        failure_action: policy.failure_action,
        message,
    };
    tracing::info!(services = ?policy.services, timeout = ?policy.timeout, failure_action = policy.failure_action.as_str(), "health gate");
    {
        let mut store = shared.store.write().await;
        if let Some(p) = store.get_mut(key) {
            p.reconcile.rollout.gate = Some(set_state("waiting for the first look".into()));
            super::status::refresh_conditions(p, SystemTime::now());
        }
    }
    let verdict = loop {
        let host = shared.host.clone();
        let project = model.clone();
        let observed =
            tokio::task::spawn_blocking(move || super::observe_services(&*host, &project))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
        let verdict = match observed {
            Ok(services) => gate.step(Instant::now(), &services),
            Err(e) => gate
                .step(Instant::now(), &[])
                .map_waiting(|w| format!("{w}; cannot observe: {e}")),
        };
        match verdict {
            Verdict::Waiting(why) => {
                let mut store = shared.store.write().await;
                if let Some(p) = store.get_mut(key)
                    && let Some(g) = &mut p.reconcile.rollout.gate
                {
                    g.message = why;
                }
                drop(store);
                tokio::time::sleep(GATE_POLL).await;
            }
            done => break done,
        }
    };
    let mut store = shared.store.write().await;
    if let Some(p) = store.get_mut(key) {
        p.reconcile.rollout.gate = None;
        super::status::refresh_conditions(p, SystemTime::now());
    }
    verdict
}

impl Verdict {
    fn map_waiting(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Verdict::Waiting(w) => Verdict::Waiting(f(w)),
            other => other,
        }
    }
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
) -> Option<(Finished, super::worker::Next)> {
    let object = InvolvedObject::project(name);
    let previous = {
        let store = shared.store.read().await;
        store.get(key)?.reconcile.rollout.in_place.clone()
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
        return None;
    }
    let prev = previous?;
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
    Some(answer)
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
