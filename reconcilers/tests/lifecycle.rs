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

#[test]
fn stop_and_down_of_a_service_take_its_dependents_along() {
    let host = host();
    let p = project(CHAIN);
    up(&host, &p);
    let stop_api = PlanOptions {
        operation: Operation::Stop,
        services: vec!["api".into()],
        ..opts(&host)
    };
    assert_eq!(
        plan_with(&host, &p, &stop_api).lines(),
        [
            "0 StopContainer shop-front-1 [ProjectStopped: the project is stopped]",
            "1 StopContainer shop-api-1 [ProjectStopped: the project is stopped]",
        ]
    );
    // A subset going down leaves the network to the rest.
    let down_db = PlanOptions {
        operation: Operation::Down { volumes: true },
        services: vec!["db".into()],
        ..opts(&host)
    };
    let lines = plan_with(&host, &p, &down_db).lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines.last().unwrap(),
        "2 RemoveContainer shop-db-1 [Down: the project is going down]"
    );
    assert!(
        lines.iter().all(|l| l.contains("RemoveContainer")),
        "{lines:#?}"
    );
}

#[test]
fn down_keeps_orphans_and_their_network_unless_asked() {
    let host = host();
    let p = project(CHAIN);
    up(&host, &p);
    let mut smaller = p.clone();
    smaller.services.shift_remove("worker");
    let keep = PlanOptions {
        operation: Operation::Down { volumes: false },
        remove_orphans: false,
        ..opts(&host)
    };
    let lines = plan_with(&host, &smaller, &keep).lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("worker") || l.contains("Network")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let all = PlanOptions {
        remove_orphans: true,
        ..keep.clone()
    };
    let lines = plan_with(&host, &smaller, &all).lines();
    assert_eq!(
        lines.first().unwrap(),
        "0 RemoveContainer shop-worker-1 [Down: the project is going down]"
    );
    assert_eq!(
        lines.last().unwrap(),
        "3 RemoveNetwork shop_default [Down: the project is going down]"
    );
}

#[test]
fn down_with_volumes_spares_a_volume_now_declared_external() {
    let host = host();
    let p = project(SHOP);
    up(&host, &p);
    let mut external = p.clone();
    external.volumes.get_mut("data").unwrap().external = true;
    let down_v = PlanOptions {
        operation: Operation::Down { volumes: true },
        ..opts(&host)
    };
    let lines = plan_with(&host, &external, &down_v).lines();
    assert!(
        !lines.iter().any(|l| l.contains("RemoveVolume")),
        "{lines:#?}"
    );
    let lines = plan_with(&host, &p, &down_v).lines();
    assert_eq!(
        lines.last().unwrap(),
        "2 RemoveVolume shop_data [Down: down with volumes]"
    );
}

#[test]
fn start_starts_existing_containers_in_order_and_creates_nothing() {
    let host = host();
    let p = project(CHAIN);
    up(&host, &p);
    let stop = PlanOptions {
        operation: Operation::Stop,
        ..opts(&host)
    };
    assert!(exec(&host, &plan_with(&host, &p, &stop)).succeeded());
    host.delete_container("shop-worker-1");
    let start_front = PlanOptions {
        operation: Operation::Start,
        services: vec!["front".into()],
        ..opts(&host)
    };
    let plan = plan_with(&host, &p, &start_front);
    assert_eq!(
        plan.lines(),
        [
            "0 StartContainer shop-db-1 [Requested: start]",
            "1 StartContainer shop-api-1 [Requested: start]",
            "2 StartContainer shop-front-1 [Requested: start]",
        ]
    );
    assert_eq!(plan.actions[2].wait[0].service, "api");
    assert!(exec(&host, &plan).succeeded());
    assert_converged(&host, &p, &start_front);
    let start_all = PlanOptions {
        operation: Operation::Start,
        ..opts(&host)
    };
    // worker has no container: start does not create it.
    assert_converged(&host, &p, &start_all);
}

#[test]
fn restart_follows_restart_true_dependents_unless_no_deps() {
    let host = host();
    let p = project(CHAIN);
    up(&host, &p);
    let restart_db = PlanOptions {
        operation: Operation::Restart,
        services: vec!["db".into()],
        ..opts(&host)
    };
    let plan = plan_with(&host, &p, &restart_db);
    assert_eq!(
        plan.lines(),
        [
            "0 RestartContainer shop-db-1 [Requested: restart]",
            "1 RestartContainer shop-api-1 [Requested: restart]",
            "2 RestartContainer shop-front-1 [Requested: restart]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_eq!(running(&host).len(), 4);
    let only_db = PlanOptions {
        no_deps: true,
        ..restart_db
    };
    assert_eq!(
        plan_with(&host, &p, &only_db).lines(),
        ["0 RestartContainer shop-db-1 [Requested: restart]"]
    );
}

#[test]
fn no_build_and_pull_always() {
    let host = host();
    let p = project(
        r#"
services:
  app:
    build: .
  web:
    image: nginx:1.25
"#,
    );
    let lines = plan_with(&host, &p, &opts(&host)).lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("0 BuildImage shop-app ")),
        "{lines:#?}"
    );
    let no_build = PlanOptions {
        no_build: true,
        ..opts(&host)
    };
    let lines = plan_with(&host, &p, &no_build).lines();
    assert!(
        !lines.iter().any(|l| l.contains("BuildImage")),
        "{lines:#?}"
    );
    up(&host, &without(&p, "app"));
    let always = PlanOptions {
        pull: berth_reconcilers::plan::PullMode::Always,
        no_build: true,
        services: vec!["web".into()],
        ..opts(&host)
    };
    assert_eq!(
        plan_with(&host, &p, &always).lines(),
        ["0 PullImage nginx:1.25 [ImageRefresh: --pull always]"]
    );
}

/// `project` without one of its services.
fn without(
    project: &berth_spec::compose::model::Project,
    service: &str,
) -> berth_spec::compose::model::Project {
    let mut p = project.clone();
    p.services.shift_remove(service);
    p
}

#[test]
fn the_clis_up_runs_completed_one_shots_again_the_agent_does_not() {
    let host = host();
    let p = project(
        r#"
services:
  migrate:
    image: busybox
    command: ["true"]
  web:
    image: nginx:1.25
"#,
    );
    up(&host, &p);
    host.exit("shop-migrate-1", 0);
    assert_converged(&host, &p, &opts(&host));
    let cli = PlanOptions {
        start_exited: true,
        ..opts(&host)
    };
    assert_eq!(
        plan_with(&host, &p, &cli).lines(),
        ["0 StartContainer shop-migrate-1 [Exited: exited with code 0; up starts it again]"]
    );
}
