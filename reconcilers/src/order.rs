//! Service ordering: dependencies (declared `depends_on` and the implicit
//! ones from `network_mode: service:x`, `volumes_from: x` and `links: [x]`), start levels,
//! and the selection a subset of services (`up web`) pulls in.
//!
//! Every path orders the same way: starts go up the levels (a service after
//! everything it depends on), stops and removals go down them (a service
//! before everything it depends on). Services on the same level do not
//! depend on each other, so the planner puts their actions in the same
//! wave. The spec's checks reject dependency cycles; [`start_levels`]
//! guards anyway and reports them as [`Error::Cycle`].

use std::collections::{BTreeMap, BTreeSet};

use berth_spec::compose::model::Project;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What a dependent waits for before it starts (`depends_on.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `service_started`: its containers are running (or, for a one-shot,
    /// have run).
    ServiceStarted,
    /// `service_healthy`: all its containers report healthy (running, for
    /// containers without a healthcheck).
    ServiceHealthy,
    /// `service_completed_successfully`: all its containers exited 0.
    ServiceCompletedSuccessfully,
}

impl Condition {
    pub fn parse(s: &str) -> Self {
        match s {
            "service_healthy" => Condition::ServiceHealthy,
            "service_completed_successfully" => Condition::ServiceCompletedSuccessfully,
            _ => Condition::ServiceStarted,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Condition::ServiceStarted => "service_started",
            Condition::ServiceHealthy => "service_healthy",
            Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// One edge: the dependent needs `service` in `condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    /// Restart the dependent when this dependency is restarted or
    /// recreated (`depends_on.<x>.restart: true`).
    pub restart: bool,
    /// A dependency with `required: false` that fails is a warning.
    pub required: bool,
}

/// Each service's dependencies on services that exist in the project.
pub fn dependencies(project: &Project) -> BTreeMap<String, Vec<Dependency>> {
    let mut out = BTreeMap::new();
    for (name, service) in &project.services {
        let mut deps: Vec<Dependency> = service
            .depends_on
            .iter()
            .filter(|(dep, _)| project.services.contains_key(*dep))
            .map(|(dep, d)| Dependency {
                service: dep.clone(),
                condition: Condition::parse(&d.condition),
                restart: d.restart,
                required: d.required,
            })
            .collect();
        let implicit = service
            .network_mode
            .iter()
            .filter_map(|m| m.strip_prefix("service:"))
            .chain(
                service
                    .volumes_from
                    .iter()
                    .filter(|v| !v.starts_with("container:"))
                    .map(|v| v.split(':').next().unwrap_or(v)),
            )
            // Compose starts a linked service first, as with depends_on.
            .chain(
                service
                    .links
                    .iter()
                    .map(|l| l.split(':').next().unwrap_or(l)),
            )
            // A `service:NAME` build context is NAME's image: NAME is
            // planned (and its image built) first, as compose does.
            .chain(
                service
                    .build
                    .iter()
                    .flat_map(|b| b.additional_contexts.values())
                    .filter_map(|v| v.strip_prefix("service:")),
            );
        for dep in implicit {
            if project.services.contains_key(dep) && !deps.iter().any(|d| d.service == dep) {
                deps.push(Dependency {
                    service: dep.to_string(),
                    condition: Condition::ServiceStarted,
                    restart: false,
                    required: true,
                });
            }
        }
        out.insert(name.clone(), deps);
    }
    out
}

/// Services grouped by start level: level 0 depends on nothing, level n on
/// services below n. Within a level, the project's order.
pub fn start_levels(project: &Project) -> Result<Vec<Vec<String>>, Error> {
    let deps = dependencies(project);
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    let mut remaining: Vec<&str> = project.services.keys().map(String::as_str).collect();
    // Kahn's algorithm by rounds: each round places every service whose
    // dependencies are all placed. A round that places nothing is a cycle.
    while !remaining.is_empty() {
        let ready: Vec<(&str, usize)> = remaining
            .iter()
            .filter_map(|s| {
                let ds = deps.get(*s).map(Vec::as_slice).unwrap_or_default();
                let levels: Option<Vec<usize>> = ds
                    .iter()
                    .map(|d| level.get(d.service.as_str()).copied())
                    .collect();
                levels.map(|l| (*s, l.into_iter().map(|x| x + 1).max().unwrap_or(0)))
            })
            .collect();
        if ready.is_empty() {
            return Err(Error::Cycle {
                services: remaining.iter().map(|s| s.to_string()).collect(),
            });
        }
        for (s, l) in ready {
            level.insert(s, l);
            remaining.retain(|r| *r != s);
        }
    }
    let depth = level.values().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); depth];
    for name in project.services.keys() {
        if let Some(&l) = level.get(name.as_str()) {
            out[l].push(name.clone());
        }
    }
    Ok(out)
}

/// The services an operation on `requested` touches: all of them when
/// `requested` is empty, else the requested ones plus, unless `no_deps`,
/// everything they depend on, transitively. Unknown names are ignored.
pub fn select(project: &Project, requested: &[String], no_deps: bool) -> BTreeSet<String> {
    if requested.is_empty() {
        return project.services.keys().cloned().collect();
    }
    let deps = dependencies(project);
    let mut selected = BTreeSet::new();
    let mut stack: Vec<String> = requested
        .iter()
        .filter(|s| project.services.contains_key(*s))
        .cloned()
        .collect();
    while let Some(s) = stack.pop() {
        if !selected.insert(s.clone()) || no_deps {
            continue;
        }
        for d in deps.get(&s).into_iter().flatten() {
            stack.push(d.service.clone());
        }
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(services: serde_json::Value) -> Project {
        serde_json::from_value(json!({"name": "p", "services": services})).unwrap()
    }

    #[test]
    fn levels_follow_dependencies_and_keep_project_order() {
        let p = project(json!({
            "web": {"depends_on": {"api": {"condition": "service_healthy"}}},
            "api": {"depends_on": ["db", "cache"]},
            "worker": {"depends_on": ["db"]},
            "db": {},
            "cache": {},
            "sidecar": {"network_mode": "service:web"},
            "backup": {"volumes_from": ["db:ro"]},
        }));
        assert_eq!(
            start_levels(&p).unwrap(),
            vec![
                vec!["db", "cache"],
                vec!["api", "worker", "backup"],
                vec!["web"],
                vec!["sidecar"],
            ]
        );
        let deps = dependencies(&p);
        assert_eq!(deps["web"][0].condition, Condition::ServiceHealthy);
        assert_eq!(deps["sidecar"][0].service, "web");
    }

    #[test]
    fn links_order_like_depends_on() {
        let p = project(json!({
            "web": {"links": ["db:database", "cache"]},
            "db": {},
            "cache": {},
        }));
        assert_eq!(
            start_levels(&p).unwrap(),
            vec![vec!["db", "cache"], vec!["web"]]
        );
        let deps = dependencies(&p);
        let on: Vec<&str> = deps["web"].iter().map(|d| d.service.as_str()).collect();
        assert_eq!(on, ["db", "cache"]);
        assert_eq!(
            select(&p, &["web".into()], false)
                .into_iter()
                .collect::<Vec<_>>(),
            ["cache", "db", "web"]
        );
    }

    #[test]
    fn cycles_are_reported_not_looped() {
        let p = project(json!({"a": {"depends_on": ["b"]}, "b": {"depends_on": ["a"]}, "c": {}}));
        match start_levels(&p) {
            Err(Error::Cycle { services }) => assert_eq!(services, ["a", "b"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn selection_pulls_in_dependencies_unless_no_deps() {
        let p = project(json!({
            "web": {"depends_on": ["api"]}, "api": {"depends_on": ["db"]}, "db": {}, "other": {}
        }));
        let names = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        assert_eq!(
            names(select(&p, &["web".into()], false)),
            ["api", "db", "web"]
        );
        assert_eq!(names(select(&p, &["web".into()], true)), ["web"]);
        assert_eq!(names(select(&p, &[], false)), ["api", "db", "other", "web"]);
        assert_eq!(
            names(select(&p, &["nope".into()], false)),
            Vec::<String>::new()
        );
    }
}
