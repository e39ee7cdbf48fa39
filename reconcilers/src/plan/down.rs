//! `stop` and `down`: the reverse of `up`, in reverse dependency order.
//!
//! A container is stopped or removed only after every container of the
//! services that depend on it, so a dependent never runs without its
//! dependency. Naming services (`stop db`) takes their dependents along,
//! for the same reason, as Compose does. Containers of services the
//! project no longer declares have no known dependents and go first (with
//! `remove_orphans`; `docker compose down` keeps them otherwise). Networks
//! (and, with `down -v`, volumes) carrying the project's label go last,
//! and only when the whole project goes down: not for a subset of its
//! services, not while orphans stay, and never a volume the project now
//! declares `external`.

use std::collections::{BTreeMap, BTreeSet};

use berth_spec::compose::model::Project;

use super::types::{Action, ActionId, Reason, ReasonKind};
use super::up::container_ref;
use super::{Builder, PlanOptions};
use crate::container::labels;
use crate::desired::DEFAULT_STOP_GRACE;
use crate::error::Error;
use crate::observed::{ContainerState, Observed, ObservedContainer};
use crate::order;

pub(super) fn plan_stop(
    desired: &Project,
    observed: &Observed,
    options: &PlanOptions,
    b: &mut Builder,
) -> Result<(), Error> {
    reverse_walk(desired, observed, options, b, |c, grace, signal| {
        matches!(c.state, ContainerState::Running).then(|| {
            (
                Action::StopContainer {
                    target: container_ref(c),
                    grace,
                    signal,
                },
                Reason::new(ReasonKind::ProjectStopped, "the project is stopped"),
            )
        })
    })?;
    Ok(())
}

pub(super) fn plan_down(
    desired: &Project,
    observed: &Observed,
    options: &PlanOptions,
    volumes: bool,
    b: &mut Builder,
) -> Result<(), Error> {
    let removals = reverse_walk(desired, observed, options, b, |c, grace, signal| {
        Some((
            Action::RemoveContainer {
                target: container_ref(c),
                grace,
                signal,
            },
            Reason::new(ReasonKind::Down, "the project is going down"),
        ))
    })?;
    if !options.services.is_empty() || orphans_stay(desired, observed, options) {
        return Ok(());
    }
    let project = &desired.name;
    let ours = |l: &BTreeMap<String, String>| l.get(labels::PROJECT) == Some(project);
    for n in observed.networks.iter().filter(|n| ours(&n.labels)) {
        b.push(
            None,
            Action::RemoveNetwork {
                name: n.name.clone(),
            },
            vec![Reason::new(ReasonKind::Down, "the project is going down")],
            removals.clone(),
        );
    }
    if volumes {
        let external = |name: &str, l: &BTreeMap<String, String>| {
            desired.volumes.iter().any(|(key, def)| {
                def.external
                    && (crate::desired::volume_name(desired, key) == name
                        || l.get(labels::VOLUME) == Some(key))
            })
        };
        for v in observed
            .volumes
            .iter()
            .filter(|v| ours(&v.labels) && !external(&v.name, &v.labels))
        {
            b.push(
                None,
                Action::RemoveVolume {
                    name: v.name.clone(),
                },
                vec![Reason::new(ReasonKind::Down, "down with volumes")],
                removals.clone(),
            );
        }
    }
    Ok(())
}

/// Plans `make(container)` for the project's containers, dependents before
/// their dependencies; returns every planned id.
fn reverse_walk(
    desired: &Project,
    observed: &Observed,
    options: &PlanOptions,
    b: &mut Builder,
    make: impl Fn(&ObservedContainer, std::time::Duration, Option<String>) -> Option<(Action, Reason)>,
) -> Result<Vec<ActionId>, Error> {
    let levels = order::start_levels(desired)?;
    let deps = order::dependencies(desired);
    let selected = with_dependents(desired, &options.services);
    let mut by_service: BTreeMap<String, Vec<ActionId>> = BTreeMap::new();
    let mut all = Vec::new();
    let known = |s: &str| desired.services.contains_key(s);
    // Undeclared services first: nothing is known to depend on them.
    let mut order: Vec<Option<&String>> = Vec::new();
    if options.services.is_empty() {
        order.push(None);
    }
    // Without `remove_orphans`, of the undeclared services only those
    // disabled by profiles go: they are the project's, not orphans.
    let undeclared_goes = |s: Option<&str>| {
        options.remove_orphans
            || s.is_some_and(|s| options.inactive_services.iter().any(|i| i == s))
    };
    order.extend(
        levels
            .iter()
            .rev()
            .flatten()
            .filter(|s| selected.contains(*s))
            .map(Some),
    );
    for service in order {
        let containers: Vec<&ObservedContainer> = observed
            .project_containers(&desired.name)
            .filter(|c| match service {
                Some(s) => c.service() == Some(s.as_str()),
                None => !c.service().is_some_and(known) && undeclared_goes(c.service()),
            })
            .collect();
        let (grace, signal) = match service.and_then(|s| desired.services.get(s)) {
            Some(svc) => (
                options
                    .stop_timeout
                    .unwrap_or_else(|| svc.stop_grace_period.map_or(DEFAULT_STOP_GRACE, |d| d.0)),
                svc.stop_signal.clone(),
            ),
            None => (options.stop_timeout.unwrap_or(DEFAULT_STOP_GRACE), None),
        };
        // After the dependents of this service.
        let after: Vec<ActionId> = match service {
            Some(s) => deps
                .iter()
                .filter(|(_, ds)| ds.iter().any(|d| &d.service == s))
                .flat_map(|(dependent, _)| by_service.get(dependent).cloned().unwrap_or_default())
                .collect(),
            None => Vec::new(),
        };
        let mut ids = Vec::new();
        for c in containers {
            if let Some((action, reason)) = make(c, grace, signal.clone()) {
                let name = c.service().map(str::to_string);
                ids.push(b.push(name.as_deref(), action, vec![reason], after.clone()));
            }
        }
        all.extend(ids.iter().copied());
        if let Some(s) = service {
            // What precedes a dependent precedes this service too, so the
            // order holds through services that had nothing to stop.
            by_service.insert(s.clone(), [ids, after].concat());
        }
    }
    Ok(all)
}

/// `requested` and every service that depends on one of them, transitively
/// (all services when `requested` is empty): what `stop db` must stop so
/// that nothing runs without its dependency.
pub(super) fn with_dependents(desired: &Project, requested: &[String]) -> BTreeSet<String> {
    if requested.is_empty() {
        return desired.services.keys().cloned().collect();
    }
    let deps = order::dependencies(desired);
    let mut selected: BTreeSet<String> = requested
        .iter()
        .filter(|s| desired.services.contains_key(*s))
        .cloned()
        .collect();
    loop {
        let more: Vec<String> = deps
            .iter()
            .filter(|(dependent, ds)| {
                !selected.contains(*dependent) && ds.iter().any(|d| selected.contains(&d.service))
            })
            .map(|(dependent, _)| dependent.clone())
            .collect();
        if more.is_empty() {
            return selected;
        }
        selected.extend(more);
    }
}

/// Containers of undeclared services that this `down` leaves in place
/// (no `remove_orphans`): the networks they may use stay too.
fn orphans_stay(desired: &Project, observed: &Observed, options: &PlanOptions) -> bool {
    !options.remove_orphans
        && observed
            .project_containers(&desired.name)
            .any(|c| match c.service() {
                Some(s) => {
                    !desired.services.contains_key(s)
                        && !options.inactive_services.iter().any(|i| i == s)
                }
                None => true,
            })
}
