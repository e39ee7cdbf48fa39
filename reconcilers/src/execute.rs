//! The executor: runs a [`Plan`] against the [`Backends`], wave by wave.
//!
//! Lifecycle: [`observe`] reads the state, `plan::plan` diffs it,
//! [`execute`] acts, and [`converge`] repeats the three until a plan comes
//! out empty (or only deferred). Within a wave every action runs (they are
//! independent: with [`ExecuteOptions::parallelism`] above 1, several at
//! once on scoped threads); a failure stops the plan after its wave, and everything
//! later is reported `Skipped`. An action whose not-before time has not come
//! (restart backoff) is `Deferred`, with the actions after it; the rest of
//! the plan goes on, so one crash-looping service does not starve the
//! others, and [`Report::requeue_after`] says when to come back.
//!
//! Idempotence: each step tolerates the state a crash may have left. A
//! removal or stop of something already gone succeeds; creating a volume or
//! network that exists succeeds; a container create that finds its name
//! taken fails, and the next plan, which sees that container, adopts it.
//! Since planning only compares states, a re-plan after a crash at any
//! point converges with no duplicates.
//!
//! Waiting on `depends_on` conditions polls `ContainerRuntime::list`
//! through an injected [`Clock`], so tests advance time instead of sleeping.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use berth_spec::compose::model::Project;
use serde::Serialize;

use crate::container::ContainerSpec;
use crate::error::{BackendError, Error, ErrorKind};
use crate::observed::{ContainerState, Health, Observed, ObservedContainer};
use crate::order::Condition;
use crate::plan::{Action, Plan, PlanOptions, PlannedAction, WaitFor};
use crate::traits::Backends;

/// Time, injected.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
    fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// How long to wait for one `depends_on` condition.
    pub wait_timeout: Duration,
    pub poll_interval: Duration,
    /// How many actions of one wave run at once, each on a thread of its
    /// own (they are independent by construction). 1, the default, runs
    /// them one after the other on the caller's thread.
    pub parallelism: usize,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self {
            wait_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(500),
            parallelism: 1,
        }
    }
}

/// How one action ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Outcome {
    Done,
    /// Not yet due (restart backoff), or after an action that was not.
    Deferred {
        until: SystemTime,
    },
    /// Not run: an action it comes after, or an earlier wave, failed.
    Skipped {
        reason: String,
    },
    Failed {
        kind: ErrorKind,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    pub id: usize,
    pub action: &'static str,
    pub target: String,
    pub service: Option<String>,
    pub outcome: Outcome,
}

/// Per-action results, in plan order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub results: Vec<ActionResult>,
    pub requeue_after: Option<Duration>,
}

impl Report {
    /// No action failed or was skipped (deferred ones are fine).
    pub fn succeeded(&self) -> bool {
        self.results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Done | Outcome::Deferred { .. }))
    }

    pub fn failures(&self) -> impl Iterator<Item = &ActionResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
    }

    pub fn done(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Done)
            .count()
    }
}

/// Reads what the planner compares: the project's containers, all volumes
/// and networks, and the local digest of every image the project names.
pub fn observe(desired: &Project, backends: Backends<'_>) -> Result<Observed, Error> {
    let containers = backends
        .runtime
        .list(&desired.name)
        .map_err(|e| Error::backend("list containers of", &desired.name, e))?;
    let volumes = backends
        .volumes
        .list()
        .map_err(|e| Error::backend("list", "volumes", e))?;
    let networks = backends
        .networks
        .list()
        .map_err(|e| Error::backend("list", "networks", e))?;
    let mut images = BTreeMap::new();
    let mut stale_builds = BTreeMap::new();
    for (name, service) in &desired.services {
        let reference = crate::desired::image_reference(&desired.name, name, service);
        if images.contains_key(&reference) {
            continue;
        }
        let digest = backends
            .images
            .resolve(&reference)
            .map_err(|e| Error::backend("resolve image", &reference, e))?;
        let Some(d) = digest else {
            continue;
        };
        images.insert(reference.clone(), d);
        if let Some(build) = &service.build {
            let request = crate::desired::build_request(desired, name, &reference, build);
            match backends.images.build_stale(&request) {
                Ok(Some(why)) => {
                    stale_builds.insert(reference, why);
                }
                Ok(None) => {}
                // An unreadable context (a project folder being deleted,
                // a verb that does not build) is no reason to fail
                // observing: the image is taken as it is, and a build, if
                // one is planned, says what is wrong.
                Err(e) => {
                    tracing::debug!(service = %name, error = %e, "cannot tell whether the image is stale")
                }
            }
        }
    }
    Ok(Observed {
        containers,
        volumes,
        networks,
        images,
        stale_builds,
    })
}

/// Runs `plan`. Never panics on backend errors: they land in the report.
pub fn execute(
    plan: &Plan,
    backends: Backends<'_>,
    clock: &dyn Clock,
    options: &ExecuteOptions,
) -> Report {
    let span = tracing::info_span!("execute", project = %plan.project);
    let _enter = span.enter();
    let mut run = Run {
        plan,
        backends,
        clock,
        options,
        digests: BTreeMap::new(),
        outcomes: vec![None; plan.actions.len()],
    };
    let mut failed_wave = None;
    for (index, wave) in plan.waves().into_iter().enumerate() {
        let results: Vec<(usize, Outcome, Option<Pulled>)> = match failed_wave {
            Some(w) => wave
                .iter()
                .map(|a| {
                    let reason = format!("wave {w} failed");
                    (a.id, Outcome::Skipped { reason }, None)
                })
                .collect(),
            None => run.wave(&wave),
        };
        for (id, outcome, pulled) in results {
            if matches!(outcome, Outcome::Failed { .. }) {
                failed_wave.get_or_insert(index);
            }
            if let Some((reference, digest)) = pulled {
                run.digests.insert(reference, digest);
            }
            run.outcomes[id] = Some(outcome);
        }
    }
    let now = clock.now();
    let results: Vec<ActionResult> = plan
        .actions
        .iter()
        .map(|a| ActionResult {
            id: a.id,
            action: a.action.kind(),
            target: a.action.target().to_string(),
            service: a.service.clone(),
            outcome: run.outcomes[a.id].clone().unwrap_or(Outcome::Skipped {
                reason: "not reached".into(),
            }),
        })
        .collect();
    let requeue_after = results
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Deferred { until } => Some(until.duration_since(now).unwrap_or_default()),
            _ => None,
        })
        .min();
    Report {
        results,
        requeue_after,
    }
}

/// Observe, plan, execute, until a plan is empty, fails, or makes no
/// progress (only deferred actions); at most `max_rounds` rounds. `--build`,
/// `pull_policy: build`, image refreshes and `--force-recreate` apply to the first round only:
/// the rounds after it converge on what that one produced. Returns each
/// round's plan and report.
pub fn converge(
    desired: &Project,
    backends: Backends<'_>,
    clock: &dyn Clock,
    plan_options: &PlanOptions,
    options: &ExecuteOptions,
    max_rounds: usize,
) -> Result<Vec<(Plan, Report)>, Error> {
    let mut rounds = Vec::new();
    let mut plan_options = plan_options.clone();
    for _ in 0..max_rounds {
        let observed = observe(desired, backends)?;
        plan_options.now = clock.now();
        let plan = crate::plan::plan(desired, &observed, &plan_options)?;
        if plan.is_empty() {
            break;
        }
        let report = execute(&plan, backends, clock, options);
        let stop = !report.succeeded() || report.done() == 0;
        rounds.push((plan, report));
        if stop {
            break;
        }
        plan_options.build = false;
        plan_options.build_policy = false;
        plan_options.refresh_images = false;
        plan_options.force_recreate = false;
    }
    Ok(rounds)
}

struct Run<'a> {
    plan: &'a Plan,
    backends: Backends<'a>,
    clock: &'a dyn Clock,
    options: &'a ExecuteOptions,
    /// Digests pulled or built in this run, by reference.
    digests: BTreeMap<String, String>,
    outcomes: Vec<Option<Outcome>>,
}

/// An image reference and the digest a pull or build in this run gave it.
type Pulled = (String, String);

impl Run<'_> {
    /// Runs one wave's actions, `parallelism` at a time; their outcomes
    /// in the wave's order.
    fn wave(&self, wave: &[&PlannedAction]) -> Vec<(usize, Outcome, Option<Pulled>)> {
        // `update_config.delay` between batches: once per wave, before
        // it, so a batch's replacements still run side by side.
        if let Some(delay) = wave.iter().map(|a| a.delay).max().filter(|d| !d.is_zero()) {
            tracing::info!(?delay, "waiting before the next batch of replacements");
            self.clock.sleep(delay);
        }
        let width = self.options.parallelism.max(1);
        if width == 1 || wave.len() == 1 {
            return wave
                .iter()
                .map(|a| {
                    let (outcome, pulled) = self.one(a);
                    (a.id, outcome, pulled)
                })
                .collect();
        }
        let mut out = Vec::with_capacity(wave.len());
        for chunk in wave.chunks(width) {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|a| (a.id, scope.spawn(move || self.one(a))))
                    .collect();
                for (id, handle) in handles {
                    let (outcome, pulled) = handle.join().unwrap_or_else(|_| {
                        (
                            Outcome::Failed {
                                kind: ErrorKind::Internal,
                                message: "the action's thread panicked".to_owned(),
                            },
                            None,
                        )
                    });
                    out.push((id, outcome, pulled));
                }
            });
        }
        out
    }

    fn one(&self, a: &PlannedAction) -> (Outcome, Option<Pulled>) {
        let mut pulled = None;
        let outcome = self.outcome(a, &mut pulled);
        (outcome, pulled)
    }

    fn outcome(&self, a: &PlannedAction, pulled: &mut Option<Pulled>) -> Outcome {
        let span = tracing::info_span!(
            "action",
            project = %self.plan.project,
            service = a.service.as_deref().unwrap_or(""),
            action = a.action.kind(),
            target = %a.action.target(),
        );
        let _enter = span.enter();
        for dep in &a.after {
            match self.outcomes.get(*dep).cloned().flatten() {
                Some(Outcome::Done) => {}
                Some(Outcome::Deferred { until }) => return Outcome::Deferred { until },
                _ => {
                    let line = self.plan.actions.get(*dep).map(PlannedAction::line);
                    return Outcome::Skipped {
                        reason: format!("{} did not complete", line.unwrap_or_default()),
                    };
                }
            }
        }
        if let Some(until) = a.not_before {
            if until > self.clock.now() {
                tracing::info!(reason = ?a.reason_kinds(), ?until, "deferred");
                return Outcome::Deferred { until };
            }
        }
        let result = self
            .wait_all(a)
            .and_then(|()| self.perform(&a.action, pulled));
        match result {
            Ok(()) => {
                tracing::info!(reason = ?a.reason_kinds(), "done");
                Outcome::Done
            }
            Err(e) => {
                tracing::warn!(reason = ?a.reason_kinds(), error = %e, kind = %e.kind(), "failed");
                Outcome::Failed {
                    kind: e.kind(),
                    message: error_chain(&e),
                }
            }
        }
    }

    fn perform(&self, action: &Action, pulled: &mut Option<Pulled>) -> Result<(), Error> {
        let b = self.backends;
        match action {
            Action::PullImage { reference } => {
                let digest = b
                    .images
                    .pull(reference)
                    .map_err(|e| Error::backend("pull", reference, e))?;
                *pulled = Some((reference.clone(), digest));
            }
            Action::BuildImage { request } => {
                let digest = b
                    .images
                    .build(request)
                    .map_err(|e| Error::backend("build", &request.reference, e))?;
                *pulled = Some((request.reference.clone(), digest));
            }
            Action::CreateVolume { spec } => {
                tolerate(b.volumes.create(spec), ErrorKind::AlreadyExists)
                    .map_err(|e| Error::backend("create volume", &spec.name, e))?;
            }
            Action::CreateNetwork { spec } => {
                tolerate(b.networks.create(spec), ErrorKind::AlreadyExists)
                    .map_err(|e| Error::backend("create network", &spec.name, e))?;
            }
            Action::CreateContainer { spec, start } => self.create(spec, *start)?,
            Action::StartContainer { target } => b
                .runtime
                .start(&target.id)
                .map_err(|e| Error::backend("start", &target.name, e))?,
            Action::StopContainer {
                target,
                grace,
                signal,
            } => self.stop(&target.id, &target.name, *grace, signal.as_deref())?,
            Action::RestartContainer {
                target,
                grace,
                signal,
            } => {
                self.stop(&target.id, &target.name, *grace, signal.as_deref())?;
                b.runtime
                    .start(&target.id)
                    .map_err(|e| Error::backend("start", &target.name, e))?;
            }
            Action::RemoveContainer {
                target,
                grace,
                signal,
            } => self.remove(&target.id, &target.name, *grace, signal.as_deref())?,
            Action::Recreate {
                old,
                grace,
                signal,
                spec,
                start,
            } => {
                self.remove(&old.id, &old.name, *grace, signal.as_deref())?;
                self.create(spec, *start)?;
            }
            Action::Replace {
                old,
                grace,
                signal,
                spec,
                gate,
            } => {
                let spec = self.finish(spec)?;
                crate::replace::replace(
                    self.backends.runtime,
                    self.clock,
                    self.options.poll_interval,
                    &crate::replace::Replacement {
                        old,
                        grace: *grace,
                        signal: signal.as_deref(),
                        spec: &spec,
                        gate: *gate,
                    },
                )?;
            }
            Action::RemoveNetwork { name } => {
                tolerate(b.networks.remove(name), ErrorKind::NotFound)
                    .map_err(|e| Error::backend("remove network", name, e))?;
            }
            Action::RemoveVolume { name } => {
                tolerate(b.volumes.remove(name), ErrorKind::NotFound)
                    .map_err(|e| Error::backend("remove volume", name, e))?;
            }
        }
        Ok(())
    }

    fn create(&self, spec: &ContainerSpec, start: bool) -> Result<(), Error> {
        let spec = self.finish(spec)?;
        let id = self
            .backends
            .runtime
            .create(&spec)
            .map_err(|e| Error::backend("create", &spec.name, e))?;
        if start {
            self.backends
                .runtime
                .start(&id)
                .map_err(|e| Error::backend("start", &spec.name, e))?;
        }
        Ok(())
    }

    /// Fills in the image digest of a spec planned before its image was
    /// pulled or built.
    fn finish(&self, spec: &ContainerSpec) -> Result<ContainerSpec, Error> {
        if spec.image_digest.is_some() {
            return Ok(spec.clone());
        }
        let digest = match self.digests.get(&spec.image) {
            Some(d) => Some(d.clone()),
            None => self
                .backends
                .images
                .resolve(&spec.image)
                .map_err(|e| Error::backend("resolve image", &spec.image, e))?,
        };
        Ok(match digest {
            Some(d) => spec.clone().with_image_digest(&d),
            None => spec.clone(),
        })
    }

    fn stop(
        &self,
        id: &str,
        name: &str,
        grace: Duration,
        signal: Option<&str>,
    ) -> Result<(), Error> {
        tolerate(
            self.backends.runtime.stop(id, grace, signal),
            ErrorKind::NotFound,
        )
        .map_err(|e| Error::backend("stop", name, e))
    }

    fn remove(
        &self,
        id: &str,
        name: &str,
        grace: Duration,
        signal: Option<&str>,
    ) -> Result<(), Error> {
        self.stop(id, name, grace, signal)?;
        tolerate(self.backends.runtime.remove(id), ErrorKind::NotFound)
            .map_err(|e| Error::backend("remove", name, e))
    }

    fn wait_all(&self, a: &PlannedAction) -> Result<(), Error> {
        let service = a.service.as_deref().unwrap_or_default();
        for w in &a.wait {
            match self.wait(service, w) {
                Ok(()) => {}
                Err(e) if !w.required => {
                    tracing::warn!(dependency = %w.service, error = %e, "optional dependency not ready; going on");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Polls until `w.service` is in `w.condition`, fails, or times out.
    fn wait(&self, service: &str, w: &WaitFor) -> Result<(), Error> {
        let started = self.clock.now();
        loop {
            let containers = self
                .backends
                .runtime
                .list(&self.plan.project)
                .map_err(|e| Error::backend("list containers of", &self.plan.project, e))?;
            let of_dep: Vec<&ObservedContainer> = containers
                .iter()
                .filter(|c| c.service() == Some(w.service.as_str()) && !c.is_oneoff())
                .collect();
            match check(w.condition, &of_dep) {
                Check::Met => return Ok(()),
                Check::Failed(message) => {
                    return Err(Error::Dependency {
                        service: service.to_string(),
                        dependency: w.service.clone(),
                        condition: w.condition.as_str().to_string(),
                        message,
                    });
                }
                Check::Pending => {}
            }
            let waited = self.clock.now().duration_since(started).unwrap_or_default();
            if waited >= self.options.wait_timeout {
                return Err(Error::Timeout {
                    service: service.to_string(),
                    dependency: w.service.clone(),
                    condition: w.condition.as_str().to_string(),
                    waited,
                });
            }
            self.clock.sleep(self.options.poll_interval);
        }
    }
}

enum Check {
    Met,
    Pending,
    Failed(String),
}

/// Whether a dependency's containers meet a condition.
fn check(condition: Condition, containers: &[&ObservedContainer]) -> Check {
    if containers.is_empty() {
        return Check::Pending;
    }
    let exited_badly = containers.iter().find_map(|c| match c.state {
        ContainerState::Exited(code) if code != 0 && !c.manually_stopped => Some((c, code)),
        _ => None,
    });
    match condition {
        Condition::ServiceStarted => {
            let started = containers.iter().any(|c| {
                c.is_running() || (c.state == ContainerState::Exited(0) && !c.manually_stopped)
            });
            if started { Check::Met } else { Check::Pending }
        }
        Condition::ServiceHealthy => {
            if let Some(c) = containers.iter().find(|c| c.health == Health::Unhealthy) {
                return Check::Failed(format!("{} is unhealthy", c.name));
            }
            if let Some((c, code)) = exited_badly {
                return Check::Failed(format!("{} exited with code {code}", c.name));
            }
            let healthy = containers
                .iter()
                .all(|c| c.is_running() && matches!(c.health, Health::Healthy | Health::None));
            if healthy { Check::Met } else { Check::Pending }
        }
        Condition::ServiceCompletedSuccessfully => {
            if let Some((c, code)) = exited_badly {
                return Check::Failed(format!("{} exited with code {code}", c.name));
            }
            if containers
                .iter()
                .all(|c| c.state == ContainerState::Exited(0))
            {
                Check::Met
            } else {
                Check::Pending
            }
        }
    }
}

/// `Ok` for success and for the one error kind that means "already so".
fn tolerate(result: Result<(), BackendError>, kind: ErrorKind) -> Result<(), BackendError> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        other => other,
    }
}

/// The error with its causes, for reports (logged once, here).
fn error_chain(e: &Error) -> String {
    crate::error::describe_chain(e)
}
