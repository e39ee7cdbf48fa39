//! Status computation from observed containers: service health for
//! probes, the project's health, sync and phase, and the conditions'
//! transition times.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_reconcilers::observed::{ContainerState, Health, Observed, ObservedContainer};
use berth_reconcilers::status::summarize;
use berth_reconcilers::{PlanOptions, labels};
use std::collections::BTreeMap;

use super::*;
use crate::reconcile::testing::model;
use crate::state::Store;
use crate::state::tests::{ok, t};

const APP: &str = "
services:
  web:
    image: busybox
  init:
    image: busybox
  worker:
    image: busybox
    scale: 2
";

fn container(service: &str, n: u32, state: ContainerState) -> ObservedContainer {
    let mut labels = BTreeMap::new();
    labels.insert(labels::PROJECT.to_owned(), "app".to_owned());
    labels.insert(labels::SERVICE.to_owned(), service.to_owned());
    labels.insert(labels::NUMBER.to_owned(), n.to_string());
    ObservedContainer {
        id: format!("{service}{n}"),
        name: format!("app-{service}-{n}"),
        labels,
        image: "busybox".into(),
        state,
        health: Health::None,
        restart_count: 0,
        started_at: Some(t(0)),
        finished_at: matches!(state, ContainerState::Exited(_)).then(|| t(5)),
        manually_stopped: false,
        restart_policy_applied: false,
        last_exit_code: None,
        error: None,
        standby: false,
    }
}

fn services(containers: Vec<ObservedContainer>) -> Vec<ServiceStatus> {
    let observed = Observed {
        containers,
        ..Default::default()
    };
    summarize(
        &model("app", APP),
        &observed,
        None,
        None,
        &PlanOptions {
            now: t(10),
            ..Default::default()
        },
    )
}

fn health_of(all: &[ServiceStatus], name: &str) -> (HealthStatus, Option<String>) {
    service_health(all.iter().find(|s| s.name == name).unwrap())
}

#[test]
fn running_services_and_a_completed_one_shot_are_healthy() {
    let all = services(vec![
        container("web", 1, ContainerState::Running),
        container("init", 1, ContainerState::Exited(0)),
        container("worker", 1, ContainerState::Running),
        container("worker", 2, ContainerState::Running),
    ]);
    for name in ["web", "init", "worker"] {
        assert_eq!(
            health_of(&all, name),
            (HealthStatus::Healthy, None),
            "{name}"
        );
    }
}

#[test]
fn what_is_not_running_says_why() {
    let mut stopped = container("web", 1, ContainerState::Exited(137));
    stopped.manually_stopped = true;
    let mut unhealthy = container("worker", 2, ContainerState::Running);
    unhealthy.health = Health::Unhealthy;
    let all = services(vec![
        stopped,
        container("init", 1, ContainerState::Exited(2)),
        container("worker", 1, ContainerState::Running),
        unhealthy,
    ]);
    assert_eq!(
        health_of(&all, "web"),
        (
            HealthStatus::Degraded,
            Some("web: stopped (0/1 replicas ready)".into())
        )
    );
    assert_eq!(
        health_of(&all, "init"),
        (
            HealthStatus::Degraded,
            Some("init: exited with code 2 (0/1 replicas ready)".into())
        )
    );
    assert_eq!(
        health_of(&all, "worker"),
        (
            HealthStatus::Degraded,
            Some("worker: unhealthy (1/2 replicas ready)".into())
        )
    );
}

#[test]
fn missing_and_partial_services() {
    let all = services(vec![container("worker", 1, ContainerState::Running)]);
    assert_eq!(
        health_of(&all, "web"),
        (
            HealthStatus::Missing,
            Some("web: no container (0/1 replicas ready)".into())
        )
    );
    assert_eq!(
        health_of(&all, "worker"),
        (
            HealthStatus::Progressing,
            Some("worker: 1 replica(s) missing (1/2 replicas ready)".into())
        )
    );
    let mut starting = container("web", 1, ContainerState::Running);
    starting.health = Health::Starting;
    let all = services(vec![starting]);
    assert_eq!(
        health_of(&all, "web"),
        (
            HealthStatus::Progressing,
            Some("web: starting (0/1 replicas ready)".into())
        )
    );
}

/// A store with one loaded project whose reconcile state the test sets.
fn project_with(services: Vec<ServiceStatus>) -> Store {
    let mut store = Store::default();
    store.apply_load(ok("app", "r1", model("app", APP)), t(0));
    store.settle(t(0));
    let p = store.get_mut("app").unwrap();
    p.reconcile.begin(OperationState {
        kind: OperationKind::Apply,
        phase: OperationPhase::Running,
        trigger: Trigger::Initial,
        started_at: t(1),
        finished_at: None,
        revision: "r1".into(),
        generation: 1,
        plan: Vec::new(),
        message: String::new(),
    });
    p.reconcile.finish(
        RunResult {
            steps: Vec::new(),
            error: None,
            observation: Some(Observation {
                services,
                residual: Vec::new(),
                requeue_after: None,
            }),
        },
        t(2),
    );
    refresh_conditions(p, t(2));
    store
}

#[test]
fn project_health_is_the_worst_service_with_every_reason() {
    let store = project_with(services(vec![
        container("web", 1, ContainerState::Running),
        container("init", 1, ContainerState::Exited(0)),
        container("worker", 1, ContainerState::Running),
    ]));
    let p = store.get("app").unwrap();
    assert_eq!(
        project_health(p),
        (
            HealthStatus::Progressing,
            "2/3 services healthy: worker: 1 replica(s) missing (1/2 replicas ready)".into()
        )
    );
    assert_eq!(p.phase(), Phase::Progressing);
    assert_eq!(p.reconcile.healthy.status, ConditionStatus::False);
    assert_eq!(p.reconcile.healthy.reason, reason::STARTING);

    let store = project_with(Vec::new());
    let p = store.get("app").unwrap();
    assert_eq!(project_health(p).0, HealthStatus::Healthy);
    assert_eq!(p.phase(), Phase::Ready);
    // Nothing runs at all: Argo's Missing.
    let store = project_with(services(Vec::new()));
    assert_eq!(
        project_health(store.get("app").unwrap()).0,
        HealthStatus::Missing
    );
}

#[test]
fn phase_precedence() {
    let healthy = || {
        project_with(services(vec![
            container("web", 1, ContainerState::Running),
            container("init", 1, ContainerState::Exited(0)),
            container("worker", 1, ContainerState::Running),
            container("worker", 2, ContainerState::Running),
        ]))
    };
    let mut store = healthy();
    assert_eq!(store.get("app").unwrap().phase(), Phase::Ready);
    // A failed reconcile beats health.
    store.get_mut("app").unwrap().reconcile.consecutive_failures = 1;
    assert_eq!(store.get("app").unwrap().phase(), Phase::Failed);
    // An invalid spec beats it too; suspension beats that; deletion beats all.
    let mut store = healthy();
    store.apply_load(crate::state::tests::failed("app", "r2"), t(3));
    store.settle(t(3));
    assert_eq!(store.get("app").unwrap().phase(), Phase::Failed);
    store.set_suspended("app", true);
    assert_eq!(store.get("app").unwrap().phase(), Phase::Suspended);
    store.mark_absent(&[], t(4));
    assert_eq!(store.get("app").unwrap().phase(), Phase::Deleting);
}

#[test]
fn an_operation_with_actions_is_progressing_and_ready_is_unknown() {
    let mut store = project_with(Vec::new());
    let p = store.get_mut("app").unwrap();
    p.reconcile.begin(OperationState {
        kind: OperationKind::Apply,
        phase: OperationPhase::Running,
        trigger: Trigger::FsWatch,
        started_at: t(10),
        finished_at: None,
        revision: "r2".into(),
        generation: 2,
        plan: Vec::new(),
        message: String::new(),
    });
    refresh_conditions(p, t(10));
    // Planned nothing yet: a quiet resync does not flap the phase.
    assert_eq!(p.phase(), Phase::Ready);
    p.reconcile.planned(vec![StepState {
        service: Some("web".into()),
        action: "Recreate",
        target: "app-web-1".into(),
        reasons: Vec::new(),
        outcome: None,
    }]);
    refresh_conditions(p, t(11));
    assert_eq!(p.phase(), Phase::Progressing);
    let r = &p.reconcile;
    assert_eq!(r.reconciling.status, ConditionStatus::True);
    assert_eq!(
        r.reconciling.message,
        "1 action(s) for apply (trigger fswatch)"
    );
    assert_eq!(r.reconciling.last_transition_time, t(11));
    assert_eq!(r.ready.status, ConditionStatus::Unknown);
    assert_eq!(r.ready.observed_generation, 2);
}

#[test]
fn transition_times_move_only_on_flips() {
    let mut store = project_with(Vec::new());
    let p = store.get_mut("app").unwrap();
    let ready_since = p.reconcile.ready.last_transition_time;
    assert_eq!(ready_since, t(2));
    for at in [5, 9] {
        p.reconcile.begin(OperationState {
            kind: OperationKind::Apply,
            phase: OperationPhase::Running,
            trigger: Trigger::Resync,
            started_at: t(at),
            finished_at: None,
            revision: "r1".into(),
            generation: 1,
            plan: Vec::new(),
            message: String::new(),
        });
        p.reconcile.finish(RunResult::default(), t(at + 1));
        refresh_conditions(p, t(at + 1));
    }
    assert_eq!(p.reconcile.ready.status, ConditionStatus::True);
    assert_eq!(p.reconcile.ready.last_transition_time, ready_since);
    assert_eq!(
        p.reconcile.operation.as_ref().unwrap().finished_at,
        Some(t(10))
    );
}

#[test]
fn history_keeps_operations_that_did_something_newest_first() {
    let mut store = project_with(Vec::new());
    let p = store.get_mut("app").unwrap();
    assert!(p.reconcile.history.is_empty(), "a quiet first reconcile");
    let step = |target: &str| StepState {
        service: None,
        action: "CreateContainer",
        target: target.into(),
        reasons: Vec::new(),
        outcome: Some("done".into()),
    };
    for n in 0..(HISTORY as u64 + 2) {
        p.reconcile.begin(OperationState {
            kind: OperationKind::Apply,
            phase: OperationPhase::Running,
            trigger: Trigger::FsWatch,
            started_at: t(10 + n),
            finished_at: None,
            revision: format!("r{n}"),
            generation: 1,
            plan: Vec::new(),
            message: String::new(),
        });
        let steps = if n % 2 == 0 {
            vec![step("x")]
        } else {
            Vec::new()
        };
        let error = (n == 3).then(|| (berth_reconcilers::ErrorKind::Internal, "boom".into()));
        p.reconcile.finish(
            RunResult {
                steps,
                error,
                observation: None,
            },
            t(11 + n),
        );
    }
    let revisions: Vec<&str> = p
        .reconcile
        .history
        .iter()
        .map(|o| o.revision.as_str())
        .collect();
    // Even ones planned actions; r3 failed; the other odd ones were quiet.
    assert_eq!(revisions, ["r10", "r8", "r6", "r4", "r3", "r2", "r0"]);
}
