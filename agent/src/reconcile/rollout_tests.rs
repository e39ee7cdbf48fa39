//! Rollouts through the worker against the reconcilers' fakes: the gate,
//! automatic rollback and its block, pause, manual rollback and its pin,
//! and the events they leave.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use super::events_log::{EventType, Since};
use super::revisions::RevisionState;
use berth_reconcilers::ContainerRuntime;

use super::testing::{Setup, model, options, setup};
use super::*;

const V1: &str = "
services:
  web:
    image: busybox
    command: [sleep, '1']
";

/// v1 with a healthcheck: the fake reports it unhealthy (see `bad`).
const V2: &str = "
services:
  web:
    image: busybox
    command: [sleep, '2']
    healthcheck:
      test: [CMD, 'false']
";

const V3: &str = "
services:
  web:
    image: busybox
    command: [sleep, '3']
";

fn rollout_setup(dir: &std::path::Path, action: gate::FailureAction) -> Setup {
    let mut o = options();
    o.rollout = rollout::RolloutOptions {
        dir: Some(dir.to_path_buf()),
        keep: 10,
        gate: gate::GateDefaults {
            timeout: Duration::from_secs(5),
            stable: Duration::ZERO,
            failure_action: action,
        },
    };
    let t = setup(o);
    // Containers with a healthcheck report unhealthy.
    t.host.fake.make_unhealthy("web");
    t
}

/// `(number, state, rolled back to)` of every revision, newest first.
async fn history(t: &Setup) -> Vec<(u64, RevisionState, Option<u64>)> {
    let store = t.store.read().await;
    store
        .get("shop")
        .unwrap()
        .reconcile
        .rollout
        .history
        .iter()
        .map(|r| (r.number, r.state, r.rolled_back_to))
        .collect()
}

async fn in_place(t: &Setup) -> Option<u64> {
    let store = t.store.read().await;
    let p = store.get("shop").unwrap();
    p.reconcile.rollout.in_place.as_ref().map(|i| i.number)
}

fn web_command(t: &Setup) -> Vec<String> {
    t.host
        .fake
        .spec_of("shop-web-1")
        .unwrap()
        .command
        .unwrap_or_default()
}

fn events(t: &Setup) -> Vec<(EventType, String, u64)> {
    t.mgr
        .events()
        .since(&Since::All, Some("shop"))
        .into_iter()
        .map(|e| (e.kind, e.reason, e.count))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_rolls_back_and_the_revision_is_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let t = rollout_setup(tmp.path(), gate::FailureAction::Rollback);
    t.load("shop", "r1", model("shop", V1)).await;
    let done = t.mgr.request("shop", Trigger::Initial).await.unwrap();
    assert_eq!(
        done.operation.unwrap().phase,
        status::OperationPhase::Succeeded
    );
    assert_eq!(history(&t).await, [(1, RevisionState::Applied, None)]);
    assert_eq!(in_place(&t).await, Some(1));

    t.load("shop", "r2", model("shop", V2)).await;
    let done = t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    let op = done.operation.unwrap();
    assert_eq!(
        op.trigger,
        Trigger::Rollback,
        "the answer is the rollback's"
    );
    assert_eq!(op.phase, status::OperationPhase::Succeeded);
    assert_eq!(op.revision, "r1");
    assert_eq!(
        history(&t).await,
        [
            (2, RevisionState::RolledBack, Some(1)),
            (1, RevisionState::Applied, None)
        ]
    );
    assert_eq!(in_place(&t).await, Some(1));
    assert_eq!(web_command(&t), ["sleep", "1"]);
    {
        let store = t.store.read().await;
        let r = &store.get("shop").unwrap().reconcile;
        let blocked = r.rollout.blocked.as_ref().unwrap();
        assert_eq!(blocked.number, 2);
        assert!(blocked.message.contains("unhealthy"), "{}", blocked.message);
        assert_eq!(r.last_applied_revision.as_deref(), Some("r1"));
        assert_eq!(
            r.rollout
                .desired(store.get("shop").unwrap().last_good.as_ref()),
            Some(2)
        );
        // What runs is healthy, but the files' revision is not it.
        let p = store.get("shop").unwrap();
        assert_eq!(p.phase(), crate::state::Phase::Failed);
        assert_eq!(
            (r.ready.status, r.ready.reason),
            (crate::state::ConditionStatus::False, "RolledBack")
        );
        assert_eq!(r.stalled.reason, "RolledBack");
        assert_eq!(status::sync_status(p).0, status::SyncStatus::OutOfSync);
        assert_eq!(r.healthy.status, crate::state::ConditionStatus::True);
    }
    assert_eq!(
        t.metric("berth_rollbacks_total{project=\"shop\",kind=\"automatic\"}"),
        Some(1.0)
    );
    let reasons: Vec<String> = events(&t).into_iter().map(|e| e.1).collect();
    let gate_failed = reasons
        .iter()
        .position(|r| r == "HealthGateFailed")
        .unwrap();
    let rolled_back = reasons.iter().position(|r| r == "RolledBack").unwrap();
    assert!(gate_failed < rolled_back, "{reasons:?}");

    // Resyncs keep revision 1 and do not try revision 2 again.
    t.host.fake.clear_calls();
    for _ in 0..2 {
        let done = t.mgr.request("shop", Trigger::Resync).await.unwrap();
        let op = done.operation.unwrap();
        assert!(op.plan.is_empty(), "{:?}", op.plan);
        assert_eq!(op.revision, "r1");
    }
    assert_eq!(history(&t).await.len(), 2);
    assert_eq!(web_command(&t), ["sleep", "1"]);

    // The files change again: v3 is applied.
    t.load("shop", "r3", model("shop", V3)).await;
    t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    assert_eq!(history(&t).await[0], (3, RevisionState::Applied, None));
    assert_eq!(in_place(&t).await, Some(3));
    assert_eq!(web_command(&t), ["sleep", "3"]);
    {
        let store = t.store.read().await;
        assert!(
            store
                .get("shop")
                .unwrap()
                .reconcile
                .rollout
                .blocked
                .is_none()
        );
        assert_eq!(
            store.get("shop").unwrap().phase(),
            crate::state::Phase::Ready
        );
    }

    // A restart of the agent reads the same history back.
    let again = rollout_setup(tmp.path(), gate::FailureAction::Rollback);
    again.load("shop", "r3", model("shop", V3)).await;
    again.mgr.request("shop", Trigger::Initial).await.unwrap();
    assert_eq!(history(&again).await.len(), 3);
    assert_eq!(in_place(&again).await, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_reconcile_applies_a_rolled_back_revision_again() {
    let tmp = tempfile::tempdir().unwrap();
    let t = rollout_setup(tmp.path(), gate::FailureAction::Rollback);
    t.load("shop", "r1", model("shop", V1)).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.load("shop", "r2", model("shop", V2)).await;
    t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    assert_eq!(in_place(&t).await, Some(1));
    t.mgr.force("shop").await;
    let done = t.mgr.request("shop", Trigger::Manual).await.unwrap();
    // Still unhealthy: rolled back once more, the same record counted.
    assert_eq!(done.operation.unwrap().trigger, Trigger::Rollback);
    let h = history(&t).await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(
        t.metric("berth_rollbacks_total{project=\"shop\",kind=\"automatic\"}"),
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_leaves_the_failed_revision_in_place_without_retrying() {
    let tmp = tempfile::tempdir().unwrap();
    let t = rollout_setup(tmp.path(), gate::FailureAction::Pause);
    t.load("shop", "r1", model("shop", V1)).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.load("shop", "r2", model("shop", V2)).await;
    let done = t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    assert_eq!(done.operation.unwrap().trigger, Trigger::FsWatch);
    assert_eq!(history(&t).await[0], (2, RevisionState::Failed, None));
    assert_eq!(in_place(&t).await, Some(2));
    assert_eq!(web_command(&t), ["sleep", "2"]);
    let done = t.mgr.request("shop", Trigger::Resync).await.unwrap();
    assert!(done.operation.unwrap().plan.is_empty());
    assert_eq!(history(&t).await.len(), 2);
    assert!(
        events(&t)
            .iter()
            .any(|(kind, reason, _)| *kind == EventType::Warning && reason == "HealthGateFailed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rollback_pins_until_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let t = rollout_setup(tmp.path(), gate::FailureAction::Rollback);
    t.load("shop", "r1", model("shop", V1)).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.load("shop", "r3", model("shop", V3)).await;
    t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    assert_eq!(in_place(&t).await, Some(2));

    assert_eq!(t.mgr.rollback("shop", Some(9)).await.unwrap_err().0, 404);
    let (to, from, rx) = t.mgr.rollback("shop", None).await.unwrap();
    assert_eq!((to, from), (1, Some(2)));
    let done = rx.await.unwrap();
    assert_eq!(
        done.operation.unwrap().phase,
        status::OperationPhase::Succeeded
    );
    assert_eq!(in_place(&t).await, Some(1));
    assert_eq!(web_command(&t), ["sleep", "1"]);
    assert!(tmp.path().join("shop/pin.json").exists());
    assert_eq!(
        t.metric("berth_rollbacks_total{project=\"shop\",kind=\"manual\"}"),
        Some(1.0)
    );
    // Pinned: a resync keeps revision 1.
    t.mgr.request("shop", Trigger::Resync).await.unwrap();
    assert_eq!(web_command(&t), ["sleep", "1"]);

    // Resume lifts the pin: the files' revision comes back.
    t.mgr.set_suspended("shop", false).await.unwrap();
    t.until("the files' revision again", |_, host| {
        host.fake
            .spec_of("shop-web-1")
            .and_then(|s| s.command)
            .is_some_and(|c| c == ["sleep", "3"])
    })
    .await;
    assert!(!tmp.path().join("shop/pin.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_manifest_on_every_resync_is_one_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let t = rollout_setup(tmp.path(), gate::FailureAction::Rollback);
    t.load("shop", "r1", model("shop", V1)).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    {
        let mut store = t.store.write().await;
        store.apply_load(
            crate::state::tests::failed("shop", "bad"),
            std::time::SystemTime::now(),
        );
    }
    for _ in 0..5 {
        t.mgr.request("shop", Trigger::Resync).await.unwrap();
    }
    let invalid: Vec<_> = events(&t)
        .into_iter()
        .filter(|e| e.1 == "ManifestInvalid")
        .collect();
    assert_eq!(
        invalid,
        [(EventType::Warning, "ManifestInvalid".to_owned(), 5)]
    );
    t.load("shop", "r1", model("shop", V1)).await;
    t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    let valid = events(&t)
        .into_iter()
        .filter(|e| e.1 == "ManifestValid")
        .count();
    assert_eq!(valid, 1);
    assert_eq!(
        t.metric("berth_events_total{type=\"Warning\",reason=\"ManifestInvalid\"}"),
        Some(5.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_fails_to_apply_is_rolled_back() {
    let tmp = tempfile::tempdir().unwrap();
    let t = rollout_setup(tmp.path(), gate::FailureAction::Rollback);
    t.load("shop", "r1", model("shop", V1)).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.host.fake.fail_next(
        berth_reconcilers::fakes::Op::Create,
        berth_reconcilers::ErrorKind::Unavailable,
    );
    t.load("shop", "r3", model("shop", V3)).await;
    let done = t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    let op = done.operation.unwrap();
    assert_eq!(op.trigger, Trigger::Rollback);
    assert_eq!(op.phase, status::OperationPhase::Succeeded);
    assert_eq!(
        history(&t).await,
        [
            (2, RevisionState::RolledBack, Some(1)),
            (1, RevisionState::Applied, None)
        ]
    );
    assert_eq!(web_command(&t), ["sleep", "1"]);
    assert!(
        events(&t)
            .iter()
            .any(|(kind, reason, _)| *kind == EventType::Warning && reason == "RolloutFailed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_keeps_repairing_drift_while_it_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let t = rollout_setup(tmp.path(), gate::FailureAction::Rollback);
    t.host.fake.healthy_after("api", Duration::from_secs(10));
    let api = "
services:
  api:
    image: busybox
    healthcheck:
      test: [CMD, 'true']
";
    t.load("shop", "r1", model("shop", api)).await;
    let done = t.mgr.request("shop", Trigger::Initial).await.unwrap();
    // The run's answer: the gate goes on after it.
    assert_eq!(done.operation.unwrap().trigger, Trigger::Initial);
    {
        let store = t.store.read().await;
        let p = store.get("shop").unwrap();
        let gate = p.reconcile.rollout.gate.as_ref().unwrap();
        assert_eq!(gate.services, ["api"]);
        assert!(gate.message.contains("api: starting"), "{}", gate.message);
        assert_eq!(p.phase(), crate::state::Phase::Progressing);
    }
    assert_eq!(history(&t).await, [(1, RevisionState::Progressing, None)]);

    // Removed by hand mid-gate: the gate's next look repairs it.
    let first = t.host.id_of("shop", "shop-api-1");
    t.host.fake.delete_container("shop-api-1");
    t.until("api recreated during the gate", |store, host| {
        store.get("shop").unwrap().reconcile.rollout.gate.is_some()
            && host
                .fake
                .list("shop")
                .unwrap()
                .iter()
                .any(|c| c.name == "shop-api-1" && c.id != first)
    })
    .await;
    t.host.fake.clock().advance(Duration::from_secs(11));
    t.until("rev 1 applied", |store, _| {
        store
            .get("shop")
            .unwrap()
            .reconcile
            .rollout
            .in_place
            .as_ref()
            .is_some_and(|i| i.number == 1)
    })
    .await;
    assert_eq!(history(&t).await, [(1, RevisionState::Applied, None)]);
    let store = t.store.read().await;
    assert!(store.get("shop").unwrap().reconcile.rollout.gate.is_none());
}
