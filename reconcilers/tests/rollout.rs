//! `deploy.update_config` against the fakes: start-first replacement
//! (the new container created and started out of service, promoted once
//! its gate passes, the old one stopped after), its gate failures, and
//! replacements in batches with a delay.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use berth_reconcilers::Clock;
use berth_reconcilers::fakes::FakeHost;
use berth_reconcilers::observed::ContainerState;
use berth_reconcilers::status::summarize;
use berth_reconcilers::{Action, ContainerRuntime, ErrorKind, Outcome, Plan, Report, UpdateOrder};
use support::*;

/// One web replica with a published port, a healthcheck and start-first.
const WEB: &str = r#"
services:
  web:
    image: nginx:1.25
    ports: ["8080:80"]
    environment: {V: "1"}
    healthcheck: {test: "wget -q -O- localhost"}
    deploy:
      update_config:
        order: start-first
"#;

fn v2(yaml: &str) -> String {
    yaml.replace("V: \"1\"", "V: \"2\"")
}

fn failure(report: &Report) -> (ErrorKind, String) {
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1, "{report:#?}");
    match &failed[0].outcome {
        Outcome::Failed { kind, message } => (*kind, message.clone()),
        other => panic!("{other:?}"),
    }
}

fn standby(host: &FakeHost, name: &str) -> bool {
    host.list("shop")
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is gone"))
        .standby
}

fn delays(plan: &Plan) -> Vec<Duration> {
    plan.actions.iter().map(|a| a.delay).collect()
}

#[test]
fn start_first_starts_the_new_replica_before_the_old_one_stops() {
    let host = host();
    up(&host, &project(WEB));
    host.clear_calls();
    let changed = project(&v2(WEB));
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        ["0 Replace shop-web-1 (start-first: shop-web-2) [ConfigChanged: environment changed]"]
    );
    let Action::Replace { gate, .. } = &plan.actions[0].action else {
        panic!("{:?}", plan.actions[0].action)
    };
    // No monitor: the healthcheck's worst case (Docker's defaults: 4
    // probes of 30 s interval + 30 s timeout).
    assert_eq!(gate.timeout, Duration::from_secs(240));
    let report = exec(&host, &plan);
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        host.calls(),
        [
            "create-standby shop-web-2",
            "start shop-web-2",
            "promote shop-web-2",
            "stop shop-web-1",
            "remove shop-web-1",
        ]
    );
    assert_eq!(running(&host), ["shop-web-2"]);
    assert!(!standby(&host, "shop-web-2"));
    assert_eq!(host.spec_of("shop-web-2").unwrap().env["V"], "2");
    assert_converged(&host, &changed, &opts(&host));
    // The next replacement takes the lowest free number again.
    let back = project(WEB);
    let plan = plan_up(&host, &back);
    assert_eq!(
        plan.lines(),
        ["0 Replace shop-web-2 (start-first: shop-web-1) [ConfigChanged: environment changed]"]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_eq!(running(&host), ["shop-web-1"]);
}

#[test]
fn the_old_replica_serves_until_the_new_one_is_healthy() {
    let host = host();
    up(&host, &project(WEB));
    host.healthy_after("web", Duration::from_secs(7));
    host.clear_calls();
    let start = host.clock().now();
    let report = exec(&host, &plan_up(&host, &project(&v2(WEB))));
    assert!(report.succeeded(), "{report:#?}");
    let waited = host.clock().now().duration_since(start).unwrap();
    // 7 s of health gate, then the drain before the old one's stop.
    assert!(waited >= Duration::from_secs(8), "{waited:?}");
    assert_eq!(host.calls()[2], "promote shop-web-2");
}

#[test]
fn without_a_healthcheck_the_new_replica_must_run_for_the_stable_period() {
    let host = host();
    let yaml = WEB.replace("    healthcheck: {test: \"wget -q -O- localhost\"}\n", "");
    up(&host, &project(&yaml));
    let start = host.clock().now();
    let report = exec(&host, &plan_up(&host, &project(&v2(&yaml))));
    assert!(report.succeeded(), "{report:#?}");
    let waited = host.clock().now().duration_since(start).unwrap();
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert_eq!(running(&host), ["shop-web-2"]);
}

#[test]
fn a_new_replica_that_exits_is_removed_and_the_old_one_keeps_serving() {
    let host = host();
    up(&host, &project(WEB));
    host.crash_loop("web", 3);
    host.clear_calls();
    let changed = project(&v2(WEB));
    let report = exec(&host, &plan_up(&host, &changed));
    let (kind, message) = failure(&report);
    assert_eq!(kind, ErrorKind::GateFailed);
    assert!(
        message.contains(
            "shop-web-2 failed its health gate (it exited with code 3); shop-web-1 keeps serving"
        ),
        "{message}"
    );
    assert_eq!(
        host.calls(),
        [
            "create-standby shop-web-2",
            "start shop-web-2",
            "stop shop-web-2",
            "remove shop-web-2",
        ]
    );
    assert_eq!(running(&host), ["shop-web-1"]);
    assert!(!standby(&host, "shop-web-1"));
    // Fixed, the next up replaces it.
    host.stop_crash_loop("web");
    assert!(exec(&host, &plan_up(&host, &changed)).succeeded());
    assert_eq!(running(&host), ["shop-web-2"]);
}

#[test]
fn an_unhealthy_new_replica_fails_the_gate() {
    let host = host();
    up(&host, &project(WEB));
    host.make_unhealthy("web");
    let report = exec(&host, &plan_up(&host, &project(&v2(WEB))));
    let (kind, message) = failure(&report);
    assert_eq!(kind, ErrorKind::GateFailed);
    assert!(
        message.contains("its healthcheck reports unhealthy"),
        "{message}"
    );
    assert_eq!(
        host.container_states(),
        [("shop-web-1".to_string(), ContainerState::Running)]
    );
}

#[test]
fn a_new_replica_not_healthy_within_monitor_times_out() {
    let host = host();
    let yaml = WEB.replace(
        "order: start-first",
        "order: start-first\n        monitor: 10s",
    );
    up(&host, &project(&yaml));
    host.healthy_after("web", Duration::from_secs(60));
    let plan = plan_up(&host, &project(&v2(&yaml)));
    let Action::Replace { gate, .. } = &plan.actions[0].action else {
        panic!("{:?}", plan.actions[0].action)
    };
    assert_eq!(gate.timeout, Duration::from_secs(10));
    let (kind, message) = failure(&exec(&host, &plan));
    assert_eq!(kind, ErrorKind::GateFailed);
    assert!(message.contains("not healthy after 10s"), "{message}");
    assert_eq!(running(&host), ["shop-web-1"]);
}

#[test]
fn replicas_are_replaced_in_batches_with_a_delay_between() {
    let host = host();
    let yaml = WEB
        .replace("ports: [\"8080:80\"]", "ports: [\"80\"]")
        .replace(
            "      update_config:",
            "      replicas: 3\n      update_config:\n        parallelism: 2\n        delay: 5s",
        );
    up(&host, &project(&yaml));
    host.clear_calls();
    let changed = project(&v2(&yaml));
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        [
            "0 Replace shop-web-1 (start-first: shop-web-4) [ConfigChanged: environment changed]",
            "0 Replace shop-web-2 (start-first: shop-web-5) [ConfigChanged: environment changed]",
            "1 Replace shop-web-3 (start-first: shop-web-6) [ConfigChanged: environment changed]",
        ]
    );
    assert_eq!(
        delays(&plan),
        [Duration::ZERO, Duration::ZERO, Duration::from_secs(5)]
    );
    assert_eq!(plan.actions[2].after, [0, 1]);
    let start = host.clock().now();
    assert!(exec(&host, &plan).succeeded());
    assert!(host.clock().now().duration_since(start).unwrap() >= Duration::from_secs(5));
    let calls = host.calls();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap();
    // The second batch begins once the first is done.
    assert!(at("create-standby shop-web-6") > at("remove shop-web-1"));
    assert!(at("create-standby shop-web-6") > at("remove shop-web-2"));
    assert_eq!(running(&host), ["shop-web-4", "shop-web-5", "shop-web-6"]);
    assert_converged(&host, &changed, &opts(&host));
    // Back: the lowest numbers again.
    let plan = plan_up(&host, &project(&yaml));
    let targets: Vec<String> = plan.actions.iter().map(|a| a.line()).collect();
    assert!(
        targets[0].contains("shop-web-4 (start-first: shop-web-1)"),
        "{targets:?}"
    );
}

#[test]
fn a_failed_batch_stops_the_rollout() {
    let host = host();
    let yaml = WEB
        .replace("ports: [\"8080:80\"]", "ports: [\"80\"]")
        .replace(
            "      update_config:",
            "      replicas: 2\n      update_config:\n        parallelism: 1",
        );
    up(&host, &project(&yaml));
    host.crash_loop("web", 1);
    let report = exec(&host, &plan_up(&host, &project(&v2(&yaml))));
    assert_eq!(failure(&report).0, ErrorKind::GateFailed);
    assert!(matches!(report.results[1].outcome, Outcome::Skipped { .. }));
    assert_eq!(running(&host), ["shop-web-1", "shop-web-2"]);
}

#[test]
fn stop_first_is_the_default_and_also_takes_batches() {
    let host = host();
    let yaml = WEB
        .replace("ports: [\"8080:80\"]", "ports: [\"80\"]")
        .replace("order: start-first", "parallelism: 1")
        .replace("    deploy:\n", "    deploy:\n      replicas: 2\n");
    up(&host, &project(&yaml));
    let plan = plan_up(&host, &project(&v2(&yaml)));
    assert_eq!(
        plan.lines(),
        [
            "0 Recreate shop-web-1 [ConfigChanged: environment changed]",
            "1 Recreate shop-web-2 [ConfigChanged: environment changed]",
        ]
    );
}

#[test]
fn container_name_and_fixed_addresses_fall_back_to_stop_first() {
    for (what, yaml) in [
        (
            "container_name",
            WEB.replace(
                "    image: nginx:1.25\n",
                "    image: nginx:1.25\n    container_name: theweb\n",
            ),
        ),
        (
            "network_mode host",
            WEB.replace(
                "    image: nginx:1.25\n",
                "    image: nginx:1.25\n    network_mode: host\n",
            ),
        ),
    ] {
        let host = host();
        up(&host, &project(&yaml));
        let plan = plan_up(&host, &project(&v2(&yaml)));
        assert_eq!(plan.actions.len(), 1, "{what}");
        assert_eq!(plan.actions[0].action.kind(), "Recreate", "{what}");
        assert!(exec(&host, &plan).succeeded(), "{what}");
    }
}

#[test]
fn an_interrupted_replacement_is_cleaned_up_by_the_next_plan() {
    // Killed after the new replica started (before its promotion): the
    // standby one goes, the old one is replaced again.
    let host = host();
    let p = project(WEB);
    up(&host, &p);
    let changed = project(&v2(WEB));
    host.crash_after(2);
    assert!(!exec(&host, &plan_up(&host, &changed)).succeeded());
    host.recover();
    assert!(standby(&host, "shop-web-2"));
    // The standby one is not counted as one of the service's replicas.
    let observed = berth_reconcilers::observe(&changed, host.backends()).unwrap();
    let status = summarize(&changed, &observed, None, None, &opts(&host));
    assert_eq!(
        (status[0].running_replicas, status[0].replicas.len()),
        (1, 1),
        "{status:#?}"
    );
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        [
            "0 RemoveContainer shop-web-2 [Standby: left out of service by an interrupted start-first replacement]",
            "0 Replace shop-web-1 (start-first: shop-web-3) [ConfigChanged: environment changed]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_eq!(running(&host), ["shop-web-3"]);
    assert_converged(&host, &changed, &opts(&host));

    // Killed after the promotion: the new one serves, the old one is
    // out of service and goes.
    let host = support::host();
    up(&host, &p);
    host.crash_after(3);
    assert!(!exec(&host, &plan_up(&host, &changed)).succeeded());
    host.recover();
    assert!(standby(&host, "shop-web-1"));
    assert!(!standby(&host, "shop-web-2"));
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        [
            "0 RemoveContainer shop-web-1 [Standby: left out of service by an interrupted start-first replacement]"
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_converged(&host, &changed, &opts(&host));
}

#[test]
fn stop_first_in_update_config_recreates() {
    let yaml = WEB.replace("start-first", "stop-first");
    let host = host();
    up(&host, &project(&yaml));
    let plan = plan_up(&host, &project(&v2(&yaml)));
    assert_eq!(
        plan.lines(),
        ["0 Recreate shop-web-1 [ConfigChanged: environment changed]"]
    );
    assert_eq!(UpdateOrder::default(), UpdateOrder::StopFirst);
}

/// The agent killed after every mutating call of a start-first rollout of
/// three replicas (batches of one): at every crash point two replicas
/// still serve (run, in service), and the recovery converges on three
/// replicas of the new version.
#[test]
fn a_start_first_rollout_killed_at_any_call_keeps_serving_and_converges() {
    let yaml = WEB
        .replace("ports: [\"8080:80\"]", "ports: [\"80\"]")
        .replace(
            "      update_config:",
            "      replicas: 3\n      update_config:\n        parallelism: 1",
        );
    let before = project(&yaml);
    let after = project(&v2(&yaml));
    let serving = |host: &FakeHost| {
        host.list("shop")
            .unwrap()
            .iter()
            .filter(|c| c.is_running() && !c.standby)
            .count()
    };
    let reference = host();
    up(&reference, &before);
    reference.clear_calls();
    assert!(exec(&reference, &plan_up(&reference, &after)).succeeded());
    let calls = reference.calls().len();
    assert_eq!(calls, 15, "{:?}", reference.calls());
    for k in 0..calls {
        let host = host();
        up(&host, &before);
        host.crash_after(k);
        assert!(!exec(&host, &plan_up(&host, &after)).succeeded(), "k={k}");
        host.recover();
        // Two replicas keep serving at any crash point: one batch is
        // being replaced, and its old container serves until the switch.
        assert!(serving(&host) >= 2, "k={k}: {:?}", host.container_states());
        up(&host, &after);
        assert_eq!(serving(&host), 3, "k={k}");
        let envs: Vec<String> = host
            .list("shop")
            .unwrap()
            .iter()
            .map(|c| host.spec_of(&c.name).unwrap().env["V"].clone())
            .collect();
        assert_eq!(envs, ["2", "2", "2"], "k={k}");
        assert_converged(&host, &after, &opts(&host));
    }
}
