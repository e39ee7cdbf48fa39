//! Status summaries after real (fake) runs: phases, replica counts, the
//! last plan's reasons, and the camelCase JSON the agent embeds.

mod support;

use std::time::Duration;

use berth_reconcilers::status::{HealthStatus, ServicePhase, SyncStatus, summarize};
use berth_reconcilers::{ReasonKind, observe};
use support::*;

const APP: &str = r#"
services:
  migrate:
    image: busybox
    command: [echo, ok]
  web:
    image: nginx:1.25
    deploy: {replicas: 2}
    restart: always
    depends_on:
      migrate: {condition: service_completed_successfully}
  worker:
    image: busybox
    command: [work]
    restart: on-failure:3
"#;

#[test]
fn phases_counts_and_reasons() {
    let host = host();
    host.crash_loop("migrate", 0);
    let p = project(APP);
    up(&host, &p);
    host.crash_loop("worker", 2);
    host.exit("shop-worker-1", 2);
    let observed = observe(&p, host.backends()).unwrap();
    let options = opts(&host);
    let plan = berth_reconcilers::plan(&p, &observed, &options).unwrap();
    let status = summarize(&p, &observed, Some(&plan), None, &options);
    let row = |name: &str| status.iter().find(|s| s.name == name).unwrap();

    let migrate = row("migrate");
    assert_eq!(
        (migrate.phase, migrate.health, migrate.sync),
        (
            ServicePhase::Completed,
            HealthStatus::Healthy,
            SyncStatus::Synced
        )
    );
    assert_eq!(
        (
            migrate.desired_replicas,
            migrate.completed_replicas,
            migrate.running_replicas
        ),
        (1, 1, 0)
    );

    let web = row("web");
    assert_eq!(
        (web.phase, web.health, web.sync),
        (
            ServicePhase::Running,
            HealthStatus::Healthy,
            SyncStatus::Synced
        )
    );
    assert_eq!(
        (
            web.desired_replicas,
            web.running_replicas,
            web.ready_replicas,
            web.updated_replicas
        ),
        (2, 2, 2, 2)
    );
    assert_eq!(web.image.digest.as_deref(), Some(NGINX));
    assert_eq!(web.replicas[1].name, "shop-web-2");
    assert_eq!(
        web.replicas[0].started_at.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );

    let worker = row("worker");
    assert_eq!(
        (worker.phase, worker.health, worker.sync),
        (
            ServicePhase::Restarting,
            HealthStatus::Degraded,
            SyncStatus::OutOfSync
        )
    );
    assert_eq!(worker.drift_reasons, [ReasonKind::Exited]);
    assert_eq!(worker.last_exit.as_ref().map(|e| e.code), Some(2));
    assert_eq!(worker.restart_policy, "on-failure");

    // Attempts used up: Failed, and nothing more is planned.
    for _ in 0..3 {
        host.clock().advance(Duration::from_secs(60));
        up(&host, &p);
    }
    let observed = observe(&p, host.backends()).unwrap();
    let plan = berth_reconcilers::plan(&p, &observed, &opts(&host)).unwrap();
    assert!(plan.is_empty(), "{:?}", plan.lines());
    let status = summarize(&p, &observed, Some(&plan), None, &opts(&host));
    let worker = status.iter().find(|s| s.name == "worker").unwrap();
    assert_eq!(
        (worker.phase, worker.restart_count),
        (ServicePhase::Failed, 3)
    );

    let json = serde_json::to_value(&status).unwrap();
    let keys: Vec<&str> = json[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "name",
            "phase",
            "sync",
            "health",
            "desiredReplicas",
            "runningReplicas",
            "readyReplicas",
            "completedReplicas",
            "updatedReplicas",
            "image",
            "configHash",
            "restartPolicy",
            "restartCount",
            "lastExit",
            "lastError",
            "replicas",
            "driftReasons",
            "plan"
        ]
    );
    assert_eq!(json[1]["image"]["ref"], "nginx:1.25");
    assert_eq!(json[1]["phase"], "Running");
}

#[test]
fn a_failed_action_is_the_services_last_error() {
    use berth_reconcilers::ErrorKind;
    use berth_reconcilers::fakes::Op;
    let host = host();
    let p = project("services:\n  web:\n    image: nginx:1.25\n");
    host.fail_next(Op::Create, ErrorKind::Unavailable);
    let observed = observe(&p, host.backends()).unwrap();
    let plan = berth_reconcilers::plan(&p, &observed, &opts(&host)).unwrap();
    let report = exec(&host, &plan);
    let observed = observe(&p, host.backends()).unwrap();
    let status = summarize(&p, &observed, Some(&plan), Some(&report), &opts(&host));
    assert_eq!(status[0].phase, ServicePhase::Pending);
    assert_eq!(status[0].health, HealthStatus::Missing);
    assert_eq!(
        status[0].last_error.as_deref(),
        Some("create shop-web-1: unavailable: injected failure of Create shop-web-1")
    );
    assert_eq!(
        status[0].drift_reasons,
        [ReasonKind::ContainerMissing, ReasonKind::ImageMissing]
    );
}
