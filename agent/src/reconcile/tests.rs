//! The workers against the reconcilers' fakes: applying, coalescing,
//! independence of projects, invalid edits, drift, deletion, suspension,
//! retries, orphans and the sweep.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use berth_reconcilers::ContainerRuntime;
use berth_reconcilers::ErrorKind;
use berth_reconcilers::fakes::Op;
use berth_reconcilers::observed::ContainerState::{Exited, Running};

use super::status::{OperationKind, OperationPhase};
use super::testing::{model, options, setup};
use super::worker::{Decision, decide};
use super::*;
use crate::state::{ConditionStatus, Phase};

const SHOP: &str = "
services:
  web:
    image: busybox
    depends_on: [db]
  db:
    image: busybox
    volumes: [data:/data]
volumes:
  data: {}
";

const SHOP_WEB_ONLY: &str = "
services:
  web:
    image: busybox
";

fn shop() -> berth_spec::compose::model::Project {
    model("shop", SHOP)
}

fn running(names: &[&str]) -> Vec<(String, berth_reconcilers::observed::ContainerState)> {
    names.iter().map(|n| (n.to_string(), Running)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_project_is_applied_and_reports_ready() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    let done = t.mgr.request("shop", Trigger::Initial).await.unwrap();
    let op = done.operation.unwrap();
    assert_eq!(op.kind, OperationKind::Apply);
    assert_eq!(op.phase, OperationPhase::Succeeded);
    assert_eq!(op.trigger, Trigger::Initial);
    let steps: Vec<(&str, &str, Option<&str>)> = op
        .plan
        .iter()
        .map(|s| (s.action, s.target.as_str(), s.outcome.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [
            ("CreateNetwork", "shop_default", Some("done")),
            ("CreateVolume", "shop_data", Some("done")),
            ("CreateContainer", "shop-db-1", Some("done")),
            ("CreateContainer", "shop-web-1", Some("done")),
        ]
    );
    assert_eq!(op.plan[2].reasons[0].kind.to_string(), "ContainerMissing");
    assert_eq!(t.host.states(), running(&["shop-db-1", "shop-web-1"]));
    // The agent's folder label, for the sweep.
    let spec = t.host.fake.spec_of("shop-web-1").unwrap();
    assert_eq!(spec.labels[host::AGENT_DIR_LABEL], "/srv/projects/shop");

    let store = t.store.read().await;
    let p = store.get("shop").unwrap();
    assert_eq!(p.phase(), Phase::Ready);
    let r = &p.reconcile;
    assert_eq!(r.ready.status, ConditionStatus::True);
    assert_eq!(r.ready.reason, "ReconciliationSucceeded");
    assert_eq!(r.ready.message, "applied revision r1");
    assert_eq!(r.reconciling.status, ConditionStatus::False);
    assert_eq!(r.stalled.status, ConditionStatus::False);
    assert_eq!(r.healthy.status, ConditionStatus::True);
    assert_eq!(r.healthy.message, "2/2 services healthy");
    assert_eq!(r.last_applied_revision.as_deref(), Some("r1"));
    assert_eq!(r.observed_generation, 1);
    assert_eq!(r.residual.as_deref(), Some(&[][..]));
    assert_eq!(status::sync_status(p).0, status::SyncStatus::Synced);
    let web = r.services.iter().find(|s| s.name == "web").unwrap();
    assert_eq!((web.desired_replicas, web.ready_replicas), (1, 1));
    drop(store);
    assert_eq!(
        t.metric("berth_reconcile_total{project=\"shop\",result=\"success\",trigger=\"initial\"}"),
        Some(1.0)
    );
    assert_eq!(
        t.metric("berth_service_replicas{project=\"shop\",service=\"web\",state=\"running\"}"),
        Some(1.0)
    );
    assert_eq!(
        t.metric("berth_project_condition{project=\"shop\",type=\"Ready\",status=\"True\"}"),
        Some(1.0)
    );

    // Converged: the next reconcile does nothing at all.
    t.host.fake.clear_calls();
    let again = t.mgr.request("shop", Trigger::Resync).await.unwrap();
    let op = again.operation.unwrap();
    assert!(op.plan.is_empty(), "{:?}", op.plan);
    assert_eq!(op.message, "nothing to do");
    assert!(t.host.fake.calls().is_empty(), "{:?}", t.host.fake.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_during_a_reconcile_coalesce_into_one_more() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.host.gate.close_for("shop");
    t.mgr.trigger("shop", Trigger::Initial);
    t.until("the first reconcile to be held", |_, h| {
        h.gate.entered.load(Ordering::SeqCst) > 0
    })
    .await;
    for _ in 0..5 {
        t.mgr.trigger("shop", Trigger::Resync);
    }
    let waiter = t.mgr.request("shop", Trigger::FsWatch);
    t.mgr.trigger("shop", Trigger::Resync);
    t.host.gate.open();
    let done = waiter.await.unwrap();
    // The strongest of the seven names the one reconcile they became.
    assert_eq!(done.operation.unwrap().trigger, Trigger::FsWatch);
    let series = |trigger: &str| {
        t.metric(&format!(
            "berth_reconcile_total{{project=\"shop\",result=\"success\",trigger=\"{trigger}\"}}"
        ))
    };
    assert_eq!(series("initial"), Some(1.0));
    assert_eq!(series("fswatch"), Some(1.0));
    assert_eq!(series("resync"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_project_does_not_hold_up_another() {
    let t = setup(options());
    t.load("slow", "r1", model("slow", SHOP_WEB_ONLY)).await;
    t.load("fast", "r1", model("fast", SHOP_WEB_ONLY)).await;
    t.host.gate.close_for("slow");
    let slow = t.mgr.request("slow", Trigger::Initial);
    t.until("slow to be held", |_, h| {
        h.gate.entered.load(Ordering::SeqCst) > 0
    })
    .await;
    let fast = tokio::time::timeout(
        Duration::from_secs(5),
        t.mgr.request("fast", Trigger::Initial),
    )
    .await
    .expect("fast waited for slow")
    .unwrap();
    assert_eq!(fast.operation.unwrap().phase, OperationPhase::Succeeded);
    assert_eq!(t.host.states(), running(&["fast-web-1"]));
    t.host.gate.open();
    slow.await.unwrap();
    assert_eq!(t.host.states(), running(&["fast-web-1", "slow-web-1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_app_and_still_repairs_drift() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    let web = t.host.id_of("shop", "shop-web-1");
    {
        let mut store = t.store.write().await;
        let now = SystemTime::now();
        store.apply_load(crate::state::tests::failed("shop", "r2"), now);
        store.settle(now);
    }
    let done = t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    let op = done.operation.unwrap();
    assert!(op.plan.is_empty(), "{:?}", op.plan);
    assert_eq!(op.revision, "r1", "the last good revision is what runs");
    assert_eq!(t.host.id_of("shop", "shop-web-1"), web);
    {
        let store = t.store.read().await;
        let p = store.get("shop").unwrap();
        assert_eq!(p.phase(), Phase::Failed);
        let r = &p.reconcile;
        assert_eq!(r.ready.status, ConditionStatus::False);
        assert_eq!(r.ready.reason, "ValidationFailed");
        assert!(r.ready.message.contains(":3:9: "), "{}", r.ready.message);
        assert_eq!(r.stalled.status, ConditionStatus::True);
        assert_eq!(r.healthy.status, ConditionStatus::True);
        assert_eq!(status::sync_status(p).0, status::SyncStatus::Unknown);
        assert_eq!(r.last_applied_revision.as_deref(), Some("r1"));
    }

    // Someone removes a container: the last good model puts it back.
    t.host.fake.delete_container("shop-web-1");
    let done = t.mgr.request("shop", Trigger::Resync).await.unwrap();
    let op = done.operation.unwrap();
    assert_eq!(op.plan.len(), 1, "{:?}", op.plan);
    assert_eq!(op.plan[0].target, "shop-web-1");
    assert_eq!(t.host.states(), running(&["shop-db-1", "shop-web-1"]));
    assert_eq!(
        t.metric(
            "berth_drift_corrections_total{project=\"shop\",service=\"web\",reason=\"ContainerMissing\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_the_user_stopped_stays_stopped_on_resync() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    let db = t.host.id_of("shop", "shop-db-1");
    // A stop through the runtime is the user's (the fake marks it so, as
    // `berth stop` does): the agent leaves it down until `start` or `up`.
    t.host.stop(&db, Duration::ZERO, None).unwrap();
    let done = t.mgr.request("shop", Trigger::Resync).await.unwrap();
    let planned = done.operation.map_or(0, |op| op.plan.len());
    assert_eq!(planned, 0, "nothing planned for a user's stop");
    assert_eq!(t.host.id_of("shop", "shop-db-1"), db);
    let states = t.host.states();
    let db_state = states.iter().find(|(name, _)| name == "shop-db-1");
    assert!(matches!(db_state, Some((_, Exited(_)))), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_service_recreates_only_that_one() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    let db = t.host.id_of("shop", "shop-db-1");
    let web = t.host.id_of("shop", "shop-web-1");
    let edited = model(
        "shop",
        &SHOP.replace(
            "depends_on: [db]",
            "depends_on: [db]\n    environment: {A: '1'}",
        ),
    );
    t.load("shop", "r2", edited).await;
    let op = t
        .mgr
        .request("shop", Trigger::FsWatch)
        .await
        .unwrap()
        .operation
        .unwrap();
    let steps: Vec<(&str, &str)> = op
        .plan
        .iter()
        .map(|s| (s.action, s.target.as_str()))
        .collect();
    assert_eq!(steps, [("Recreate", "shop-web-1")]);
    assert_eq!(op.plan[0].reasons[0].message, "environment changed");
    assert_eq!(t.host.id_of("shop", "shop-db-1"), db);
    assert_ne!(t.host.id_of("shop", "shop-web-1"), web);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_no_longer_declared_are_removed_unless_orphans_are_kept() {
    for keep in [false, true] {
        let t = setup(Options {
            remove_orphans: !keep,
            ..options()
        });
        t.load("shop", "r1", shop()).await;
        t.mgr.request("shop", Trigger::Initial).await.unwrap();
        t.load("shop", "r2", model("shop", SHOP_WEB_ONLY)).await;
        let op = t
            .mgr
            .request("shop", Trigger::FsWatch)
            .await
            .unwrap()
            .operation
            .unwrap();
        let names: Vec<String> = t.host.states().into_iter().map(|(n, _)| n).collect();
        if keep {
            assert!(
                op.plan.iter().all(|s| s.action != "RemoveContainer"),
                "{:?}",
                op.plan
            );
            assert_eq!(names, ["shop-db-1", "shop-web-1"]);
        } else {
            let orphan = op
                .plan
                .iter()
                .find(|s| s.action == "RemoveContainer")
                .unwrap();
            assert_eq!(orphan.target, "shop-db-1");
            assert_eq!(orphan.reasons[0].kind.to_string(), "Orphaned");
            assert_eq!(names, ["shop-web-1"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_project_is_torn_down_and_forgotten_but_volumes_stay() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    {
        let mut store = t.store.write().await;
        store.mark_absent(&[], SystemTime::now());
    }
    let done = t.mgr.request("shop", Trigger::Deletion).await.unwrap();
    let op = done.operation.unwrap();
    assert_eq!(op.kind, OperationKind::Delete);
    assert_eq!(op.phase, OperationPhase::Succeeded);
    assert!(t.store.read().await.get("shop").is_none());
    assert!(t.host.states().is_empty(), "{:?}", t.host.states());
    assert!(t.host.fake.network_names().is_empty());
    assert_eq!(t.host.fake.volume_names(), ["shop_data"]);
    assert_eq!(
        t.metric("berth_reconcile_total{project=\"shop\",result=\"success\",trigger=\"deletion\"}"),
        Some(1.0)
    );
    // The worker ended with its project; a later trigger finds nothing.
    let after = t.mgr.request("shop", Trigger::Resync).await.unwrap();
    assert!(after.operation.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_project_is_left_alone_until_resumed() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.mgr.set_suspended("shop", true).await.unwrap();
    t.host.fake.delete_container("shop-web-1");
    let done = t.mgr.request("shop", Trigger::Resync).await.unwrap();
    assert!(done.skipped.unwrap().contains("suspended"));
    assert_eq!(t.host.states(), running(&["shop-db-1"]));
    {
        let store = t.store.read().await;
        let p = store.get("shop").unwrap();
        assert_eq!(p.phase(), Phase::Suspended);
        assert_eq!(status::project_health(p).0, status::HealthStatus::Suspended);
        assert!(
            p.reconcile
                .skipped
                .as_deref()
                .unwrap()
                .contains("suspended")
        );
    }
    t.mgr.set_suspended("shop", false).await.unwrap();
    t.until("web back after resume", |_, h| {
        h.states() == running(&["shop-db-1", "shop-web-1"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_retried_with_backoff_and_reported_meanwhile() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.host.fake.fail_next(Op::Create, ErrorKind::Unavailable);
    let done = t.mgr.request("shop", Trigger::Initial).await.unwrap();
    let op = done.operation.unwrap();
    assert_eq!(op.phase, OperationPhase::Failed);
    assert!(op.message.contains("injected failure"), "{}", op.message);
    {
        let store = t.store.read().await;
        let p = store.get("shop").unwrap();
        assert_eq!(p.phase(), Phase::Failed);
        let r = &p.reconcile;
        assert_eq!(r.consecutive_failures, 1);
        assert!(r.next_reconcile_at.is_some());
        assert_eq!(r.ready.reason, "ReconciliationFailed");
        assert_eq!(r.reconciling.status, ConditionStatus::True);
        assert_eq!(r.reconciling.reason, "ProgressingWithRetry");
        assert_eq!(r.stalled.status, ConditionStatus::False);
        assert!(
            r.last_error
                .as_deref()
                .unwrap()
                .contains("injected failure")
        );
    }
    // The retry (after about a second) converges by itself.
    t.until("the retry to converge", |s, h| {
        s.get("shop").unwrap().reconcile.consecutive_failures == 0
            && h.states() == running(&["shop-db-1", "shop-web-1"])
    })
    .await;
    assert_eq!(
        t.store.read().await.get("shop").unwrap().phase(),
        Phase::Ready
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_machine_cannot_carry_out_is_stalled() {
    let t = setup(options());
    t.load("shop", "r1", shop()).await;
    t.host
        .fake
        .fail_next(Op::Create, ErrorKind::InvalidArgument);
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    let store = t.store.read().await;
    let r = &store.get("shop").unwrap().reconcile;
    assert_eq!(r.stalled.status, ConditionStatus::True);
    assert_eq!(r.stalled.reason, "ReconciliationFailed");
    assert_eq!(r.reconciling.status, ConditionStatus::False);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_a_renamed_projects_old_containers() {
    let t = setup(options());
    t.load("shop", "r1", model("old", SHOP_WEB_ONLY)).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.load("shop", "r2", model("new", SHOP_WEB_ONLY)).await;
    t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    assert_eq!(t.host.states(), running(&["new-web-1", "old-web-1"]));
    t.mgr.sweep();
    t.until("old to be swept", |_, h| {
        h.states() == running(&["new-web-1"])
    })
    .await;
    assert_eq!(t.host.fake.network_names(), ["new_default"]);
    // Claimed projects are never swept.
    t.mgr.sweep();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(t.host.states(), running(&["new-web-1"]));
}

#[test]
fn unclaimed_needs_no_model_with_the_name_and_no_unknown_project_at_the_folder() {
    use crate::state::tests::{failed, ok, project, t};
    let mut store = crate::state::Store::default();
    store.apply_load(ok("a", "r", project("a", &[])), t(0));
    let dir = |k: &str| std::path::PathBuf::from("/srv/projects").join(k);
    assert!(!sweep::unclaimed(&store, "a", &dir("a")));
    assert!(sweep::unclaimed(&store, "old-a", &dir("a")));
    assert!(sweep::unclaimed(&store, "gone", &dir("gone")));
    // A folder whose file never loaded: its name is unknown, hands off.
    store.apply_load(failed("b", "r"), t(0));
    assert!(!sweep::unclaimed(&store, "b-or-anything", &dir("b")));
}

#[test]
fn decisions_follow_the_store() {
    use crate::state::tests::{failed, ok, project, t};
    let grace = Duration::from_secs(10);
    let mut store = crate::state::Store::default();
    assert!(matches!(
        decide(None, t(0), grace, true, Trigger::Resync),
        Decision::Gone
    ));
    store.apply_load(failed("new", "r"), t(0));
    assert!(matches!(
        decide(store.get("new"), t(0), grace, true, Trigger::Resync),
        Decision::Skip(why) if why.contains("no valid model")
    ));
    store.apply_load(ok("a", "r1", project("a", &[])), t(0));
    assert!(matches!(
        decide(store.get("a"), t(0), grace, true, Trigger::Resync),
        Decision::Run(job, rev, 1) if job.kind == OperationKind::Apply && rev == "r1" && job.remove_orphans
    ));
    // Not applied yet: a resync or an event that gets there first applies
    // a change of the spec, and is named so.
    assert!(matches!(
        decide(store.get("a"), t(0), grace, true, Trigger::Event),
        Decision::Run(job, _, _) if job.trigger == Trigger::FsWatch
    ));
    store.get_mut("a").unwrap().reconcile.last_applied_revision = Some("r1".into());
    assert!(matches!(
        decide(store.get("a"), t(0), grace, true, Trigger::Event),
        Decision::Run(job, _, _) if job.trigger == Trigger::Event
    ));
    store.set_suspended("a", true);
    assert!(matches!(
        decide(store.get("a"), t(0), grace, true, Trigger::Resync),
        Decision::Skip(why) if why.contains("suspended")
    ));
    store.mark_absent(&["new".to_owned()], t(100));
    // Deleting beats suspended; the grace period is waited out first.
    assert!(matches!(
        decide(store.get("a"), t(104), grace, true, Trigger::Deletion),
        Decision::Wait(left) if left == Duration::from_secs(6)
    ));
    assert!(matches!(
        decide(store.get("a"), t(110), grace, true, Trigger::Deletion),
        Decision::Run(job, _, _) if job.kind == OperationKind::Delete
    ));
    // Two folders, one name: neither is reconciled, and when one of them
    // goes, it is forgotten, not torn down (the containers are the
    // other's), while the other one owns the name again.
    {
        let mut s = crate::state::Store::default();
        s.apply_load(ok("x", "r1", project("same", &[])), t(0));
        s.apply_load(ok("y", "r1", project("same", &[])), t(0));
        s.settle(t(0));
        s.mark_absent(&["y".to_owned()], t(1));
        s.settle(t(1));
        assert!(matches!(
            decide(s.get("x"), t(100), grace, true, Trigger::Deletion),
            Decision::Forget(why) if why.contains("same project")
        ));
        assert!(matches!(
            decide(s.get("y"), t(100), grace, true, Trigger::Resync),
            Decision::Run(job, _, _) if job.kind == OperationKind::Apply
        ));
    }
    // Two folders, one name: neither is reconciled.
    store.apply_load(ok("b", "r1", project("same", &[])), t(0));
    store.apply_load(ok("c", "r1", project("same", &[])), t(0));
    store.settle(t(0));
    assert!(matches!(
        decide(store.get("b"), t(0), grace, true, Trigger::Resync),
        Decision::Skip(why) if why.contains("ambiguous")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exited_container_is_reported_with_its_exit() {
    let t = setup(options());
    t.load("shop", "r1", model("shop", SHOP_WEB_ONLY)).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.host.fake.exit("shop-web-1", 3);
    // restart: no (the default): left exited, and said so.
    let op = t
        .mgr
        .request("shop", Trigger::Resync)
        .await
        .unwrap()
        .operation
        .unwrap();
    assert!(op.plan.is_empty());
    assert_eq!(t.host.states(), [("shop-web-1".to_owned(), Exited(3))]);
    let store = t.store.read().await;
    let p = store.get("shop").unwrap();
    assert_eq!(p.phase(), Phase::Degraded);
    let (health, message) = status::project_health(p);
    assert_eq!(health, status::HealthStatus::Degraded);
    assert_eq!(
        message,
        "0/1 services healthy: web: exited with code 3 (0/1 replicas ready)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_config_file_recreates_only_the_services_that_mount_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("app.conf"), "level=info\n").unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  web:\n    image: busybox\n    configs: [app]\n  db:\n    image: busybox\nconfigs:\n  app:\n    file: ./app.conf\n",
    )
    .unwrap();
    let load = || {
        berth_spec::compose::load(&berth_spec::compose::LoadOptions {
            project_directory: Some(dir.clone()),
            files: vec![file.clone()],
            working_dir: dir.clone(),
            ..Default::default()
        })
        .unwrap()
        .project
    };
    let t = setup(options());
    t.load("shop", "r1", load()).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    let (web, db) = (
        t.host.id_of("shop", "shop-web-1"),
        t.host.id_of("shop", "shop-db-1"),
    );

    // The model is the same (it names the file); the content moved.
    std::fs::write(dir.join("app.conf"), "level=debug\n").unwrap();
    t.load("shop", "r2", load()).await;
    let op = t
        .mgr
        .request("shop", Trigger::FsWatch)
        .await
        .unwrap()
        .operation
        .unwrap();
    let steps: Vec<(&str, &str)> = op
        .plan
        .iter()
        .map(|s| (s.action, s.target.as_str()))
        .collect();
    assert_eq!(steps, [("Recreate", "shop-web-1")]);
    assert_eq!(op.plan[0].reasons[0].message, "configs changed");
    assert_ne!(t.host.id_of("shop", "shop-web-1"), web);
    assert_eq!(t.host.id_of("shop", "shop-db-1"), db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_policy_always_pulls_when_applied_not_at_every_resync() {
    let t = setup(options());
    let project = model(
        "pulled",
        "
services:
  web:
    image: busybox
    pull_policy: always
",
    );
    t.load("pulled", "r1", project).await;
    // The registry has the image the store has: a pull changes nothing.
    t.host.fake.publish("busybox", "sha256:bb");
    let actions = |done: &Option<OperationState>| -> Vec<String> {
        done.as_ref()
            .unwrap()
            .plan
            .iter()
            .map(|s| s.action.to_owned())
            .collect()
    };
    let first = t.mgr.request("pulled", Trigger::Initial).await.unwrap();
    assert!(
        actions(&first.operation).contains(&"PullImage".to_owned()),
        "{:?}",
        actions(&first.operation)
    );
    let resync = t.mgr.request("pulled", Trigger::Resync).await.unwrap();
    assert!(
        !actions(&resync.operation).contains(&"PullImage".to_owned()),
        "{:?}",
        actions(&resync.operation)
    );
    let manual = t.mgr.request("pulled", Trigger::Manual).await.unwrap();
    assert!(
        actions(&manual.operation).contains(&"PullImage".to_owned()),
        "{:?}",
        actions(&manual.operation)
    );
}
