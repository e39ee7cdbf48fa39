//! The planner's rules end to end against the fakes: each scenario checks
//! the exact plan (waves, actions, targets, reasons), executes it, and
//! checks that a second plan on the converged state is empty.

mod support;

use std::time::Duration;

use berth_reconcilers::fakes::Op;
use berth_reconcilers::observed::ContainerState;
use berth_reconcilers::order::Condition;
use berth_reconcilers::plan::WaitFor;
use berth_reconcilers::{ErrorKind, Outcome, PlanOptions, ReasonKind};
use support::*;

#[test]
fn fresh_up_creates_everything_in_dependency_order() {
    let host = host();
    let p = project(SHOP);
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        [
            "0 CreateNetwork shop_default [ResourceMissing: network shop_default does not exist]",
            "0 CreateVolume shop_data [ResourceMissing: volume shop_data does not exist]",
            "0 PullImage postgres:16 [ImageMissing: postgres:16 is not present]",
            "0 PullImage nginx:1.25 [ImageMissing: nginx:1.25 is not present]",
            "1 CreateContainer shop-db-1 [ContainerMissing: replica 1 has no container]",
            "2 CreateContainer shop-web-1 [ContainerMissing: replica 1 has no container]",
            "2 CreateContainer shop-web-2 [ContainerMissing: replica 2 has no container]",
        ]
    );
    let web = &plan.actions[5];
    assert_eq!(
        web.wait,
        [WaitFor {
            service: "db".into(),
            condition: Condition::ServiceHealthy,
            required: true
        }]
    );
    assert!(plan.actions[4].wait.is_empty());
    let report = exec(&host, &plan);
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        host.calls(),
        [
            "create-network shop_default",
            "create-volume shop_data",
            "pull postgres:16",
            "pull nginx:1.25",
            "create shop-db-1",
            "start shop-db-1",
            "create shop-web-1",
            "start shop-web-1",
            "create shop-web-2",
            "start shop-web-2",
        ]
    );
    // The image digest pulled in this plan is in the labels and the hash.
    let spec = host.spec_of("shop-web-1").unwrap();
    assert_eq!(spec.image_digest.as_deref(), Some(NGINX));
    assert_eq!(spec.labels["berth.image-digest"], NGINX);
    assert_eq!(spec.labels["com.docker.compose.container-number"], "1");
    assert_eq!(running(&host), ["shop-db-1", "shop-web-1", "shop-web-2"]);
    assert_converged(&host, &p, &opts(&host));
}

#[test]
fn an_env_change_recreates_only_that_service_and_names_the_key() {
    let host = host();
    up(&host, &project(SHOP));
    let before = ids(&host, "shop");
    let changed = project(&SHOP.replace("MODE: prod", "MODE: staging"));
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        [
            "0 Recreate shop-web-1 [ConfigChanged: environment changed]",
            "0 Recreate shop-web-2 [ConfigChanged: environment changed]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    let after = ids(&host, "shop");
    assert_eq!(before["shop-db-1"], after["shop-db-1"], "db untouched");
    assert_ne!(before["shop-web-1"], after["shop-web-1"]);
    assert_converged(&host, &changed, &opts(&host));
    // Reordering keys, replicas unchanged: nothing to do.
    let reordered = project(&SHOP.replace(
        "      MODE: prod\n      LOG: info\n",
        "      LOG: info\n      MODE: staging\n",
    ));
    assert_converged(&host, &reordered, &opts(&host));
}

#[test]
fn a_moved_image_digest_recreates_with_image_digest_changed_only() {
    let host = host();
    let p = project(SHOP);
    up(&host, &p);
    host.add_image("nginx:1.25", NGINX_2);
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        [
            "0 Recreate shop-web-1 [ImageDigestChanged: nginx:1.25 is now sha256:121212121212, the container runs sha256:111111111111]",
            "0 Recreate shop-web-2 [ImageDigestChanged: nginx:1.25 is now sha256:121212121212, the container runs sha256:111111111111]",
        ]
    );
    assert!(exec(&host, &plan).succeeded());
    assert_eq!(
        host.spec_of("shop-web-2").unwrap().image_digest.as_deref(),
        Some(NGINX_2)
    );
    assert_converged(&host, &p, &opts(&host));
}

#[test]
fn image_refresh_pulls_then_the_next_round_recreates() {
    let host = host();
    let p = project(&SHOP.replace(
        "    image: nginx:1.25\n",
        "    image: nginx:1.25\n    pull_policy: always\n",
    ));
    up(&host, &p);
    host.publish("nginx:1.25", NGINX_2);
    let options = PlanOptions {
        refresh_images: true,
        ..opts(&host)
    };
    let rounds = converge_with(&host, &p, &options);
    assert_eq!(
        rounds,
        [
            vec!["0 PullImage nginx:1.25 [ImageRefresh: pull_policy always]".to_string()],
            vec![
                "0 Recreate shop-web-1 [ImageDigestChanged: nginx:1.25 is now sha256:121212121212, the container runs sha256:111111111111]".to_string(),
                "0 Recreate shop-web-2 [ImageDigestChanged: nginx:1.25 is now sha256:121212121212, the container runs sha256:111111111111]".to_string(),
            ],
        ]
    );
    assert_converged(&host, &p, &opts(&host));
    // A refresh that finds the same digest pulls and changes nothing else.
    let rounds = converge_with(&host, &p, &options);
    assert_eq!(rounds.len(), 1);
}

#[test]
fn dependents_restart_only_with_restart_true_transitively() {
    let host = host();
    up(&host, &project(CHAIN));
    let changed = project(&CHAIN.replace("V: \"1\"", "V: \"2\""));
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        [
            "0 Recreate shop-db-1 [ConfigChanged: environment changed]",
            "1 RestartContainer shop-api-1 [DependencyRestarted: dependency db was recreated and depends_on.db.restart is true]",
            "2 RestartContainer shop-front-1 [DependencyRestarted: dependency api was restarted and depends_on.api.restart is true]",
        ]
    );
    let before = ids(&host, "shop");
    assert!(exec(&host, &plan).succeeded());
    let after = ids(&host, "shop");
    assert_eq!(
        before["shop-api-1"], after["shop-api-1"],
        "restarted, not recreated"
    );
    assert_eq!(before["shop-worker-1"], after["shop-worker-1"]);
    assert_converged(&host, &changed, &opts(&host));
}

#[test]
fn changing_a_dependency_does_not_recreate_its_dependents() {
    let host = host();
    up(&host, &project(SHOP));
    let changed = project(&SHOP.replace("POSTGRES_PASSWORD: secret", "POSTGRES_PASSWORD: other"));
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        ["0 Recreate shop-db-1 [ConfigChanged: environment changed]"]
    );
}

const ONESHOT: &str = r#"
services:
  migrate:
    image: busybox
    command: [echo, migrated]
  web:
    image: nginx:1.25
    depends_on:
      migrate: {condition: service_completed_successfully}
"#;

#[test]
fn a_one_shot_that_exited_0_is_complete_until_its_config_changes() {
    let p = project(ONESHOT);
    // migrate exits 0 right after its start, as a one-shot does; web
    // waits for that.
    let host = host_with_exit_on_start("migrate", 0);
    let report = exec(&host, &plan_up(&host, &p));
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        host.container_states(),
        [
            ("shop-migrate-1".into(), ContainerState::Exited(0)),
            ("shop-web-1".into(), ContainerState::Running),
        ]
    );
    assert_converged(&host, &p, &opts(&host));
    host.clock().advance(Duration::from_secs(3600));
    assert_converged(&host, &p, &opts(&host));
    let changed = project(&ONESHOT.replace("[echo, migrated]", "[echo, again]"));
    assert_eq!(
        plan_up(&host, &changed).lines(),
        ["0 Recreate shop-migrate-1 [ConfigChanged: command changed]"]
    );
}

/// A host where `service`'s containers exit with `code` when started.
fn host_with_exit_on_start(service: &str, code: i64) -> berth_reconcilers::fakes::FakeHost {
    let h = host();
    h.crash_loop(service, code);
    h
}

#[test]
fn a_failed_dependency_fails_the_wait_and_skips_what_follows() {
    let host = host_with_exit_on_start("migrate", 3);
    let p = project(ONESHOT);
    let report = exec(&host, &plan_up(&host, &p));
    let outcome = |target: &str| {
        report
            .results
            .iter()
            .find(|r| r.target == target)
            .map(|r| r.outcome.clone())
            .unwrap()
    };
    assert_eq!(outcome("shop-migrate-1"), Outcome::Done);
    match outcome("shop-web-1") {
        Outcome::Failed { kind, message } => {
            assert_eq!(kind, ErrorKind::FailedPrecondition);
            assert_eq!(
                message,
                "service web: dependency migrate did not become service_completed_successfully: shop-migrate-1 exited with code 3"
            );
        }
        other => panic!("{other:?}"),
    }
    // restart: no, exit 3: left as failed, not restarted in a loop.
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        ["0 CreateContainer shop-web-1 [ContainerMissing: replica 1 has no container]"]
    );
}

#[test]
fn exited_containers_restart_by_policy_with_backoff_and_do_not_block_others() {
    let host = host();
    let p = project(CHAIN);
    up(&host, &p);
    // worker has no restart policy; api has none either: give one a crash.
    let p = project(&CHAIN.replace(
        "    command: [sleep, infinity]\n",
        "    command: [sleep, infinity]\n    restart: always\n",
    ));
    up(&host, &p);
    host.crash_loop("worker", 1);
    host.exit("shop-worker-1", 1);
    // First restart: 100 ms after the exit.
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        [
            "0 StartContainer shop-worker-1 [Exited: exited with code 1; restart policy always; 0 restart(s) so far]"
        ]
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(100)));
    // Too early: deferred, not failed.
    let report = exec(&host, &plan);
    assert!(matches!(
        report.results[0].outcome,
        Outcome::Deferred { .. }
    ));
    assert_eq!(report.requeue_after, Some(Duration::from_millis(100)));
    // Due: it starts and crashes again; the next backoff doubles.
    host.clock().advance(Duration::from_millis(100));
    assert!(exec(&host, &plan_up(&host, &p)).succeeded());
    let plan = plan_up(&host, &p);
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(200)));
    // Meanwhile another service changes: it proceeds, the loop waits.
    let changed = project(
        &CHAIN
            .replace(
                "    command: [sleep, infinity]\n",
                "    command: [sleep, infinity]\n    restart: always\n",
            )
            .replace(
                "  front:\n    image: nginx:1.25\n",
                "  front:\n    image: nginx:1.25\n    user: \"101\"\n",
            ),
    );
    let plan = plan_up(&host, &changed);
    assert_eq!(
        plan.lines(),
        [
            "0 StartContainer shop-worker-1 [Exited: exited with code 1; restart policy always; 1 restart(s) so far]",
            "0 Recreate shop-front-1 [ConfigChanged: user changed]",
        ]
    );
    let report = exec(&host, &plan);
    assert!(matches!(
        report.results[0].outcome,
        Outcome::Deferred { .. }
    ));
    assert_eq!(report.results[1].outcome, Outcome::Done);
}

#[test]
fn a_failure_stops_after_its_wave_and_a_rerun_converges() {
    let host = host();
    let p = project(SHOP);
    host.fail_next(Op::Create, ErrorKind::Internal);
    let plan = plan_up(&host, &p);
    let report = exec(&host, &plan);
    let outcomes: Vec<String> = report
        .results
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Done => format!("{} done", r.target),
            Outcome::Failed { kind, .. } => format!("{} failed {kind:?}", r.target),
            Outcome::Skipped { .. } => format!("{} skipped", r.target),
            Outcome::Deferred { .. } => format!("{} deferred", r.target),
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "shop_default done",
            "shop_data done",
            "postgres:16 done",
            "nginx:1.25 done",
            "shop-db-1 failed Internal",
            "shop-web-1 skipped",
            "shop-web-2 skipped",
        ]
    );
    up(&host, &p);
    assert_eq!(running(&host), ["shop-db-1", "shop-web-1", "shop-web-2"]);
    assert_converged(&host, &p, &opts(&host));
}

#[test]
fn a_missing_image_fails_its_pull_with_not_found() {
    let host = host();
    let p = project("services:\n  ghost:\n    image: ghost:1\n");
    let report = exec(&host, &plan_up(&host, &p));
    let failure = report.failures().next().unwrap();
    assert_eq!(failure.target, "ghost:1");
    assert!(matches!(
        failure.outcome,
        Outcome::Failed {
            kind: ErrorKind::NotFound,
            ..
        }
    ));
}

#[test]
fn built_images_build_when_missing_and_rebuild_with_build() {
    let host = host();
    let p = project("services:\n  app:\n    build: .\n");
    let plan = plan_up(&host, &p);
    assert_eq!(
        plan.lines(),
        [
            "0 CreateNetwork shop_default [ResourceMissing: network shop_default does not exist]",
            "0 BuildImage shop-app [ImageMissing: shop-app is not present]",
            "1 CreateContainer shop-app-1 [ContainerMissing: replica 1 has no container]",
        ]
    );
    up(&host, &p);
    assert_converged(&host, &p, &opts(&host));
    let rebuild = PlanOptions {
        build: true,
        ..opts(&host)
    };
    let rounds = converge_with(&host, &p, &rebuild);
    assert_eq!(rounds[0], ["0 BuildImage shop-app [Forced: --build]"]);
    assert_eq!(rounds[1].len(), 1);
    assert!(
        rounds[1][0].starts_with("0 Recreate shop-app-1 [ImageDigestChanged: shop-app is now"),
        "{rounds:?}"
    );
    assert_converged(&host, &p, &opts(&host));
}

#[test]
fn an_edited_build_context_rebuilds_and_recreates_when_the_image_changed() {
    let host = host();
    let p = project("services:\n  app:\n    build: .\n  db:\n    image: postgres:16\n");
    host.add_image(
        "postgres:16",
        "sha256:0000000000000000000000000000000000000000000000000000000000000001",
    );
    up(&host, &p);
    assert_converged(&host, &p, &opts(&host));
    host.edit_build_context("shop-app");
    let rounds = converge_with(&host, &p, &opts(&host));
    assert_eq!(
        rounds[0],
        [
            "0 BuildImage shop-app [BuildContextChanged: the build context changed since shop-app was built]"
        ]
    );
    assert_eq!(rounds[1].len(), 1, "{rounds:?}");
    assert!(
        rounds[1][0].starts_with("0 Recreate shop-app-1 [ImageDigestChanged: shop-app is now"),
        "{rounds:?}"
    );
    assert_converged(&host, &p, &opts(&host));
    // --no-build keeps the stale image.
    host.edit_build_context("shop-app");
    let no_build = PlanOptions {
        no_build: true,
        ..opts(&host)
    };
    assert_converged(&host, &p, &no_build);
}

#[test]
fn pull_policy_build_builds_at_every_up_but_not_at_resyncs() {
    let host = host();
    let p = project("services:\n  app:\n    build: .\n    pull_policy: build\n");
    up(&host, &p);
    // The agent's resyncs leave build_policy off: converged.
    assert_converged(&host, &p, &opts(&host));
    let cli_up = PlanOptions {
        build_policy: true,
        ..opts(&host)
    };
    let rounds = converge_with(&host, &p, &cli_up);
    assert_eq!(
        rounds[0],
        ["0 BuildImage shop-app [Forced: pull_policy build]"]
    );
    // --no-build wins.
    let no_build = PlanOptions {
        build_policy: true,
        no_build: true,
        ..opts(&host)
    };
    assert_converged(&host, &p, &no_build);
}

#[test]
fn every_action_says_why() {
    let host = host();
    let plan = plan_up(&host, &project(SHOP));
    for a in &plan.actions {
        assert!(!a.reasons.is_empty(), "{}", a.line());
        assert!(a.reasons.iter().all(|r| !r.message.is_empty()));
    }
    assert_eq!(
        plan.actions[4].reason_kinds(),
        [ReasonKind::ContainerMissing]
    );
}
