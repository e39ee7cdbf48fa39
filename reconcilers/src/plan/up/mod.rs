//! `up`: converge every selected service, in dependency order.
//!
//! Per service ([`ServicePlanner`]): the volumes, networks and image it
//! needs ([`resources`]), then each replica: adopt, recreate, start or
//! restart it, create missing ones, remove surplus ones; then restarts of
//! running containers whose dependency was restarted (`restart: true`).

mod resources;
mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use berth_spec::compose::model::{Project, Service};

use super::types::{Action, ActionId, ContainerRef, Reason, ReasonKind, UpdateOrder, WaitFor};
use super::{Builder, PlanOptions};
use crate::desired::{self, DEFAULT_STOP_GRACE};
use crate::error::Error;
use crate::observed::{ContainerState, Health, Observed, ObservedContainer};
use crate::order::{self, Dependency};
use crate::restart::{Decision, ExitInfo, RestartCondition, RestartPolicy, decide};

/// What planning one service leaves for the services after it.
#[derive(Default)]
struct Context {
    /// Image reference -> the action that pulls or builds it.
    images: BTreeMap<String, ActionId>,
    /// Volume or network name -> the action that creates it.
    resources: BTreeMap<String, ActionId>,
    /// Service -> its actions (dependents come after them).
    service_actions: BTreeMap<String, Vec<ActionId>>,
    /// Services recreated or restarted in this plan, with what happened.
    restarted: BTreeMap<String, &'static str>,
}

pub(super) fn plan_up(
    desired: &Project,
    observed: &Observed,
    options: &PlanOptions,
    b: &mut Builder,
) -> Result<(), Error> {
    let levels = order::start_levels(desired)?;
    let deps = order::dependencies(desired);
    let selected = order::select(desired, &options.services, options.no_deps);
    if options.remove_orphans {
        plan_orphans(desired, observed, options, b);
    }
    let mut ctx = Context::default();
    for name in levels.iter().flatten().filter(|s| selected.contains(*s)) {
        let Some(service) = desired.services.get(name) else {
            continue;
        };
        let span = tracing::debug_span!("service", project = %desired.name, service = %name);
        let _enter = span.enter();
        let service_deps: Vec<&Dependency> = deps
            .get(name)
            .into_iter()
            .flatten()
            .filter(|d| selected.contains(&d.service))
            .collect();
        ServicePlanner {
            desired,
            observed,
            options,
            name,
            service,
            deps: service_deps,
        }
        .plan(b, &mut ctx);
    }
    Ok(())
}

fn plan_orphans(desired: &Project, observed: &Observed, options: &PlanOptions, b: &mut Builder) {
    for c in observed.project_containers(&desired.name) {
        let service = c.service().unwrap_or_default();
        if desired.services.contains_key(service)
            || options.inactive_services.iter().any(|s| s == service)
        {
            continue;
        }
        b.push(
            Some(service),
            Action::RemoveContainer {
                target: container_ref(c),
                grace: options.stop_timeout.unwrap_or(DEFAULT_STOP_GRACE),
                signal: None,
            },
            vec![Reason::new(
                ReasonKind::Orphaned,
                format!("service {service:?} is no longer declared"),
            )],
            Vec::new(),
        );
    }
}

pub(super) fn container_ref(c: &ObservedContainer) -> ContainerRef {
    ContainerRef {
        id: c.id.clone(),
        name: c.name.clone(),
        number: c.number(),
    }
}

struct ServicePlanner<'a> {
    desired: &'a Project,
    observed: &'a Observed,
    options: &'a PlanOptions,
    name: &'a str,
    service: &'a Service,
    deps: Vec<&'a Dependency>,
}

impl ServicePlanner<'_> {
    /// The actions already planned for this service's dependencies: what
    /// its own actions must come after.
    fn dependency_actions(&self, ctx: &Context) -> Vec<ActionId> {
        self.deps
            .iter()
            .flat_map(|d| {
                ctx.service_actions
                    .get(&d.service)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    fn plan(&self, b: &mut Builder, ctx: &mut Context) {
        let project = &self.desired.name;
        let reference = desired::image_reference(project, self.name, self.service);
        let replicas = self
            .options
            .scale
            .get(self.name)
            .copied()
            .unwrap_or_else(|| desired::replicas(self.service));
        let grace = self.grace();
        let signal = self.service.stop_signal.clone();
        let policy = RestartPolicy::from_service(self.service);
        let resources = self.plan_resources(b, ctx);
        let refresh = self.plan_refresh(&reference, b, ctx);

        // Adopt by replica number; of two claiming one number, keep the
        // running one. Containers in service come before those a
        // start-first replacement left out of service, so an interrupted
        // replacement's extra container is the surplus.
        let mut existing: Vec<&ObservedContainer> = self
            .observed
            .service_containers(project, self.name)
            .collect();
        let all_numbers: BTreeSet<u32> = existing.iter().filter_map(|c| c.number()).collect();
        existing.sort_by_key(|c| {
            (
                c.standby,
                c.number().unwrap_or(u32::MAX),
                !c.is_running(),
                c.name.clone(),
            )
        });
        let mut kept: Vec<&ObservedContainer> = Vec::new();
        let mut duplicates: Vec<&ObservedContainer> = Vec::new();
        for c in existing {
            match c.number() {
                Some(n) if !kept.iter().any(|k| k.number() == Some(n)) => kept.push(c),
                _ => duplicates.push(c),
            }
        }
        let surplus = kept.split_off(kept.len().min(replicas as usize));
        let mut own: Vec<ActionId> = Vec::new();
        let remove = |c: &ObservedContainer, reason: Reason, b: &mut Builder| {
            b.push(
                Some(self.name),
                Action::RemoveContainer {
                    target: container_ref(c),
                    grace,
                    signal: signal.clone(),
                },
                vec![reason],
                Vec::new(),
            )
        };
        for c in duplicates {
            own.push(remove(
                c,
                Reason::new(
                    ReasonKind::Duplicate,
                    "another container holds this replica number",
                ),
                b,
            ));
        }
        for c in surplus.iter().rev() {
            let reason = if c.standby {
                Reason::new(
                    ReasonKind::Standby,
                    "left out of service by an interrupted start-first replacement",
                )
            } else {
                Reason::new(
                    ReasonKind::ScaledDown,
                    format!("service wants {replicas} replica(s)"),
                )
            };
            own.push(remove(c, reason, b));
        }

        // The digest new containers get: unknown when this plan pulls or
        // builds the image (the executor fills it in).
        let local_digest = self.observed.image_digest(&reference);
        let spec_digest = if refresh.is_some() {
            None
        } else {
            local_digest
        };
        let after_deps = self.dependency_actions(ctx);
        let mut restarted: Option<&'static str> = None;
        let start = !self.options.no_start;

        // Missing replicas get the lowest free numbers; start-first
        // replacements the lowest numbers free after those.
        let used: BTreeSet<u32> = kept.iter().filter_map(|c| c.number()).collect();
        let missing_numbers: Vec<u32> = (1..)
            .filter(|n| !used.contains(n))
            .take(replicas as usize - kept.len().min(replicas as usize))
            .collect();
        let mut taken: BTreeSet<u32> = all_numbers;
        taken.extend(&missing_numbers);
        let update = update::UpdatePolicy::of(self.service);
        let mut batches = Batches::new(update.parallelism, update.delay);

        for c in &kept {
            let number = c.number().unwrap_or(1);
            let spec = desired::container_spec(
                self.desired,
                self.name,
                self.service,
                number,
                spec_digest,
                &self.options.file_digests,
            );
            let reasons = self.recreate_reasons(c, &spec, local_digest);
            if !reasons.is_empty() {
                let image = self.image_action(&reference, local_digest, refresh, b, ctx);
                let after = [
                    after_deps.clone(),
                    resources.clone(),
                    image.into_iter().collect(),
                    batches.previous(),
                ]
                .concat();
                let action = if self.start_first(c, &spec, start, update.order) {
                    let new_number = (1..).find(|n| !taken.contains(n)).unwrap_or(number);
                    taken.insert(new_number);
                    Action::Replace {
                        old: container_ref(c),
                        grace,
                        signal: signal.clone(),
                        spec: Box::new(desired::container_spec(
                            self.desired,
                            self.name,
                            self.service,
                            new_number,
                            spec_digest,
                            &self.options.file_digests,
                        )),
                        gate: update.gate,
                    }
                } else {
                    Action::Recreate {
                        old: container_ref(c),
                        grace,
                        signal: signal.clone(),
                        spec: Box::new(spec),
                        start,
                    }
                };
                let id = b.push(Some(self.name), action, reasons, after);
                if let Some(a) = b.get_mut(id) {
                    a.delay = batches.delay();
                }
                batches.add(id);
                self.add_waits(b, id);
                own.push(id);
                restarted = Some("recreated");
                continue;
            }
            if let Some((action, reason, not_before)) =
                self.state_action(c, &policy, grace, &signal)
            {
                let id = b.push(Some(self.name), action, vec![reason], after_deps.clone());
                if let Some(a) = b.get_mut(id) {
                    a.not_before = not_before;
                }
                self.add_waits(b, id);
                own.push(id);
                restarted.get_or_insert("restarted");
            }
        }

        let highest = used.iter().max().copied();
        for number in missing_numbers {
            let reason = match highest {
                Some(h) if number > h => Reason::new(
                    ReasonKind::ScaledUp,
                    format!("service wants {replicas} replica(s)"),
                ),
                _ => Reason::new(
                    ReasonKind::ContainerMissing,
                    format!("replica {number} has no container"),
                ),
            };
            if reason.kind == ReasonKind::ContainerMissing && !kept.is_empty() {
                restarted.get_or_insert("recreated");
            }
            let spec = desired::container_spec(
                self.desired,
                self.name,
                self.service,
                number,
                spec_digest,
                &self.options.file_digests,
            );
            let image = self.image_action(&reference, local_digest, refresh, b, ctx);
            let after = [
                after_deps.clone(),
                resources.clone(),
                image.into_iter().collect(),
            ]
            .concat();
            let id = b.push(
                Some(self.name),
                Action::CreateContainer {
                    spec: Box::new(spec),
                    start,
                },
                vec![reason],
                after,
            );
            self.add_waits(b, id);
            own.push(id);
        }

        if restarted.is_none() {
            let restarts = self.plan_dependency_restarts(&kept, &own, b, ctx);
            if !restarts.is_empty() {
                restarted = Some("restarted");
            }
            own.extend(restarts);
        }
        if let Some(what) = restarted {
            ctx.restarted.insert(self.name.to_string(), what);
        }
        own.extend(refresh);
        ctx.service_actions.insert(self.name.to_string(), own);
    }

    fn grace(&self) -> Duration {
        self.options.stop_timeout.unwrap_or_else(|| {
            self.service
                .stop_grace_period
                .map_or(DEFAULT_STOP_GRACE, |d| d.0)
        })
    }

    /// Whether `c` is replaced start-first: asked for, possible, and the
    /// new container is to start at all.
    fn start_first(
        &self,
        c: &ObservedContainer,
        spec: &crate::container::ContainerSpec,
        start: bool,
        order: UpdateOrder,
    ) -> bool {
        if order != UpdateOrder::StartFirst || !start || !c.is_running() || c.standby {
            return false;
        }
        match update::start_first_blocker(spec, self.service) {
            Some(why) => {
                tracing::warn!(service = %self.name, container = %c.name, reason = %why,
                    "update_config.order is start-first, but this replica is replaced stop-first");
                false
            }
            None => true,
        }
    }

    /// Why an existing container must be replaced, if it must.
    fn recreate_reasons(
        &self,
        c: &ObservedContainer,
        spec: &crate::container::ContainerSpec,
        local_digest: Option<&str>,
    ) -> Vec<Reason> {
        let mut reasons = Vec::new();
        if c.state == ContainerState::Dead {
            reasons.push(Reason::new(ReasonKind::Dead, "the runtime reports it dead"));
        }
        if c.standby {
            reasons.push(Reason::new(
                ReasonKind::Standby,
                "left out of service by an interrupted start-first replacement",
            ));
        }
        if self.options.force_recreate {
            reasons.push(Reason::new(ReasonKind::Forced, "--force-recreate"));
            return reasons;
        }
        if self.options.no_recreate {
            return reasons;
        }
        let Some(input) = spec.hash_input.as_ref() else {
            return reasons;
        };
        let running_digest = c.image_digest();
        // The hash as it would be with the image the container runs: if
        // that matches, only the image moved.
        if c.config_hash() != Some(input.hash(running_digest).as_str()) {
            let message = match c.config_keys() {
                Some(label) => match input.changed_keys(label) {
                    keys if keys.is_empty() => "config hash differs".to_string(),
                    keys => format!("{} changed", keys.join(", ")),
                },
                None => "config hash differs (created without berth's key digests)".to_string(),
            };
            reasons.push(Reason::new(ReasonKind::ConfigChanged, message));
        }
        if let Some(new) = local_digest {
            if running_digest != Some(new) {
                reasons.push(Reason::new(
                    ReasonKind::ImageDigestChanged,
                    format!(
                        "{} is now {}, the container runs {}",
                        spec.image,
                        short(new),
                        running_digest.map_or("an unknown digest", short)
                    ),
                ));
            }
        }
        reasons
    }

    /// What an up-to-date container's state calls for: start a created or
    /// stopped one, restart one that exited or is unhealthy when its
    /// policy says so.
    fn state_action(
        &self,
        c: &ObservedContainer,
        policy: &RestartPolicy,
        grace: Duration,
        signal: &Option<String>,
    ) -> Option<(Action, Reason, Option<std::time::SystemTime>)> {
        let now = self.options.now;
        let start = Action::StartContainer {
            target: container_ref(c),
        };
        match c.state {
            ContainerState::Created if !self.options.no_start => Some((
                start,
                Reason::new(ReasonKind::NotStarted, "created but never started"),
                None,
            )),
            ContainerState::Exited(_)
                if c.manually_stopped
                    && !self.options.no_start
                    && !self.options.keep_user_stops =>
            {
                Some((
                    start,
                    Reason::new(ReasonKind::Stopped, "was stopped; the project is up"),
                    None,
                ))
            }
            // The runtime's supervisor decided already; deciding again
            // would fight it (restart what it gave up on). The CLI's `up`
            // is a user's request to run it, as Compose's is.
            ContainerState::Exited(code)
                if !self.options.no_start
                    && (self.options.start_exited || !c.restart_policy_applied) =>
            {
                // A stop by the user holds against every policy but
                // `always` (the Docker daemon's rule when it restarts).
                if c.manually_stopped && policy.condition != RestartCondition::Always {
                    return None;
                }
                let exit = ExitInfo {
                    code,
                    finished_at: c.finished_at,
                };
                match decide(policy, exit, c.restart_count, c.started_at, now) {
                    _ if self.options.start_exited => Some((
                        start,
                        Reason::new(
                            ReasonKind::Exited,
                            format!("exited with code {code}; up starts it again"),
                        ),
                        None,
                    )),
                    Decision::Restart { after } => Some((
                        start,
                        Reason::new(
                            ReasonKind::Exited,
                            format!(
                                "exited with code {code}; restart policy {}; {} restart(s) so far",
                                condition_name(policy),
                                c.restart_count
                            ),
                        ),
                        (after > Duration::ZERO).then(|| now + after),
                    )),
                    Decision::GiveUp | Decision::Leave => None,
                }
            }
            ContainerState::Running if c.health == Health::Unhealthy => {
                let exit = ExitInfo {
                    code: 1,
                    finished_at: Some(now),
                };
                match decide(policy, exit, c.restart_count, c.started_at, now) {
                    Decision::Restart { after } => Some((
                        Action::RestartContainer {
                            target: container_ref(c),
                            grace,
                            signal: signal.clone(),
                        },
                        Reason::new(ReasonKind::Unhealthy, "the healthcheck reports unhealthy"),
                        (after > Duration::ZERO).then(|| now + after),
                    )),
                    Decision::GiveUp | Decision::Leave => None,
                }
            }
            _ => None,
        }
    }

    /// Restart running containers whose `depends_on` entry says
    /// `restart: true` for a dependency restarted in this plan.
    fn plan_dependency_restarts(
        &self,
        kept: &[&ObservedContainer],
        own: &[ActionId],
        b: &mut Builder,
        ctx: &Context,
    ) -> Vec<ActionId> {
        let Some((dep, what)) = self.deps.iter().filter(|d| d.restart).find_map(|d| {
            ctx.restarted
                .get(&d.service)
                .map(|w| (d.service.as_str(), *w))
        }) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        let after = self.dependency_actions(ctx);
        for c in kept.iter().filter(|c| c.is_running()) {
            let planned = own
                .iter()
                .filter_map(|id| b.get(*id))
                .any(|a| a.action.target() == c.name);
            if planned {
                continue;
            }
            let id = b.push(
                Some(self.name),
                Action::RestartContainer {
                    target: container_ref(c),
                    grace: self.grace(),
                    signal: self.service.stop_signal.clone(),
                },
                vec![Reason::new(
                    ReasonKind::DependencyRestarted,
                    format!("dependency {dep} was {what} and depends_on.{dep}.restart is true"),
                )],
                after.clone(),
            );
            self.add_waits(b, id);
            ids.push(id);
        }
        ids
    }

    fn add_waits(&self, b: &mut Builder, id: ActionId) {
        if let Some(a) = b.get_mut(id) {
            if a.action.starts_container() {
                a.wait = self
                    .deps
                    .iter()
                    .map(|d| WaitFor {
                        service: d.service.clone(),
                        condition: d.condition,
                        required: d.required,
                    })
                    .collect();
            }
        }
    }
}

/// A service's replacements in batches of `parallelism` (0: one batch):
/// each batch comes after the one before it, `delay` later.
struct Batches {
    parallelism: usize,
    delay: Duration,
    done: Vec<ActionId>,
    current: Vec<ActionId>,
}

impl Batches {
    fn new(parallelism: usize, delay: Duration) -> Self {
        Batches {
            parallelism,
            delay,
            done: Vec::new(),
            current: Vec::new(),
        }
    }

    /// Closes a full batch; what the next replacement comes after.
    fn previous(&mut self) -> Vec<ActionId> {
        if self.parallelism > 0 && self.current.len() >= self.parallelism {
            self.done = std::mem::take(&mut self.current);
        }
        self.done.clone()
    }

    /// The delay before a replacement of the current batch.
    fn delay(&self) -> Duration {
        if self.done.is_empty() {
            Duration::ZERO
        } else {
            self.delay
        }
    }

    fn add(&mut self, id: ActionId) {
        self.current.push(id);
    }
}

fn condition_name(policy: &RestartPolicy) -> &'static str {
    use crate::restart::RestartCondition::*;
    match policy.condition {
        No => "no",
        Always => "always",
        OnFailure => "on-failure",
        UnlessStopped => "unless-stopped",
    }
}

/// `sha256:0123456789ab`.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}
