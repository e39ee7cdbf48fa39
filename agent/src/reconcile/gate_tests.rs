#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_reconcilers::status::{
    HealthStatus, ImageStatus, LastExit, ReplicaStatus, ServicePhase, ServiceStatus, SyncStatus,
};

use super::*;

fn replica(id: &str, state: &'static str, health: &'static str, restarts: u32) -> ReplicaStatus {
    ReplicaStatus {
        id: id.into(),
        name: format!("shop-{id}"),
        number: Some(1),
        state,
        exit_code: None,
        health,
        started_at: None,
        restart_count: restarts,
        config_hash: None,
    }
}

fn service(name: &str, phase: ServicePhase, replicas: Vec<ReplicaStatus>) -> ServiceStatus {
    let ready = replicas
        .iter()
        .filter(|r| r.state == "running" && matches!(r.health, "healthy" | "none"))
        .count() as u32;
    ServiceStatus {
        name: name.into(),
        phase,
        sync: SyncStatus::Synced,
        health: HealthStatus::Healthy,
        desired_replicas: 1,
        running_replicas: 1,
        ready_replicas: ready,
        completed_replicas: 0,
        updated_replicas: 1,
        image: ImageStatus {
            reference: "busybox".into(),
            digest: None,
        },
        config_hash: "sha256:x".into(),
        restart_policy: "no",
        restart_count: 0,
        last_exit: None,
        last_error: None,
        replicas,
        drift_reasons: vec![],
        plan: vec![],
    }
}

fn gate(services: &[&str]) -> (Gate, Instant) {
    let now = Instant::now();
    let policy = GatePolicy {
        services: services.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_secs(60),
        stable: Duration::from_secs(5),
        monitor: None,
        failure_action: FailureAction::Rollback,
    };
    (Gate::new(policy, now), now)
}

fn secs(t: Instant, s: u64) -> Instant {
    t + Duration::from_secs(s)
}

#[test]
fn a_healthcheck_passes_when_healthy() {
    let (mut g, t) = gate(&["web"]);
    let starting = service(
        "web",
        ServicePhase::Starting,
        vec![replica("a", "running", "starting", 0)],
    );
    assert!(matches!(g.step(t, &[starting]), Verdict::Waiting(w) if w.contains("web: starting")));
    let healthy = service(
        "web",
        ServicePhase::Running,
        vec![replica("a", "running", "healthy", 0)],
    );
    assert_eq!(g.step(secs(t, 3), &[healthy]), Verdict::Passed);
}

#[test]
fn unhealthy_fails_at_once() {
    let (mut g, t) = gate(&["web"]);
    let bad = service(
        "web",
        ServicePhase::Running,
        vec![replica("a", "running", "unhealthy", 0)],
    );
    assert_eq!(
        g.step(t, &[bad]),
        Verdict::Failed("web: shop-a is unhealthy".into())
    );
}

#[test]
fn without_a_healthcheck_running_must_last() {
    let (mut g, t) = gate(&["web"]);
    let up = || {
        service(
            "web",
            ServicePhase::Running,
            vec![replica("a", "running", "none", 0)],
        )
    };
    assert!(matches!(g.step(t, &[up()]), Verdict::Waiting(w) if w.contains("watching it for 5s")));
    assert!(matches!(g.step(secs(t, 4), &[up()]), Verdict::Waiting(_)));
    assert_eq!(g.step(secs(t, 5), &[up()]), Verdict::Passed);
}

#[test]
fn a_restart_after_the_first_look_fails() {
    let (mut g, t) = gate(&["web"]);
    let up = |n| {
        service(
            "web",
            ServicePhase::Running,
            vec![replica("a", "running", "none", n)],
        )
    };
    // Restarts from before the gate (an untouched container) do not count.
    assert!(matches!(g.step(t, &[up(2)]), Verdict::Waiting(_)));
    assert!(matches!(
        g.step(secs(t, 1), &[up(3)]),
        Verdict::Failed(w) if w.contains("restarted 1 time(s)")
    ));
}

#[test]
fn exits_fail_and_completed_one_shots_pass() {
    let (mut g, t) = gate(&["job", "web"]);
    let mut done = service(
        "job",
        ServicePhase::Completed,
        vec![replica("j", "exited", "none", 0)],
    );
    done.ready_replicas = 0;
    let healthy = service(
        "web",
        ServicePhase::Running,
        vec![replica("a", "running", "healthy", 0)],
    );
    assert_eq!(g.step(t, &[done.clone(), healthy]), Verdict::Passed);

    let (mut g, t) = gate(&["web"]);
    let mut crashed = service(
        "web",
        ServicePhase::Failed,
        vec![replica("a", "exited", "none", 0)],
    );
    crashed.last_exit = Some(LastExit { code: 3, at: None });
    assert_eq!(
        g.step(t, &[crashed]),
        Verdict::Failed("web: exited with code 3".into())
    );
}

#[test]
fn the_deadline_fails_with_what_was_missing() {
    let (mut g, t) = gate(&["web"]);
    let starting = || {
        service(
            "web",
            ServicePhase::Starting,
            vec![replica("a", "running", "starting", 0)],
        )
    };
    assert!(matches!(
        g.step(secs(t, 59), &[starting()]),
        Verdict::Waiting(_)
    ));
    assert_eq!(
        g.step(secs(t, 60), &[starting()]),
        Verdict::Failed("not ready within 1m: web: starting (0/1 ready)".into())
    );
}

#[test]
fn losing_readiness_restarts_the_watch() {
    let (mut g, t) = gate(&["web"]);
    let up = || {
        service(
            "web",
            ServicePhase::Running,
            vec![replica("a", "running", "none", 0)],
        )
    };
    let mut down = service(
        "web",
        ServicePhase::Starting,
        vec![replica("a", "created", "none", 0)],
    );
    down.ready_replicas = 0;
    g.step(t, &[up()]);
    g.step(secs(t, 4), &[down]);
    assert!(matches!(g.step(secs(t, 5), &[up()]), Verdict::Waiting(_)));
    assert_eq!(g.step(secs(t, 10), &[up()]), Verdict::Passed);
}

#[test]
fn untouched_services_are_not_gated() {
    let (mut g, t) = gate(&["web"]);
    let web = service(
        "web",
        ServicePhase::Running,
        vec![replica("a", "running", "healthy", 0)],
    );
    let db = service(
        "db",
        ServicePhase::Failed,
        vec![replica("d", "exited", "none", 0)],
    );
    assert_eq!(g.step(t, &[web, db]), Verdict::Passed);
}

#[test]
fn policy_takes_the_strictest_action_and_longest_monitor() {
    let model = crate::reconcile::testing::model(
        "shop",
        "services:
  web:
    image: busybox
    deploy:
      update_config: {failure_action: continue, monitor: 30s}
  api:
    image: busybox
    deploy:
      update_config: {failure_action: pause, monitor: 10s}
  db:
    image: busybox
",
    );
    let defaults = GateDefaults {
        timeout: Duration::from_secs(20),
        ..GateDefaults::default()
    };
    let p = policy(&model, vec!["web".into(), "api".into()], defaults);
    assert_eq!(p.failure_action, FailureAction::Pause);
    assert_eq!(p.monitor, Some(Duration::from_secs(30)));
    assert_eq!(p.timeout, Duration::from_secs(30), "at least the monitor");
    let p = policy(&model, vec!["web".into()], defaults);
    assert_eq!(p.failure_action, FailureAction::Continue);
    let p = policy(&model, vec!["db".into()], defaults);
    assert_eq!(p.failure_action, FailureAction::Rollback);
    assert_eq!(p.monitor, None);
}

#[test]
fn monitor_applies_to_healthchecked_services_too() {
    let now = Instant::now();
    let policy = GatePolicy {
        services: vec!["web".into()],
        timeout: Duration::from_secs(60),
        stable: Duration::from_secs(5),
        monitor: Some(Duration::from_secs(10)),
        failure_action: FailureAction::Rollback,
    };
    let mut g = Gate::new(policy, now);
    let healthy = || {
        service(
            "web",
            ServicePhase::Running,
            vec![replica("a", "running", "healthy", 0)],
        )
    };
    assert!(matches!(g.step(now, &[healthy()]), Verdict::Waiting(_)));
    assert_eq!(g.step(secs(now, 10), &[healthy()]), Verdict::Passed);
}

#[test]
fn a_restarted_gate_gets_its_full_time_again() {
    let (g, t) = gate(&["web"]);
    let starting = || {
        service(
            "web",
            ServicePhase::Starting,
            vec![replica("a", "running", "starting", 0)],
        )
    };
    let mut again = g.restarted(secs(t, 100));
    assert!(matches!(
        again.step(secs(t, 159), &[starting()]),
        Verdict::Waiting(_)
    ));
    assert!(matches!(
        again.step(secs(t, 160), &[starting()]),
        Verdict::Failed(_)
    ));
}
