#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::UNIX_EPOCH;

use berth_reconcilers::status::{HealthStatus, ImageStatus, ServicePhase, SyncStatus};

use super::super::events_log::{EventType, Since};
use super::*;

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
}

fn web(state: &'static str, restarts: u32, exit: Option<i64>, started: u64) -> ServiceStatus {
    ServiceStatus {
        name: "web".into(),
        phase: ServicePhase::Running,
        sync: SyncStatus::Synced,
        health: HealthStatus::Healthy,
        desired_replicas: 1,
        running_replicas: 1,
        ready_replicas: 1,
        completed_replicas: 0,
        updated_replicas: 1,
        image: ImageStatus {
            reference: "busybox".into(),
            digest: None,
        },
        config_hash: "sha256:x".into(),
        restart_policy: "always",
        restart_count: restarts,
        last_exit: None,
        last_error: None,
        replicas: vec![ReplicaStatus {
            id: "a".into(),
            name: "shop-web-1".into(),
            number: Some(1),
            state,
            exit_code: exit,
            health: "none",
            started_at: Some(crate::timefmt::rfc3339(at(started))),
            restart_count: restarts,
            config_hash: None,
        }],
        drift_reasons: vec![],
        plan: vec![],
    }
}

fn seen(log: &EventLog) -> Vec<(EventType, String, u64)> {
    log.since(&Since::All, None)
        .into_iter()
        .map(|e| (e.kind, e.reason, e.count))
        .collect()
}

#[test]
fn a_crash_loop_is_two_counted_warnings_then_one_recovery() {
    let log = EventLog::new(100, None);
    let mut old = vec![web("running", 0, None, 0)];
    // Exit, restart, exit, restart: each observation after the previous.
    let steps = [
        web("exited", 0, Some(3), 0),
        web("running", 1, Some(3), 2),
        web("exited", 1, Some(3), 2),
        web("running", 2, Some(3), 4),
        web("exited", 2, Some(3), 4),
    ];
    for (i, new) in steps.into_iter().enumerate() {
        let new = vec![new];
        container_events(&log, "shop", &old, &new, at(5 + i as u64));
        old = new;
    }
    assert_eq!(
        seen(&log),
        [
            (EventType::Warning, "ContainerRestarted".to_owned(), 2),
            (EventType::Warning, "ContainerExited".to_owned(), 3),
        ]
    );
    // Running again, long enough: one recovery, then quiet.
    let new = vec![web("running", 3, Some(3), 20)];
    container_events(&log, "shop", &old, &new, at(25));
    let calm = vec![web("running", 3, Some(3), 20)];
    container_events(&log, "shop", &new, &calm, at(40));
    container_events(&log, "shop", &calm, &calm, at(50));
    let reasons: Vec<String> = seen(&log).into_iter().map(|e| e.1).collect();
    assert_eq!(
        reasons,
        [
            "ContainerExited",
            "ContainerRestarted",
            "ContainerRecovered"
        ]
    );
}

#[test]
fn a_clean_exit_is_not_a_warning() {
    let log = EventLog::new(100, None);
    let old = vec![web("running", 0, None, 0)];
    container_events(&log, "shop", &old, &[web("exited", 0, Some(0), 0)], at(5));
    assert!(seen(&log).is_empty());
}
