//! The handlers through the real router (`tower::ServiceExt::oneshot`),
//! with JSON bodies checked field by field.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::state::Store;
use crate::state::tests::{failed, ok, project, t};

fn app(store: Store) -> (Router, AppState) {
    let state = AppState {
        store: Arc::new(tokio::sync::RwLock::new(store)),
        metrics: Arc::new(Metrics::new()),
        control: None,
        auth: Arc::new(Auth::Disabled),
        source: None,
    };
    (router(state.clone()), state)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Option<String>, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, content_type, body)
}

/// A store with a good project, a broken one that had a good model, and one
/// that never loaded.
fn sample_store() -> Store {
    let mut store = Store::default();
    store.apply_load(
        ok(
            "shop",
            "sha256:r1",
            project("shop", &[("web", Some("nginx:1.27")), ("worker", None)]),
        ),
        t(0),
    );
    store.apply_load(
        ok(
            "blog",
            "sha256:b1",
            project("blog", &[("ghost", Some("ghost:5"))]),
        ),
        t(0),
    );
    store.settle(t(0));
    store.apply_load(failed("blog", "sha256:b2"), t(60));
    store.apply_load(failed("apps/new", "sha256:n1"), t(60));
    store.settle(t(60));
    store.mark_ready();
    store
}

#[tokio::test]
async fn healthz_is_always_ok() {
    let (app, _) = app(Store::default());
    let (status, ct, body) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_waits_for_the_first_scan() {
    let (app, state) = app(Store::default());
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
    assert!(body["error"].as_str().unwrap().contains("first scan"));
    state.store.write().await.mark_ready();
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn list_shows_every_project_with_services_errors_and_warnings() {
    let (app, _) = app(sample_store());
    let (status, _, body) = get(&app, "/api/v1/projects").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apiVersion"], "berth/v1");
    assert_eq!(body["kind"], "ProjectList");
    let items = body["items"].as_array().unwrap();
    let keys: Vec<_> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["apps/new", "blog", "shop"]);

    let shop = &items[2];
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["dir"], "/srv/projects/shop");
    assert_eq!(shop["files"], json!(["compose.yaml"]));
    assert_eq!(shop["revision"], "sha256:r1");
    assert_eq!(shop["generation"], 1);
    // Loaded, never reconciled (this store has no workers).
    assert_eq!(shop["phase"], "Pending");
    assert_eq!(shop["sync"], "Unknown");
    assert_eq!(shop["health"], "Unknown");
    assert_eq!(shop["suspended"], false);
    assert_eq!(shop["lastError"], Value::Null);
    assert_eq!(shop["services"], json!(["web", "worker"]));
    assert_eq!(shop["serviceCount"], 2);
    assert_eq!(shop["errors"], json!([]));
    assert_eq!(shop["lastLoadedAt"], "2023-11-14T22:13:20.000Z");
    let warning = &shop["warnings"][0];
    assert_eq!(warning["severity"], "warning");
    assert_eq!(warning["key"], "version");
    assert_eq!(warning["message"], "`version` is obsolete");
    assert_eq!(warning["text"], "warning: version: `version` is obsolete");

    // Broken after a good load: the error and the last good services.
    let blog = &items[1];
    assert_eq!(blog["name"], "blog");
    assert_eq!(blog["phase"], "Failed");
    assert_eq!(blog["generation"], 2);
    assert_eq!(blog["revision"], "sha256:b2");
    assert_eq!(blog["services"], json!(["ghost"]));
    assert_eq!(blog["serviceCount"], 1);
    let error = &blog["errors"][0];
    assert_eq!(error["severity"], "error");
    assert_eq!(error["file"], "/srv/projects/blog/compose.yaml");
    assert_eq!(error["line"], 3);
    assert_eq!(error["column"], 9);
    assert_eq!(error["key"], "services.web");
    assert_eq!(error["message"], "mapping values are not allowed here");
    assert_eq!(error["hint"], Value::Null);
    assert_eq!(
        error["text"],
        "/srv/projects/blog/compose.yaml:3:9: services.web: mapping values are not allowed here"
    );

    // Never loaded: a folder-derived name, no services.
    let new = &items[0];
    assert_eq!(new["name"], "new");
    assert_eq!(new["phase"], "Failed");
    assert_eq!(new["services"], json!([]));
    assert_eq!(new["serviceCount"], 0);
}

#[tokio::test]
async fn detail_of_a_ready_project() {
    let (app, _) = app(sample_store());
    let (status, _, body) = get(&app, "/api/v1/projects/shop").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apiVersion"], "berth/v1");
    assert_eq!(body["kind"], "Project");
    assert_eq!(
        body["metadata"],
        json!({
            "name": "shop", "key": "shop", "generation": 1,
            "createdAt": "2023-11-14T22:13:20.000Z", "labels": {}
        })
    );
    assert_eq!(
        body["spec"],
        json!({
            "source": {"type": "dir", "path": "/srv/projects/shop"},
            "files": ["compose.yaml"], "profiles": [], "suspend": false
        })
    );
    let status = &body["status"];
    // No reconcile has looked at it yet.
    assert_eq!(status["observedGeneration"], 0);
    assert_eq!(status["phase"], "Pending");
    assert_eq!(
        status["sync"],
        json!({
            "status": "Unknown", "revision": null, "desiredDigest": "sha256:r1",
            "appliedDigest": null, "message": "not observed yet"
        })
    );
    assert_eq!(
        status["health"],
        json!({"status": "Unknown", "message": "not observed yet"})
    );
    assert_eq!(status["operation"], Value::Null);
    assert_eq!(status["pending"], json!([]));
    assert_eq!(status["revision"], "sha256:r1");
    assert_eq!(status["lastValidRevision"], "sha256:r1");
    assert_eq!(status["lastValidGeneration"], 1);
    assert_eq!(status["lastError"], Value::Null);
    assert_eq!(status["errors"], json!([]));
    assert_eq!(
        status["conditions"][0],
        json!({
            "type": "SpecValid", "status": "True", "reason": "Loaded",
            "message": "loaded 2 services",
            "lastTransitionTime": "2023-11-14T22:13:20.000Z", "observedGeneration": 1
        })
    );
    let kinds: Vec<(&str, &str, &str)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("SpecValid", "True", "Loaded"),
            ("Ready", "Unknown", "Pending"),
            ("Reconciling", "False", "Idle"),
            ("Stalled", "False", "Idle"),
            ("Healthy", "Unknown", "NotObserved"),
        ]
    );
    assert_eq!(
        status["services"],
        json!([
            {"name": "web", "image": "nginx:1.27", "desiredReplicas": 1},
            {"name": "worker", "image": null, "desiredReplicas": 1}
        ])
    );
    // The whole model, as the spec crate serializes it.
    let model = serde_json::to_value(project(
        "shop",
        &[("web", Some("nginx:1.27")), ("worker", None)],
    ))
    .unwrap();
    assert_eq!(body["project"], model);
}

#[tokio::test]
async fn detail_of_a_broken_project_keeps_the_last_good_model() {
    let (app, _) = app(sample_store());
    let (status, _, body) = get(&app, "/api/v1/projects/blog").await;
    assert_eq!(status, StatusCode::OK);
    let st = &body["status"];
    assert_eq!(body["metadata"]["generation"], 2);
    assert_eq!(st["phase"], "Failed");
    assert_eq!(st["sync"]["status"], "Unknown");
    assert_eq!(st["conditions"][1]["type"], "Ready");
    assert_eq!(st["conditions"][1]["status"], "False");
    assert_eq!(st["conditions"][1]["reason"], "ValidationFailed");
    assert_eq!(st["conditions"][3]["type"], "Stalled");
    assert_eq!(st["conditions"][3]["status"], "True");
    assert_eq!(st["revision"], "sha256:b2");
    assert_eq!(st["lastValidRevision"], "sha256:b1");
    assert_eq!(st["lastValidGeneration"], 1);
    let text =
        "/srv/projects/blog/compose.yaml:3:9: services.web: mapping values are not allowed here";
    assert_eq!(st["lastError"], text);
    assert_eq!(st["errors"][0]["text"], text);
    let cond = &st["conditions"][0];
    assert_eq!(cond["type"], "SpecValid");
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "ValidationFailed");
    assert_eq!(cond["message"], text);
    assert_eq!(cond["lastTransitionTime"], "2023-11-14T22:14:20.000Z");
    assert_eq!(cond["observedGeneration"], 2);
    assert_eq!(
        st["services"],
        json!([{"name": "ghost", "image": "ghost:5", "desiredReplicas": 1}])
    );
    assert_eq!(body["project"]["name"], "blog");
    assert_eq!(body["project"]["services"]["ghost"]["image"], "ghost:5");
}

#[tokio::test]
async fn detail_of_a_never_loaded_project_has_no_model() {
    let (app, _) = app(sample_store());
    let (status, _, body) = get(&app, "/api/v1/projects/new").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["project"], Value::Null);
    assert_eq!(body["status"]["services"], json!([]));
    assert_eq!(body["status"]["lastValidRevision"], Value::Null);
    assert_eq!(body["metadata"]["key"], "apps/new");
}

#[tokio::test]
async fn unknown_and_ambiguous_names_are_json_errors() {
    let (app, _) = app(sample_store());
    let (status, ct, body) = get(&app, "/api/v1/projects/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(
        body,
        json!({
            "apiVersion": "berth/v1", "kind": "Status", "status": "Failure",
            "reason": "NotFound", "message": "project \"nope\" not found", "code": 404
        })
    );

    let mut store = Store::default();
    store.apply_load(ok("a", "r", project("same", &[])), t(0));
    store.apply_load(ok("b", "r", project("same", &[])), t(0));
    store.settle(t(0));
    let (app, _) = self::app(store);
    let (status, _, body) = get(&app, "/api/v1/projects/same").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["reason"], "Conflict");
    assert_eq!(
        body["message"],
        "project name \"same\" is used by several folders: a, b"
    );
    let (_, _, list) = get(&app, "/api/v1/projects").await;
    for item in list["items"].as_array().unwrap() {
        assert_eq!(item["phase"], "Failed");
        assert!(
            item["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("project name \"same\" is also used by")
        );
    }

    let (status, _, body) = get(&app, "/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["reason"], "NotFound");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (app, state) = app(sample_store());
    state.metrics.observe(&*state.store.read().await);
    let response = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.contains("berth_projects{phase=\"Pending\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("berth_projects{phase=\"Failed\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("berth_project_generation{project=\"blog\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("berth_watch_events_total 0\n"), "{text}");
}

#[tokio::test]
async fn no_route_mutates() {
    let (app, _) = app(sample_store());
    for uri in ["/api/v1/projects", "/api/v1/projects/shop"] {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let response = app
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method)
                        .uri(uri)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri}"
            );
        }
    }
}

// ---- with reconcile workers over the fakes ------------------------------

mod control {
    use super::*;
    use crate::reconcile::Trigger;
    use crate::reconcile::testing::{Setup, model, options, setup};

    const APP: &str = "
services:
  web:
    image: busybox
  init:
    image: busybox
";

    async fn app_with(auth: Auth) -> (Router, Setup) {
        let t = setup(options());
        t.load("shop", "r1", model("shop", APP)).await;
        t.store.write().await.mark_ready();
        let state = AppState {
            store: t.store.clone(),
            metrics: t.metrics.clone(),
            control: Some(t.mgr.clone()),
            auth: Arc::new(auth),
            source: None,
        };
        (router(state), t)
    }

    async fn post(
        app: &Router,
        uri: &str,
        token: Option<&str>,
    ) -> (StatusCode, HeaderMapLite, Value) {
        let mut request = Request::post(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            HeaderMapLite { challenge },
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    struct HeaderMapLite {
        challenge: Option<String>,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mutating_calls_without_a_configured_token_are_forbidden() {
        let (app, t) = app_with(Auth::Disabled).await;
        for uri in [
            "/api/v1/projects/shop/reconcile",
            "/api/v1/projects/shop/suspend",
            "/api/v1/projects/shop/resume",
        ] {
            let (status, _, body) = post(&app, uri, Some("anything")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
            assert_eq!(body["reason"], "Forbidden");
            assert!(
                body["message"].as_str().unwrap().contains("--token-file"),
                "{body}"
            );
        }
        // Nothing ran.
        assert!(t.host.states().is_empty());
        assert!(!t.store.read().await.get("shop").unwrap().suspended);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_or_missing_token_is_unauthorized() {
        let (app, t) = app_with(Auth::Token("s3cret".into())).await;
        for token in [None, Some("wrong")] {
            let (status, headers, body) =
                post(&app, "/api/v1/projects/shop/reconcile", token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
            assert_eq!(headers.challenge.as_deref(), Some("Bearer realm=\"berth\""));
            assert_eq!(body["reason"], "Unauthorized");
        }
        assert!(t.host.states().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_manual_reconcile_queues_or_waits_for_the_result() {
        let (app, t) = app_with(Auth::Token("s3cret".into())).await;
        let (status, _, body) = post(
            &app,
            "/api/v1/projects/shop/reconcile?wait=true&timeout=30s",
            Some("s3cret"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["kind"], "ReconcileRequest");
        assert_eq!(body["result"], "Succeeded");
        let op = &body["operation"];
        assert_eq!(op["operation"], "Apply");
        assert_eq!(op["trigger"], "manual");
        let targets: Vec<&str> = op["plan"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["target"].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["shop_default", "shop-web-1", "shop-init-1"]);
        assert_eq!(op["plan"][1]["reasons"][0]["kind"], "ContainerMissing");
        assert_eq!(op["plan"][1]["outcome"], "done");

        // The detail now carries the operation, conditions and services.
        let (_, _, detail) = get(&app, "/api/v1/projects/shop").await;
        let st = &detail["status"];
        assert_eq!(st["phase"], "Ready", "{st:#}");
        assert_eq!(st["sync"]["status"], "Synced");
        assert_eq!(st["health"]["status"], "Healthy");
        assert_eq!(st["observedGeneration"], 1);
        assert_eq!(st["lastAppliedRevision"], "r1");
        assert!(st["lastHandledReconcileAt"].is_string());
        assert_eq!(st["operation"]["phase"], "Succeeded");
        assert_eq!(st["conditions"][1]["type"], "Ready");
        assert_eq!(st["conditions"][1]["status"], "True");
        let web = &st["services"][0];
        assert_eq!(web["name"], "web");
        assert_eq!(web["desiredReplicas"], 1);
        assert_eq!(web["observedReplicas"], 1);
        assert_eq!(web["readyReplicas"], 1);
        assert_eq!(web["health"], "Healthy");
        assert_eq!(web["phase"], "Running");
        assert_eq!(web["restartCount"], 0);
        assert!(web["configHash"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(web["replicas"][0]["name"], "shop-web-1");
        assert_eq!(web["replicas"][0]["state"], "running");

        // Without wait: accepted at once.
        let (status, _, body) = post(&app, "/api/v1/projects/shop/reconcile", Some("s3cret")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body["result"], "Queued");
        let (status, _, _) = post(&app, "/api/v1/projects/nope/reconcile", Some("s3cret")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, body) = post(
            &app,
            "/api/v1/projects/shop/reconcile?wait=true&timeout=soon",
            Some("s3cret"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        drop(t);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn suspend_and_resume() {
        let (app, t) = app_with(Auth::Token("s3cret".into())).await;
        t.mgr.request("shop", Trigger::Initial).await.unwrap();
        let (status, _, body) = post(&app, "/api/v1/projects/shop/suspend", Some("s3cret")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["spec"]["suspend"], true);
        assert_eq!(body["status"]["phase"], "Suspended");
        let (status, _, body) = post(&app, "/api/v1/projects/shop/reconcile", Some("s3cret")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            body["message"].as_str().unwrap().contains("resume"),
            "{body}"
        );
        let (status, _, body) = post(&app, "/api/v1/projects/shop/resume", Some("s3cret")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["spec"]["suspend"], false);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_is_503_until_every_service_runs_then_200() {
        let (app, t) = app_with(Auth::Disabled).await;
        let (status, _, body) = get(&app, "/api/v1/projects/shop/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["kind"], "ProjectHealth");
        assert_eq!(body["status"], "Missing");
        assert_eq!(
            body["reasons"],
            json!([
                "web: no container (0/1 replicas ready)",
                "init: no container (0/1 replicas ready)"
            ])
        );
        t.mgr.request("shop", Trigger::Initial).await.unwrap();
        // init is a one-shot: completed with 0 is fine.
        t.host.fake.exit("shop-init-1", 0);
        let (status, _, body) = get(&app, "/api/v1/projects/shop/health").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "Healthy");
        assert_eq!(body["reasons"], json!([]));
        assert_eq!(body["services"][0]["runningReplicas"], 1);
        // Observed live: an exit shows before any reconcile.
        t.host.fake.exit("shop-web-1", 1);
        let (status, _, body) = get(&app, "/api/v1/projects/shop/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "Degraded");
        assert_eq!(
            body["reasons"],
            json!(["web: exited with code 1 (0/1 replicas ready)"])
        );
        let (status, _, _) = get(&app, "/api/v1/projects/nope/health").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
