//! Rollouts: what the worker does around a run so that a bad revision
//! does not stay up, and is not applied again and again.
//!
//! A reconcile whose last good model is not the revision in place is a
//! rollout ([`Target::Fresh`]): a revision record is written before it
//! runs (`revisions.rs`), and once the run succeeded the services it
//! changed go through the health gate (`gate.rs`). Passed: the revision
//! is `Applied` and in place. Failed: by `failure_action`, the previous
//! good revision is applied again (`rollback`, the default; only what
//! differs is touched, in dependency order, as any plan), the new one is
//! left in place as `Failed` (`pause`), or kept as `Applied` (`continue`).
//! A rolled back revision is *blocked*: later reconciles apply the
//! revision in place instead ([`Target::Blocked`]) until the files change
//! again or a reconcile is forced (`?force=true`).
//!
//! A manual rollback pins the project to a revision ([`Target::Pinned`])
//! until the files change or the project is resumed.
//!
//! The worker calls [`prepare`] before deciding, [`begin`] before a run
//! and [`after`] once its result is recorded.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use berth_reconcilers::status::ServiceStatus;
use berth_spec::compose::model::Project;

use super::events_log::{InvolvedObject, NewEvent, reason};
use super::gate::{FailureAction, Gate, GateDefaults, Verdict};
use super::revisions::{
    ActionRecord, Pin, Revision, RevisionError, RevisionState, RevisionStore, Source,
};
use super::run::Job;
use super::status::{RunResult, StepState};
use super::{Finished, Shared, digests};
use crate::state::LastGood;
use crate::timefmt::rfc3339;

/// How often the gate looks at the services.
const GATE_POLL: Duration = Duration::from_millis(500);

/// What a reconcile applies, as the rollout sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// Not a rollout: deletion, sweep, or revisions are not kept.
    #[default]
    None,
    /// The files' model, not yet the revision in place: a rollout.
    Fresh,
    /// The revision in place (number), repaired.
    Current(u64),
    /// The files' revision was rolled back: the one in place is kept.
    Blocked { failed: u64, in_place: u64 },
    /// A manual rollback's revision.
    Pinned(u64),
}

/// The revision running now.
#[derive(Debug, Clone)]
pub struct InPlace {
    pub number: u64,
    pub digest: String,
    pub model: Project,
}

/// A revision the files still name and that was rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub number: u64,
    pub digest: String,
    pub message: String,
}

/// The health gate while it runs, for the status.
#[derive(Debug, Clone)]
pub struct GateState {
    pub revision: u64,
    pub services: Vec<String>,
    pub started_at: SystemTime,
    pub deadline: SystemTime,
    pub failure_action: FailureAction,
    pub message: String,
}

/// A project's rollout state (in its `ReconcileState`).
#[derive(Debug, Clone, Default)]
pub struct RolloutState {
    /// The project name the revisions were read for.
    pub loaded_for: Option<String>,
    pub in_place: Option<InPlace>,
    pub blocked: Option<Blocked>,
    /// `?force=true`: apply this revision even if it is blocked.
    pub forced: Option<String>,
    pub pin: Option<(Pin, Project)>,
    /// The revisions, newest first, without their models.
    pub history: Vec<Revision>,
    pub gate: Option<GateState>,
}

impl RolloutState {
    /// The revision number of the files' model, when recorded.
    pub fn desired(&self, good: Option<&LastGood>) -> Option<u64> {
        let good = good?;
        self.history
            .iter()
            .find(|r| r.source.digest == good.revision)
            .map(|r| r.number)
    }

    /// Whether the pin still holds for the files' `revision`.
    fn pin_holds(&self, revision: &str) -> Option<(u64, &Project)> {
        self.pin
            .as_ref()
            .filter(|(pin, _)| pin.files_digest == revision)
            .map(|(pin, model)| (pin.number, model))
    }
}

/// The rollout's options, from the agent's flags.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// `<root>/agent/projects`; `None`: no revisions, no gate.
    pub dir: Option<PathBuf>,
    pub keep: usize,
    pub gate: GateDefaults,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        Self {
            dir: None,
            keep: super::revisions::DEFAULT_KEEP,
            gate: GateDefaults::default(),
        }
    }
}

/// Every project's revision store, opened on first use.
#[derive(Default)]
pub struct Revisions {
    stores: Mutex<HashMap<String, RevisionStore>>,
}

impl Revisions {
    /// Runs `f` on the project's store (blocking I/O: call from a
    /// blocking thread).
    pub fn with<T>(
        &self,
        options: &RolloutOptions,
        name: &str,
        f: impl FnOnce(&mut RevisionStore) -> Result<T, RevisionError>,
    ) -> Result<T, RevisionError> {
        let Some(dir) = &options.dir else {
            return Err(RevisionError::BadName(
                "revisions are not kept by this agent".into(),
            ));
        };
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if !stores.contains_key(name) {
            let store = RevisionStore::open(dir, name, options.keep)?;
            stores.insert(name.to_owned(), store);
        }
        match stores.get_mut(name) {
            Some(store) => f(store),
            None => Err(RevisionError::BadName(name.to_owned())),
        }
    }
}

/// The models stripped: what the status keeps.
pub fn summaries(store: &RevisionStore) -> Vec<Revision> {
    store
        .list()
        .map(|r| Revision {
            model: Project::default(),
            ..r.clone()
        })
        .collect()
}

fn in_place_of(store: &RevisionStore) -> Option<InPlace> {
    store.in_place().map(|r| InPlace {
        number: r.number,
        digest: r.source.digest.clone(),
        model: r.model.clone(),
    })
}

/// What a reconcile of `good` applies: the pinned revision, the revision
/// in place when the files' one was rolled back, or the files' model.
pub fn target<'a>(r: &'a RolloutState, good: &'a LastGood) -> (Target, &'a Project, &'a str) {
    if let Some((number, model)) = r.pin_holds(&good.revision) {
        let digest = r
            .history
            .iter()
            .find(|h| h.number == number)
            .map_or(good.revision.as_str(), |h| h.source.digest.as_str());
        return (Target::Pinned(number), model, digest);
    }
    let Some(in_place) = &r.in_place else {
        return (Target::Fresh, &good.project, &good.revision);
    };
    if in_place.digest == good.revision {
        return (
            Target::Current(in_place.number),
            &good.project,
            &good.revision,
        );
    }
    if let Some(blocked) = &r.blocked
        && blocked.digest == good.revision
        && r.forced.as_deref() != Some(good.revision.as_str())
    {
        return (
            Target::Blocked {
                failed: blocked.number,
                in_place: in_place.number,
            },
            &in_place.model,
            &in_place.digest,
        );
    }
    (Target::Fresh, &good.project, &good.revision)
}

/// Before deciding: read the project's revisions (once per name), drop a
/// pin or block the files no longer match, and report the manifest's
/// state as an event.
pub async fn prepare(shared: &Shared, key: &str) {
    let (name, loaded, manifest) = {
        let store = shared.store.read().await;
        let Some(p) = store.get(key) else { return };
        let manifest = match p.load_errors.first() {
            Some(first) => Some(Err((first.to_string(), p.load_errors.len()))),
            None => p.last_good.as_ref().map(|_| Ok(())),
        };
        (
            p.name.clone(),
            p.reconcile.rollout.loaded_for.clone(),
            manifest,
        )
    };
    let object = InvolvedObject::project(&name);
    match manifest {
        Some(Err((first, count))) => {
            shared.events.emit(NewEvent::warning(
                reason::MANIFEST_INVALID,
                object,
                format!(
                    "{count} error(s) in the compose files; the last good model is kept: {first}"
                ),
            ));
        }
        Some(Ok(())) => {
            shared.events.recover(
                &[reason::MANIFEST_INVALID],
                NewEvent::normal(
                    reason::MANIFEST_VALID,
                    object,
                    "the compose files are valid again".into(),
                ),
            );
        }
        None => {}
    }
    if shared.options.rollout.dir.is_none() || loaded.as_deref() == Some(name.as_str()) {
        tidy(shared, key).await;
        return;
    }
    let revisions = shared.revisions.clone();
    let options = shared.options.rollout.clone();
    let read_name = name.clone();
    let read = tokio::task::spawn_blocking(move || {
        let pin = options
            .dir
            .as_deref()
            .and_then(|d| super::revisions::load_pin(d, &read_name));
        revisions.with(&options, &read_name, |s| {
            let pin = pin.and_then(|pin| Some((pin.clone(), s.get(pin.number)?.model.clone())));
            let blocked = s
                .latest()
                .filter(|r| r.state == RevisionState::RolledBack)
                .map(|r| Blocked {
                    number: r.number,
                    digest: r.source.digest.clone(),
                    message: r.message.clone(),
                });
            Ok((in_place_of(s), blocked, pin, summaries(s)))
        })
    })
    .await;
    let mut store = shared.store.write().await;
    let Some(p) = store.get_mut(key) else { return };
    let r = &mut p.reconcile.rollout;
    match read {
        Ok(Ok((in_place, blocked, pin, history))) => {
            r.in_place = in_place;
            r.blocked = blocked;
            r.pin = pin;
            r.history = history;
        }
        Ok(Err(e)) => {
            tracing::warn!(project = %name, error = %e, "cannot read the project's revisions; starting a new history")
        }
        Err(e) => tracing::warn!(project = %name, error = %e, "reading revisions failed"),
    }
    r.loaded_for = Some(name);
    drop(store);
    tidy(shared, key).await;
}

/// A pin or block whose files changed since no longer holds.
async fn tidy(shared: &Shared, key: &str) {
    let stale_pin = {
        let mut store = shared.store.write().await;
        let Some(p) = store.get_mut(key) else { return };
        let Some(revision) = p.last_good.as_ref().map(|g| g.revision.clone()) else {
            return;
        };
        let r = &mut p.reconcile.rollout;
        if r.blocked.as_ref().is_some_and(|b| b.digest != revision) {
            r.blocked = None;
        }
        if r.forced.as_ref().is_some_and(|f| *f != revision) {
            r.forced = None;
        }
        let stale = r
            .pin
            .as_ref()
            .is_some_and(|(pin, _)| pin.files_digest != revision);
        if stale {
            r.pin = None;
            tracing::info!(project = %p.name, "the files changed: the manual rollback's pin is lifted");
        }
        stale.then(|| p.name.clone())
    };
    if let Some(name) = stale_pin {
        clear_pin_file(shared, &name).await;
    }
}

pub async fn clear_pin_file(shared: &Shared, name: &str) {
    let Some(dir) = shared.options.rollout.dir.clone() else {
        return;
    };
    let name = name.to_owned();
    let done =
        tokio::task::spawn_blocking(move || super::revisions::save_pin(&dir, &name, None)).await;
    if let Ok(Err(e)) = done {
        tracing::warn!(error = %e, "cannot remove the rollback pin");
    }
}

/// Before a fresh rollout runs: its revision record, `Progressing` (a
/// retry of the same files, or a forced one after a rollback, reuses the
/// newest record when it has the same files). Returns its number.
pub async fn begin(shared: &Shared, key: &str, job: &Job) -> Option<u64> {
    let (name, revision, tracked) = {
        let store = shared.store.read().await;
        let p = store.get(key)?;
        let good = p.last_good.as_ref()?;
        (p.name.clone(), good.revision.clone(), p.tracked.clone())
    };
    let revisions = shared.revisions.clone();
    let options = shared.options.rollout.clone();
    let model = job.project.clone();
    let dir = job.dir.display().to_string();
    let store_name = name.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let now = rfc3339(SystemTime::now());
        let file_digests = digests::file_digests(&model);
        let files = super::revisions::source_files(&tracked);
        revisions.with(&options, &store_name, |s| {
            let retry = s
                .latest()
                .filter(|r| r.source.digest == revision)
                .filter(|r| r.state != RevisionState::Applied)
                .map(|r| r.number);
            let number = match retry {
                Some(n) => {
                    s.update(n, |r| {
                        r.state = RevisionState::Progressing;
                        r.rolled_back_to = None;
                        r.updated_at = now.clone();
                        r.reconciliations += 1;
                        r.model = model;
                        r.file_digests = file_digests;
                    })?;
                    n
                }
                None => {
                    let n = s.next_number();
                    s.insert(Revision {
                        number: n,
                        created_at: now.clone(),
                        updated_at: now,
                        last_applied_at: None,
                        state: RevisionState::Progressing,
                        message: String::new(),
                        rolled_back_to: None,
                        reconciliations: 1,
                        duration_ms: None,
                        source: Source {
                            digest: revision,
                            dir,
                            files,
                            commit: None,
                        },
                        file_digests,
                        config_hashes: BTreeMap::new(),
                        actions: Vec::new(),
                        model,
                    })?;
                    n
                }
            };
            Ok((number, summaries(s)))
        })
    })
    .await;
    match recorded {
        Ok(Ok((number, history))) => {
            let mut store = shared.store.write().await;
            if let Some(p) = store.get_mut(key) {
                p.reconcile.rollout.history = history;
            }
            Some(number)
        }
        Ok(Err(e)) => {
            tracing::warn!(project = %name, error = %e, "cannot record the revision; applying it without a history entry");
            None
        }
        Err(e) => {
            tracing::warn!(project = %name, error = %e, "recording the revision failed");
            None
        }
    }
}

/// Updates revision `number` on a blocking thread and refreshes the
/// status's copy of the history.
async fn update_revision(
    shared: &Shared,
    key: &str,
    name: &str,
    number: u64,
    change: impl FnOnce(&mut Revision) + Send + 'static,
) -> Option<Revision> {
    let revisions = shared.revisions.clone();
    let options = shared.options.rollout.clone();
    let store_name = name.to_owned();
    let done = tokio::task::spawn_blocking(move || {
        revisions.with(&options, &store_name, |s| {
            let now = rfc3339(SystemTime::now());
            let updated = s
                .update(number, |r| {
                    r.updated_at = now;
                    change(r);
                })?
                .cloned();
            Ok((updated, summaries(s)))
        })
    })
    .await;
    match done {
        Ok(Ok((updated, history))) => {
            let mut store = shared.store.write().await;
            if let Some(p) = store.get_mut(key) {
                p.reconcile.rollout.history = history;
            }
            updated
        }
        Ok(Err(e)) => {
            tracing::warn!(project = %name, revision = number, error = %e, "cannot update the revision record");
            None
        }
        Err(e) => {
            tracing::warn!(project = %name, error = %e, "updating the revision failed");
            None
        }
    }
}

pub fn action_records(steps: &[StepState]) -> Vec<ActionRecord> {
    steps
        .iter()
        .map(|s| ActionRecord {
            service: s.service.clone(),
            action: s.action.to_owned(),
            target: s.target.clone(),
            reasons: s
                .reasons
                .iter()
                .map(|r| format!("{}: {}", r.kind, r.message))
                .collect(),
            outcome: s.outcome.clone(),
        })
        .collect()
}

fn config_hashes(result: &RunResult) -> BTreeMap<String, String> {
    result
        .observation
        .iter()
        .flat_map(|o| o.services.iter())
        .map(|s| (s.name.clone(), s.config_hash.clone()))
        .collect()
}

/// The services whose containers a run created, replaced or started:
/// what the gate watches.
pub fn changed_services(steps: &[StepState]) -> Vec<String> {
    let mut out: Vec<String> = steps
        .iter()
        .filter(|s| s.outcome.as_deref() == Some("done"))
        .filter(|s| {
            matches!(
                s.action,
                "CreateContainer" | "Recreate" | "StartContainer" | "RestartContainer"
            )
        })
        .filter_map(|s| s.service.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

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
            &[reason::HEALTH_GATE_FAILED, reason::ROLLBACK_FAILED],
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
    }
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
        let message = format!("health gate failed: {why}; not rolled back: {refused}");
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
    let message = format!(
        "health gate failed: {why}; rolled back to rev-{}",
        prev.number
    );
    let to = prev.number;
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
    {
        let mut store = shared.store.write().await;
        if let Some(p) = store.get_mut(key) {
            p.reconcile.rollout.blocked = Some(Blocked {
                number: failed,
                digest,
                message: message.clone(),
            });
        }
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
