//! Lifecycle operations against the fakes: stop and start, scale, orphans,
//! service subsets, force and no-recreate, down; each checks the exact plan
//! and that a second plan on the converged state is empty.

mod support;

use std::time::Duration;

use berth_reconcilers::{Operation, PlanOptions};
use support::*;

#[test]
fn a_stopped_project_stays_stopped_and_up_starts_it_in_order() {
    let host = host();
    let p = project(SHOP);
    up(&host, &p);
    let stop = PlanOptions {
        operation: Operation::Stop,
        ..opts(&host)
    };
    let plan = plan_with(&host, &p, &stop);
    assert_eq!(
        plan.lines(),
        [
            "0 StopContainer shop-web-1 [ProjectStopped: the project is stopped]",
            "0 StopContainer shop-web-2 [ProjectStopped: the project is stopped]",
            "1 StopContainer shop-db-1 [ProjectStopped: the project is stopped]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert!(running(&host).is_empty());
    // restart: always does not bring a stopped project back.
    host.clock().advance(Duration::from_secs(60));
    assert_converged(&host, &p, &stop);
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        [
            "0 StartContainer shop-db-1 [Stopped: was stopped; the project is up]",
            "1 StartContainer shop-web-1 [Stopped: was stopped; the project is up]",
            "1 StartContainer shop-web-2 [Stopped: was stopped; the project is up]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_converged(&host, &p, &opts(&host));
}

#[test]
fn scale_up_fills_the_next_numbers_and_scale_down_removes_the_highest() {
    let host = host();
    let p = project(SHOP);
    up(&host, &p);
    let four = PlanOptions {
        scale: [("web".to_string(), 4)].into(),
        ..opts(&host)
    };
    let plan = plan_with(&host, &p, &four);
    assert_eq!(
        plan.lines(),
        [
            "0 CreateContainer shop-web-3 [ScaledUp: service wants 4 replica(s)]",
            "0 CreateContainer shop-web-4 [ScaledUp: service wants 4 replica(s)]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_converged(&host, &p, &four);
    // Drift: a replica in the middle disappears.
    host.delete_container("shop-web-2");
    assert_eq!(
        plan_with(&host, &p, &four).lines(),
        ["0 CreateContainer shop-web-2 [ContainerMissing: replica 2 has no container]"]
    );
    converge_with(&host, &p, &four);
    let one = PlanOptions {
        scale: [("web".to_string(), 1)].into(),
        ..opts(&host)
    };
    let plan = plan_with(&host, &p, &one);
    assert_eq!(
        plan.lines(),
        [
            "0 RemoveContainer shop-web-4 [ScaledDown: service wants 1 replica(s)]",
            "0 RemoveContainer shop-web-3 [ScaledDown: service wants 1 replica(s)]",
            "0 RemoveContainer shop-web-2 [ScaledDown: service wants 1 replica(s)]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_eq!(running(&host), ["shop-db-1", "shop-web-1"]);
    assert_converged(&host, &p, &one);
}

#[test]
fn orphans_are_removed_unless_told_otherwise() {
    let host = host();
    up(&host, &project(CHAIN));
    let without_worker = project(&CHAIN.replace(
        "  worker:\n    image: busybox\n    command: [sleep, infinity]\n    depends_on: [db]\n",
        "",
    ));
    let keep = PlanOptions {
        remove_orphans: false,
        ..opts(&host)
    };
    assert_converged(&host, &without_worker, &keep);
    let inactive = PlanOptions {
        inactive_services: vec!["worker".into()],
        ..opts(&host)
    };
    assert_converged(&host, &without_worker, &inactive);
    let plan = plan_up(&host, &without_worker);
    assert_eq!(
        plan.lines(),
        ["0 RemoveContainer shop-worker-1 [Orphaned: service \"worker\" is no longer declared]"]
    );
    host.clear_calls();
    assert!(exec(&host, &plan).succeeded());
    assert_eq!(host.calls(), ["stop shop-worker-1", "remove shop-worker-1"]);
    assert_converged(&host, &without_worker, &opts(&host));
}

#[test]
fn a_subset_brings_its_dependencies_unless_no_deps() {
    let host = host();
    let p = project(CHAIN);
    let subset = PlanOptions {
        services: vec!["api".into()],
        ..opts(&host)
    };
    let lines = plan_with(&host, &p, &subset).lines();
    assert_eq!(
        lines,
        [
            "0 CreateNetwork shop_default [ResourceMissing: network shop_default does not exist]",
            "0 PullImage postgres:16 [ImageMissing: postgres:16 is not present]",
            "0 PullImage nginx:1.25 [ImageMissing: nginx:1.25 is not present]",
            "1 CreateContainer shop-db-1 [ContainerMissing: replica 1 has no container]",
            "2 CreateContainer shop-api-1 [ContainerMissing: replica 1 has no container]",
        ]
    );
    let no_deps = PlanOptions {
        no_deps: true,
        ..subset.clone()
    };
    let plan = plan_with(&host, &p, &no_deps);
    assert_eq!(
        plan.lines(),
        [
            "0 CreateNetwork shop_default [ResourceMissing: network shop_default does not exist]",
            "0 PullImage nginx:1.25 [ImageMissing: nginx:1.25 is not present]",
            "1 CreateContainer shop-api-1 [ContainerMissing: replica 1 has no container]",
        ]
    );
    assert!(plan.actions[2].wait.is_empty(), "--no-deps does not wait");
    converge_with(&host, &p, &subset);
    assert_eq!(running(&host), ["shop-api-1", "shop-db-1"]);
    assert_converged(&host, &p, &subset);
}

#[test]
fn force_recreate_and_no_recreate() {
    let host = host();
    let p = project(CHAIN);
    up(&host, &p);
    let force = PlanOptions {
        force_recreate: true,
        services: vec!["worker".into()],
        no_deps: true,
        ..opts(&host)
    };
    assert_eq!(
        plan_with(&host, &p, &force).lines(),
        ["0 Recreate shop-worker-1 [Forced: --force-recreate]"]
    );
    let changed = project(&CHAIN.replace("V: \"1\"", "V: \"2\""));
    let keep = PlanOptions {
        no_recreate: true,
        ..opts(&host)
    };
    assert_converged(&host, &changed, &keep);
}

#[test]
fn down_goes_in_reverse_order_and_keeps_volumes_unless_asked() {
    let host = host();
    let p = project(SHOP);
    up(&host, &p);
    let down = PlanOptions {
        operation: Operation::Down { volumes: false },
        ..opts(&host)
    };
    let plan = plan_with(&host, &p, &down);
    assert_eq!(
        plan.lines(),
        [
            "0 RemoveContainer shop-web-1 [Down: the project is going down]",
            "0 RemoveContainer shop-web-2 [Down: the project is going down]",
            "1 RemoveContainer shop-db-1 [Down: the project is going down]",
            "2 RemoveNetwork shop_default [Down: the project is going down]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert!(host.container_states().is_empty());
    assert_eq!(host.volume_names(), ["shop_data"]);
    assert!(host.network_names().is_empty());
    assert_converged(&host, &p, &down);
    let down_v = PlanOptions {
        operation: Operation::Down { volumes: true },
        ..opts(&host)
    };
    assert_eq!(
        plan_with(&host, &p, &down_v).lines(),
        ["0 RemoveVolume shop_data [Down: down with volumes]"]
    );
}

#[test]
fn unhealthy_and_never_started_containers() {
    let host = host();
    let p = project(SHOP);
    let no_start = PlanOptions {
        no_start: true,
        ..opts(&host)
    };
    converge_with(&host, &p, &no_start);
    assert!(running(&host).is_empty());
    assert_converged(&host, &p, &no_start);
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        [
            "0 StartContainer shop-db-1 [NotStarted: created but never started]",
            "1 StartContainer shop-web-1 [NotStarted: created but never started]",
            "1 StartContainer shop-web-2 [NotStarted: created but never started]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    host.make_unhealthy("db");
    host.clock().advance(Duration::from_secs(30));
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        ["0 RestartContainer shop-db-1 [Unhealthy: the healthcheck reports unhealthy]"]
    );
}
