//! History, rollback and events through the real router, over a worker
//! on the reconcilers' fakes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::reconcile::testing::{Setup, model, options, setup};
use crate::reconcile::{Trigger, gate, rollout};

const TOKEN: &str = "t0ken";

fn app(dir: &std::path::Path) -> (Router, Setup) {
    let mut o = options();
    o.rollout = rollout::RolloutOptions {
        dir: Some(dir.to_path_buf()),
        keep: 10,
        gate: gate::GateDefaults {
            timeout: Duration::from_secs(5),
            stable: Duration::ZERO,
            failure_action: gate::FailureAction::Rollback,
        },
    };
    let t = setup(o);
    let state = AppState {
        store: t.store.clone(),
        metrics: t.metrics.clone(),
        control: Some(t.mgr.clone()),
        auth: Arc::new(Auth::Token(TOKEN.into())),
        source: None,
    };
    (router(state), t)
}

async fn call(app: &Router, method: &str, uri: &str, token: bool) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn yaml(command: &str) -> String {
    format!("services:\n  web:\n    image: busybox\n    command: [sleep, '{command}']\n")
}

/// Two revisions applied: 1, then 2.
async fn two_revisions(t: &Setup) {
    t.load("shop", "r1", model("shop", &yaml("1"))).await;
    t.mgr.request("shop", Trigger::Initial).await.unwrap();
    t.load("shop", "r2", model("shop", &yaml("2"))).await;
    t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_rollback_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, t) = app(tmp.path());
    two_revisions(&t).await;

    let (status, body) = call(&app, "GET", "/api/v1/projects/shop/history", false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "RevisionHistory");
    assert_eq!(body["appliedRevision"], 2);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["number"], 2);
    assert_eq!(items[0]["state"], "Applied");
    assert_eq!(items[0]["snapshot"], "rev-2");
    assert_eq!(items[0]["revision"], "r2");
    assert_eq!(items[0]["services"], serde_json::json!(["web"]));
    assert!(
        items[0]["configHashes"]["web"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(items[0].get("model").is_none(), "the model is not served");

    let (status, _) = call(&app, "POST", "/api/v1/projects/shop/rollback?to=1", false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&app, "POST", "/api/v1/projects/shop/rollback?to=7", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(&app, "POST", "/api/v1/projects/shop/rollback?to=x", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(&app, "POST", "/api/v1/projects/nope/rollback", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = call(&app, "POST", "/api/v1/projects/shop/rollback", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "RollbackRequest");
    assert_eq!(
        (body["from"].as_u64(), body["to"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(body["result"], "Succeeded", "{body}");

    let (status, detail) = call(&app, "GET", "/api/v1/projects/shop", false).await;
    assert_eq!(status, StatusCode::OK);
    let st = &detail["status"];
    assert_eq!(st["rollout"]["appliedRevision"], 1);
    assert_eq!(st["rollout"]["desiredRevision"], 2);
    assert_eq!(st["rollout"]["pinned"]["revision"], 1);
    assert_eq!(st["sync"]["status"], "OutOfSync");
    assert_eq!(st["history"][0]["number"], 2);
    assert_eq!(
        st["history"][1]["lastReconciledStatus"],
        "ReconciliationSucceeded"
    );
    assert!(st["operations"].as_array().is_some());

    // Resume lifts the pin.
    let (status, _) = call(&app, "POST", "/api/v1/projects/shop/resume", true).await;
    assert_eq!(status, StatusCode::OK);
    t.until("rev 2 again", |store, _| {
        let r = &store.get("shop").unwrap().reconcile.rollout;
        r.pin.is_none() && r.in_place.as_ref().is_some_and(|i| i.number >= 2)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_as_a_list_and_as_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, t) = app(tmp.path());
    two_revisions(&t).await;

    let (status, body) = call(&app, "GET", "/api/v1/events?watch=false", false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["kind"], "EventList");
    let items = body["items"].as_array().unwrap();
    let applied: Vec<&Value> = items
        .iter()
        .filter(|e| e["reason"] == "RevisionApplied")
        .collect();
    assert_eq!(applied.len(), 2, "{items:?}");
    assert_eq!(applied[1]["revision"], "rev-2");
    assert_eq!(applied[1]["involvedObject"]["kind"], "Project");
    assert_eq!(applied[1]["source"]["component"], "berth-agent");
    let last = items.last().unwrap()["id"].as_u64().unwrap();
    let (_, none) = call(
        &app,
        "GET",
        &format!("/api/v1/events?watch=false&since={last}"),
        false,
    )
    .await;
    assert_eq!(none["items"], serde_json::json!([]));
    let (_, other) = call(
        &app,
        "GET",
        "/api/v1/events?watch=false&project=blog",
        false,
    )
    .await;
    assert_eq!(other["items"], serde_json::json!([]));
    let (status, _) = call(&app, "GET", "/api/v1/events?since=yesterday", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The stream: the backlog after `since`, then what happens.
    let response = app
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/events?since={last}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = response.into_body();
    t.load("shop", "r3", model("shop", &yaml("3"))).await;
    t.mgr.request("shop", Trigger::FsWatch).await.unwrap();
    let mut seen = String::new();
    while !seen.contains("RevisionApplied") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
        }
    }
    assert!(seen.contains("event: Normal"), "{seen}");
    assert!(seen.contains("\"revision\":\"rev-3\""), "{seen}");
}
