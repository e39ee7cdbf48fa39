//! Planner rules on hand-built observed states (the scenarios in
//! `tests/scenarios.rs` run the same rules through the fakes).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::container::labels;
use crate::desired;
use crate::observed::{ContainerState, Health, ObservedContainer};

fn project(services: serde_json::Value) -> Project {
    serde_json::from_value(json!({"name": "p", "services": services})).unwrap()
}

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

/// A container exactly as the planner would create replica `n`, in `state`.
fn container(p: &Project, service: &str, n: u32, state: ContainerState) -> ObservedContainer {
    let spec = desired::container_spec(
        p,
        service,
        &p.services[service],
        n,
        Some(DIGEST),
        &BTreeMap::new(),
    );
    ObservedContainer {
        id: format!("id-{service}-{n}"),
        name: spec.name,
        labels: spec.labels,
        image: spec.image,
        state,
        health: Health::None,
        restart_count: 0,
        started_at: Some(SystemTime::UNIX_EPOCH),
        finished_at: None,
        manually_stopped: false,
        restart_policy_applied: false,
        last_exit_code: None,
        error: None,
        standby: false,
    }
}

fn observed(p: &Project, containers: Vec<ObservedContainer>) -> Observed {
    Observed {
        containers,
        images: p
            .services
            .values()
            .filter_map(|s| s.image.clone())
            .map(|i| (i, DIGEST.to_string()))
            .collect(),
        ..Observed::default()
    }
}

fn lines(p: &Project, o: &Observed, options: &PlanOptions) -> Vec<String> {
    plan(p, o, options).unwrap().lines()
}

#[test]
fn a_converged_project_plans_nothing() {
    let p = project(json!({"a": {"image": "x"}, "b": {"image": "y", "depends_on": ["a"]}}));
    let o = observed(
        &p,
        vec![
            container(&p, "a", 1, ContainerState::Running),
            container(&p, "b", 1, ContainerState::Running),
        ],
    );
    assert!(lines(&p, &o, &PlanOptions::default()).is_empty());
}

#[test]
fn adopted_containers_without_berth_labels_are_recreated_in_place() {
    let p = project(json!({"web": {"image": "x"}}));
    let mut c = container(&p, "web", 1, ContainerState::Running);
    // As `docker compose` made it: Compose labels only, its own name.
    c.labels.retain(|k, _| k.starts_with("com.docker.compose"));
    c.name = "p-web-1".into();
    let o = observed(&p, vec![c]);
    assert_eq!(
        lines(&p, &o, &PlanOptions::default()),
        [
            "0 Recreate p-web-1 [ConfigChanged: config hash differs (created without berth's key digests); ImageDigestChanged: x is now sha256:000000000000, the container runs an unknown digest]"
        ]
    );
}

#[test]
fn duplicates_of_a_replica_number_keep_the_running_one() {
    let p = project(json!({"web": {"image": "x"}}));
    let mut stray = container(&p, "web", 1, ContainerState::Exited(0));
    stray.id = "stray".into();
    stray.name = "old_web_1".into();
    let o = observed(
        &p,
        vec![stray, container(&p, "web", 1, ContainerState::Running)],
    );
    assert_eq!(
        lines(&p, &o, &PlanOptions::default()),
        ["0 RemoveContainer old_web_1 [Duplicate: another container holds this replica number]"]
    );
}

#[test]
fn oneoff_and_foreign_containers_are_left_alone() {
    let p = project(json!({"web": {"image": "x"}}));
    let mut run = container(&p, "web", 1, ContainerState::Running);
    run.labels.insert(labels::SERVICE.into(), "gone".into());
    run.labels.insert(labels::ONEOFF.into(), "True".into());
    run.name = "p-gone-run-1".into();
    let mut other = container(&p, "web", 1, ContainerState::Running);
    other.labels.insert(labels::PROJECT.into(), "q".into());
    other.name = "q-web-1".into();
    let o = observed(
        &p,
        vec![container(&p, "web", 1, ContainerState::Running), run, other],
    );
    assert!(lines(&p, &o, &PlanOptions::default()).is_empty());
}

#[test]
fn given_up_and_dead_containers() {
    let p = project(json!({"job": {"image": "x", "restart": "on-failure:2"}}));
    let mut c = container(&p, "job", 1, ContainerState::Exited(1));
    c.restart_count = 2;
    c.finished_at = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    let o = observed(&p, vec![c]);
    assert!(
        lines(&p, &o, &PlanOptions::default()).is_empty(),
        "attempts used up"
    );
    let o = observed(&p, vec![container(&p, "job", 1, ContainerState::Dead)]);
    assert_eq!(
        lines(&p, &o, &PlanOptions::default()),
        ["0 Recreate p-job-1 [Dead: the runtime reports it dead]"]
    );
}

#[test]
fn waves_group_independent_actions() {
    let p = project(json!({
        "db": {"image": "x"}, "cache": {"image": "x"},
        "api": {"image": "x", "depends_on": {"db": {"condition": "service_healthy"}, "cache": {"condition": "service_started"}}},
    }));
    let o = observed(&p, vec![]);
    let plan = plan(&p, &o, &PlanOptions::default()).unwrap();
    let waves: Vec<Vec<&str>> = plan
        .waves()
        .iter()
        .map(|w| w.iter().map(|a| a.action.target()).collect())
        .collect();
    assert_eq!(waves, [vec!["p-db-1", "p-cache-1"], vec!["p-api-1"]]);
    let api = &plan.actions[2];
    assert_eq!(api.after, [0, 1]);
    let conditions: Vec<(&str, &str)> = api
        .wait
        .iter()
        .map(|w| (w.service.as_str(), w.condition.as_str()))
        .collect();
    assert_eq!(
        conditions,
        [("db", "service_healthy"), ("cache", "service_started")]
    );
}

#[test]
fn a_cycle_is_an_error_not_a_hang() {
    let p = project(
        json!({"a": {"image": "x", "depends_on": ["b"]}, "b": {"image": "x", "depends_on": ["a"]}}),
    );
    let err = plan(&p, &Observed::default(), &PlanOptions::default()).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
}

#[test]
fn plans_serialize_for_dry_run() {
    let p = project(json!({"a": {"image": "x"}}));
    let plan = plan(&p, &observed(&p, vec![]), &PlanOptions::default()).unwrap();
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["actions"][0]["action"]["type"], "CreateContainer");
    assert_eq!(v["actions"][0]["reasons"][0]["kind"], "ContainerMissing");
    assert_eq!(v["actions"][0]["action"]["spec"]["name"], "p-a-1");
}

/// The runtime's supervisor applies restart policies itself: a container
/// it is about to restart, or whose exit it chose not to answer, is left
/// alone; an exit nothing supervised (the host went down) is answered by
/// the planner with the policy.
#[test]
fn the_planner_does_not_fight_the_supervisors_restart_policy() {
    let p = project(json!({"web": {"image": "x", "restart": "always"}}));
    let now = PlanOptions::default().now;
    let o = observed(
        &p,
        vec![container(&p, "web", 1, ContainerState::Restarting)],
    );
    assert!(lines(&p, &o, &PlanOptions::default()).is_empty());

    let mut gave_up = container(&p, "web", 1, ContainerState::Exited(1));
    gave_up.restart_policy_applied = true;
    gave_up.finished_at = Some(now);
    let o = observed(&p, vec![gave_up.clone()]);
    assert!(lines(&p, &o, &PlanOptions::default()).is_empty());

    let mut rebooted = gave_up;
    rebooted.restart_policy_applied = false;
    rebooted.finished_at = Some(now - Duration::from_secs(60));
    let o = observed(&p, vec![rebooted]);
    assert_eq!(
        lines(&p, &o, &PlanOptions::default()),
        [
            "0 StartContainer p-web-1 [Exited: exited with code 1; restart policy always; 0 restart(s) so far]"
        ]
    );
}

/// After the host restarted (no supervisor saw the containers go down),
/// the agent's reconcile (`keep_user_stops`) brings back `always`
/// containers, stopped by the user or not, and `unless-stopped` ones only
/// when the user had not stopped them; `up` starts every stopped
/// container, as `docker compose up` does.
#[test]
fn after_a_host_restart_always_comes_back_and_unless_stopped_respects_the_user() {
    let p = project(json!({
        "a": {"image": "x", "restart": "always"},
        "u": {"image": "x", "restart": "unless-stopped"},
        "n": {"image": "x"},
    }));
    let options = PlanOptions {
        keep_user_stops: true,
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(3600),
        ..PlanOptions::default()
    };
    let after_reboot = |service: &str, stopped_by_user: bool| {
        let mut c = container(&p, service, 1, ContainerState::Exited(137));
        c.manually_stopped = stopped_by_user;
        c.restart_policy_applied = false;
        c.finished_at = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(60));
        c
    };
    let o = observed(
        &p,
        vec![
            after_reboot("a", true),
            after_reboot("u", true),
            after_reboot("n", true),
        ],
    );
    assert_eq!(
        lines(&p, &o, &options),
        [
            "0 StartContainer p-a-1 [Exited: exited with code 137; restart policy always; 0 restart(s) so far]"
        ]
    );
    let o = observed(
        &p,
        vec![
            after_reboot("a", false),
            after_reboot("u", false),
            after_reboot("n", false),
        ],
    );
    let planned = lines(&p, &o, &options);
    assert_eq!(planned.len(), 2, "{planned:?}");
    assert!(
        planned[0].starts_with("0 StartContainer p-a-1 [Exited"),
        "{planned:?}"
    );
    assert!(
        planned[1].starts_with("0 StartContainer p-u-1 [Exited"),
        "{planned:?}"
    );

    // In the same boot, a user's stop holds for the agent, whatever the
    // policy; `up` starts it.
    let in_this_boot = |service: &str| {
        let mut c = after_reboot(service, true);
        c.restart_policy_applied = true;
        c
    };
    let o = observed(
        &p,
        vec![in_this_boot("a"), in_this_boot("u"), in_this_boot("n")],
    );
    assert!(lines(&p, &o, &options).is_empty());
    assert_eq!(
        lines(&p, &o, &PlanOptions::default()),
        [
            "0 StartContainer p-a-1 [Stopped: was stopped; the project is up]",
            "0 StartContainer p-u-1 [Stopped: was stopped; the project is up]",
            "0 StartContainer p-n-1 [Stopped: was stopped; the project is up]",
        ]
    );
}

#[test]
fn a_build_reading_another_services_image_waits_for_its_build() {
    // `app` sorts first, but its build reads `base`'s image.
    let p = project(json!({
        "app": {"build": {"context": "/src/app", "additional_contexts": {"b": "service:base"}}},
        "base": {"image": "base:1", "build": {"context": "/src/base"}},
    }));
    let o = Observed::default();
    let plan = plan(&p, &o, &PlanOptions::default()).unwrap();
    let builds: Vec<(usize, &str, &[ActionId])> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, Action::BuildImage { .. }))
        .map(|a| (a.id, a.action.target(), a.after.as_slice()))
        .collect();
    let base = builds.iter().find(|b| b.1 == "base:1").unwrap();
    let app = builds.iter().find(|b| b.1 == "p-app").unwrap();
    assert_eq!(app.2, [base.0], "{builds:?}");
    let Action::BuildImage { request } = &plan.actions[app.0].action else {
        unreachable!()
    };
    assert_eq!(request.service_images["base"], "base:1");
    // `up app` alone brings base (and its build) along.
    let only_app = PlanOptions {
        services: vec!["app".into()],
        ..PlanOptions::default()
    };
    let lines = lines(&p, &o, &only_app);
    assert!(
        lines.iter().any(|l| l.contains("BuildImage base:1")),
        "{lines:?}"
    );
}

#[test]
fn a_rebuilt_service_context_rebuilds_the_images_built_from_it() {
    let p = project(json!({
        "app": {"image": "app:1", "build": {"context": "/src/app", "additional_contexts": {"b": "service:base"}}},
        "base": {"image": "base:1", "build": {"context": "/src/base"}},
    }));
    let mut o = observed(&p, vec![]);
    o.stale_builds
        .insert("base:1".into(), "the build context changed".into());
    let plan = plan(&p, &o, &PlanOptions::default()).unwrap();
    let lines = plan.lines();
    let base = lines
        .iter()
        .position(|l| l.contains("BuildImage base:1 [BuildContextChanged"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let app = lines
        .iter()
        .position(|l| {
            l.contains("BuildImage app:1 [BuildContextChanged: the image of service \"base\" it builds from is built again]")
        })
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(base < app, "{lines:?}");
    assert_eq!(plan.actions[app].after, [base]);
    // Nothing rebuilt: nothing planned for app either.
    let quiet = observed(&p, vec![]);
    let lines = super::plan(&p, &quiet, &PlanOptions::default())
        .unwrap()
        .lines();
    assert!(!lines.iter().any(|l| l.contains("BuildImage")), "{lines:?}");
}
