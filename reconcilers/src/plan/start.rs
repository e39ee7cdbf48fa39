//! `start` and `restart`: act on the containers a project already has, in
//! dependency order, creating and removing nothing (`docker compose start`
//! and `restart`; `up` is the verb that converges).
//!
//! `start web` starts web's dependencies first (unless `no_deps`), and
//! each start waits for its `depends_on` conditions, as `up` does.
//! `restart db` restarts db and the services whose `depends_on.db` says
//! `restart: true` (Compose's rule), dependencies before dependents;
//! stopped containers are started too.

use std::collections::{BTreeMap, BTreeSet};

use berth_spec::compose::model::Project;

use super::types::{Action, ActionId, Reason, ReasonKind, WaitFor};
use super::up::container_ref;
use super::{Builder, PlanOptions};
use crate::desired::DEFAULT_STOP_GRACE;
use crate::error::Error;
use crate::observed::{ContainerState, Observed, ObservedContainer};
use crate::order::{self, Dependency};

pub(super) fn plan_start(
    desired: &Project,
    observed: &Observed,
    options: &PlanOptions,
    b: &mut Builder,
) -> Result<(), Error> {
    let selected = order::select(desired, &options.services, options.no_deps);
    walk(desired, observed, &selected, b, |c, _| {
        matches!(c.state, ContainerState::Created | ContainerState::Exited(_)).then(|| {
            (
                Action::StartContainer {
                    target: container_ref(c),
                },
                Reason::new(ReasonKind::Requested, "start"),
            )
        })
    })
}

pub(super) fn plan_restart(
    desired: &Project,
    observed: &Observed,
    options: &PlanOptions,
    b: &mut Builder,
) -> Result<(), Error> {
    let selected = if options.no_deps {
        order::select(desired, &options.services, true)
    } else {
        with_restart_dependents(desired, &options.services)
    };
    walk(desired, observed, &selected, b, |c, service| {
        // A dead container cannot be started again; `up` recreates it.
        (!matches!(c.state, ContainerState::Dead | ContainerState::Unknown)).then(|| {
            let grace = options.stop_timeout.unwrap_or_else(|| {
                desired
                    .services
                    .get(service)
                    .and_then(|s| s.stop_grace_period)
                    .map_or(DEFAULT_STOP_GRACE, |d| d.0)
            });
            let signal = desired
                .services
                .get(service)
                .and_then(|s| s.stop_signal.clone());
            (
                Action::RestartContainer {
                    target: container_ref(c),
                    grace,
                    signal,
                },
                Reason::new(ReasonKind::Requested, "restart"),
            )
        })
    })
}

/// `requested` plus the services whose `depends_on` entry on one of them
/// says `restart: true`, transitively; everything when `requested` is
/// empty.
fn with_restart_dependents(desired: &Project, requested: &[String]) -> BTreeSet<String> {
    let mut selected = order::select(desired, requested, true);
    if requested.is_empty() {
        return selected;
    }
    let deps = order::dependencies(desired);
    loop {
        let more: Vec<String> = deps
            .iter()
            .filter(|(dependent, ds)| {
                !selected.contains(*dependent)
                    && ds
                        .iter()
                        .any(|d| d.restart && selected.contains(&d.service))
            })
            .map(|(dependent, _)| dependent.clone())
            .collect();
        if more.is_empty() {
            return selected;
        }
        selected.extend(more);
    }
}

/// Plans `make(container, service)` for the selected services' containers
/// in start order; each action comes after its dependencies' actions and
/// waits for their `depends_on` conditions.
fn walk(
    desired: &Project,
    observed: &Observed,
    selected: &BTreeSet<String>,
    b: &mut Builder,
    make: impl Fn(&ObservedContainer, &str) -> Option<(Action, Reason)>,
) -> Result<(), Error> {
    let levels = order::start_levels(desired)?;
    let deps = order::dependencies(desired);
    let mut by_service: BTreeMap<&str, Vec<ActionId>> = BTreeMap::new();
    for name in levels.iter().flatten().filter(|s| selected.contains(*s)) {
        let service_deps: Vec<&Dependency> = deps
            .get(name)
            .into_iter()
            .flatten()
            .filter(|d| selected.contains(&d.service))
            .collect();
        let after: Vec<ActionId> = service_deps
            .iter()
            .flat_map(|d| {
                by_service
                    .get(d.service.as_str())
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let waits: Vec<WaitFor> = service_deps
            .iter()
            .map(|d| WaitFor {
                service: d.service.clone(),
                condition: d.condition,
                required: d.required,
            })
            .collect();
        let mut ids = Vec::new();
        for c in observed.service_containers(&desired.name, name) {
            let Some((action, reason)) = make(c, name) else {
                continue;
            };
            let id = b.push(Some(name), action, vec![reason], after.clone());
            if let Some(a) = b.get_mut(id) {
                a.wait = waits.clone();
            }
            ids.push(id);
        }
        // What precedes this service precedes its dependents too, so the
        // order holds through services with nothing to do.
        by_service.insert(name, [ids, after].concat());
    }
    Ok(())
}
